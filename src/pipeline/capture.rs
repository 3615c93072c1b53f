//! The capture thread: pulls frames from the source into the frame ring until the source ends,
//! the consumer hangs up or the stop flag is set, and returns how it ended through its join
//! handle.
//!
//! ```text
//! Capture::next --Frame--> Sequencer (run-wide index, discontinuity mark) --> RingProducer::push
//!      |
//!      +-- a live source lost after its first frame: Backoff (250 ms, doubling to 5 s), reopen
//! ```
//!
//! A live source that fails or ends after it has started is reopened with exponential backoff and
//! its next frame is marked discontinuous; the error of a source that cannot start, or of a file,
//! ends the thread. Its consumer side (ring and join handle) is `stream::SourceStream`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::{Event, PipelineOptions, SourceError, SourceLost};
use crate::capture::{Capture, CaptureError, CaptureEvent, Frame};
use crate::errors::chain;
use crate::ring::{Pushed, RingProducer};

/// How a capture thread ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureSummary {
    pub frames_captured: u64,
    /// Times a lost live source was opened again.
    pub reopenings: u32,
}

/// How a capture thread failed, with what it had captured until then.
#[derive(Debug)]
pub struct CaptureFailure {
    pub summary: CaptureSummary,
    pub error: SourceError,
}

pub type CaptureResult = Result<CaptureSummary, CaptureFailure>;

/// Numbers the frames of a run across reopenings of its source, and marks the first frame after a
/// reopening as a discontinuity (the recogniser's past no longer applies).
#[derive(Debug, Default)]
pub struct Sequencer {
    next_index: u64,
    discontinuity: bool,
}

impl Sequencer {
    /// Gives a frame fresh from the source its index in the run and its discontinuity mark.
    pub fn stamp(&mut self, frame: &mut Frame) {
        frame.index = self.next_index;
        frame.discontinuity = std::mem::take(&mut self.discontinuity);
        self.next_index += 1;
    }

    /// The source was lost: the next frame starts a new stream.
    pub fn source_lost(&mut self) {
        self.discontinuity = true;
    }

    /// Frames stamped so far.
    pub fn frames(&self) -> u64 {
        self.next_index
    }
}

/// The wait before reopening a lost live source: 250 ms, doubling up to 5 s, back to 250 ms once
/// frames flow again; the reopenings are counted over the whole run.
#[derive(Debug)]
pub struct Backoff {
    delay: Duration,
    reopenings: u32,
    max_retries: Option<u32>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(5);

    pub fn new(max_retries: Option<u32>) -> Self {
        Self {
            delay: Self::FIRST,
            reopenings: 0,
            max_retries,
        }
    }

    /// Frames flow: the next loss waits the shortest time again.
    pub fn reset(&mut self) {
        self.delay = Self::FIRST;
    }

    /// The wait before the next reopening, or None when the retries are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.max_retries.is_some_and(|m| self.reopenings >= m) {
            return None;
        }
        let delay = self.delay;
        self.reopenings += 1;
        self.delay = (self.delay * 2).min(Self::MAX);
        Some(delay)
    }

    pub fn reopenings(&self) -> u32 {
        self.reopenings
    }
}

/// How one opening of the source ended.
enum Opening {
    /// The end of a file, the stop flag, or the consumer hung up: the thread is done.
    Done,
    /// A live source went away after it had started: reopen it.
    Lost(SourceLost),
}

/// The capture thread's state: the source's options, the ring's producer and the counters.
pub struct CaptureLoop {
    options: PipelineOptions,
    producer: RingProducer<Frame>,
    stop: Arc<AtomicBool>,
    /// Set while the window pauses: a file replayed in real time is then held in PAUSED.
    hold: Arc<AtomicBool>,
    events: Sender<Event>,
    live: bool,
    started: bool,
    sequencer: Sequencer,
    backoff: Backoff,
}

impl CaptureLoop {
    pub fn new(
        options: PipelineOptions,
        producer: RingProducer<Frame>,
        stop: Arc<AtomicBool>,
        hold: Arc<AtomicBool>,
        events: Sender<Event>,
        live: bool,
    ) -> Self {
        let backoff = Backoff::new(options.max_retries);
        Self {
            options,
            producer,
            stop,
            hold,
            events,
            live,
            started: false,
            sequencer: Sequencer::default(),
            backoff,
        }
    }

