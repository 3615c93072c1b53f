//! The live pipeline: it owns the threads and the queues between them.
//!
//! ```text
//! GStreamer appsink -> [shiftlive-capture] -> frame ring (SPSC) -> [shiftlive-infer] -> events (bounded)
//!                                                                    Recognizer + Smoother       -> caller
//! ```
//!
//! Live sources use the `Latest` ring policy (drops counted), files `Backpressure` (nothing lost)
//! unless replayed in real time. A live source that fails is reopened with exponential backoff and
//! its next frame marks a discontinuity, at which the recogniser's cache and the smoother reset.
//! `stop()` or dropping the pipeline stops and joins both threads; `finish()` also hands the
//! recogniser back, so a window can switch sources without reloading the model.
//!
//! A window changes a running pipeline through `control()`: a bounded channel into the inference
//! thread, read between frames (pause, reset of the cache, smoothing, stride). A new source means a
//! new pipeline: `finish()` the old one and `try_start` with its recogniser.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::Serialize;

use crate::bench::Stats;
use crate::capture::{Capture, CaptureError, CaptureEvent, Frame, Source};
use crate::online::{Recognizer, SmoothingOptions};
use crate::ring::{DropPolicy, Popped, Pushed, RingProducer, ring};

mod worker;
use worker::Worker;

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub source: Source,
    /// Replay a file at its own pace (drops counted) instead of as fast as possible.
    pub realtime: bool,
    /// Stop after this many processed frames.
    pub max_frames: Option<u64>,
    /// Feed every k-th frame to the model.
    pub stride: u32,
    pub smoothing: SmoothingOptions,
    /// Class names, index = class.
    pub labels: Vec<String>,
    /// Add each frame's raw logits to its result.
    pub emit_logits: bool,
    /// Keep each frame's pixels in its result (for a window).
    pub keep_frames: bool,
    /// Extra time added to every model step, to study drops and latency under a slow model.
    pub throttle: Option<Duration>,
    /// Reopenings of a live source that fails, over the whole run (None: forever). The backoff
    /// restarts at 250 ms once frames flow again; the count does not.
    pub max_retries: Option<u32>,
}

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
    pub label: Option<String>,
    pub score: f32,
    pub latency_ms: Latency,
    /// Frames dropped so far.
    pub dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logits: Option<Vec<f32>>,
    #[serde(skip)]
    pub image: Option<Arc<Frame>>,
}

/// A change to a running pipeline, applied by the inference thread between two frames.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Stop feeding frames to the model (true) or go on (false). A paused file waits where it is
    /// (the ring fills and the capture thread waits: nothing is lost); a paused live source keeps
    /// running and its frames are counted as `frames_paused`. When a live source resumes, the cache
    /// and the smoothing reset: the time step the shift sees jumped by the length of the pause.
    Pause(bool),
    /// Empty the shift cache and the smoothing history, as at a cut in the video.
    Reset,
    /// New smoothing settings (window, threshold, hysteresis, top-k); the history is kept.
    Smoothing(SmoothingOptions),
    /// Feed every k-th frame to the model from now on.
    Stride(u32),
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
    /// Set when the source failed.
    pub error: Option<String>,
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
    /// A live source failed and is being reopened.
    Warning(String),
    /// The last event of a run.
    Summary(Box<Summary>),
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] CaptureError),
    #[error("cannot start a pipeline thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A running pipeline.
pub struct Pipeline {
    events: Receiver<Event>,
    controls: Sender<Control>,
    stop: Arc<AtomicBool>,
    capture: Option<JoinHandle<()>>,
    /// The inference thread gives the recogniser back when it ends.
    infer: Option<JoinHandle<Recognizer>>,
}

impl Pipeline {
    /// Opens the source (a source that cannot start fails here, with its reason), then starts the
    /// capture and inference threads.
    pub fn start(recognizer: Recognizer, options: PipelineOptions) -> Result<Self, PipelineError> {
        Self::try_start(recognizer, options).map_err(|(e, _)| e)
    }

