//! Which frames reach the model, and when its past is thrown away: the stride picks every k-th
//! frame, counted from the start or from the last reset; a reset (a discontinuity in the source,
//! a `Reset` control, a live source resuming after a pause) empties the shift cache and the
//! smoothing before the next frame. Kept apart from the model so it is tested without one.

use std::time::Instant;

use super::Control;
use crate::online::FrameStride;

/// What to do with one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// Empty the cache and the smoothing first.
    pub reset: bool,
    /// Feed it to the model (false: left out by the stride).
    pub take: bool,
}

/// The stride, the pause and the pending reset of one stream.
#[derive(Debug)]
pub struct FrameGate {
    stride: FrameStride,
    paused: bool,
    live: bool,
    /// Reset before the next frame (a control, or a live source resumed after a pause).
    reset_next: bool,
    /// Frames captured before this instant waited out a pause: their latency is not counted.
    resumed_at: Option<Instant>,
}

impl FrameGate {
    pub fn new(stride: u32, live: bool) -> Self {
        Self {
            stride: FrameStride::new(stride),
            paused: false,
            live,
            reset_next: false,
            resumed_at: None,
        }
    }

    /// Applies a control's part that concerns the frames (pause, reset, stride).
    pub fn control(&mut self, control: &Control) {
        match control {
            Control::Pause(paused) => {
                if self.paused && !paused {
                    self.resumed_at = Some(Instant::now());
                    // A live source ran on while paused: the time step the shift sees jumped.
                    self.reset_next |= self.live;
                }
                self.paused = *paused;
            }
            Control::Reset => self.reset_next = true,
            Control::Stride(every) => self.stride = FrameStride::new(*every),
            Control::Smoothing(_) => {}
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Decides for the next frame; a reset restarts the stride's count at this frame.
    pub fn admit(&mut self, discontinuity: bool) -> Admission {
        let reset = discontinuity || std::mem::take(&mut self.reset_next);
        if reset {
            self.stride.reset();
        }
        Admission {
            reset,
            take: self.stride.take(),
        }
    }

    /// Whether a frame captured at `captured` counts in the latency figures (it did not wait out
    /// a pause).
    pub fn counts_latency(&self, captured: Instant) -> bool {
        self.resumed_at.is_none_or(|t| captured >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of `n` the gate takes, given the frames marked discontinuous.
    fn taken(gate: &mut FrameGate, n: u64, discontinuous: &[u64]) -> Vec<u64> {
        (0..n)
            .filter(|i| gate.admit(discontinuous.contains(i)).take)
            .collect()
    }

    #[test]
    fn the_stride_takes_every_kth_frame() {
        assert_eq!(taken(&mut FrameGate::new(3, false), 10, &[]), [0, 3, 6, 9]);
        assert_eq!(taken(&mut FrameGate::new(1, false), 4, &[]), [0, 1, 2, 3]);
        // A stride of 0 means every frame, as 1 does.
        assert_eq!(taken(&mut FrameGate::new(0, false), 3, &[]), [0, 1, 2]);
    }

    #[test]
    fn a_discontinuity_resets_and_restarts_the_stride_count() {
        let mut gate = FrameGate::new(3, true);
        assert_eq!(taken(&mut gate, 10, &[5]), [0, 3, 5, 8]);
        let mut gate = FrameGate::new(2, true);
        assert_eq!(
            gate.admit(true),
            Admission {
                reset: true,
                take: true
            }
        );
        assert_eq!(
            gate.admit(false),
            Admission {
                reset: false,
                take: false
            }
        );
    }

    #[test]
    fn controls_change_the_stride_and_reset_before_the_next_frame() {
        let mut gate = FrameGate::new(1, false);
        gate.admit(false);
        gate.control(&Control::Stride(2));
        assert_eq!(taken(&mut gate, 4, &[]), [0, 2]);
        gate.control(&Control::Reset);
        assert!(gate.admit(false).reset);
        assert!(!gate.admit(false).reset, "a reset applies once");
    }

    #[test]
    fn a_live_source_resets_when_it_resumes_a_file_does_not() {
        for (live, reset) in [(true, true), (false, false)] {
            let mut gate = FrameGate::new(1, live);
            gate.control(&Control::Pause(true));
            assert!(gate.is_paused());
            let before = Instant::now();
            gate.control(&Control::Pause(false));
            assert!(!gate.is_paused());
            assert_eq!(gate.admit(false).reset, reset, "live {live}");
            assert!(!gate.counts_latency(before - std::time::Duration::from_millis(1)));
        }
    }
}
