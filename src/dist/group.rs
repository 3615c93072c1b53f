//! A process group of a data-parallel job: the rendezvous with its checks (every rank arrives,
//! none twice), the collectives on tch tensors in place, the comparison of what every rank was
//! asked to do, and an error that names the lost rank when a collective fails.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tch::{Device, Kind, Tensor};

use super::DistError;
use super::agree::first_difference;
use super::ffi::{Handle, Replicas};
use super::launch::Launch;

/// The collective library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CPU tensors (libtorch_cpu's ProcessGroupGloo).
    Gloo,
    /// CUDA tensors (libtorch_cuda's ProcessGroupNCCL; the `nccl` feature, untested here).
    Nccl,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gloo => "gloo",
            Self::Nccl => "nccl",
        }
    }

    /// NCCL for CUDA when built with it, else Gloo.
    pub fn for_device(device: Device) -> Self {
        if device.is_cuda() && cfg!(feature = "nccl") {
            Self::Nccl
        } else {
            Self::Gloo
        }
    }
}

/// This process's membership of a job: collectives with the other ranks.
pub struct ProcessGroup {
    h: Handle,
    rank: usize,
    world: usize,
    timeout: Duration,
    agent_store: bool,
    /// Rounds of [`ProcessGroup::agree`] and failure checks so far (fresh store keys each).
    round: std::cell::Cell<u32>,
    /// Synchronised BatchNorm's sums, once asked for ([`ProcessGroup::replica_sum`]).
    replicas: std::cell::OnceCell<std::sync::Arc<Replicas>>,
}

const PREFIX: &str = "shiftlive/";

