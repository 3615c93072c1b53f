//! Inference backends for the online step: libtorch (the network run by tch, the reference and
//! the only one for training and CUDA), ONNX Runtime or OpenVINO in-process (the step exported to
//! ONNX by [`crate::export`] in memory, its shift state fed back from one frame's outputs to the
//! next frame's inputs). The [`crate::online::Recognizer`] holds whichever runs; this module says
//! which one is asked for, where each runtime's library is, and what a runtime's step offers the
//! recogniser ([`HostStep`]).
//!
//! Both runtimes are shared libraries loaded at run time (`ort`'s `load-dynamic`, `openvino`'s
//! `runtime-linking`), taken from their PyPI wheels by `scripts/setup.sh` into `.onnxruntime/lib/`
//! and `.openvino/lib/`, as libtorch is taken from torch's. A missing or broken library is an
//! error naming its path; `auto` then falls back to libtorch with a warning.

#[cfg(feature = "onnxruntime")]
mod onnxruntime;
#[cfg(feature = "openvino")]
mod openvino;

use std::path::{Path, PathBuf};

#[cfg(feature = "onnxruntime")]
pub use onnxruntime::OrtStep;
#[cfg(feature = "openvino")]
pub use openvino::OvStep;

use crate::model::EmitError;

/// The environment variable naming ONNX Runtime's shared library.
pub const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";
/// The library's file name.
const ORT_DYLIB_NAME: &str = "libonnxruntime.so";
/// The environment variable naming the directory of OpenVINO's libraries.
pub const OPENVINO_LIB_DIR_ENV: &str = "OPENVINO_LIB_DIR";
/// OpenVINO's C API, the library loaded (it finds the core, the plugin and the frontend beside it).
const OPENVINO_C_NAME: &str = "libopenvino_c.so";

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
    /// OpenVINO in-process (CPU; fp32, or bf16 where the CPU has it): the exported online step
    Openvino,
}

impl Backend {
    /// What `auto` tries, in order, for a CPU fp32 step; a backend whose library is missing is
    /// skipped with a warning. Measured with `bench` (2 threads, batch 1, 224 px, MobileNetV2-TSM
    /// online; issue 22): on a 2-core AMD EPYC with AVX2 only, ONNX Runtime 7.0 ms, OpenVINO 7.9,
    /// libtorch 12.0 (ResNet-50-TSM 58.3, 72.6, 78.0); on a 2-core AMD EPYC (Zen 5, AVX-512)
    /// ONNX Runtime 4.5-6.6, OpenVINO 4.1-5.4, libtorch 9.5-11.8 from run to run. Its thread pool
    /// also keeps its speed inside the live pipeline, where libtorch's OpenMP step waits at each
    /// op's barrier for a thread the decoder preempted (`bench --live`, issue 21). A trial of
    /// each at start-up was tried and dropped: the winner between the two runtimes changed from
    /// run to run, and it cost 0.4 s of start-up per run. Other devices take libtorch.
    pub const AUTO_CPU_FP32: &[Backend] =
        &[Backend::Onnxruntime, Backend::Openvino, Backend::Libtorch];
    /// What `auto` tries for a bf16 step on a CPU with native bf16 (AVX512-BF16 or AMX):
    /// OpenVINO's bf16 (ONNX Runtime runs fp32 only), then libtorch's. Measured on the Zen 5
    /// EPYC above: OpenVINO bf16 2.0-5.6 ms against libtorch bf16 6.2-7.9 ms (MobileNetV2-TSM),
    /// 18.1-28.6 against 27.1-29.5 ms (ResNet-50-TSM).
    pub const AUTO_CPU_BF16: &[Backend] = &[Backend::Openvino, Backend::Libtorch];

    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Libtorch => "libtorch",
            Self::Onnxruntime => "onnxruntime",
            Self::Openvino => "openvino",
        }
    }

    /// The runtime's own name, for messages.
    pub fn runtime(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Libtorch => "libtorch",
            Self::Onnxruntime => "ONNX Runtime",
            Self::Openvino => "OpenVINO",
        }
    }

    /// The environment variable that names another library for this runtime.
    fn library_env(self) -> &'static str {
        match self {
            Self::Onnxruntime => ORT_DYLIB_ENV,
            Self::Openvino => OPENVINO_LIB_DIR_ENV,
            Self::Auto | Self::Libtorch => "LIBTORCH",
        }
    }
}

