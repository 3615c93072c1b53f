//! Data-parallel training on libtorch's own collectives (c10d): a process group over a C++ shim
//! (Gloo on the CPU; NCCL with the `nccl` feature and the CUDA libtorch), the launch environment
//! of torchrun or Slurm, and the start-up checks every rank runs before any work (unique ranks,
//! the same config and data on all of them).

mod agree;
mod error;
mod ffi;
mod group;
mod launch;

pub use error::DistError;
pub use group::{Backend, ProcessGroup};
pub use launch::{
    DEFAULT_PORT, DEFAULT_TIMEOUT, Launch, TIMEOUT_VAR, first_host, timeout_from_env,
};
