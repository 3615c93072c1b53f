//! The streaming recogniser: a causal network, its shift cache and its input buffer. Each new frame
//! costs one 2D forward pass: every shifted block swaps in the previous frame's cached channels
//! (see `model::shift`). S independent streams can advance together in one batch, each with its own
//! rows of the cache (several cameras, one model). Recognisers made from one [`SharedNet`] share
//! the weights, each with its own cache (several GStreamer elements on one model file). ECO runs
//! here too, through each stream's working memory (`memory`).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor, nn};

mod engine;
mod memory;

pub use engine::StepSetup;

use super::input::InputBuffer;
use crate::model::{ActionNet, InferenceLayout, ModelConfig, ModelError, ShiftCache};
use crate::preprocess::{FrameError, FrameRef, Preprocessor, Transform};

/// Compute precision of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// fp32: reference-exact numbers.
    #[default]
    F32,
    /// bfloat16 (AMX / AVX512-BF16 on CPUs, tensor cores on CUDA).
    Bf16,
    /// float16 (CUDA).
    F16,
}

/// True when the CPU computes bf16 natively (AVX512-BF16 or AMX), the only case where libtorch's
/// oneDNN runs bf16 convolutions fast; elsewhere it falls back to kernels many times slower than fp32.
pub fn cpu_has_native_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| {
            info.lines()
                .find(|l| l.starts_with("flags"))
                .is_some_and(|flags| {
                    flags
                        .split_whitespace()
                        .any(|f| f == "avx512_bf16" || f == "amx_bf16")
                })
        })
        .unwrap_or(false)
}

impl Precision {
    pub fn kind(self) -> Kind {
        match self {
            Self::F32 => Kind::Float,
            Self::Bf16 => Kind::BFloat16,
            Self::F16 => Kind::Half,
        }
    }
}

/// How the recogniser runs its network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecognizerOptions {
    pub device: Device,
    pub precision: Precision,
    /// Channels-last (NHWC) activations and weights.
    pub channels_last: bool,
    /// Fold BatchNorm into the convolutions at load time.
    pub fold_bn: bool,
    /// Independent streams advanced together.
    pub streams: usize,
}

impl Default for RecognizerOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            precision: Precision::F32,
            channels_last: true,
            fold_bn: true,
            streams: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OnlineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("stream {stream}: {source}")]
    Frame { stream: usize, source: FrameError },
    #[error("{got} frames given for a recogniser of {expected} streams")]
    Streams { got: usize, expected: usize },
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    #[error("input batch has shape {got:?}, expected [{streams}, 3, {side}, {side}]")]
    InputShape {
        got: Vec<i64>,
        streams: usize,
        side: usize,
    },
}

/// Time spent in one step, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StepTiming {
    pub preprocess_ms: f64,
    pub model_ms: f64,
}

/// A network prepared for streaming (BN folded, layout and precision set) and the VarStore owning
/// its weights, shared by the recognisers made from it. tch tensors are `Send` but not `Sync`, so
/// the network sits behind a lock, held for one forward pass; the caches stay with each recogniser.
#[derive(Debug, Clone)]
pub struct SharedNet(Arc<Mutex<Prepared>>);

/// A [`SharedNet`] that does not keep the weights alive (a registry of loaded models).
#[derive(Debug, Clone)]
pub struct WeakNet(Weak<Mutex<Prepared>>);

#[derive(Debug)]
struct Prepared {
    net: ActionNet,
    options: RecognizerOptions,
    // Owns the weights the network's tensors point to; dropped last.
    _vs: nn::VarStore,
}