/// A runtime's message on a failed load (the crates give it as text).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadMessage(pub String);

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(
        "{} library {} not found (scripts/setup.sh installs it; {} names another)",
        .backend.runtime(), .path.display(), .backend.library_env()
    )]
    Missing { backend: Backend, path: PathBuf },
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
    #[error("OpenVINO library {}: cannot load it", path.display())]
    OpenvinoLoad {
        path: PathBuf,
        #[source]
        source: LoadMessage,
    },
    #[cfg(feature = "openvino")]
    #[error("OpenVINO: {what}")]
    Openvino {
        what: String,
        #[source]
        source: ::openvino::InferenceError,
    },
    #[error("cannot export model '{model}' as an online ONNX step")]
    Export {
        model: String,
        #[source]
        source: EmitError,
    },
    #[error("{} gave no output '{name}'", .backend.runtime())]
    Output { backend: Backend, name: String },
    #[error("--backend {}: {why}", .backend.name())]
    Unsupported { backend: Backend, why: String },
    #[error(
        "--backend {}: this build has no {} (built without the `{}` feature)",
        .0.name(), .0.runtime(), .0.name()
    )]
    NotBuilt(Backend),
}

/// What a runtime's online step offers the recogniser: the frame batch filled in place, one step
/// of every stream or of some, and resets. The state lives in the runtime's buffers.
pub trait HostStep: Send + std::fmt::Debug {
    /// The input frames to fill: `[S, 3, side, side]` row-major, normalised as the recogniser's
    /// preprocessing leaves them.
    fn frame_mut(&mut self) -> Result<&mut [f32], BackendError>;
    /// One step of every stream on the frames in [`HostStep::frame_mut`]; `logits` becomes
    /// `[S * classes]`.
    fn run(&mut self, logits: &mut Vec<f32>) -> Result<(), BackendError>;
    /// One step of some streams: `frame` is `[k, 3, side, side]`, row i the frame of `streams[i]`
    /// (distinct, each < S); only their state advances. `logits` becomes `[k * classes]`.
    fn run_rows(
        &mut self,
        streams: &[usize],
        frame: Vec<f32>,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError>;
    /// Forgets the past: the next step starts from zero states.
    fn reset(&mut self);
    /// Forgets the past of some streams only.
    fn reset_rows(&mut self, streams: &[usize]);
}

/// The online step graph of `net` (its weights as they are now), refused for a network that has
/// none (not a causal TSM with shifted blocks).
#[cfg(any(feature = "onnxruntime", feature = "openvino"))]
fn stream_graph(
    net: &crate::model::ActionNet,
    backend: Backend,
) -> Result<crate::export::onnx::OnnxGraph, BackendError> {
    use crate::export::{GraphKind, onnx};
    let config = net.config();
    if !config.is_causal() || net.shift_slots() == 0 {
        return Err(BackendError::Unsupported {
            backend,
            why: format!(
                "model '{}' has no online step (not a causal TSM with shifted blocks)",
                config.name
            ),
        });
    }
    onnx::build(net, GraphKind::Stream, "online_step").map_err(|source| BackendError::Export {
        model: config.name.clone(),
        source,
    })
}

/// True when both name one file (a library loaded once per process is compared this way).
#[cfg(any(feature = "onnxruntime", feature = "openvino"))]
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Zeros the rows `streams` of a `[S, ...]` state held flat in `data`.
#[cfg(any(feature = "onnxruntime", feature = "openvino"))]
pub(crate) fn zero_rows(data: &mut [f32], total: usize, streams: &[usize]) {
    let row = data.len() / total.max(1);
    for &s in streams.iter().filter(|&&s| s < total) {
        data[s * row..(s + 1) * row].fill(0.0);
    }
}

/// The checks every runtime makes of a `run_rows` call.
#[cfg(any(feature = "onnxruntime", feature = "openvino"))]
pub(crate) fn check_rows(
    backend: Backend,
    streams: &[usize],
    total: usize,
    frame_len: usize,
    frame_row: usize,
) -> Result<(), BackendError> {
    let mut seen = vec![false; total];
    let distinct = streams
        .iter()
        .all(|&s| s < total && !std::mem::replace(&mut seen[s], true));
    if streams.is_empty() || !distinct || frame_len != streams.len() * frame_row {
        return Err(BackendError::Unsupported {
            backend,
            why: format!("streams {streams:?} of a {total}-stream step"),
        });
    }
    Ok(())
}

/// `$var` if set and not empty, else beside the running binary, else the project's `default`.
fn library_path(var: &str, name: &str, default: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    match beside {
        Some(path) if path.exists() => path,
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(default),
    }
}

/// Where ONNX Runtime's library is looked for: `$ORT_DYLIB_PATH`, else beside the running
/// binary, else the project's `.onnxruntime/lib/` (where scripts/setup.sh puts it; the binary
/// keeps that path as it keeps libtorch's rpath).
pub fn onnxruntime_library() -> PathBuf {
    library_path(
        ORT_DYLIB_ENV,
        ORT_DYLIB_NAME,
        ".onnxruntime/lib/libonnxruntime.so",
    )
}

/// The directory of OpenVINO's libraries: `$OPENVINO_LIB_DIR`, else the project's
/// `.openvino/lib/` (where scripts/setup.sh puts them).
pub fn openvino_lib_dir() -> PathBuf {
    match std::env::var_os(OPENVINO_LIB_DIR_ENV).filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".openvino/lib"),
    }
}

