//! The single-stream inference thread's state: the recogniser and the stream's [`Lane`] (gate,
//! smoothing, counters). One frame in, at most one result out.

use std::time::{Duration, Instant};

pub use super::lane::Processed;
use super::lane::{Lane, Step};
use super::{Control, PipelineOptions, SourceError, Summary};
use crate::capture::Frame;
use crate::online::Recognizer;

/// The recogniser and what it needs per frame, and the counters of a run.
pub struct Inference {
    recognizer: Recognizer,
    lane: Lane,
    throttle: Option<Duration>,
}

impl Inference {
    pub fn new(recognizer: Recognizer, options: &PipelineOptions, live: bool) -> Self {
        Self {
            recognizer,
            lane: Lane::new(options, live),
            throttle: options.throttle,
        }
    }

    /// Gives the recogniser back (for the next source).
    pub fn into_recognizer(self) -> Recognizer {
        self.recognizer
    }

    pub fn is_paused(&self) -> bool {
        self.lane.is_paused()
    }

    /// Frames processed so far.
    pub fn processed(&self) -> u64 {
        self.lane.processed()
    }

    /// A frame of a live source taken from the ring while paused: counted, not processed.
    pub fn skip_paused(&mut self) {
        self.lane.skip_paused();
    }

    pub fn control(&mut self, control: Control) {
        self.lane.control(control);
    }

    /// Runs one frame through the gate, the recogniser and the smoothing. A frame the stride
    /// leaves out, or the recogniser refuses (logged), comes back as a picture when frames are
    /// kept (a window shows it), else as nothing.
    pub fn process(&mut self, frame: Frame, dropped: u64) -> Processed {
        let admitted = match self.lane.admit(frame) {
            Ok(admitted) => admitted,
            Err(processed) => return processed,
        };
        if admitted.reset {
            self.recognizer.reset();
        }
        let step = match self.recognizer.step(&admitted.frame.as_frame_ref()) {
            Ok((logits, timing)) => Step {
                logits: logits.to_vec(),
                timing,
                memory: self.recognizer.memory_status(0),
            },
            Err(e) => {
                tracing::warn!("frame {} skipped: {e}", admitted.frame.index);
                return self.lane.picture(admitted.frame);
            }
        };
        if let Some(extra) = self.throttle {
            std::thread::sleep(extra);
        }
        Processed::Result(self.lane.complete(admitted, step, self.throttle, dropped))
    }

    /// The totals of the run.
    pub fn summary(
        &self,
        source: String,
        captured: u64,
        dropped: u64,
        started: Instant,
        error: Option<&SourceError>,
    ) -> Summary {
        self.lane.summary(source, captured, dropped, started, error)
    }
}
