//! The handle of a batched run: several sources, one recogniser of as many streams, one inference
//! thread ([`super::batch`]). It opens every source (one that cannot start becomes a stream that
//! reports its error while the others run), starts their capture threads and the batched thread,
//! and stops and joins them. A window changes a running batch through `control`: one stream (its
//! reset) or all of them (pause, smoothing, stride), applied by the batched thread between ticks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::batch::{BatchInferred, BatchLoop, Member};
use super::handle::open_stream;
use super::lane::Lane;
use super::{Control, PipelineError, PipelineOptions, SourceError, StreamsEvent};
use crate::capture::Source;
use crate::online::Recognizer;

/// Events of each stream waiting for the caller: as a single pipeline's, per stream.
const EVENTS_PER_STREAM: usize = 256;
/// Warnings of one capture thread waiting for the batched thread.
const WARNINGS: usize = 16;
/// Controls waiting for the batched thread.
const CONTROLS: usize = 16;

/// A change to a running batch: for one stream (`Some(index)`) or for all (`None`).
pub type StreamControl = (Option<usize>, Control);

/// One source of a batched run and the name its results carry.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSource {
    pub name: String,
    pub source: Source,
}

impl StreamSource {
    /// A source named as `Source::describe` names it.
    pub fn unnamed(source: Source) -> Self {
        Self {
            name: source.describe(),
            source,
        }
    }
}

/// A running batched pipeline.
pub struct BatchPipeline {
    events: Receiver<StreamsEvent>,
    controls: Sender<StreamControl>,
    stop: Arc<AtomicBool>,
    /// Mirrors a pause of all streams for the capture threads (a file replayed in real time is
    /// held).
    hold: Arc<AtomicBool>,
    infer: Option<JoinHandle<BatchInferred>>,
}

impl BatchPipeline {
    /// Opens every source with `options` (its `source` is replaced by each of `sources`; the
    /// stride, smoothing, labels, pace and `max_frames` apply to each stream), then starts the
    /// batched thread. The recogniser must have been made for `sources.len()` streams.
    pub fn start(
        recognizer: Recognizer,
        options: &PipelineOptions,
        sources: Vec<StreamSource>,
    ) -> Result<Self, PipelineError> {
        let streams = recognizer.options().streams;
        if sources.is_empty() || sources.len() != streams {
            return Err(PipelineError::Streams {
                sources: sources.len(),
                streams,
            });
        }
        let (tx, events) = bounded(EVENTS_PER_STREAM * sources.len());
        let (controls, control_rx) = bounded::<StreamControl>(CONTROLS);
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let mut members = Vec::with_capacity(sources.len());
        for StreamSource { name, source } in sources {
            let options = PipelineOptions {
                source,
                ..options.clone()
            };
            let (warn_tx, warnings) = bounded(WARNINGS);
            let member = match open_stream(&options, stop.clone(), hold.clone(), warn_tx) {
                Ok(stream) => Member {
                    name,
                    lane: Lane::new(&options, stream.is_live()),
                    stream: Some(stream),
                    warnings: Some(warnings),
                    summary: None,
                },
                Err(PipelineError::Source(e)) => {
                    Member::failed(name, Lane::new(&options, false), &SourceError::Capture(e))
                }
                Err(e) => return Err(e),
            };
            members.push(member);
        }
        let batch_loop = BatchLoop {
            members,
            recognizer,
            events: tx,
            controls: control_rx,
            stop: stop.clone(),
            max_frames: options.max_frames,
            throttle: options.throttle,
        };
        let infer = std::thread::Builder::new()
            .name("shiftlive-infer".into())
            .spawn(move || batch_loop.run())?;
        Ok(Self {
            events,
            controls,
            stop,
            hold,
            infer: Some(infer),
        })
    }

    /// Sends a change to the batched thread, which applies it before its next tick: to stream
    /// `stream`, or to every stream with None (a pause of all also holds a file replayed in real
    /// time). False when the run has ended or 16 changes are already waiting.
    pub fn control(&self, stream: Option<usize>, control: Control) -> bool {
        if let (None, Control::Pause(paused)) = (stream, &control) {
            self.hold.store(*paused, Ordering::Relaxed);
        }
        self.controls.try_send((stream, control)).is_ok()
    }

    /// The events of every stream, ending with one `StreamsEvent::Summary`; the channel closes
    /// after it.
    pub fn events(&self) -> &Receiver<StreamsEvent> {
        &self.events
    }

    /// A handle that stops every stream from anywhere (a Ctrl-C handler).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the run, joins its threads and returns the recogniser with the summary (None if the
    /// inference thread panicked).
    pub fn join(mut self) -> Option<BatchInferred> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<BatchInferred> {
        self.stop();
        // Unblock a thread waiting to send: after the stop it sends the streams' summaries and
        // the last summary, which fit once drained.
        let infer = self.infer.take()?;
        while !infer.is_finished() {
            while self.events.try_recv().is_ok() {}
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        infer.join().ok()
    }
}

impl Drop for BatchPipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}
