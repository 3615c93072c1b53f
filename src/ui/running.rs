//! The pipeline a window's session runs (one source, or several as a batch) and the summary it
//! leaves when the session closes.

use crate::online::Recognizer;
use crate::pipeline::{BatchPipeline, Control, Pipeline, StreamsSummary, Summary};

/// The summary of the run still going when a session was closed (none when nothing ran).
#[derive(Debug, Default)]
pub struct Closed {
    /// Of a run of one source.
    pub summary: Option<Summary>,
    /// Of a run of several.
    pub streams: Option<StreamsSummary>,
}

/// The pipeline a session runs: one source, or several as a batch.
pub(super) enum Running {
    One(Pipeline),
    Many(BatchPipeline),
}

impl Running {
    /// Stops it, joins its threads and gives the recogniser back with the summary.
    pub(super) fn join(self) -> (Option<Recognizer>, Closed) {
        match self {
            Running::One(pipeline) => match pipeline.join() {
                Some(done) => (
                    Some(done.recognizer),
                    Closed {
                        summary: Some(done.summary),
                        streams: None,
                    },
                ),
                None => (None, Closed::default()),
            },
            Running::Many(pipeline) => match pipeline.join() {
                Some(done) => (
                    Some(done.recognizer),
                    Closed {
                        summary: None,
                        streams: Some(done.summary),
                    },
                ),
                None => (None, Closed::default()),
            },
        }
    }
}

impl Running {
    /// Passes a control on: to every stream (`None`), or to one stream of a batch (a run of one
    /// source has no other). False when the pipeline did not take it (ended, or busy).
    pub(super) fn control(&self, stream: Option<usize>, control: Control) -> bool {
        match (self, stream) {
            (Running::One(pipeline), None) => pipeline.control(control),
            (Running::One(_), Some(_)) => true,
            (Running::Many(pipeline), stream) => pipeline.control(stream, control),
        }
    }
}
