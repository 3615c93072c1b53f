//! The batched inference thread: many sources, one model. Each tick takes the newest frame of every
//! stream that has one (each from its own ring, with its own drop count), runs them through the
//! gates, and advances the admitted ones in one batch; each stream owns its rows of the shift
//! cache, its smoothing, stride and resets.
//!
//! ```text
//! SourceStream 0 --pop--> Lane 0 (gate) --\                                   /--> Lane 0 -> events
//! SourceStream 1 --pop--> Lane 1 (gate) ---+-> Recognizer::step_streams(rows) -+--> Lane 1 -> events
//! ...                                     /    (only the rows with a frame)    \...
//! ```
//!
//! A stream without a new frame this tick keeps its rows as they are (its time step stays that of
//! its own frames); a discontinuity (a reopened live source) resets only that stream's rows; a
//! stream that ends or fails is closed (its capture thread joined) and reports its summary while
//! the others run on. Controls (a window's) apply between ticks, to one stream or all; a paused
//! file waits where it is, a paused live source's frames are taken and counted. The loop ends when every stream has ended, at the stop flag, or when nobody
//! listens to the events any more.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::batched::StreamControl;
use super::lane::{Admitted, Lane, Processed, Step};
use super::stream::SourceStream;
use super::{
    Event, SourceError, StreamSummary, StreamsEvent, StreamsSummary, StreamsTotals, Summary,
};
use crate::online::Recognizer;
use crate::ring::Popped;

/// How long the thread sleeps when no stream had a frame (any capture thread wakes it earlier).
const IDLE: Duration = Duration::from_millis(1);

/// One stream of the batch: its source (None once ended), gate and counters, and its capture
/// thread's warnings.
pub struct Member {
    pub name: String,
    pub stream: Option<SourceStream>,
    pub lane: Lane,
    pub warnings: Option<Receiver<Event>>,
    /// Set once the stream has ended (or could not start).
    pub summary: Option<Summary>,
}

impl Member {
    /// A stream whose source could not start: it ends before the first tick.
    pub fn failed(name: String, lane: Lane, error: &SourceError) -> Self {
        let summary = lane.summary(name.clone(), 0, 0, Instant::now(), Some(error));
        Self {
            name,
            stream: None,
            lane,
            warnings: None,
            summary: Some(summary),
        }
    }
}

/// What the batched thread hands back when it ends.
pub struct BatchInferred {
    pub recognizer: Recognizer,
    pub summary: StreamsSummary,
}

/// The batched inference thread's inputs and outputs.
pub struct BatchLoop {
    pub members: Vec<Member>,
    pub recognizer: Recognizer,
    pub events: Sender<StreamsEvent>,
    pub controls: Receiver<StreamControl>,
    pub stop: Arc<AtomicBool>,
    /// Per stream: it ends after this many processed frames.
    pub max_frames: Option<u64>,
    pub throttle: Option<Duration>,
}

/// The streams that gave a frame this tick, in stream order.
type Batch = Vec<(usize, Admitted)>;

impl BatchLoop {
    pub fn run(mut self) -> BatchInferred {
        let started = Instant::now();
        for (stream, member) in self.members.iter().enumerate() {
            if let Some(summary) = &member.summary {
                let event = Event::Summary(Box::new(summary.clone()));
                let _ = self.events.send(StreamsEvent::Stream { stream, event });
            }
        }
        let batches = self.ticks(started);
        // Stop the capture threads of sources still running, then join them through their streams.
        self.stop.store(true, Ordering::Relaxed);
        for stream in 0..self.members.len() {
            self.end(stream, started);
        }
        let summary = self.summary(started, batches);
        let _ = self
            .events
            .send(StreamsEvent::Summary(Box::new(summary.clone())));
        BatchInferred {
            recognizer: self.recognizer,
            summary,
        }
    }

    /// Sends one stream's event; false when nobody listens.
    fn send(&self, stream: usize, event: Event) -> bool {
        self.events
            .send(StreamsEvent::Stream { stream, event })
            .is_ok()
    }

    /// The ticks, until every stream has ended or the run stops; returns the batches run.
    fn ticks(&mut self, started: Instant) -> (u64, u64) {
        let (mut batches, mut rows) = (0u64, 0u64);
        while !self.stop.load(Ordering::Relaxed) {
            if !self.forward_warnings() {
                break;
            }
            self.apply_controls();
            let Some(batch) = self.gather(started) else {
                break;
            };
            if batch.is_empty() {
                std::thread::park_timeout(IDLE);
                continue;
            }
            batches += 1;
            rows += batch.len() as u64;
            if !self.step(batch, started) {
                break;
            }
        }
        (batches, rows)
    }

    fn forward_warnings(&self) -> bool {
        for (stream, member) in self.members.iter().enumerate() {
            let Some(warnings) = &member.warnings else {
                continue;
            };
            for event in warnings.try_iter() {
                if !self.send(stream, event) {
                    return false;
                }
            }
        }
        true
    }

    /// The controls waiting, each to its stream or to all.
    fn apply_controls(&mut self) {
        for (stream, control) in self.controls.try_iter() {
            match stream {
                Some(stream) => {
                    if let Some(member) = self.members.get_mut(stream) {
                        member.lane.control(control);
                    }
                }
                None => {
                    for member in &mut self.members {
                        member.lane.control(control.clone());
                    }
                }
            }
        }
    }

