//! The inference side of the pipeline: the recogniser, the smoothing and the stride, the
//! controls a window sends (applied between two frames), and the figures for the summary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::Stats;
use crate::capture::Frame;
use crate::online::{FrameStride, Recognizer, Smoother};

use super::{Control, FrameResult, Latency, LatencySummary, PipelineOptions, Scored, Summary};

/// The inference side: recogniser, smoothing, stride and the figures for the summary.
pub(super) struct Worker {
    pub(super) recognizer: Recognizer,
    smoother: Smoother,
    stride: FrameStride,
    labels: Vec<String>,
    emit_logits: bool,
    keep_frames: bool,
    throttle: Option<Duration>,
    pub(super) processed: u64,
    strided: u64,
    /// Frames of a live source taken while paused.
    pub(super) paused_frames: u64,
    pub(super) paused: bool,
    live: bool,
    /// Reset the cache before the next frame (a live source resumed after a pause).
    reset_next: bool,
    /// Frames captured before this instant waited out a pause: their latency is not counted.
    resumed_at: Option<Instant>,
    latencies: [Vec<f64>; 4],
    first_result: Option<Instant>,
    last_result: Option<Instant>,
}

impl Worker {
    pub(super) fn new(recognizer: Recognizer, options: &PipelineOptions, live: bool) -> Self {
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
            paused_frames: 0,
            paused: false,
            live,
            reset_next: false,
            resumed_at: None,
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

    pub(super) fn control(&mut self, control: Control) {
        match control {
            Control::Pause(paused) => {
                if self.paused && !paused {
                    self.resumed_at = Some(Instant::now());
                    self.reset_next = self.live;
                }
                self.paused = paused;
            }
            Control::Reset => self.reset_next = true,
            Control::Smoothing(options) => self.smoother.set_options(options),
            Control::Stride(every) => self.stride = FrameStride::new(every),
        }
    }

    pub(super) fn process(&mut self, frame: Frame, dropped: u64) -> Option<FrameResult> {
        let taken = Instant::now();
        if frame.discontinuity || std::mem::take(&mut self.reset_next) {
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
        if self.resumed_at.is_none_or(|t| frame.captured >= t) {
            for (samples, value) in self.latencies.iter_mut().zip([
                latency.total,
                latency.capture_to_ring,
                latency.preprocess,
                latency.model,
            ]) {
                samples.push(value);
            }
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

    pub(super) fn summary(
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
            frames_paused: self.paused_frames,
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
