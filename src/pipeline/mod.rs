//! The live pipeline: it owns the threads and the queues between them.
//!
//! ```text
//! GStreamer appsink -> [shiftlive-capture] -> frame ring (SPSC) -> [shiftlive-infer] -> events (bounded)
//!                      capture.rs             stream.rs             infer.rs              -> caller
//!                      Sequencer, Backoff     SourceStream          inference.rs, gate.rs
//!                                                                   (recogniser, smoother, stride)
//! ```
//!
//! Live sources use the `Latest` ring policy (drops counted), files `Backpressure` (nothing lost)
//! unless replayed in real time. A live source that fails is reopened with exponential backoff and
//! its next frame marks a discontinuity, at which the recogniser's cache and the smoother reset.
//! The capture thread returns how its source ended through its join handle; the inference thread
//! owns the source's stream (ring + capture thread), joins it at the end, sends the summary and
//! returns the recogniser. `stop()` or dropping the pipeline stops and joins both threads;
//! `finish()` also hands the recogniser back, so a window can switch sources without reloading
//! the model.
//!
//! A window changes a running pipeline through `control()`: a bounded channel into the inference
//! thread, read between frames (pause, reset of the cache, smoothing, stride). A new source means a
//! new pipeline: `finish()` the old one and `try_start` with its recogniser.
//!
//! Many sources, one model: `BatchPipeline` opens one `SourceStream` per source and one batched
//! inference thread (`batch.rs`) advances the streams that have a new frame in one step of a
//! recogniser of S streams, each stream with its own rows of the shift cache and its own `Lane`
//! (gate, smoothing, counters; `lane.rs`, shared with the single-stream `inference.rs`).

mod batch;
mod batched;
mod capture;
mod error;
mod gate;
mod handle;
mod infer;
mod inference;
mod lane;
mod options;
mod results;
mod stream;

pub use batch::BatchInferred;
pub use batched::{BatchPipeline, StreamControl, StreamSource};
pub use error::{PipelineError, SourceError, SourceLost};
pub use handle::Pipeline;
pub use infer::Inferred;
pub use options::{Control, PipelineOptions};
pub use results::{
    Event, FrameResult, Latency, LatencySummary, Scored, StreamSummary, StreamsEvent,
    StreamsSummary, StreamsTotals, Summary,
};
