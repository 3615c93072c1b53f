//! What a pipeline reports: one result per processed frame, warnings, and a summary at the end.

use std::sync::Arc;

use serde::Serialize;

use crate::bench::Stats;
use crate::capture::Frame;
use crate::online::{LabelState, MemoryStatus};

/// A class and its score.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Scored {
    pub label: String,
    pub score: f32,
}

/// Latency of one frame per stage, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq)]
pub struct Latency {
    /// From the appsink handing the frame over to the inference thread taking it from the ring.
    pub capture_to_ring: f64,
    pub preprocess: f64,
    pub model: f64,
    /// From the appsink to the result.
    pub total: f64,
}

/// The result for one processed frame (one JSON line in headless mode).
#[derive(Debug, Clone, Serialize)]
pub struct FrameResult {
    pub frame: u64,
    pub pts_ms: Option<f64>,
    pub top: Vec<Scored>,
    /// The best class of the smoothed scores once confirmed (see `label_state`), else null.
    pub label: Option<String>,
    /// The label's smoothed score (the first of `top`), 0 without a label.
    pub score: f32,
    /// Why the label is what it is: warming up (k of n frames), below the threshold, unconfirmed
    /// (hysteresis) or confirmed.
    pub label_state: LabelState,
    /// Processed frames the smoothing sums (from `--smooth`, or `--smooth-ms` at this stride).
    pub smooth_frames: usize,
    pub latency_ms: Latency,
    /// Frames dropped so far.
    pub dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logits: Option<Vec<f32>>,
    /// A model answering every N frames (ECO's working memory): `every` (N), `position` (frames
    /// of the current period), `updates` (answers since the last reset), `fresh` (this frame
    /// brought an answer). Absent for a frame-by-frame model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryStatus>,
    #[serde(skip)]
    pub image: Option<Arc<Frame>>,
}

/// Totals at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub source: String,
    pub frames_processed: u64,
    /// Delivered by the source.
    pub frames_captured: u64,
    /// Captured but never processed (ring full or stale).
    pub frames_dropped: u64,
    /// Left out on purpose by `--stride`.
    pub frames_strided: u64,
    /// Captured from a live source while paused.
    pub frames_paused: u64,
    pub fps: f64,
    pub latency_ms: LatencySummary,
    /// Set when the source failed: the error with its causes.
    pub error: Option<String>,
    /// The error is damaged input (a decode error or a file shorter than its container states,
    /// after frames had come): the frames before it were processed.
    #[serde(skip)]
    pub damaged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub total: Stats,
    pub capture_to_ring: Stats,
    pub preprocess: Stats,
    pub model: Stats,
}

/// What the pipeline reports.
#[derive(Debug, Clone)]
pub enum Event {
    Frame(Box<FrameResult>),
    /// A frame the stride left out, for a window to show (only with `keep_frames`): the picture
    /// moves at the source's rate while the label keeps the latest result.
    Picture(Arc<Frame>),
    /// A live source failed and is being reopened.
    Warning(String),
    /// The last event of a run.
    Summary(Box<Summary>),
}

/// What a batched run of several streams reports: each stream's events, tagged with its index,
/// then the summary of all of them.
#[derive(Debug, Clone)]
pub enum StreamsEvent {
    /// An event of one stream; its `Summary` comes when that stream ends (or could not start).
    Stream { stream: usize, event: Event },
    /// The last event of the run.
    Summary(Box<StreamsSummary>),
}

/// One stream's totals in a batched run.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    pub stream: usize,
    #[serde(flatten)]
    pub summary: Summary,
}

/// The totals of a batched run: one entry per stream, and all of them together.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsSummary {
    pub streams: Vec<StreamSummary>,
    pub totals: StreamsTotals,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamsTotals {
    pub streams: usize,
    /// Streams whose source failed (could not start, or failed for good while running).
    pub failed: usize,
    pub frames_processed: u64,
    pub frames_captured: u64,
    pub frames_dropped: u64,
    /// Frames processed by all streams per second of the run.
    pub fps: f64,
    /// Batched model steps, and the streams they held on average.
    pub batches: u64,
    pub mean_batch: f64,
}