impl ProcessGroup {
    /// Joins the job `launch` describes: connects to the store, checks that every rank arrives
    /// exactly once (within `timeout`), then starts `backend`'s process group. Every collective
    /// after that fails after `timeout` at the latest.
    pub fn connect(
        launch: &Launch,
        backend: Backend,
        timeout: Duration,
    ) -> Result<Self, DistError> {
        let (rank, world) = (launch.rank, launch.world);
        let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let h = Handle::open(
            &launch.master_addr,
            launch.master_port,
            rank,
            world,
            ms,
            launch.agent_store,
        )
        .map_err(|message| DistError::Connect {
            rank,
            world,
            addr: launch.master_addr.clone(),
            port: launch.master_port,
            timeout_s: timeout.as_secs_f64(),
            message: first_line(&message),
        })?;
        let pg = Self {
            h,
            rank,
            world,
            timeout,
            agent_store: launch.agent_store,
            round: std::cell::Cell::new(0),
            replicas: std::cell::OnceCell::new(),
        };
        pg.claim()?;
        pg.h.start(backend.name())
            .map_err(|message| DistError::Start {
                rank,
                world,
                backend: backend.name().into(),
                message: first_line(&message),
            })?;
        tracing::info!(
            "rank {rank} of {world}: {} process group up",
            backend.name()
        );
        Ok(pg)
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world(&self) -> usize {
        self.world
    }

    /// The differentiable sum over the ranks that synchronised BatchNorm takes of its
    /// statistics (`ActionNet::sync_batch_norm`). A collective that fails inside a pass is kept
    /// and reported by [`ProcessGroup::check_passes`].
    pub fn replica_sum(&self) -> Result<crate::model::sync_bn::SyncBn, DistError> {
        let replicas = match self.replicas.get() {
            Some(r) => r.clone(),
            None => {
                let r = std::sync::Arc::new(
                    self.h
                        .replicas()
                        .map_err(|m| self.collective("sync BatchNorm", &m))?,
                );
                self.replicas.get_or_init(|| r).clone()
            }
        };
        Ok(crate::model::sync_bn::SyncBn(replicas))
    }

    /// The first collective of synchronised BatchNorm that failed inside a forward or backward
    /// pass since the last check, as the error of a failed collective.
    pub fn check_passes(&self) -> Result<(), DistError> {
        match self.replicas.get().and_then(|r| r.take_error()) {
            Some(message) => Err(self.collective("sync BatchNorm all-reduce", &message)),
            None => Ok(()),
        }
    }

    /// Sums `tensors` (all of one dtype) over the ranks, in place, in one collective.
    pub fn all_reduce_sum(&self, tensors: &mut [Tensor]) -> Result<(), DistError> {
        if tensors.is_empty() {
            return Ok(());
        }
        self.h
            .all_reduce_sum(tensors)
            .map_err(|m| self.collective("all-reduce", &m))
    }

    /// Averages `tensors` over the ranks in place, as DistributedDataParallel does: buckets of
    /// consecutive tensors of one dtype, about `bucket_bytes` each, summed in one collective per
    /// bucket, then divided by the world size (Gloo has no average).
    pub fn all_reduce_mean(
        &self,
        tensors: &[Tensor],
        bucket_bytes: usize,
    ) -> Result<(), DistError> {
        let mut bucket: Vec<Tensor> = Vec::new();
        let mut bytes = 0usize;
        for t in tensors {
            if bucket.first().is_some_and(|b| b.kind() != t.kind()) || bytes >= bucket_bytes {
                self.all_reduce_sum(&mut bucket)?;
                (bucket, bytes) = (Vec::new(), 0);
            }
            bytes += t.numel() * t.kind().elt_size_in_bytes();
            bucket.push(t.shallow_clone());
        }
        self.all_reduce_sum(&mut bucket)?;
        let world = self.world as f64;
        for t in tensors {
            let _ = t.shallow_clone().f_div_scalar_(world)?;
        }
        Ok(())
    }

    /// Overwrites `tensors` with rank `root`'s.
    pub fn broadcast(&self, tensors: &mut [Tensor], root: usize) -> Result<(), DistError> {
        self.h
            .broadcast(tensors, root)
            .map_err(|m| self.collective("broadcast", &m))
    }

    /// Waits for every rank.
    pub fn barrier(&self) -> Result<(), DistError> {
        self.h.barrier().map_err(|m| self.collective("barrier", &m))
    }

    /// Sums `values` over the ranks (f64, exact for counts below 2^53).
    pub fn sum_f64(&self, values: &[f64]) -> Result<Vec<f64>, DistError> {
        let mut t = [Tensor::from_slice(values).to_kind(Kind::Double)];
        self.all_reduce_sum(&mut t)?;
        Ok(Vec::<f64>::try_from(&t[0])?)
    }

    /// Refuses, on every rank, a job whose ranks describe their work differently: `items` are
    /// (what, value) pairs (a config field, a data list's hash); the first difference from
    /// another rank is named with both values.
    pub fn agree(&self, items: &[(String, String)]) -> Result<(), DistError> {
        let round = self.next_round();
        let key = |r: usize| format!("{PREFIX}agree/{round}/{r}");
        let ours = serde_json::to_vec(items).unwrap_or_default();
        self.h
            .set(&key(self.rank), &ours)
            .map_err(|m| self.store(&m))?;
        let mut mismatch = None;
        for other in (0..self.world).filter(|&r| r != self.rank) {
            let theirs = self.h.get(&key(other)).map_err(|m| self.store(&m))?;
            let theirs: Vec<(String, String)> = serde_json::from_slice(&theirs).unwrap_or_default();
            if mismatch.is_none() {
                mismatch = first_difference(items, &theirs).map(|(what, ours, theirs)| {
                    DistError::Mismatch {
                        rank: self.rank,
                        world: self.world,
                        what,
                        other,
                        ours,
                        theirs,
                    }
                });
            }
        }
        // Nobody leaves (rank 0 would take the store with it) before all have read.
        self.leave_together(&format!("{PREFIX}agreed/{round}"))?;
        mismatch.map_or(Ok(()), Err)
    }

    fn next_round(&self) -> u32 {
        let r = self.round.get();
        self.round.set(r + 1);
        r
    }

    /// Each rank claims its number; all must arrive, none twice. Once `world` processes have
    /// arrived every one of them sees the same claims, so all refuse a duplicate together.
    fn claim(&self) -> Result<(), DistError> {
        let claim = |r: usize| format!("{PREFIX}claim/{r}");
        self.h
            .add(&claim(self.rank), 1)
            .map_err(|m| self.store(&m))?;
        self.count_to_world(&format!("{PREFIX}arrived"))?;
        let mut duplicate = None;
        for r in 0..self.world {
            let count = self.h.add(&claim(r), 0).map_err(|m| self.store(&m))?;
            if count > 1 && duplicate.is_none() {
                duplicate = Some((r, count));
            }
        }
        self.leave_together(&format!("{PREFIX}claimed"))?;
        if let Some((claimed, count)) = duplicate {
            return Err(DistError::DuplicateRank {
                rank: self.rank,
                world: self.world,
                claimed,
                count,
            });
        }
        // A process that came after the world was complete, claiming a rank already taken.
        let count = self
            .h
            .add(&claim(self.rank), 0)
            .map_err(|m| self.store(&m))?;
        if count > 1 {
            return Err(DistError::DuplicateRank {
                rank: self.rank,
                world: self.world,
                claimed: self.rank,
                count,
            });
        }
        Ok(())
    }

    /// A barrier over the store after which any rank may leave (on an error): the rank serving
    /// the store waits until every other has seen the barrier complete, so none loses the store
    /// while still reading it.
    fn leave_together(&self, key: &str) -> Result<(), DistError> {
        self.count_to_world(key)?;
        let done = format!("{key}/done");
        if self.rank == 0 && !self.agent_store {
            let deadline = Instant::now() + self.timeout;
            while self.h.add(&done, 0).map_err(|m| self.store(&m))? < self.world as i64 - 1
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            self.h.add(&done, 1).map_err(|m| self.store(&m))?;
        }
        Ok(())
    }

    /// Adds this rank to the counter `key` and waits until all ranks have (up to the timeout).
    fn count_to_world(&self, key: &str) -> Result<(), DistError> {
        let deadline = Instant::now() + self.timeout;
        let mut n = self.h.add(key, 1).map_err(|m| self.store(&m))?;
        while n < self.world as i64 {
            if Instant::now() >= deadline {
                let missing: Vec<String> = (0..self.world)
                    .filter(|&r| !self.h.check(&format!("{PREFIX}claim/{r}")).unwrap_or(false))
                    .map(|r| r.to_string())
                    .collect();
                return Err(DistError::Missing {
                    rank: self.rank,
                    world: self.world,
                    arrived: n,
                    missing: if missing.is_empty() {
                        "unknown".into()
                    } else {
                        missing.join(", ")
                    },
                    timeout_s: self.timeout.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
            n = self.h.add(key, 0).map_err(|m| self.store(&m))?;
        }
        Ok(())
    }

    fn store(&self, message: &str) -> DistError {
        DistError::Store {
            rank: self.rank,
            world: self.world,
            message: first_line(message),
        }
    }

    /// The error of a failed collective, naming the rank that is gone as far as this one can
    /// tell: the only peer of a pair; else those that do not answer on the store within a second
    /// (rank 0 itself when the store it serves is gone).
    fn collective(&self, op: &'static str, message: &str) -> DistError {
        let lost = if self.world == 2 {
            format!("rank {} is gone or stalled", 1 - self.rank)
        } else {
            self.survey()
        };
        tracing::debug!("{op} failed on rank {}: {message}", self.rank);
        DistError::Collective {
            rank: self.rank,
            world: self.world,
            op,
            lost,
            message: first_line(message),
        }
    }

    fn survey(&self) -> String {
        let round = self.next_round();
        let key = |r: usize| format!("{PREFIX}alive/{round}/{r}");
        if self.h.set(&key(self.rank), b"1").is_err() {
            return if self.agent_store {
                "the job's store is unreachable".into()
            } else {
                "rank 0 (which serves the store) is gone".into()
            };
        }
        std::thread::sleep(Duration::from_secs(1).min(self.timeout));
        let silent: BTreeSet<usize> = (0..self.world)
            .filter(|&r| !self.h.check(&key(r)).unwrap_or(false))
            .collect();
        match silent.len() {
            0 => "no rank is known to be gone".into(),
            _ => {
                let list: Vec<String> = silent.iter().map(|r| r.to_string()).collect();
                format!("rank(s) {} gone or stalled", list.join(", "))
            }
        }
    }
}

/// libtorch's messages carry a C++ location and sometimes a trace after the first line.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_string()
}
