//! Where a process stands in a data-parallel job, read from the launcher's environment as PyTorch
//! reads it: torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT (and
//! TORCHELASTIC_USE_AGENT_STORE: the agent serves the store), else Slurm's SLURM_PROCID /
//! SLURM_NTASKS / SLURM_LOCALID with the node list's first host as the master. A half-set or
//! inconsistent environment is refused here, before any work.

use std::time::Duration;

use super::DistError;

/// The port torchrun and torch.distributed use when none is given.
pub const DEFAULT_PORT: u16 = 29500;
/// The environment variable of the process-group timeout, in seconds.
pub const TIMEOUT_VAR: &str = "SHIFTLIVE_DIST_TIMEOUT";
/// The process-group timeout when none is given (torch's default is 30 minutes; a lost peer is
/// usually seen at once, the timeout only bounds a rank that hangs or never arrives).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// This process's place in a job of `world` processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    /// The rank on this machine (the GPU it takes).
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// The store is served by torchrun's agent: every rank connects as a client.
    pub agent_store: bool,
    /// `torchrun` or `slurm`, for messages.
    pub launcher: &'static str,
}

const TORCHRUN: [&str; 4] = ["RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"];

impl Launch {
    /// The launch of this process, from its environment; None when it was not launched as part of
    /// a job (or as a job of one process).
    pub fn from_env() -> Result<Option<Self>, DistError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Launch::from_env`] over any variable source (tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, DistError> {
        let set: Vec<&str> = TORCHRUN.into_iter().filter(|k| var(k).is_some()).collect();
        let launch = if !set.is_empty() {
            if let Some(missing) = TORCHRUN.into_iter().find(|k| var(k).is_none()) {
                return Err(DistError::HalfSet {
                    set: set.join(", "),
                    missing,
                });
            }
            let rank = number(&var, "RANK")?;
            Self {
                rank,
                world: number(&var, "WORLD_SIZE")?,
                local_rank: match var("LOCAL_RANK") {
                    Some(_) => number(&var, "LOCAL_RANK")?,
                    None => rank,
                },
                master_addr: var("MASTER_ADDR").unwrap_or_default(),
                master_port: port(&var, "MASTER_PORT")?,
                agent_store: var("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"),
                launcher: "torchrun",
            }
        } else if var("SLURM_PROCID").is_some() || var("SLURM_NTASKS").is_some() {
            for k in ["SLURM_PROCID", "SLURM_NTASKS"] {
                if var(k).is_none() {
                    return Err(DistError::HalfSet {
                        set: "SLURM_PROCID or SLURM_NTASKS".into(),
                        missing: k,
                    });
                }
            }
            let nodes = var("SLURM_STEP_NODELIST").or_else(|| var("SLURM_JOB_NODELIST"));
            let master_addr = match var("MASTER_ADDR") {
                Some(a) => a,
                None => first_host(nodes.as_deref().unwrap_or("127.0.0.1"))?,
            };
            Self {
                rank: number(&var, "SLURM_PROCID")?,
                world: number(&var, "SLURM_NTASKS")?,
                local_rank: match var("SLURM_LOCALID") {
                    Some(_) => number(&var, "SLURM_LOCALID")?,
                    None => 0,
                },
                master_addr,
                master_port: match var("MASTER_PORT") {
                    Some(_) => port(&var, "MASTER_PORT")?,
                    None => DEFAULT_PORT,
                },
                agent_store: false,
                launcher: "slurm",
            }
        } else {
            return Ok(None);
        };
        if launch.world == 0 || launch.rank >= launch.world {
            return Err(DistError::RankOutsideWorld {
                rank: launch.rank,
                world: launch.world,
                launcher: launch.launcher,
            });
        }
        Ok((launch.world > 1).then_some(launch))
    }
}

/// The process-group timeout: SHIFTLIVE_DIST_TIMEOUT seconds, else [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Result<Duration, DistError> {
    let Ok(text) = std::env::var(TIMEOUT_VAR) else {
        return Ok(DEFAULT_TIMEOUT);
    };
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(DistError::BadVar {
            var: TIMEOUT_VAR,
            value: text,
            want: "a positive number of seconds",
        }),
    }
}

fn number(var: &impl Fn(&str) -> Option<String>, k: &'static str) -> Result<usize, DistError> {
    let text = var(k).unwrap_or_default();
    text.trim().parse().map_err(|_| DistError::BadVar {
        var: k,
        value: text,
        want: "a non-negative integer",
    })
}

fn port(var: &impl Fn(&str) -> Option<String>, k: &'static str) -> Result<u16, DistError> {
    let text = var(k).unwrap_or_default();
    match text.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(DistError::BadVar {
            var: k,
            value: text,
            want: "a port number (1-65535)",
        }),
    }
}

/// The first host of a Slurm node list: `gpu[03-05,9],cpu1` -> `gpu03`.
pub fn first_host(list: &str) -> Result<String, DistError> {
    let bad = || DistError::BadVar {
        var: "SLURM_JOB_NODELIST",
        value: list.to_string(),
        want: "a Slurm node list (host[01-04],other)",
    };
    let list = list.trim();
    let end = list.find(',').unwrap_or(list.len());
    let (head, rest) = (&list[..end], &list[end..]);
    let Some(open) = head.find('[') else {
        return if head.is_empty() {
            Err(bad())
        } else {
            Ok(head.to_string())
        };
    };
    // The comma was inside the brackets: the bracket runs to its `]`.
    let whole = if head.contains(']') {
        head
    } else {
        &list[..end + rest.find(']').ok_or_else(bad)? + 1]
    };
    let close = whole.find(']').ok_or_else(bad)?;
    let inside = &whole[open + 1..close];
    let first = inside.split([',', '-']).next().unwrap_or("");
    if first.is_empty() || open == 0 {
        return Err(bad());
    }
    Ok(format!("{}{first}{}", &whole[..open], &whole[close + 1..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| v.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn torchrun_environment() {
        let l = Launch::from_vars(env(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.2"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            (l.rank, l.world, l.local_rank, l.master_port),
            (3, 8, 1, 29400)
        );
        assert_eq!(l.master_addr, "10.0.0.2");
        assert!(l.agent_store);
        // A job of one process is not distributed; no variables at all neither.
        let one = [
            ("RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ];
        assert_eq!(Launch::from_vars(env(&one)).unwrap(), None);
        assert_eq!(Launch::from_vars(env(&[])).unwrap(), None);
    }

    #[test]
    fn half_set_and_out_of_world_are_refused() {
        let e = Launch::from_vars(env(&[("RANK", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("RANK") && e.contains("WORLD_SIZE"), "{e}");
        let e = Launch::from_vars(env(&[
            ("RANK", "2"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "5"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("rank 2") && e.contains("world of 2"), "{e}");
        let e = Launch::from_vars(env(&[
            ("RANK", "x"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "5"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("RANK='x'"), "{e}");
        let e = Launch::from_vars(env(&[("SLURM_PROCID", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SLURM_NTASKS"), "{e}");
    }

    #[test]
    fn slurm_environment_and_node_lists() {
        let l = Launch::from_vars(env(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "16"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_JOB_NODELIST", "gpu[07-09,12],login1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((l.rank, l.world, l.local_rank), (5, 16, 1));
        assert_eq!(
            (l.master_addr.as_str(), l.master_port),
            ("gpu07", DEFAULT_PORT)
        );
        assert_eq!(first_host("node1,node2").unwrap(), "node1");
        assert_eq!(first_host("a[3,5-6]").unwrap(), "a3");
        assert_eq!(first_host("n[001-004]-ib").unwrap(), "n001-ib");
        assert!(first_host("[1-2]").is_err());
        assert!(first_host("n[1-2").is_err());
    }
}
