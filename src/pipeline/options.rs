//! How a pipeline runs, and the changes a window makes to a running one.

use std::time::Duration;

use crate::capture::Source;
use crate::online::SmoothingOptions;

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub source: Source,
    /// Replay a file at its own pace (drops counted) instead of as fast as possible.
    pub realtime: bool,
    /// Stop after this many processed frames.
    pub max_frames: Option<u64>,
    /// Feed every k-th frame to the model.
    pub stride: u32,
    pub smoothing: SmoothingOptions,
    /// Class names, index = class.
    pub labels: Vec<String>,
    /// Add each frame's raw logits to its result.
    pub emit_logits: bool,
    /// Keep each frame's pixels in its result (for a window).
    pub keep_frames: bool,
    /// Extra time added to every model step, to study drops and latency under a slow model.
    pub throttle: Option<Duration>,
    /// Reopenings of a live source that fails, over the whole run (None: forever). The backoff
    /// restarts at 250 ms once frames flow again; the count does not.
    pub max_retries: Option<u32>,
}

impl PipelineOptions {
    /// `source` as fast as it comes, every frame to the model, default smoothing, no labels,
    /// logits or pixels in the results, a failing live source reopened forever.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            realtime: false,
            max_frames: None,
            stride: 1,
            smoothing: SmoothingOptions::default(),
            labels: Vec::new(),
            emit_logits: false,
            keep_frames: false,
            throttle: None,
            max_retries: None,
        }
    }
}

/// A change to a running pipeline, applied by the inference thread between two frames.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Stop feeding frames to the model (true) or go on (false). A paused file waits where it is
    /// (the ring fills and the capture thread waits: nothing is lost; a file replayed in real time
    /// is held in GStreamer's PAUSED, so its clock waits too); a paused live source keeps
    /// running and its frames are counted as `frames_paused`. When a live source resumes, the cache
    /// and the smoothing reset: the time step the shift sees jumped by the length of the pause.
    Pause(bool),
    /// Empty the shift cache and the smoothing history, as at a cut in the video.
    Reset,
    /// New smoothing settings (window, threshold, hysteresis, top-k); the history is kept.
    Smoothing(SmoothingOptions),
    /// Feed every k-th frame to the model from now on.
    Stride(u32),
}