impl SharedNet {
    /// The network; a panic while it was held cannot have changed the weights (a forward pass
    /// only reads them), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, Prepared> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn downgrade(&self) -> WeakNet {
        WeakNet(Arc::downgrade(&self.0))
    }

    /// True when both hold the same weights.
    pub fn same(&self, other: &SharedNet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl WeakNet {
    pub fn upgrade(&self) -> Option<SharedNet> {
        self.0.upgrade().map(SharedNet)
    }
}

/// Runs a causal network frame by frame.
#[derive(Debug)]
pub struct Recognizer {
    net: SharedNet,
    config: ModelConfig,
    cache: ShiftCache,
    input: InputBuffer,
    preprocessors: Vec<Preprocessor>,
    logits: Vec<f32>,
    options: RecognizerOptions,
    /// libtorch (the network above and `cache`) or a runtime in-process (see `engine`).
    engine: engine::Engine,
}

impl Recognizer {
    /// Wraps a built network; refuses one that would need future frames. ECO runs through each
    /// stream's working memory (an answer every N frames; see [`Recognizer::memory_status`]).
    pub fn new(
        vs: nn::VarStore,
        mut net: ActionNet,
        options: RecognizerOptions,
    ) -> Result<Self, ModelError> {
        if crate::online::eco::memory_size(net.config()).is_err() {
            net.check_causal()?;
        }
        if options.device == Device::Cpu
            && options.precision == Precision::Bf16
            && !cpu_has_native_bf16()
        {
            tracing::warn!(
                "bf16 requested, but this CPU has neither AVX512-BF16 nor AMX: libtorch will run bf16 \
                 convolutions on slow fallback kernels; fp32 is faster here"
            );
        }
        if options.fold_bn || options.precision != Precision::F32 || options.channels_last {
            net.prepare_inference(InferenceLayout {
                kind: options.precision.kind(),
                channels_last: options.channels_last,
            });
        }
        let options = RecognizerOptions {
            streams: options.streams.max(1),
            ..options
        };
        let shared = SharedNet(Arc::new(Mutex::new(Prepared {
            net,
            options,
            _vs: vs,
        })));
        Ok(Self::from_shared(&shared))
    }

    /// A recogniser on the weights of `shared` (the options they were prepared with), with its own
    /// empty cache, input and preprocessing.
    pub fn from_shared(shared: &SharedNet) -> Self {
        let prepared = shared.lock();
        let options = prepared.options;
        let config = prepared.net.config().clone();
        let side = config.input_size as usize;
        let transform = Transform::imagenet(side);
        let mut cache = prepared.net.new_cache();
        cache.reset();
        drop(prepared);
        let mut recognizer = Self {
            net: shared.clone(),
            config,
            cache,
            input: InputBuffer::new(options.streams, side, options.device),
            preprocessors: (0..options.streams)
                .map(|_| Preprocessor::new(transform.clone()))
                .collect(),
            logits: Vec::new(),
            options,
            engine: engine::Engine::Libtorch,
        };
        recognizer.engine = recognizer.libtorch_engine();
        recognizer
    }

    /// The weights, to make more recognisers on them.
    pub fn shared(&self) -> &SharedNet {
        &self.net
    }

    /// Loads a checkpoint onto `options.device`.
    pub fn from_checkpoint(path: &Path, options: RecognizerOptions) -> Result<Self, ModelError> {
        let (vs, net) = ActionNet::load(path, options.device)?;
        Self::new(vs, net, options)
    }

    /// A network with random weights (for benchmarks and tests).
    pub fn random(config: &ModelConfig, options: RecognizerOptions) -> Result<Self, ModelError> {
        let vs = nn::VarStore::new(options.device);
        let net = ActionNet::new(&vs.root(), config)?;
        Self::new(vs, net, options)
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn options(&self) -> &RecognizerOptions {
        &self.options
    }

    pub fn cache(&self) -> &ShiftCache {
        &self.cache
    }

    /// The preprocessing the network expects.
    pub fn transform(&self) -> &Transform {
        self.preprocessors[0].transform()
    }

    /// Forgets the past of every stream (a new scene, a discontinuity).
    pub fn reset(&mut self) {
        self.cache.reset();
        self.engine.reset();
    }

    /// One preprocessed batch `[S, 3, side, side]` (fp32, any device) -> logits `[S, classes]`
    /// (fp32, on the model's device).
    pub fn step_tensor(&mut self, x: &Tensor) -> Result<Tensor, OnlineError> {
        let side = self.config.input_size;
        let streams = self.options.streams;
        if x.size() != [streams as i64, 3, side, side] {
            return Err(OnlineError::InputShape {
                got: x.size(),
                streams,
                side: side as usize,
            });
        }
        let x = x.to_device(self.options.device);
        self.forward_tensor(&x)
    }

    /// One new RGB frame per stream -> each stream's logits, row-major `[S * classes]` on the host.
    /// A bad frame is refused before anything runs: the cache is left as it was.
    pub fn step_frames(
        &mut self,
        frames: &[FrameRef],
    ) -> Result<(&[f32], StepTiming), OnlineError> {
        if frames.len() != self.options.streams {
            return Err(OnlineError::Streams {
                got: frames.len(),
                expected: self.options.streams,
            });
        }
        for (stream, frame) in frames.iter().enumerate() {
            Preprocessor::check(frame).map_err(|source| OnlineError::Frame { stream, source })?;
        }
        let start = Instant::now();
        for (s, frame) in frames.iter().enumerate() {
            let out = self.preprocessors[s]
                .run(frame)
                .map_err(|source| OnlineError::Frame { stream: s, source })?;
            self.input.frame_mut(s).copy_from_slice(out);
        }
        let preprocessed = Instant::now();
        let x = self.input.tensor().shallow_clone();
        self.forward_host(&x)?;
        Ok(self.finish_step(start, preprocessed))
    }

    /// Forgets the past of some streams only; the others run on undisturbed.
    pub fn reset_streams(&mut self, streams: &[usize]) {
        self.cache.reset_rows(streams);
        self.engine.reset_rows(streams);
    }

    /// A frame the recogniser would refuse (empty, wrong size for its stride), checked without
    /// running anything.
    pub fn check_frame(frame: &FrameRef) -> Result<(), FrameError> {
        Preprocessor::check(frame)
    }

    /// One new frame for some of the streams: `frames[i]` belongs to stream `streams[i]` (distinct,
    /// each < S). Only those streams' rows of the cache advance; a stream left out keeps its past
    /// (its time step is that of its own frames). Logits row-major `[k * classes]`, row i for
    /// `streams[i]`. All S streams in order is exactly `step_frames`.
    pub fn step_streams(
        &mut self,
        frames: &[FrameRef],
        streams: &[usize],
    ) -> Result<(&[f32], StepTiming), OnlineError> {
        let total = self.options.streams;
        if frames.len() != streams.len() || frames.is_empty() || streams.iter().any(|&s| s >= total)
        {
            return Err(OnlineError::Streams {
                got: frames.len(),
                expected: total,
            });
        }
        if streams.iter().copied().eq(0..total) {
            return self.step_frames(frames);
        }
        for (&stream, frame) in streams.iter().zip(frames) {
            Preprocessor::check(frame).map_err(|source| OnlineError::Frame { stream, source })?;
        }
        let start = Instant::now();
        for (row, (&stream, frame)) in streams.iter().zip(frames).enumerate() {
            let out = self.preprocessors[stream]
                .run(frame)
                .map_err(|source| OnlineError::Frame { stream, source })?;
            self.input.frame_mut(row).copy_from_slice(out);
        }
        let preprocessed = Instant::now();
        let k = streams.len() as i64;
        let x = self.input.tensor().narrow(0, 0, k); // [k, 3, side, side]
        self.forward_rows(&x, streams)?;
        Ok(self.finish_step(start, preprocessed))
    }

    /// The step's logits (on the host by now) and its timing.
    fn finish_step(&self, start: Instant, preprocessed: Instant) -> (&[f32], StepTiming) {
        let done = Instant::now();
        let timing = StepTiming {
            preprocess_ms: (preprocessed - start).as_secs_f64() * 1e3,
            model_ms: (done - preprocessed).as_secs_f64() * 1e3,
        };
        (&self.logits, timing)
    }

    /// One new frame of a single-stream recogniser -> its logits.
    pub fn step(&mut self, frame: &FrameRef) -> Result<(&[f32], StepTiming), OnlineError> {
        self.step_frames(std::slice::from_ref(frame))
    }
}
