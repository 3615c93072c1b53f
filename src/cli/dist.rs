//! Joining a data-parallel job from the command line: the launch environment (torchrun or
//! Slurm) read before any work, the device pinned to `cuda:LOCAL_RANK` on GPUs, the process
//! group started with the timeout of `--dist-timeout` or SHIFTLIVE_DIST_TIMEOUT.

use std::rc::Rc;
use std::time::Duration;

use anyhow::ensure;
use shiftlive::dist::{Backend, Launch, ProcessGroup, timeout_from_env};
use tch::Device;

/// This process's launch (None outside a job), checked before anything else runs.
pub fn launch() -> anyhow::Result<Option<Launch>> {
    Ok(Launch::from_env()?)
}

/// The device of a rank: `cuda:LOCAL_RANK` where the job runs on GPUs, else `device`.
pub fn pin(device: Device, launch: Option<&Launch>) -> anyhow::Result<Device> {
    match (device, launch) {
        (Device::Cuda(_), Some(l)) => {
            let count = tch::Cuda::device_count() as usize;
            ensure!(
                l.local_rank < count,
                "LOCAL_RANK {} but this machine has {count} CUDA device(s): start at most one \
                 rank per GPU (torchrun --nproc-per-node)",
                l.local_rank
            );
            Ok(Device::Cuda(l.local_rank))
        }
        _ => Ok(device),
    }
}

/// Starts the process group of `launch` (the collectives of `device`'s kind).
pub fn join(
    launch: Option<&Launch>,
    device: Device,
    timeout: Option<f64>,
) -> anyhow::Result<Option<Rc<ProcessGroup>>> {
    let Some(l) = launch else { return Ok(None) };
    let timeout = match timeout {
        Some(s) => {
            ensure!(
                s.is_finite() && s > 0.0,
                "--dist-timeout {s}: give a positive number of seconds"
            );
            Duration::from_secs_f64(s)
        }
        None => timeout_from_env()?,
    };
    let backend = Backend::for_device(device);
    tracing::info!(
        "rank {} of {} ({}, local rank {}): joining {}:{} over {}",
        l.rank,
        l.world,
        l.launcher,
        l.local_rank,
        l.master_addr,
        l.master_port,
        backend.name()
    );
    Ok(Some(Rc::new(ProcessGroup::connect(l, backend, timeout)?)))
}
