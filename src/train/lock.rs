//! The guard of a run's output folder: `OUT/.lock` holds the pid of the training writing there,
//! created with `create_new` so a second training into the same folder refuses, and removed
//! when the run ends (on error too). A lock left by a process that died (SIGKILL, power loss)
//! is taken over with a warning. A folder that already holds a run is not trained into again
//! unless the run is resumed or replaced on purpose.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::TrainError;
use super::checkpointer::Checkpointer;

/// Held for the life of a run; dropping it removes the lock file.
#[derive(Debug)]
pub(super) struct RunLock {
    path: PathBuf,
}

fn io(path: &Path, source: std::io::Error) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether the process `pid` is alive; where that cannot be told, it is taken as alive.
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

impl RunLock {
    /// Creates `out` if needed and takes its lock, or says which process holds it; then a new
    /// run (not `resume`) refuses a folder that holds a run unless `force` replaces it.
    pub fn acquire(out: &Path, resume: bool, force: bool) -> Result<Self, TrainError> {
        let lock = Self::take(out)?;
        if !resume {
            check_fresh(out, force)?;
        }
        Ok(lock)
    }

    fn take(out: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
        let path = out.join(".lock");
        // Two tries: the second after removing a stale lock.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let lock = Self { path };
                    writeln!(file, "{}", std::process::id()).map_err(|e| io(&lock.path, e))?;
                    return Ok(lock);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
                    // A lock being written (empty) or unreadable counts as held by pid 0.
                    let pid = text.trim().parse::<u32>().unwrap_or(0);
                    if pid == 0 || alive(pid) {
                        return Err(TrainError::Locked {
                            out: out.to_path_buf(),
                            lock: path,
                            pid,
                        });
                    }
                    tracing::warn!(
                        "{}: taking over the lock of process {pid}, which is no longer running",
                        path.display()
                    );
                    std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
                }
                Err(e) => return Err(io(&path, e)),
            }
        }
        Err(TrainError::Locked {
            out: out.to_path_buf(),
            lock: path,
            pid: 0,
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!("removing {}: {e}", self.path.display());
        }
    }
}

/// The files that show a folder holds a run.
fn run_files(out: &Path) -> [PathBuf; 3] {
    [
        Checkpointer::checkpoint_path(out),
        Checkpointer::best_path(out),
        out.join("metrics.jsonl"),
    ]
}

/// Refuses to start a new run in a folder that holds one (its checkpoint, best model or
/// metrics) unless `replace` is set, in which case those files are removed.
fn check_fresh(out: &Path, replace: bool) -> Result<(), TrainError> {
    let held = run_files(out).iter().any(|p| p.exists());
    if !held {
        return Ok(());
    }
    if !replace {
        return Err(TrainError::RunExists {
            out: out.to_path_buf(),
        });
    }
    tracing::warn!("--force: replacing the run in {}", out.display());
    for path in run_files(out) {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path, e)),
            _ => {}
        }
    }
    Ok(())
}