    fn summary(&self) -> CaptureSummary {
        CaptureSummary {
            frames_captured: self.sequencer.frames(),
            reopenings: self.backoff.reopenings(),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.producer.is_closed()
    }

    /// Runs the source (`first` is its first opening) to its end. Dropping `self` at the end
    /// drops the producer: only then does the consumer see the ring finished.
    pub fn run(mut self, first: Capture) -> CaptureResult {
        crate::capture::priority::lower_this_thread();
        let mut opened = Some(Ok(first));
        loop {
            let capture = opened
                .take()
                .unwrap_or_else(|| Capture::open(&self.options.source, self.options.realtime));
            let lost = match capture {
                Err(e) if !self.started => return self.fail(e.into()),
                Err(e) => SourceLost::Failed(e),
                Ok(mut capture) => match self.pump(&mut capture) {
                    Ok(Opening::Done) => return Ok(self.summary()),
                    Ok(Opening::Lost(lost)) => lost,
                    Err(e) => return self.fail(e.into()),
                },
            };
            let Some(delay) = self.backoff.next_delay() else {
                let retries = self.backoff.reopenings();
                return self.fail(SourceError::GaveUp {
                    retries,
                    last: lost,
                });
            };
            let warning = format!("{}; reopening in {} ms", chain(&lost), delay.as_millis());
            let _ = self.events.try_send(Event::Warning(warning));
            self.sequencer.source_lost();
            let resume = Instant::now() + delay;
            while Instant::now() < resume {
                if self.stopped() {
                    return Ok(self.summary());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn fail(&self, error: SourceError) -> CaptureResult {
        Err(CaptureFailure {
            summary: self.summary(),
            error,
        })
    }

    /// Pulls from one opening of the source until it ends, fails or the thread is stopped.
    fn pump(&mut self, capture: &mut Capture) -> Result<Opening, CaptureError> {
        // Short pulls on live sources: between them the held frame goes to a waiting consumer.
        let pull = if self.live {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(100)
        };
        // Only a file replayed in real time is held: a live source runs on (its frames counted as
        // paused), and a file replayed as fast as possible waits on the full ring.
        let holds = !self.live && self.options.realtime;
        loop {
            if self.stopped() || self.producer.flush() == Pushed::Closed {
                return Ok(Opening::Done);
            }
            if holds {
                capture.set_paused(self.hold.load(Ordering::Relaxed))?;
            }
            match capture.next(pull) {
                Ok(CaptureEvent::Frame(mut frame)) => {
                    self.started = true;
                    self.sequencer.stamp(&mut frame);
                    if self.producer.push(frame) == Pushed::Closed {
                        return Ok(Opening::Done);
                    }
                    self.backoff.reset();
                }
                Ok(CaptureEvent::Pending) => {}
                Ok(CaptureEvent::Eos) if !self.live => return Ok(Opening::Done),
                Ok(CaptureEvent::Eos) => {
                    let name = self.options.source.describe();
                    return Ok(Opening::Lost(SourceLost::Ended(name)));
                }
                Err(e) if !self.live || !self.started => return Err(e),
                Err(e) => return Ok(Opening::Lost(SourceLost::Failed(e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame {
            data: Vec::new(),
            width: 0,
            height: 0,
            index: 0,
            pts_ms: None,
            captured: Instant::now(),
            discontinuity: false,
        }
    }

    #[test]
    fn frame_numbers_run_on_across_reopenings_and_mark_the_first_after_one() {
        let mut sequencer = Sequencer::default();
        let mut stamped = Vec::new();
        // Two openings of three frames each; every opening's own frames count from 0.
        for opening in 0..2 {
            if opening > 0 {
                sequencer.source_lost();
            }
            for _ in 0..3 {
                let mut f = frame();
                sequencer.stamp(&mut f);
                stamped.push((f.index, f.discontinuity));
            }
        }
        assert_eq!(
            stamped,
            [
                (0, false),
                (1, false),
                (2, false),
                (3, true),
                (4, false),
                (5, false)
            ]
        );
        assert_eq!(sequencer.frames(), 6);
    }

    #[test]
    fn the_backoff_doubles_to_five_seconds_restarts_with_frames_and_counts_retries() {
        let ms = Duration::from_millis;
        let mut forever = Backoff::new(None);
        let delays: Vec<_> = (0..7).filter_map(|_| forever.next_delay()).collect();
        assert_eq!(
            delays,
            [
                ms(250),
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(5000),
                ms(5000)
            ]
        );
        forever.reset();
        assert_eq!(forever.next_delay(), Some(ms(250)));
        assert_eq!(forever.reopenings(), 8);

        // Two retries over the run: frames flowing in between do not give more.
        let mut two = Backoff::new(Some(2));
        assert_eq!(two.next_delay(), Some(ms(250)));
        two.reset();
        assert_eq!(two.next_delay(), Some(ms(250)));
        assert_eq!(two.next_delay(), None);
        assert_eq!(two.reopenings(), 2);
    }
}
