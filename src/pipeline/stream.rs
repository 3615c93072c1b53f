//! The consumer side of one source: its frame ring and its capture thread's join handle. The
//! inference thread takes frames from it and, at the end, closes it to learn how the source ended.
//! Batching many sources later means one `SourceStream` per source.

use std::thread::JoinHandle;
use std::time::Duration;

use super::SourceError;
use super::capture::CaptureResult;
use crate::capture::Frame;
use crate::ring::{Popped, RingConsumer};

/// The consumer side of one source: its frame ring and its capture thread. The inference thread
/// takes frames from it; closing it hangs up the ring (which stops the capture thread) and joins
/// the thread. Dropping it does the same.
pub struct SourceStream {
    name: String,
    live: bool,
    consumer: Option<RingConsumer<Frame>>,
    thread: Option<JoinHandle<CaptureResult>>,
}

/// How a source's stream ended: its frames and its error, if it failed.
#[derive(Debug)]
pub struct StreamEnd {
    pub frames_captured: u64,
    pub error: Option<SourceError>,
}

impl SourceStream {
    pub fn new(
        name: String,
        live: bool,
        consumer: RingConsumer<Frame>,
        thread: JoinHandle<CaptureResult>,
    ) -> Self {
        Self {
            name,
            live,
            consumer: Some(consumer),
            thread: Some(thread),
        }
    }

    /// The source, as `Source::describe` names it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when the source runs on its own clock.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The next frame within `timeout`; `Finished` once the source has ended and the ring is
    /// drained (or the stream was closed).
    pub fn pop(&mut self, timeout: Duration) -> Popped<Frame> {
        match &mut self.consumer {
            Some(consumer) => consumer.pop(timeout),
            None => Popped::Finished,
        }
    }

    /// Frames captured but never processed so far.
    pub fn dropped(&self) -> u64 {
        self.consumer.as_ref().map_or(0, |c| c.counters().dropped())
    }

    /// Hangs up the ring, joins the capture thread and says how the source ended.
    pub fn close(mut self) -> StreamEnd {
        self.shut()
    }

    fn shut(&mut self) -> StreamEnd {
        // Hang up first, so a capture thread waiting on a full ring stops.
        drop(self.consumer.take());
        let Some(thread) = self.thread.take() else {
            return StreamEnd {
                frames_captured: 0,
                error: None,
            };
        };
        match thread.join() {
            Ok(Ok(summary)) => StreamEnd {
                frames_captured: summary.frames_captured,
                error: None,
            },
            Ok(Err(failure)) => StreamEnd {
                frames_captured: failure.summary.frames_captured,
                error: Some(failure.error),
            },
            Err(_) => StreamEnd {
                frames_captured: 0,
                error: Some(SourceError::Panicked),
            },
        }
    }
}

impl Drop for SourceStream {
    fn drop(&mut self) {
        self.shut();
    }
}
