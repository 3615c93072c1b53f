//! Learning-rate schedules, evaluated at a fractional epoch so the rate changes every step.

use serde::{Deserialize, Serialize};

/// How the learning rate decays after the warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decay {
    /// Multiply by `gamma` at each epoch of `milestones` (TSN/TSM: 0.1 at epochs 10 and 20).
    Step { milestones: Vec<u32>, gamma: f64 },
    /// Half a cosine from the base rate to zero at the last epoch.
    Cosine,
}

/// A schedule: linear warm-up from `base / 10`... to `base` over `warmup_epochs`, then `decay`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub base_lr: f64,
    pub warmup_epochs: f64,
    pub epochs: u32,
    pub decay: Decay,
}

impl Schedule {
    /// The rate at `epoch` (fractional: step / steps per epoch added).
    pub fn lr(&self, epoch: f64) -> f64 {
        let decayed = match &self.decay {
            Decay::Step { milestones, gamma } => {
                let passed = milestones
                    .iter()
                    .filter(|&&m| epoch >= f64::from(m))
                    .count();
                self.base_lr * gamma.powi(passed as i32)
            }
            Decay::Cosine => {
                let span = (f64::from(self.epochs) - self.warmup_epochs).max(1e-9);
                let t = ((epoch - self.warmup_epochs) / span).clamp(0.0, 1.0);
                0.5 * self.base_lr * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        if self.warmup_epochs > 0.0 && epoch < self.warmup_epochs {
            // From a tenth of the rate up to the full one.
            let t = epoch / self.warmup_epochs;
            decayed * (0.1 + 0.9 * t)
        } else {
            decayed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_with_warmup() {
        let s = Schedule {
            base_lr: 0.01,
            warmup_epochs: 2.0,
            epochs: 25,
            decay: Decay::Step {
                milestones: vec![10, 20],
                gamma: 0.1,
            },
        };
        assert!((s.lr(0.0) - 0.001).abs() < 1e-12);
        assert!((s.lr(1.0) - 0.0055).abs() < 1e-12);
        assert!((s.lr(2.0) - 0.01).abs() < 1e-12);
        assert!((s.lr(9.99) - 0.01).abs() < 1e-12);
        assert!((s.lr(10.0) - 0.001).abs() < 1e-12);
        assert!((s.lr(24.5) - 0.0001).abs() < 1e-12);
    }

    #[test]
    fn cosine_reaches_zero() {
        let s = Schedule {
            base_lr: 0.1,
            warmup_epochs: 0.0,
            epochs: 10,
            decay: Decay::Cosine,
        };
        assert!((s.lr(0.0) - 0.1).abs() < 1e-12);
        assert!((s.lr(5.0) - 0.05).abs() < 1e-12);
        assert!(s.lr(10.0).abs() < 1e-12);
    }
}
