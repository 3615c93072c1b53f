//! Temporal smoothing of per-frame predictions, as the TSM authors' online demo does it: sum the
//! logits of the last K frames (K = 12 there) and take the best class; optionally accept a new label
//! only when the last two decisions agree (hysteresis), and only above a score threshold.
//!
//! The label is never at odds with the scores beside it. The rule, frame by frame:
//! - warming up: until K frames are summed after a start or a reset, there is no label (the
//!   shift cache and the sum still hold the empty past); the prediction says "k of K";
//! - below threshold: the best smoothed score is under the threshold: no label;
//! - unconfirmed (hysteresis on): the best class differs from the previous frame's decision: no
//!   label for this frame;
//! - confirmed: the label is the best class of the smoothed scores and its score is that class's
//!   score, the first bar.
//!
//! The window is K frames, or a time span (`window_ms`) turned into frames once the interval
//! between processed frames is known (`set_frame_interval_ms`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Settings of the smoother.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmoothingOptions {
    /// Frames whose logits are summed (1 = no smoothing); replaced by `window_ms` once the frame
    /// interval is known.
    pub window: usize,
    /// The window as a time span (ms of processed frames), if given: the window is then
    /// `round(window_ms / interval)` frames, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<f64>,
    /// A new label is shown only when the last two decisions agree.
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
            window_ms: None,
            hysteresis: true,
            threshold: 0.0,
            top_k: 5,
        }
    }
}

impl SmoothingOptions {
    /// The window in frames for processed frames `interval_ms` apart (`window` when no span is
    /// set or the interval is unknown).
    pub fn frames_at(&self, interval_ms: Option<f64>) -> usize {
        match (self.window_ms, interval_ms) {
            (Some(span), Some(interval)) if interval > 0.0 && span.is_finite() => {
                ((span / interval).round() as usize).clamp(1, 1 << 16)
            }
            _ => self.window.max(1),
        }
    }
}

/// Why the label is what it is (see the module's rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelState {
    /// `frames` of `of` summed since the start or the last reset: no label yet.
    WarmingUp { frames: usize, of: usize },
    /// The best smoothed score is under the threshold.
    BelowThreshold,
    /// The best class changed at this frame; hysteresis waits for one more.
    Unconfirmed,
    /// The label is the best class, its score the best score.
    Confirmed,
}

/// The smoothed view of the stream after one more frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The best classes of the smoothed logits, best first, as (class, softmax score).
    pub top: Vec<(usize, f32)>,
    /// The displayed decision: the best class when `state` is `Confirmed`, else none.
    pub label: Option<usize>,
    /// Softmax score of `label` in the smoothed logits (0 when there is no label).
    pub score: f32,
    pub state: LabelState,
    /// The window in frames this prediction summed over (when full).
    pub window: usize,
}

#[derive(Debug)]
pub struct Smoother {
    options: SmoothingOptions,
    /// The window in frames now in force.
    window: usize,
    interval_ms: Option<f64>,
    history: VecDeque<Vec<f32>>,
    /// Frames pushed since the start or the last reset.
    since_reset: usize,
    sum: Vec<f32>,
    probs: Vec<f32>,
    order: Vec<usize>,
    /// The previous frame's decision (best class at or above the threshold).
    last_decision: Option<usize>,
}

impl Smoother {
    pub fn new(options: SmoothingOptions) -> Self {
        let window = options.frames_at(None);
        Self {
            options,
            window,
            interval_ms: None,
            history: VecDeque::with_capacity(window),
            since_reset: 0,
            sum: Vec::new(),
            probs: Vec::new(),
            order: Vec::new(),
            last_decision: None,
        }
    }

    pub fn options(&self) -> &SmoothingOptions {
        &self.options
    }

    /// The window in frames now in force.
    pub fn window(&self) -> usize {
        self.window
    }

    /// New settings for the frames to come (a window's controls). The history is kept; a shorter
    /// window drops its oldest rows now, so the next prediction already sums the new window.
    pub fn set_options(&mut self, options: SmoothingOptions) {
        self.options = options;
        self.resize();
    }

    /// The interval between processed frames (ms), which turns `window_ms` into frames.
    pub fn set_frame_interval_ms(&mut self, interval_ms: f64) {
        self.interval_ms = Some(interval_ms);
        self.resize();
    }

    fn resize(&mut self) {
        self.window = self.options.frames_at(self.interval_ms);
        while self.history.len() > self.window {
            self.history.pop_front();
        }
    }

    /// Forgets the history (a new stream, or a discontinuity): the next frames warm up again.
    pub fn reset(&mut self) {
        self.history.clear();
        self.since_reset = 0;
        self.last_decision = None;
    }

    /// Adds one frame's logits and returns the smoothed prediction.
    pub fn push(&mut self, logits: &[f32]) -> Prediction {
        let classes = logits.len();
        // Reuse the oldest row once the window is full: no allocation per frame.
        let oldest = if self.history.len() >= self.window {
            self.history.pop_front()
        } else {
            None
        };
        let mut row = oldest.unwrap_or_else(|| Vec::with_capacity(classes));
        row.clear();
        row.extend_from_slice(logits);
        self.history.push_back(row);
        self.since_reset = self.since_reset.saturating_add(1);

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
        let previous = std::mem::replace(&mut self.last_decision, decision);
        let state = if self.since_reset < self.window {
            LabelState::WarmingUp {
                frames: self.since_reset,
                of: self.window,
            }
        } else if decision.is_none() {
            LabelState::BelowThreshold
        } else if self.options.hysteresis && previous != decision {
            LabelState::Unconfirmed
        } else {
            LabelState::Confirmed
        };
        let label = decision.filter(|_| state == LabelState::Confirmed);
        let top = self
            .order
            .iter()
            .take(self.options.top_k)
            .map(|&c| (c, self.probs[c]))
            .collect();
        let score = label.map_or(0.0, |c| self.probs[c]);
        Prediction {
            top,
            label,
            score,
            state,
            window: self.window,
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
}
