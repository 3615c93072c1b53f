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
//! `stop()` or dropping the pipeline stops and joins both threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use serde::Serialize;

use crate::bench::Stats;
use crate::capture::{Capture, CaptureError, CaptureEvent, Frame, Source};
use crate::online::{FrameStride, Recognizer, Smoother, SmoothingOptions};
use crate::ring::{DropPolicy, Popped, Pushed, RingProducer, ring};

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
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Opens the source (a source that cannot start fails here, with its reason), then starts the
    /// capture and inference threads.
    pub fn start(recognizer: Recognizer, options: PipelineOptions) -> Result<Self, PipelineError> {
        let stop = Arc::new(AtomicBool::new(false));
        let capture = Capture::open(&options.source, options.realtime)?;
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
        let source_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let captured = Arc::new(AtomicU64::new(0));

        let capture = {
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
                    if let Err(message) = result {
                        if let Ok(mut slot) = source_error.lock() {
                            *slot = Some(message);
                        }
                    }
                    // Only now tell the consumer the source is done: the error is in place for its summary.
                    drop(producer);
                })?
        };
        let infer = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("shiftlive-infer".into())
                .spawn(move || {
                    let mut worker = Worker::new(recognizer, &options);
                    let mut consumer = consumer;
                    let started = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        match consumer.pop(Duration::from_millis(50)) {
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
                })?
        };
        Ok(Self {
            events,
            stop,
            threads: vec![capture, infer],
        })
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
        self.stop();
        // Unblock an inference thread waiting to send.
        while self.events.try_recv().is_ok() {}
        for thread in self.threads.drain(..) {
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

/// The inference side: recogniser, smoothing, stride and the figures for the summary.
struct Worker {
    recognizer: Recognizer,
    smoother: Smoother,
    stride: FrameStride,
    labels: Vec<String>,
    emit_logits: bool,
    keep_frames: bool,
    throttle: Option<Duration>,
    processed: u64,
    strided: u64,
    latencies: [Vec<f64>; 4],
    first_result: Option<Instant>,
    last_result: Option<Instant>,
}

impl Worker {
    fn new(recognizer: Recognizer, options: &PipelineOptions) -> Self {
        Self {
            recognizer,
            smoother: Smoother::new(options.smoothing.clone()),
            stride: FrameStride::new(options.stride),
            labels: options.labels.clone(),
            emit_logits: options.emit_logits,
            keep_frames: options.keep_frames,
            throttle: options.throttle,
            processed: 0,
            strided: 0,
            latencies: Default::default(),
            first_result: None,
            last_result: None,
        }
    }

    fn label(&self, class: usize) -> String {
        self.labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| format!("class_{class}"))
    }

    fn process(&mut self, frame: Frame, dropped: u64) -> Option<FrameResult> {
        let taken = Instant::now();
        if frame.discontinuity {
            self.recognizer.reset();
            self.smoother.reset();
            self.stride.reset();
        }
        if !self.stride.take() {
            self.strided += 1;
            return None;
        }
        let (logits, timing) = match self.recognizer.step(&frame.as_frame_ref()) {
            Ok((logits, timing)) => (logits.to_vec(), timing),
            Err(e) => {
                tracing::warn!("frame {} skipped: {e}", frame.index);
                return None;
            }
        };
        if let Some(extra) = self.throttle {
            std::thread::sleep(extra);
        }
        let prediction = self.smoother.push(&logits);
        let done = Instant::now();
        let latency = Latency {
            capture_to_ring: (taken - frame.captured).as_secs_f64() * 1e3,
            preprocess: timing.preprocess_ms,
            model: timing.model_ms + self.throttle.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            total: (done - frame.captured).as_secs_f64() * 1e3,
        };
        for (samples, value) in self.latencies.iter_mut().zip([
            latency.total,
            latency.capture_to_ring,
            latency.preprocess,
            latency.model,
        ]) {
            samples.push(value);
        }
        self.processed += 1;
        self.first_result.get_or_insert(done);
        self.last_result = Some(done);
        let top = prediction
            .top
            .iter()
            .map(|&(c, score)| Scored {
                label: self.label(c),
                score,
            })
            .collect();
        Some(FrameResult {
            frame: frame.index,
            pts_ms: frame.pts_ms,
            top,
            label: prediction.label.map(|c| self.label(c)),
            score: prediction.score,
            latency_ms: latency,
            dropped,
            logits: self.emit_logits.then_some(logits),
            image: self.keep_frames.then(|| Arc::new(frame)),
        })
    }

    fn summary(
        &self,
        source: String,
        captured: u64,
        dropped: u64,
        started: Instant,
        error: Option<String>,
    ) -> Summary {
        let span = match (self.first_result, self.last_result) {
            (Some(a), Some(b)) if self.processed > 1 => {
                (b - a).as_secs_f64() * (self.processed as f64) / (self.processed - 1) as f64
            }
            _ => started.elapsed().as_secs_f64(),
        };
        let [total, capture_to_ring, preprocess, model] = &self.latencies;
        Summary {
            source,
            frames_processed: self.processed,
            frames_captured: captured,
            frames_dropped: dropped,
            frames_strided: self.strided,
            fps: if span > 0.0 {
                self.processed as f64 / span
            } else {
                0.0
            },
            latency_ms: LatencySummary {
                total: Stats::of(total),
                capture_to_ring: Stats::of(capture_to_ring),
                preprocess: Stats::of(preprocess),
                model: Stats::of(model),
            },
            error,
        }
    }
}
