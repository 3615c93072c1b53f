//! ECO's online mode (Zolfaghari et al., ECCV 2018, section 3.3 and Algorithm 1): a working
//! memory of N frames (the network's clip length) and a queue of the newest frames. Every N
//! incoming frames, the memory is refreshed with half of its frames sampled from the old memory
//! and half from the queue (in time order, so older history thins out geometrically), ECO runs on
//! the memory, and its class probabilities are averaged with the previous average.
//!
//! ```text
//! frame --push--> queue (N)  --every N frames-->  memory = N/2 old + N/2 new --ECO--> P
//!                                                 P_a = average(P_a, P) --> prediction
//! ```
//!
//! ECO's 2D part is a function of one frame, so the runner computes it only for the frames that
//! will enter the memory, when they arrive (which ones is decided at the start of each period),
//! and keeps their 2D outputs instead of the frames: per N frames that is N/2 2D passes (N for the
//! first memory) and one pass of the 3D part over N frames. The result equals running the whole
//! network on the memory's frames (tests/eco.rs checks it).
//!
//! [`EcoMemory`] is one stream's state and takes the network by reference: the recogniser keeps
//! one per stream over shared weights (`live`, `play`, several streams); [`EcoRunner`] is a
//! network with one memory, for a library user with one stream.

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor, nn};

use super::recognizer::{OnlineError, Precision, RecognizerOptions};
use crate::model::{ActionNet, EcoFrames, InferenceLayout, ModelConfig, ModelError};

/// How the frames kept from the old memory and from the queue are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemorySampling {
    /// Evenly spaced: every second frame, the newest of each pair.
    Uniform,
    /// A random subset (the paper's "sample"), seeded for reproducible runs.
    Random { seed: u64 },
}

/// How each update's probabilities join the running prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Averaging {
    /// `P_a = (P_a + P) / 2` (Algorithm 1's "average P and P_a"): recent updates weigh most.
    Pairwise,
    /// The mean of every update since the last reset.
    Cumulative,
}

/// What the runner does besides the network's layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EcoOptions {
    pub sampling: MemorySampling,
    pub averaging: Averaging,
}

impl Default for EcoOptions {
    fn default() -> Self {
        Self {
            sampling: MemorySampling::Uniform,
            averaging: Averaging::Pairwise,
        }
    }
}

/// One refresh of the working memory.
#[derive(Debug)]
pub struct EcoUpdate {
    /// `[classes]`: this update's class probabilities (softmax of ECO's logits on the memory).
    pub probs: Tensor,
    /// `[classes]`: the running average, the prediction to show.
    pub average: Tensor,
    /// Indices (0 = first frame pushed since the reset) of the frames in the memory, oldest first.
    pub memory: Vec<u64>,
}

/// Where a stream's working memory stands after a frame: what `live` and `play` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryStatus {
    /// N: an answer every N frames (the memory's size).
    pub every: usize,
    /// Frames of the current period pushed so far (0 right after an answer).
    pub position: usize,
    /// Answers since the last reset (0: still filling the first memory, no answer yet).
    pub updates: u64,
    /// This frame brought a new answer.
    pub fresh: bool,
}

/// One stream's working memory, queue and running average; the network is passed in.
#[derive(Debug)]
pub struct EcoMemory {
    options: EcoOptions,
    /// N: frames in the memory, and frames between two updates.
    size: usize,
    memory: Vec<(u64, EcoFrames)>,
    queue: Vec<(u64, EcoFrames)>,
    /// Positions in the current period whose frame enters the memory.
    picks: Vec<usize>,
    position: usize,
    pushed: u64,
    average: Option<Tensor>,
    updates: u64,
    fresh: bool,
    rng: ChaCha8Rng,
}

/// ECO run online over one stream: a network and one [`EcoMemory`].
#[derive(Debug)]
pub struct EcoRunner {
    net: ActionNet,
    memory: EcoMemory,
    // Owns the weights the network's tensors point to; dropped last.
    _vs: nn::VarStore,
}

/// N, the memory size of an ECO network (its clip length), or why it cannot run online.
pub fn memory_size(config: &ModelConfig) -> Result<usize, ModelError> {
    let size = config.num_segments;
    if !matches!(config.backbone, crate::model::Backbone::Eco { .. }) || size < 2 {
        return Err(ModelError::Input {
            model: config.name.clone(),
            expected: "an ECO network with a clip of at least 2 frames".into(),
            got: format!("{:?}, {size} frames", config.backbone),
        });
    }
    Ok(size as usize)
}

impl EcoRunner {
    /// Wraps an ECO network; its `num_segments` is the memory size N (at least 2).
    pub fn new(
        vs: nn::VarStore,
        mut net: ActionNet,
        layout: RecognizerOptions,
        options: EcoOptions,
    ) -> Result<Self, ModelError> {
        let memory = EcoMemory::new(net.config(), options)?;
        if layout.fold_bn || layout.precision != Precision::F32 || layout.channels_last {
            net.prepare_inference(InferenceLayout {
                kind: layout.precision.kind(),
                channels_last: layout.channels_last,
            });
        }
        Ok(Self {
            net,
            memory,
            _vs: vs,
        })
    }

    /// A network with random weights (benchmarks and tests).
    pub fn random(
        config: &ModelConfig,
        layout: RecognizerOptions,
        options: EcoOptions,
    ) -> Result<Self, ModelError> {
        let vs = nn::VarStore::new(layout.device);
        let net = ActionNet::new(&vs.root(), config)?;
        Self::new(vs, net, layout, options)
    }

