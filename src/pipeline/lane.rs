//! One stream's state on the inference thread, apart from the model: the frame gate (stride,
//! pause, resets), the smoothing, the frame period, and the figures for the summary. A frame is
//! admitted (or left out), the model runs elsewhere (alone or in a batch of streams), and its
//! logits come back here to become the stream's result.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::gate::FrameGate;
use super::{
    Control, FrameResult, Latency, LatencySummary, PipelineOptions, Scored, SourceError, Summary,
};
use crate::bench::Stats;
use crate::capture::Frame;
use crate::errors::chain;
use crate::online::{LabelState, MemoryStatus, Prediction, Smoother, SmoothingOptions, StepTiming};

/// What one frame gave.
pub enum Processed {
    Result(Box<FrameResult>),
    /// Not processed (the stride), but kept for a window to show.
    Picture(Arc<Frame>),
    Nothing,
}

/// What the model gave for one admitted frame.
pub struct Step {
    pub logits: Vec<f32>,
    pub timing: StepTiming,
    /// A model answering every N frames (ECO): where its memory stands.
    pub memory: Option<MemoryStatus>,
}

/// A frame the gate let through, on its way to the model.
pub struct Admitted {
    pub frame: Frame,
    /// Empty this stream's cache before the frame (the smoothing is reset already).
    pub reset: bool,
    /// When the inference thread took it from the ring.
    pub taken: Instant,
}

/// One stream's gate, smoothing and counters.
pub struct Lane {
    smoother: Smoother,
    gate: FrameGate,
    labels: Arc<[String]>,
    emit_logits: bool,
    keep_frames: bool,
    /// The stride now in force and the source's frame period (ms, from the timestamps), which
    /// turn a smoothing span in ms into frames.
    stride: u32,
    period_ms: Option<f64>,
    last_pts_ms: Option<f64>,
    processed: u64,
    strided: u64,
    /// Frames of a live source taken while paused.
    paused_frames: u64,
    /// total, capture_to_ring, preprocess, model (ms) of every counted frame.
    latencies: [Vec<f64>; 4],
    first_result: Option<Instant>,
    last_result: Option<Instant>,
    /// The model answers every N frames from its own running average (ECO's working memory):
    /// the smoothing was set to one frame without hysteresis when its first status came.
    memory_model: bool,
}

impl Lane {
    pub fn new(options: &PipelineOptions, live: bool) -> Self {
        Self {
            smoother: Smoother::new(options.smoothing.clone()),
            gate: FrameGate::new(options.stride, live),
            labels: options.labels.clone().into(),
            emit_logits: options.emit_logits,
            keep_frames: options.keep_frames,
            stride: options.stride.max(1),
            period_ms: None,
            last_pts_ms: None,
            processed: 0,
            strided: 0,
            paused_frames: 0,
            latencies: Default::default(),
            first_result: None,
            last_result: None,
            memory_model: false,
        }
    }

    pub fn is_paused(&self) -> bool {
        self.gate.is_paused()
    }

    /// Frames processed so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// A frame of a live source taken from the ring while paused: counted, not processed.
    pub fn skip_paused(&mut self) {
        self.paused_frames += 1;
    }

