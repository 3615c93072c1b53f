//! Inference backends for the online step: libtorch (the network run by tch, the reference and
//! the only one for training, CUDA and bf16) or ONNX Runtime in-process (the step exported to
//! ONNX by [`crate::export`] in memory, its shift state fed back from one frame's outputs to the
//! next frame's inputs). The [`crate::online::Recognizer`] holds whichever runs; this module says
//! which one is asked for and where ONNX Runtime's library is.
//!
//! ONNX Runtime is a shared library loaded at run time (`ort`'s `load-dynamic`), taken from the
//! onnxruntime PyPI wheel by `scripts/setup.sh` into `.onnxruntime/lib/`, as libtorch is taken
//! from torch's. A missing or broken library is an error naming its path; `auto` then falls back
//! to libtorch with a warning.

#[cfg(feature = "onnxruntime")]
mod onnxruntime;

use std::path::PathBuf;

#[cfg(feature = "onnxruntime")]
pub use onnxruntime::OrtStep;

use crate::model::EmitError;

/// The environment variable naming ONNX Runtime's shared library.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// The library's file name.
const ORT_DYLIB_NAME: &str = "libonnxruntime.so";

/// Which engine runs the online step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The fastest available for the device and precision (see [`Backend::auto_order`])
    #[default]
    Auto,
    /// libtorch through tch (the reference; CUDA, bf16, training)
    Libtorch,
    /// ONNX Runtime in-process (CPU, fp32): the exported online step
    Onnxruntime,
}

impl Backend {
    /// What `auto` tries, in order, for a CPU fp32 step. libtorch first until the lead's
    /// measurement on a quiet machine says otherwise (issue 22); the order is the one fact to
    /// change then. Other devices and precisions always take libtorch.
    pub const AUTO_CPU_FP32: &[Backend] = &[Backend::Libtorch];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Libtorch => "libtorch",
            Self::Onnxruntime => "onnxruntime",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "ONNX Runtime library {} not found (scripts/setup.sh installs it; {ORT_DYLIB_ENV} names another)",
        .0.display()
    )]
    Missing(PathBuf),
    #[cfg(feature = "onnxruntime")]
    #[error("ONNX Runtime library {}: cannot load it", path.display())]
    Load {
        path: PathBuf,
        #[source]
        source: ort::LoadDynamicError,
    },
    #[cfg(feature = "onnxruntime")]
    #[error("ONNX Runtime: {what}")]
    Runtime {
        what: String,
        #[source]
        source: ort::Error,
    },
    #[error("cannot export model '{model}' as an online ONNX step")]
    Export {
        model: String,
        #[source]
        source: EmitError,
    },
    #[error("ONNX Runtime gave no output '{0}'")]
    Output(String),
    #[error("--backend onnxruntime: {0}")]
    Unsupported(String),
    #[error(
        "--backend onnxruntime: this build has no ONNX Runtime (built without the `onnxruntime` feature)"
    )]
    NotBuilt,
}

/// Where ONNX Runtime's library is looked for: `$ORT_DYLIB_PATH`, else beside the running binary,
/// else the project's `.onnxruntime/lib/` (where scripts/setup.sh puts it; the binary keeps that
/// path as it keeps libtorch's rpath).
pub fn onnxruntime_library() -> PathBuf {
    if let Some(path) = std::env::var_os(ORT_DYLIB_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(ORT_DYLIB_NAME)));
    match beside {
        Some(path) if path.exists() => path,
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.onnxruntime/lib"))
            .join(ORT_DYLIB_NAME),
    }
}

/// How the ONNX Runtime step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrtOptions {
    /// The shared library (see [`onnxruntime_library`]).
    pub library: PathBuf,
    /// Intra-op threads (libtorch's count, so the two compare on equal terms).
    pub threads: usize,
    /// Let the runtime's idle threads spin-wait for the next frame (ONNX Runtime's default). Off
    /// here: between frames a spinning pool takes the cores from capture, preprocessing and the
    /// window (and from libtorch when the bench times both in alternation: 2.7x slower there).
    pub spin: bool,
}

impl OrtOptions {
    /// The default library and libtorch's current thread count.
    pub fn from_env() -> Self {
        Self {
            library: onnxruntime_library(),
            threads: tch::get_num_threads().max(1) as usize,
            spin: false,
        }
    }
}
