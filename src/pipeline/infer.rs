//! The inference thread: takes frames from a [`SourceStream`], applies the window's controls
//! between two frames, sends one result per processed frame and, at the end, the summary; it
//! returns the recogniser and the summary through its join handle.
//!
//! ```text
//! controls (bounded) --\
//! SourceStream::pop ----> Inference::process --> events (bounded): Frame..., Summary
//! ```
//!
//! A paused file waits where it is (its capture thread waits on the full ring); a paused live
//! source's frames are taken and counted. The loop ends at the end of the source, at
//! `max_frames`, when the stop flag is set, or when nobody listens to the events any more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::inference::{Inference, Processed};
use super::stream::SourceStream;
use super::{Control, Event, Summary};
use crate::online::Recognizer;
use crate::ring::Popped;

/// What the inference thread hands back when it ends.
pub struct Inferred {
    pub recognizer: Recognizer,
    pub summary: Summary,
}

/// The inference thread's inputs and outputs.
pub struct InferLoop {
    pub stream: SourceStream,
    pub inference: Inference,
    pub controls: Receiver<Control>,
    pub events: Sender<Event>,
    pub stop: Arc<AtomicBool>,
    pub max_frames: Option<u64>,
}

/// How long one wait for a frame or a control lasts before the stop flag is checked again.
const POLL: Duration = Duration::from_millis(50);

impl InferLoop {
    /// Runs until the source ends or the pipeline stops, then closes the stream (joining its
    /// capture thread), sends the summary and gives the recogniser back.
    pub fn run(mut self) -> Inferred {
        let started = Instant::now();
        self.frames();
        let dropped = self.stream.dropped();
        let name = self.stream.name().to_string();
        // Stop the capture thread of a source still running, then join it through the stream.
        self.stop.store(true, Ordering::Relaxed);
        let end = self.stream.close();
        let summary = self.inference.summary(
            name,
            end.frames_captured,
            dropped,
            started,
            end.error.as_ref(),
        );
        let _ = self.events.send(Event::Summary(Box::new(summary.clone())));
        Inferred {
            recognizer: self.inference.into_recognizer(),
            summary,
        }
    }

    /// The loop over frames and controls.
    fn frames(&mut self) {
        let live = self.stream.is_live();
        while !self.stop.load(Ordering::Relaxed) {
            for control in self.controls.try_iter() {
                self.inference.control(control);
            }
            if self.inference.is_paused() && !live {
                // A paused file waits where it is: the capture thread waits on the full ring.
                if let Ok(control) = self.controls.recv_timeout(POLL) {
                    self.inference.control(control);
                }
                continue;
            }
            match self.stream.pop(POLL) {
                Popped::Item(_) if self.inference.is_paused() => self.inference.skip_paused(),
                Popped::Item(frame) => {
                    let dropped = self.stream.dropped();
                    let event = match self.inference.process(frame, dropped) {
                        Processed::Result(result) => Event::Frame(result),
                        Processed::Picture(frame) => Event::Picture(frame),
                        Processed::Nothing => continue,
                    };
                    let result = matches!(event, Event::Frame(_));
                    if self.events.send(event).is_err() {
                        return;
                    }
                    if !result {
                        continue;
                    }
                    if self
                        .max_frames
                        .is_some_and(|n| self.inference.processed() >= n)
                    {
                        return;
                    }
                }
                Popped::Empty => {}
                Popped::Finished => return,
            }
        }
    }
}