    /// As `start`, but a failure hands the recogniser back (unless the inference thread could not
    /// be spawned), so the caller can try another source with the same model.
    // The large Err carries the model back; it happens once per failed start, never per frame.
    #[allow(clippy::result_large_err)]
    pub fn try_start(
        recognizer: Recognizer,
        options: PipelineOptions,
    ) -> Result<Self, (PipelineError, Option<Recognizer>)> {
        let stop = Arc::new(AtomicBool::new(false));
        let capture = match Capture::open(&options.source, options.realtime) {
            Ok(capture) => capture,
            Err(e) => return Err((e.into(), Some(recognizer))),
        };
        let live = capture.is_live();
        let policy = if live || options.realtime {
            DropPolicy::Latest
        } else {
            DropPolicy::Backpressure
        };
        tracing::info!(
            "{}: {} source, ring policy {policy:?}",
            options.source.describe(),
            if live { "live" } else { "non-live" }
        );
        let (producer, consumer) = ring::<Frame>(4, policy);
        let (tx, events) = bounded(256);
        let (controls, control_rx) = bounded::<Control>(16);
        let source_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let captured = Arc::new(AtomicU64::new(0));

        let spawned_capture = {
            let (stop, tx, options, source_error, captured) = (
                stop.clone(),
                tx.clone(),
                options.clone(),
                source_error.clone(),
                captured.clone(),
            );
            std::thread::Builder::new()
                .name("shiftlive-capture".into())
                .spawn(move || {
                    let mut producer = producer;
                    let result =
                        capture_loop(capture, &mut producer, &options, &stop, &tx, &captured);
                    if let Err(message) = result
                        && let Ok(mut slot) = source_error.lock()
                    {
                        *slot = Some(message);
                    }
                    // Only now tell the consumer the source is done: the error is in place for its summary.
                    drop(producer);
                })
        };
        let capture = match spawned_capture {
            Ok(handle) => handle,
            Err(e) => return Err((e.into(), Some(recognizer))),
        };
        let infer = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("shiftlive-infer".into())
                .spawn(move || {
                    let mut worker = Worker::new(recognizer, &options, live);
                    let mut consumer = consumer;
                    let started = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        for control in control_rx.try_iter() {
                            worker.control(control);
                        }
                        if worker.paused && !live {
                            // A paused file waits where it is: the capture thread waits on the full ring.
                            if let Ok(control) = control_rx.recv_timeout(Duration::from_millis(50))
                            {
                                worker.control(control);
                            }
                            continue;
                        }
                        match consumer.pop(Duration::from_millis(50)) {
                            Popped::Item(_) if worker.paused => worker.paused_frames += 1,
                            Popped::Item(frame) => {
                                let Some(result) =
                                    worker.process(frame, consumer.counters().dropped())
                                else {
                                    continue;
                                };
                                if tx.send(Event::Frame(Box::new(result))).is_err() {
                                    break;
                                }
                                if options.max_frames.is_some_and(|n| worker.processed >= n) {
                                    break;
                                }
                            }
                            Popped::Empty => {}
                            Popped::Finished => break,
                        }
                    }
                    // Hang up the ring first, so a capture thread waiting on a full ring stops.
                    let dropped = consumer.counters().dropped();
                    drop(consumer);
                    stop.store(true, Ordering::Relaxed);
                    let error = source_error.lock().ok().and_then(|mut e| e.take());
                    let summary = worker.summary(
                        options.source.describe(),
                        captured.load(Ordering::Relaxed),
                        dropped,
                        started,
                        error,
                    );
                    let _ = tx.send(Event::Summary(Box::new(summary)));
                    worker.recognizer
                })
        };
        let infer = match infer {
            Ok(handle) => handle,
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                let _ = capture.join();
                return Err((e.into(), None));
            }
        };
        Ok(Self {
            events,
            controls,
            stop,
            capture: Some(capture),
            infer: Some(infer),
        })
    }

    /// Sends a change to the inference thread, which applies it before its next frame. False when
    /// the pipeline has ended or 16 changes are already waiting.
    pub fn control(&self, control: Control) -> bool {
        self.controls.try_send(control).is_ok()
    }

    /// Stops the pipeline, joins its threads and returns the recogniser (None if the inference
    /// thread panicked).
    pub fn finish(mut self) -> Option<Recognizer> {
        self.shutdown();
        self.infer.take().and_then(|t| t.join().ok())
    }

    fn shutdown(&mut self) {
        self.stop();
        // Unblock an inference thread waiting to send.
        while self.events.try_recv().is_ok() {}
        if let Some(thread) = self.capture.take() {
            let _ = thread.join();
        }
    }

    /// The events, ending with one `Event::Summary`; the channel closes after it.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// A handle that stops the pipeline from anywhere (a Ctrl-C handler, a window).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
        if let Some(thread) = self.infer.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the source until it ends, the consumer hangs up or `stop` is set. A live source that fails
/// or ends after it has started is reopened with exponential backoff (its next frame marks a
/// discontinuity); the error of a source that cannot start, or of a file, is returned.
fn capture_loop(
    first: Capture,
    producer: &mut RingProducer<Frame>,
    options: &PipelineOptions,
    stop: &AtomicBool,
    events: &Sender<Event>,
    captured: &AtomicU64,
) -> Result<(), String> {
    let live = first.is_live();
    let mut opened = Some(Ok(first));
    let mut retries = 0u32;
    let mut backoff = Duration::from_millis(250);
    let mut started = false;
    let mut discontinuity = false;
    loop {
        let index_base = captured.load(Ordering::Relaxed);
        let capture = opened
            .take()
            .unwrap_or_else(|| Capture::open(&options.source, options.realtime));
        let lost = match capture {
            Err(e) if !started => return Err(e.to_string()),
            Err(e) => e.to_string(),
            Ok(mut capture) => loop {
                if stop.load(Ordering::Relaxed) || producer.is_closed() {
                    return Ok(());
                }
                // Short pulls on live sources: between them the held frame goes to a waiting consumer.
                let pull = if live {
                    Duration::from_millis(5)
                } else {
                    Duration::from_millis(100)
                };
                if producer.flush() == Pushed::Closed {
                    return Ok(());
                }
                match capture.next(pull) {
                    Ok(CaptureEvent::Frame(mut frame)) => {
                        started = true;
                        frame.index += index_base;
                        frame.discontinuity = std::mem::take(&mut discontinuity);
                        captured.fetch_add(1, Ordering::Relaxed);
                        if producer.push(frame) == Pushed::Closed {
                            return Ok(());
                        }
                        backoff = Duration::from_millis(250);
                    }
                    Ok(CaptureEvent::Pending) => {}
                    Ok(CaptureEvent::Eos) if !live => return Ok(()),
                    Ok(CaptureEvent::Eos) => break format!("{} ended", options.source.describe()),
                    Err(e) if !live || !started => return Err(e.to_string()),
                    Err(e) => break e.to_string(),
                }
            },
        };
        // A live source was lost: reopen it after a pause, unless the retries are used up.
        if options.max_retries.is_some_and(|m| retries >= m) {
            return Err(format!("{lost}; gave up after {retries} retries"));
        }
        let _ = events.try_send(Event::Warning(format!(
            "{lost}; reopening in {} ms",
            backoff.as_millis()
        )));
        discontinuity = true;
        let resume = Instant::now() + backoff;
        while Instant::now() < resume {
            if stop.load(Ordering::Relaxed) || producer.is_closed() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        retries += 1;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
