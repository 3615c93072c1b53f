//! The Temporal Shift Module (Lin, Gan, Han, "TSM: Temporal Shift Module for Efficient Video
//! Understanding", ICCV 2019, arXiv 1811.08383): a zero-FLOP shift of part of the channels along time.
//!
//! Offline, a clip is a batch `[N*T, C, H, W]`; with `fold = C / shift_div`:
//! - bidirectional: channels `[0, fold)` take frame t+1 (zero at the last frame) and channels
//!   `[fold, 2*fold)` take frame t-1 (zero at the first);
//! - uni-directional: channels `[0, fold)` take frame t-1 (zero at the first); nothing comes from
//!   the future, so the network can run frame by frame.
//!
//! Online, one frame per stream arrives at a time, `[S, C, H, W]`, and each shifted block keeps the
//! previous frame's `[0, fold)` channels in a [`ShiftCache`] slot. The result equals the offline
//! uni-directional shift.

use tch::Tensor;

use super::config::ShiftDirection;

/// How the frames of a batch relate in time.
pub enum TimeAxis<'a> {
    /// Whole clips: the batch is `[N*T, C, H, W]` with `t` consecutive frames per clip.
    Clip { t: i64 },
    /// One new frame per stream: the batch is `[S, C, H, W]`; the past lives in the cache.
    Stream(&'a mut ShiftCache),
}

impl TimeAxis<'_> {
    /// Frames per clip (1 for streams: each stream advances by one frame).
    pub fn frames(&self) -> i64 {
        match self {
            TimeAxis::Clip { t } => *t,
            TimeAxis::Stream(_) => 1,
        }
    }
}

/// The streaming state of an online network: one tensor per shifted block, `[S, fold, H, W]`,
/// holding the previous frame's first `fold` channels at that block. Kept outside the weights.
#[derive(Debug, Default)]
pub struct ShiftCache {
    slots: Vec<Option<Tensor>>,
}

impl ShiftCache {
    /// An empty cache for a network with `slots` shifted blocks; each slot takes its shape from the
    /// first frame that reaches it and starts as zeros.
    pub fn new(slots: usize) -> Self {
        Self { slots: (0..slots).map(|_| None).collect() }
    }

    /// Forgets the past: the next frame is treated as the first of a new stream.
    pub fn reset(&mut self) {
        for slot in &mut self.slots {
            if let Some(t) = slot {
                let _ = t.zero_();
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Shapes of the slots filled so far (`None` before the first frame).
    pub fn shapes(&self) -> Vec<Option<Vec<i64>>> {
        self.slots.iter().map(|s| s.as_ref().map(Tensor::size)).collect()
    }

    /// Bytes held by the cache.
    pub fn bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|t| t.numel() * t.kind().elt_size_in_bytes())
            .sum()
    }

    /// Replaces channels `[0, fold)` of `x` (`[S, C, H, W]`) by the cached previous frame and
    /// stores this frame's channels `[0, fold)` for the next call.
    fn shift_step(&mut self, slot: usize, x: &Tensor, fold: i64) -> Tensor {
        let (s, c, h, w) = x.size4().unwrap_or_default();
        let current = x.narrow(1, 0, fold);
        let cache = match &mut self.slots[slot] {
            Some(t) if t.size() == [s, fold, h, w] && t.kind() == x.kind() => t,
            other => other.insert(Tensor::zeros([s, fold, h, w], (x.kind(), x.device()))),
        };
        // [S, C, H, W]: the cached past first, then this frame's untouched channels.
        let out = Tensor::cat(&[&*cache, &x.narrow(1, fold, c - fold)], 1);
        cache.copy_(&current);
        out
    }
}

/// One temporal shift, placed in a block. `slot` indexes the block's place in a [`ShiftCache`].
#[derive(Debug, Clone, Copy)]
pub struct TemporalShift {
    pub direction: ShiftDirection,
    pub shift_div: i64,
    pub slot: usize,
}

impl TemporalShift {
    pub fn fold(&self, channels: i64) -> i64 {
        channels / self.shift_div
    }

    pub fn forward(&self, x: &Tensor, time: &mut TimeAxis) -> Tensor {
        let fold = self.fold(x.size()[1]);
        if fold == 0 {
            return x.shallow_clone();
        }
        match time {
            TimeAxis::Clip { t } => match self.direction {
                ShiftDirection::Bi => shift_bi(x, *t, fold),
                ShiftDirection::Uni => shift_uni(x, *t, fold),
            },
            // Only causal networks are ever run as streams (checked when the recogniser is built),
            // so the direction here is uni-directional.
            TimeAxis::Stream(cache) => cache.shift_step(self.slot, x, fold),
        }
    }
}

/// Bidirectional shift of a `[N*T, C, H, W]` batch.
pub fn shift_bi(x: &Tensor, t: i64, fold: i64) -> Tensor {
    let (nt, c, h, w) = x.size4().unwrap_or_default();
    let x5 = x.view([nt / t, t, c, h, w]); // [N, T, C, H, W]
    // Padding spec runs from the last dim backwards: (w0, w1, h0, h1, c0, c1, t0, t1).
    let from_next = x5.narrow(1, 1, t - 1).narrow(2, 0, fold).constant_pad_nd([0, 0, 0, 0, 0, 0, 0, 1]);
    let from_prev = x5.narrow(1, 0, t - 1).narrow(2, fold, fold).constant_pad_nd([0, 0, 0, 0, 0, 0, 1, 0]);
    let rest = x5.narrow(2, 2 * fold, c - 2 * fold);
    Tensor::cat(&[from_next, from_prev, rest], 2).view([nt, c, h, w])
}

/// Uni-directional (past to present) shift of a `[N*T, C, H, W]` batch.
pub fn shift_uni(x: &Tensor, t: i64, fold: i64) -> Tensor {
    let (nt, c, h, w) = x.size4().unwrap_or_default();
    let x5 = x.view([nt / t, t, c, h, w]); // [N, T, C, H, W]
    let from_prev = x5.narrow(1, 0, t - 1).narrow(2, 0, fold).constant_pad_nd([0, 0, 0, 0, 0, 0, 1, 0]);
    let rest = x5.narrow(2, fold, c - fold);
    Tensor::cat(&[from_prev, rest], 2).view([nt, c, h, w])
}

/// TSM's temporal pool: max over time with kernel 3, stride 2, padding 1, halving T.
pub fn temporal_pool(x: &Tensor, t: i64) -> Tensor {
    let (nt, c, h, w) = x.size4().unwrap_or_default();
    let n = nt / t;
    let x5 = x.view([n, t, c, h, w]).transpose(1, 2); // [N, C, T, H, W]
    let pooled = x5.max_pool3d([3, 1, 1], [2, 1, 1], [1, 0, 0], [1, 1, 1], false);
    let t_out = pooled.size()[2];
    pooled.transpose(1, 2).contiguous().view([n * t_out, c, h, w]) // [N*T/2, C, H, W]
}
