//! Latency measurement shared by `shiftlive bench` and the criterion benches: percentiles of
//! per-call wall time, and the model set-ups being compared (online step, plain 2D per frame,
//! re-running an 8-frame offline window per new frame).

use std::time::Instant;

use serde::Serialize;
use tch::{Device, Kind, Tensor, nn};

use crate::model::{ActionNet, InferenceLayout, ModelConfig, ModelError, Temporal};
use crate::online::{Recognizer, RecognizerOptions};

/// Percentiles of a set of timings, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Stats {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub mean: f64,
    pub n: usize,
}

impl Stats {
    /// Nearest-rank percentiles of `samples_ms`.
    pub fn of(samples_ms: &[f64]) -> Self {
        let mut s = samples_ms.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let pick = |q: f64| {
            if n == 0 {
                f64::NAN
            } else {
                s[((q * n as f64).ceil() as usize).clamp(1, n) - 1]
            }
        };
        let mean = if n == 0 {
            f64::NAN
        } else {
            s.iter().sum::<f64>() / n as f64
        };
        Self {
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            mean,
            n,
        }
    }
}

/// Times `f` `iters` times after `warmup` untimed calls.
pub fn measure(warmup: usize, iters: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..warmup {
        f();
    }
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        f();
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Stats::of(&samples)
}

/// Times several cases in alternation (A, B, A, B, ...), so that drift in the machine's speed
/// falls on all of them alike and their ratios stay fair.
pub fn measure_interleaved(
    warmup: usize,
    iters: usize,
    cases: &mut [&mut dyn FnMut()],
) -> Vec<Stats> {
    for _ in 0..warmup {
        for case in cases.iter_mut() {
            case();
        }
    }
    let mut samples = vec![Vec::with_capacity(iters); cases.len()];
    for _ in 0..iters {
        for (case, out) in cases.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            case();
            out.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    samples.iter().map(|s| Stats::of(s)).collect()
}

/// A recogniser on random weights and a fixed preprocessed frame: the model-only online step.
pub struct OnlineCase {
    pub recognizer: Recognizer,
    pub frame: Tensor,
}

impl OnlineCase {
    pub fn new(config: &ModelConfig, options: RecognizerOptions) -> Result<Self, ModelError> {
        let recognizer = Recognizer::random(config, options)?;
        let side = config.input_size;
        let frame = Tensor::randn(
            [options.streams as i64, 3, side, side],
            (Kind::Float, options.device),
        );
        Ok(Self { recognizer, frame })
    }

    pub fn step(&mut self) {
        // Random weights on a well-formed input: the step cannot fail.
        let _ = self.recognizer.step_tensor(&self.frame);
    }
}

/// The same backbone without any temporal module: a plain 2D CNN per frame.
pub fn plain_2d(config: &ModelConfig) -> ModelConfig {
    ModelConfig {
        name: format!("{}_plain2d", config.name),
        temporal: Temporal::None,
        ..config.clone()
    }
}

/// The offline causal model re-run over the last `t` frames for each new frame, as a webcam demo
/// without a shift cache would do.
pub struct WindowCase {
    pub net: ActionNet,
    pub clip: Tensor,
    pub t: i64,
    _vs: nn::VarStore,
}

impl WindowCase {
    pub fn new(
        config: &ModelConfig,
        options: RecognizerOptions,
        t: i64,
    ) -> Result<Self, ModelError> {
        let vs = nn::VarStore::new(options.device);
        let mut net = ActionNet::new(&vs.root(), config)?;
        if options.fold_bn || options.channels_last || options.precision.kind() != Kind::Float {
            net.prepare_inference(InferenceLayout {
                kind: options.precision.kind(),
                channels_last: options.channels_last,
            });
        }
        let side = config.input_size;
        let clip = Tensor::randn([t, 3, side, side], (Kind::Float, options.device));
        Ok(Self {
            net,
            clip,
            t,
            _vs: vs,
        })
    }

    pub fn step(&mut self) {
        let _ = tch::no_grad(|| self.net.forward_clip_t(&self.clip, self.t, false));
    }
}

/// Waits for queued GPU work so a timed region covers it.
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}