    fn label(&self, class: usize) -> String {
        self.labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| format!("class_{class}"))
    }

    pub fn control(&mut self, control: Control) {
        self.gate.control(&control);
        match control {
            Control::Smoothing(options) => self.smoother.set_options(options),
            Control::Stride(every) => {
                self.stride = every.max(1);
                self.update_interval();
            }
            Control::Pause(_) | Control::Reset => {}
        }
    }

    /// Learns the source's frame period: the smallest step between two consecutive timestamps
    /// (a dropped frame only makes a step longer).
    fn observe_pts(&mut self, pts_ms: Option<f64>) {
        if let (Some(last), Some(now)) = (self.last_pts_ms, pts_ms) {
            let step = now - last;
            if step > 0.0 && self.period_ms.is_none_or(|p| step < p - 1e-3) {
                self.period_ms = Some(step);
                self.update_interval();
            }
        }
        self.last_pts_ms = pts_ms;
    }

    fn update_interval(&mut self) {
        if let Some(period) = self.period_ms {
            self.smoother
                .set_frame_interval_ms(period * f64::from(self.stride));
        }
    }

    /// Runs one frame through the gate: `Ok` when it goes to the model (after a reset of the
    /// smoothing, and of the cache by the caller, when `reset`), else what to send instead.
    pub fn admit(&mut self, frame: Frame) -> Result<Admitted, Processed> {
        let taken = Instant::now();
        if frame.discontinuity {
            self.last_pts_ms = None;
        }
        self.observe_pts(frame.pts_ms);
        let admission = self.gate.admit(frame.discontinuity);
        if admission.reset {
            self.smoother.reset();
        }
        if !admission.take {
            self.strided += 1;
            return Err(self.picture(frame));
        }
        Ok(Admitted {
            frame,
            reset: admission.reset,
            taken,
        })
    }

    /// An admitted frame the model refused (a size it cannot take): a reset it carried passes to
    /// the next frame, whose caller then empties the cache, since this one never did.
    pub fn refuse(&mut self, admitted: Admitted) -> Processed {
        if admitted.reset {
            self.gate.control(&Control::Reset);
        }
        self.picture(admitted.frame)
    }

    /// A frame that gives no result: a picture when frames are kept (a window shows it).
    pub fn picture(&self, frame: Frame) -> Processed {
        if self.keep_frames {
            Processed::Picture(Arc::new(frame))
        } else {
            Processed::Nothing
        }
    }

    /// The model's logits for an admitted frame -> the stream's result. `extra` is time added to
    /// the model step (a throttle), `dropped` the stream's drops so far, `memory` the state of
    /// a model that answers every N frames (ECO; `Recognizer::memory_status`).
    pub fn complete(
        &mut self,
        admitted: Admitted,
        step: Step,
        extra: Option<Duration>,
        dropped: u64,
    ) -> Box<FrameResult> {
        let Admitted { frame, taken, .. } = admitted;
        let Step {
            logits,
            timing,
            memory,
        } = step;
        let prediction = self.predict(&logits, memory);
        let done = Instant::now();
        let latency = Latency {
            capture_to_ring: (taken - frame.captured).as_secs_f64() * 1e3,
            preprocess: timing.preprocess_ms,
            model: timing.model_ms + extra.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            total: (done - frame.captured).as_secs_f64() * 1e3,
        };
        if self.gate.counts_latency(frame.captured) {
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
        Box::new(FrameResult {
            frame: frame.index,
            pts_ms: frame.pts_ms,
            top,
            label: prediction.label.map(|c| self.label(c)),
            score: prediction.score,
            label_state: prediction.state,
            smooth_frames: prediction.window,
            latency_ms: latency,
            dropped,
            logits: self.emit_logits.then_some(logits),
            memory,
            image: self.keep_frames.then(|| Arc::new(frame)),
        })
    }

    /// The smoothed prediction after one more frame. A memory model's running average is its
    /// own smoothing: the first status sets the window to one frame without hysteresis (the
    /// threshold and top-k stay); until its first answer it is warming up (k of N frames).
    fn predict(&mut self, logits: &[f32], memory: Option<MemoryStatus>) -> Prediction {
        let Some(status) = memory else {
            return self.smoother.push(logits);
        };
        if !self.memory_model {
            self.memory_model = true;
            self.smoother.set_options(SmoothingOptions {
                window: 1,
                window_ms: None,
                hysteresis: false,
                ..self.smoother.options().clone()
            });
        }
        if status.updates > 0 {
            return self.smoother.push(logits);
        }
        Prediction {
            top: Vec::new(),
            label: None,
            score: 0.0,
            state: LabelState::WarmingUp {
                frames: status.position,
                of: status.every,
            },
            window: 1,
        }
    }

    /// The totals of the run. The fps spans the first to the last result (one interval per
    /// result), or the whole run when there were fewer than two.
    pub fn summary(
        &self,
        source: String,
        captured: u64,
        dropped: u64,
        started: Instant,
        error: Option<&SourceError>,
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
            error: error.map(|e| chain(e)),
            damaged: error.is_some_and(SourceError::is_damage),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Source;

    fn frame(index: u64, discontinuity: bool) -> Frame {
        Frame {
            data: vec![0; 3],
            width: 1,
            height: 1,
            index,
            pts_ms: None,
            captured: Instant::now(),
            discontinuity,
        }
    }

    fn reset_of(lane: &mut Lane, frame: Frame) -> bool {
        match lane.admit(frame) {
            Ok(admitted) => admitted.reset,
            Err(_) => panic!("a frame left out at stride 1"),
        }
    }

    #[test]
    fn a_refused_frame_passes_its_reset_to_the_next_one() {
        let mut lane = Lane::new(&PipelineOptions::new(Source::File("a.mp4".into())), true);
        assert!(!reset_of(&mut lane, frame(0, false)));
        // The first frame after a reopening is refused by the model: the cache was not emptied,
        // so the next frame must still reset it, once.
        let Ok(marked) = lane.admit(frame(1, true)) else {
            panic!("a frame left out at stride 1");
        };
        assert!(marked.reset);
        assert!(matches!(lane.refuse(marked), Processed::Nothing));
        assert!(reset_of(&mut lane, frame(2, false)), "the reset was lost");
        assert!(!reset_of(&mut lane, frame(3, false)));
        // A refused frame without a mark resets nothing.
        let Ok(plain) = lane.admit(frame(4, false)) else {
            panic!("a frame left out at stride 1");
        };
        lane.refuse(plain);
        assert!(!reset_of(&mut lane, frame(5, false)));
    }
}
