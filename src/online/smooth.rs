//! Temporal smoothing of per-frame predictions, as the TSM authors' online demo does it: sum the
//! logits of the last K frames (K = 12 there) and take the best class; optionally accept a new label
//! only when the last two decisions agree (hysteresis), and only above a score threshold.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Settings of the smoother.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmoothingOptions {
    /// Frames whose logits are summed (1 = no smoothing).
    pub window: usize,
    /// A new label replaces the current one only when the last two decisions agree.
    pub hysteresis: bool,
    /// Minimum softmax score of the smoothed logits for a decision; below it the label is none.
    pub threshold: f32,
    /// Classes listed in `Prediction::top`.
    pub top_k: usize,
}

impl Default for SmoothingOptions {
    fn default() -> Self {
        Self {
            window: 12,
            hysteresis: true,
            threshold: 0.0,
            top_k: 5,
        }
    }
}

/// The smoothed view of the stream after one more frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The best classes of the smoothed logits, best first, as (class, softmax score).
    pub top: Vec<(usize, f32)>,
    /// The displayed decision (after threshold and hysteresis).
    pub label: Option<usize>,
    /// Softmax score of `label` in the smoothed logits (0 when there is no label).
    pub score: f32,
}

#[derive(Debug)]
pub struct Smoother {
    options: SmoothingOptions,
    history: VecDeque<Vec<f32>>,
    sum: Vec<f32>,
    probs: Vec<f32>,
    order: Vec<usize>,
    last_decisions: [Option<usize>; 2],
    label: Option<usize>,
}

impl Smoother {
    pub fn new(options: SmoothingOptions) -> Self {
        let window = options.window.max(1);
        Self {
            options: SmoothingOptions { window, ..options },
            history: VecDeque::with_capacity(window),
            sum: Vec::new(),
            probs: Vec::new(),
            order: Vec::new(),
            last_decisions: [None, None],
            label: None,
        }
    }

    pub fn options(&self) -> &SmoothingOptions {
        &self.options
    }

    /// New settings for the frames to come (a window's controls). The history is kept; a shorter
    /// window drops its oldest rows now, so the next prediction already sums the new window.
    pub fn set_options(&mut self, options: SmoothingOptions) {
        let window = options.window.max(1);
        self.options = SmoothingOptions { window, ..options };
        while self.history.len() > window {
            self.history.pop_front();
        }
    }

    /// Forgets the history (a new stream, or a discontinuity).
    pub fn reset(&mut self) {
        self.history.clear();
        self.last_decisions = [None, None];
        self.label = None;
    }

    /// Adds one frame's logits and returns the smoothed prediction.
    pub fn push(&mut self, logits: &[f32]) -> Prediction {
        let classes = logits.len();
        // Reuse the oldest row once the window is full: no allocation per frame.
        let oldest = if self.history.len() >= self.options.window {
            self.history.pop_front()
        } else {
            None
        };
        let mut row = oldest.unwrap_or_else(|| Vec::with_capacity(classes));
        row.clear();
        row.extend_from_slice(logits);
        self.history.push_back(row);

        self.sum.clear();
        self.sum.resize(classes, 0.0);
        for row in &self.history {
            for (s, v) in self.sum.iter_mut().zip(row) {
                *s += v;
            }
        }
        // Scores: softmax of the mean logits of the window.
        let n = self.history.len() as f32;
        let max = self.sum.iter().copied().fold(f32::NEG_INFINITY, f32::max) / n;
        self.probs.clear();
        self.probs
            .extend(self.sum.iter().map(|s| (s / n - max).exp()));
        let total: f32 = self.probs.iter().sum();
        for p in &mut self.probs {
            *p /= total;
        }
        self.order.clear();
        self.order.extend(0..classes);
        let probs = &self.probs;
        self.order
            .sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));

        let best = self.order.first().copied();
        let decision = best.filter(|&c| self.probs[c] >= self.options.threshold);
        self.last_decisions = [self.last_decisions[1], Some(decision).flatten()];
        let agreed = self.last_decisions[0] == self.last_decisions[1];
        if !self.options.hysteresis || agreed || self.label.is_none() && self.history.len() == 1 {
            self.label = decision;
        }
        let top = self
            .order
            .iter()
            .take(self.options.top_k)
            .map(|&c| (c, self.probs[c]))
            .collect();
        let score = self.label.map_or(0.0, |c| self.probs[c]);
        Prediction {
            top,
            label: self.label,
            score,
        }
    }
}

/// Feeds every k-th frame to the model, so the time step the shift cache sees matches the frame
/// spacing the model was trained with.
#[derive(Debug, Clone)]
pub struct FrameStride {
    every: u32,
    seen: u64,
}

impl FrameStride {
    pub fn new(every: u32) -> Self {
        Self {
            every: every.max(1),
            seen: 0,
        }
    }

    /// True when this frame (counted from the start or the last reset) is to be processed.
    pub fn take(&mut self) -> bool {
        let take = self.seen.is_multiple_of(u64::from(self.every));
        self.seen += 1;
        take
    }

    pub fn reset(&mut self) {
        self.seen = 0;
    }

    /// k: every k-th frame is taken.
    pub fn every(&self) -> u32 {
        self.every
    }
}