    pub fn net(&self) -> &ActionNet {
        &self.net
    }

    /// Updates so far.
    pub fn updates(&self) -> u64 {
        self.memory.updates
    }

    /// Forgets the memory, the queue and the average (a new scene).
    pub fn reset(&mut self) {
        self.memory.reset();
    }

    /// One preprocessed frame, `[1, 3, H, W]` or `[3, H, W]`. Returns an update every N frames.
    pub fn push(&mut self, frame: &Tensor) -> Result<Option<EcoUpdate>, OnlineError> {
        self.memory.push(&self.net, frame)
    }
}

impl EcoMemory {
    /// An empty memory for the ECO network of `config`.
    pub fn new(config: &ModelConfig, options: EcoOptions) -> Result<Self, ModelError> {
        let size = memory_size(config)?;
        let seed = match options.sampling {
            MemorySampling::Random { seed } => seed,
            MemorySampling::Uniform => 0,
        };
        let mut memory = Self {
            options,
            size,
            memory: Vec::new(),
            queue: Vec::new(),
            picks: Vec::new(),
            position: 0,
            pushed: 0,
            average: None,
            updates: 0,
            fresh: false,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        memory.reset();
        Ok(memory)
    }

    /// Where the memory stands after the last frame.
    pub fn status(&self) -> MemoryStatus {
        MemoryStatus {
            every: self.size,
            position: self.position,
            updates: self.updates,
            fresh: self.fresh,
        }
    }

    /// The running average of the class probabilities, the prediction to show (none before the
    /// first answer).
    pub fn average(&self) -> Option<&Tensor> {
        self.average.as_ref()
    }

    /// Forgets the memory, the queue and the average (a new scene).
    pub fn reset(&mut self) {
        self.memory.clear();
        self.queue.clear();
        self.position = 0;
        self.pushed = 0;
        self.average = None;
        self.updates = 0;
        self.fresh = false;
        if let MemorySampling::Random { seed } = self.options.sampling {
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.picks = (0..self.size).collect(); // the first memory takes every frame
    }

    /// `count` of `len` positions, in order.
    fn choose(&mut self, len: usize, count: usize) -> Vec<usize> {
        match self.options.sampling {
            // The newest of each pair: 1, 3, 5, ... (offset so the last position is kept).
            MemorySampling::Uniform => (0..count).map(|i| len - 1 - 2 * (count - 1 - i)).collect(),
            MemorySampling::Random { .. } => {
                let mut picked = sample(&mut self.rng, len, count).into_vec();
                picked.sort_unstable();
                picked
            }
        }
    }

    /// One preprocessed frame of this stream, `[1, 3, H, W]` or `[3, H, W]`, through `net` (the
    /// ECO network the memory was made for). Returns an update every N frames.
    pub fn push(
        &mut self,
        net: &ActionNet,
        frame: &Tensor,
    ) -> Result<Option<EcoUpdate>, OnlineError> {
        self.fresh = false;
        let frame = if frame.dim() == 3 {
            frame.unsqueeze(0)
        } else {
            frame.shallow_clone()
        };
        let index = self.pushed;
        self.pushed += 1;
        if self.picks.contains(&self.position) {
            let features = net.eco_frames(&frame.to_device(net.device()))?;
            self.queue.push((index, features));
        }
        self.position += 1;
        if self.position < self.size {
            return Ok(None);
        }
        self.position = 0;
        let update = self.update(net)?;
        self.fresh = true;
        Ok(Some(update))
    }

    /// Refreshes the memory from the queue and runs the clip part of the network.
    fn update(&mut self, net: &ActionNet) -> Result<EcoUpdate, OnlineError> {
        let new = std::mem::take(&mut self.queue);
        if !self.memory.is_empty() {
            let keep = self.size - new.len();
            let kept = self.choose(self.memory.len(), keep);
            let old = std::mem::take(&mut self.memory);
            self.memory = old
                .into_iter()
                .enumerate()
                .filter(|(i, _)| kept.contains(i))
                .map(|(_, f)| f)
                .collect();
        }
        self.memory.extend(new);
        let frames: Vec<EcoFrames> = self
            .memory
            .iter()
            .map(|(_, f)| EcoFrames {
                tap: f.tap.shallow_clone(),
                pooled: f.pooled.as_ref().map(Tensor::shallow_clone),
            })
            .collect();
        let logits = net.eco_logits(&EcoFrames::cat(&frames), self.size as i64)?;
        let probs = logits
            .to_kind(Kind::Float)
            .softmax(-1, Kind::Float)
            .view([-1]);
        self.updates += 1;
        let average = match (&self.average, self.options.averaging) {
            (None, _) => probs.shallow_clone(),
            (Some(avg), Averaging::Pairwise) => (avg + &probs) / 2.0,
            (Some(avg), Averaging::Cumulative) => avg + (&probs - avg) / self.updates as f64,
        };
        self.average = Some(average.shallow_clone());
        // Next period: half the memory comes from the new frames.
        let count = self.size / 2;
        self.picks = self.choose(self.size, count);
        Ok(EcoUpdate {
            probs,
            average,
            memory: self.memory.iter().map(|(i, _)| *i).collect(),
        })
    }
}
