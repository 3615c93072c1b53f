//! The element message of one processed frame, as GStreamer's analysis elements (`level`,
//! `spectrum`) report: a structure named after the element with the frame's timestamps, the
//! smoothed decision, the top classes as two parallel arrays, the element's processing time and,
//! when asked, the raw logits.

use gstreamer as gst;

use super::engine::Output;

/// The structure's name.
pub const NAME: &str = "tsmclassify";

/// Where the frame sits in the stream.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    pub pts: Option<gst::ClockTime>,
    pub stream_time: Option<gst::ClockTime>,
    pub running_time: Option<gst::ClockTime>,
    /// Processed frames since the element started (a reset does not restart it).
    pub frame: u64,
}

/// Builds the message's structure. `latency_ms`: the element's own time for the frame.
pub fn structure(out: &Output, at: Position, latency_ms: f64, emit_logits: bool) -> gst::Structure {
    let labels = gst::Array::new(out.top.iter().map(|(l, _)| l.as_str()));
    let scores = gst::Array::new(out.top.iter().map(|&(_, s)| s));
    let mut s = gst::Structure::builder(NAME)
        .field("frame", at.frame)
        .field("pts", at.pts)
        .field("stream-time", at.stream_time)
        .field("running-time", at.running_time)
        // An empty label when the score is under the threshold.
        .field("label", out.label.as_deref().unwrap_or(""))
        .field("score", out.score)
        .field("top-labels", labels)
        .field("top-scores", scores)
        .field("latency-ms", latency_ms)
        .field("preprocess-ms", out.timing.preprocess_ms)
        .field("model-ms", out.timing.model_ms)
        .build();
    if emit_logits {
        s.set("logits", gst::Array::new(out.logits.iter().copied()));
    }
    s
}
