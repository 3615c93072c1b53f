//! The settings the user changes while the pipeline runs, and their bounds in the window.

use crate::online::SmoothingOptions;
use crate::pipeline::PipelineOptions;

pub const TOP_K_MAX: usize = 10;
pub const SMOOTH_MAX: usize = 64;
pub const STRIDE_MAX: u32 = 16;
/// The settings the user changes while the pipeline runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub paused: bool,
    /// The smoothing window in processed frames (used when `smooth_ms` is None).
    pub smooth_window: usize,
    /// The smoothing as a time span (ms), turned into frames by the pipeline.
    pub smooth_ms: Option<f64>,
    pub hysteresis: bool,
    pub threshold: f32,
    pub top_k: usize,
    pub stride: u32,
}

impl Settings {
    pub fn from_options(options: &PipelineOptions) -> Self {
        Self {
            paused: false,
            smooth_window: options.smoothing.window,
            smooth_ms: options.smoothing.window_ms,
            hysteresis: options.smoothing.hysteresis,
            threshold: options.smoothing.threshold,
            top_k: options.smoothing.top_k,
            stride: options.stride,
        }
    }

    pub fn smoothing(&self) -> SmoothingOptions {
        SmoothingOptions {
            window: self.smooth_window,
            window_ms: self.smooth_ms,
            hysteresis: self.hysteresis,
            threshold: self.threshold,
            top_k: self.top_k,
        }
    }
}