/// How the ONNX Runtime step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrtOptions {
    /// The shared library (see [`onnxruntime_library`]).
    pub library: PathBuf,
    /// Intra-op threads (libtorch's count, so the two compare on equal terms).
    pub threads: usize,
    /// Let the runtime's threads spin-wait after a step for the next frame (ONNX Runtime's
    /// default). Off here: they spin between the ops of a step and stop at its end
    /// (`session.force_spinning_stop`), so between frames the cores go to capture,
    /// preprocessing and the window (and to libtorch when the bench times both in alternation:
    /// 2.7x slower there).
    pub spin: bool,
}

/// How the OpenVINO step runs (CPU device, LATENCY hint, one infer request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenvinoOptions {
    /// The directory holding `libopenvino_c.so` and the libraries it loads (see
    /// [`openvino_lib_dir`]).
    pub lib_dir: PathBuf,
    /// `INFERENCE_NUM_THREADS` (libtorch's count, so the two compare on equal terms).
    pub threads: usize,
}

impl OpenvinoOptions {
    /// The C API's library, the one loaded.
    pub fn library(&self) -> PathBuf {
        self.lib_dir.join(OPENVINO_C_NAME)
    }
}

/// The options of every runtime, given to [`crate::online::Recognizer::set_backend`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    pub onnxruntime: OrtOptions,
    pub openvino: OpenvinoOptions,
}

/// libtorch's current intra-op thread count.
fn libtorch_threads() -> usize {
    tch::get_num_threads().max(1) as usize
}

impl OrtOptions {
    /// The default library and libtorch's current thread count.
    pub fn from_env() -> Self {
        Self {
            library: onnxruntime_library(),
            threads: libtorch_threads(),
            spin: false,
        }
    }
}

impl OpenvinoOptions {
    /// The default directory and libtorch's current thread count.
    pub fn from_env() -> Self {
        Self {
            lib_dir: openvino_lib_dir(),
            threads: libtorch_threads(),
        }
    }
}

impl BackendOptions {
    /// Every runtime's defaults (see [`OrtOptions::from_env`], [`OpenvinoOptions::from_env`]).
    pub fn from_env() -> Self {
        Self {
            onnxruntime: OrtOptions::from_env(),
            openvino: OpenvinoOptions::from_env(),
        }
    }

    /// For frames that come at a source's pace (a camera, a stream, a file in real time): ONNX
    /// Runtime's threads keep spinning between frames. After an idle gap a parked pool starts
    /// cold: measured with `bench --live` (2-core AMD EPYC VM, MobileNetV2-TSM, 2 threads), the
    /// step at 30 fps took 9.8 ms parked against 6.3 ms spinning (4.9 ms back to back). As fast
    /// as frames come (a file), they stop at the end of each step instead: spinning there takes
    /// the core the decoder needs (126 against 104 frames/s).
    pub fn paced(mut self, paced: bool) -> Self {
        self.onnxruntime.spin = paced;
        self
    }
}