    /// Takes the newest frame of every running stream that has one, through its gate. None when
    /// no stream runs any more (or nobody listens).
    fn gather(&mut self, started: Instant) -> Option<Batch> {
        let mut batch = Vec::new();
        let mut running = false;
        for stream in 0..self.members.len() {
            let member = &mut self.members[stream];
            let Some(source) = &mut member.stream else {
                continue;
            };
            running = true;
            if member.lane.is_paused() && !source.is_live() {
                // A paused file waits where it is: its capture thread waits on the full ring.
                continue;
            }
            match source.pop(Duration::ZERO) {
                Popped::Item(_) if member.lane.is_paused() => member.lane.skip_paused(),
                Popped::Item(frame) => match member.lane.admit(frame) {
                    Ok(admitted) => match Recognizer::check_frame(&admitted.frame.as_frame_ref()) {
                        Ok(()) => batch.push((stream, admitted)),
                        Err(e) => {
                            tracing::warn!(
                                "{}: frame {} skipped: {e}",
                                member.name,
                                admitted.frame.index
                            );
                            // Its reset (if it carried one) passes to the stream's next frame.
                            if let Processed::Picture(picture) = member.lane.refuse(admitted)
                                && !self.send(stream, Event::Picture(picture))
                            {
                                return None;
                            }
                        }
                    },
                    Err(Processed::Picture(picture)) => {
                        if !self.send(stream, Event::Picture(picture)) {
                            return None;
                        }
                    }
                    Err(_) => {}
                },
                Popped::Empty => {}
                Popped::Finished => {
                    if !self.end(stream, started) {
                        return None;
                    }
                }
            }
        }
        running.then_some(batch)
    }

    /// One batched model step over the streams of `batch`, then each stream's result. False when
    /// nobody listens any more.
    fn step(&mut self, batch: Batch, started: Instant) -> bool {
        let streams: Vec<usize> = batch.iter().map(|(s, _)| *s).collect();
        let resets: Vec<usize> = batch
            .iter()
            .filter(|(_, a)| a.reset)
            .map(|(s, _)| *s)
            .collect();
        if !resets.is_empty() {
            self.recognizer.reset_streams(&resets);
        }
        let frames: Vec<_> = batch.iter().map(|(_, a)| a.frame.as_frame_ref()).collect();
        let (logits, timing) = match self.recognizer.step_streams(&frames, &streams) {
            Ok((logits, timing)) => (logits.to_vec(), timing),
            Err(e) => {
                tracing::warn!("a batch of {} frames skipped: {e}", streams.len());
                return true;
            }
        };
        drop(frames);
        if let Some(extra) = self.throttle {
            std::thread::sleep(extra);
        }
        let classes = logits.len() / streams.len();
        for ((stream, admitted), row) in batch.into_iter().zip(logits.chunks(classes)) {
            let member = &mut self.members[stream];
            let dropped = member.stream.as_ref().map_or(0, SourceStream::dropped);
            let step = Step {
                logits: row.to_vec(),
                timing,
                memory: self.recognizer.memory_status(stream),
            };
            let result = member.lane.complete(admitted, step, self.throttle, dropped);
            if !self.send(stream, Event::Frame(result)) {
                return false;
            }
            if self
                .max_frames
                .is_some_and(|n| self.members[stream].lane.processed() >= n)
                && !self.end(stream, started)
            {
                return false;
            }
        }
        true
    }

    /// Closes a stream that is still open (joining its capture thread) and sends its summary.
    /// False when nobody listens any more.
    fn end(&mut self, stream: usize, started: Instant) -> bool {
        let member = &mut self.members[stream];
        let Some(source) = member.stream.take() else {
            return true;
        };
        let dropped = source.dropped();
        let end = source.close();
        let summary = member.lane.summary(
            member.name.clone(),
            end.frames_captured,
            dropped,
            started,
            end.error.as_ref(),
        );
        member.summary = Some(summary.clone());
        self.send(stream, Event::Summary(Box::new(summary)))
    }

    fn summary(&self, started: Instant, (batches, rows): (u64, u64)) -> StreamsSummary {
        let streams: Vec<StreamSummary> = self
            .members
            .iter()
            .enumerate()
            .filter_map(|(stream, m)| {
                m.summary
                    .clone()
                    .map(|summary| StreamSummary { stream, summary })
            })
            .collect();
        let sum = |f: fn(&Summary) -> u64| streams.iter().map(|s| f(&s.summary)).sum::<u64>();
        let processed = sum(|s| s.frames_processed);
        let seconds = started.elapsed().as_secs_f64();
        let totals = StreamsTotals {
            streams: self.members.len(),
            failed: streams.iter().filter(|s| s.summary.error.is_some()).count(),
            frames_processed: processed,
            frames_captured: sum(|s| s.frames_captured),
            frames_dropped: sum(|s| s.frames_dropped),
            fps: if seconds > 0.0 {
                processed as f64 / seconds
            } else {
                0.0
            },
            batches,
            mean_batch: if batches > 0 {
                rows as f64 / batches as f64
            } else {
                0.0
            },
        };
        StreamsSummary { streams, totals }
    }
}
