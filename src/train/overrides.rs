//! Changes to a training config, every field optional: the `train` command's flags (each field
//! is the flag of the same name) become one [`Overrides`], applied in one place,
//! [`TrainConfig::apply`]. A resumed run continues as it was configured: it takes only the
//! settings that do not change what it computes, and `--epochs` to extend it
//! ([`TrainConfig::apply_on_resume`]); the others are refused by name.

use std::path::PathBuf;

use super::TrainError;
use super::config::{Distill, FlipSpec, TrainConfig};
use super::schedule::Decay;
use crate::data::TestCrop;

/// Settings to change; `None` keeps the config's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// A preset's step milestones keep their place relative to the run's length.
    pub epochs: Option<u32>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub warmup: Option<f64>,
    /// The decay (`--milestones` with `--gamma`, or `--cosine`).
    pub decay: Option<Decay>,
    pub momentum: Option<f64>,
    pub nesterov: Option<bool>,
    pub weight_decay: Option<f64>,
    /// 0 turns clipping off.
    pub clip_grad: Option<f64>,
    pub dropout: Option<f64>,
    pub partial_bn: Option<bool>,
    pub sync_bn: Option<bool>,
    pub label_smoothing: Option<f64>,
    pub segments: Option<i64>,
    /// 0 for TSN segments.
    pub interval: Option<usize>,
    pub input_size: Option<i64>,
    pub scales: Option<Vec<f32>>,
    pub flip: Option<FlipSpec>,
    pub seed: Option<u64>,
    pub workers: Option<usize>,
    pub eval_every: Option<u32>,
    pub init: Option<PathBuf>,
    pub amp: Option<bool>,
    pub strict: Option<bool>,
    /// 0 turns intermediate checkpoints off.
    pub checkpoint_every: Option<usize>,
    pub cache_decoded: Option<bool>,
    pub live_stride: Option<u32>,
    pub test_clips: Option<usize>,
    pub test_crop: Option<TestCrop>,
    /// `--teacher` with its temperature and weight.
    pub distill: Option<Distill>,
}

/// What a resumed run may change: how it runs (threads, checkpoints, memory, unreadable videos),
/// not the numbers it computes. `--epochs` is handled on its own (it extends the run).
const RESUMABLE: &[&str] = &[
    "--workers",
    "--checkpoint-every",
    "--cache-decoded",
    "--strict",
];

/// Sets `slot` to `value` if given; true when that changed it.
fn put<T: PartialEq>(slot: &mut T, value: Option<T>) -> bool {
    match value {
        Some(v) if *slot != v => {
            *slot = v;
            true
        }
        _ => false,
    }
}

impl TrainConfig {
    /// Applies every given setting; returns the flags that changed the config, in the order
    /// of [`Overrides`].
    pub fn apply(&mut self, o: &Overrides) -> Vec<&'static str> {
        let epochs = self.set_epochs(o.epochs);
        let changes = [
            ("--epochs", epochs),
            (
                "--batch-size",
                put(&mut self.regimen.batch_size, o.batch_size),
            ),
            ("--lr", put(&mut self.regimen.schedule.base_lr, o.lr)),
            (
                "--warmup",
                put(&mut self.regimen.schedule.warmup_epochs, o.warmup),
            ),
            (
                "--milestones/--cosine",
                put(&mut self.regimen.schedule.decay, o.decay.clone()),
            ),
            (
                "--momentum",
                put(&mut self.regimen.sgd.momentum, o.momentum),
            ),
            (
                "--nesterov",
                put(&mut self.regimen.sgd.nesterov, o.nesterov),
            ),
            (
                "--weight-decay",
                put(&mut self.regimen.sgd.weight_decay, o.weight_decay),
            ),
            (
                "--clip-grad",
                put(
                    &mut self.regimen.clip_grad,
                    o.clip_grad.map(|v| (v > 0.0).then_some(v)),
                ),
            ),
            ("--dropout", put(&mut self.model.dropout, o.dropout)),
            (
                "--partial-bn",
                put(&mut self.regimen.partial_bn, o.partial_bn),
            ),
            ("--sync-bn", put(&mut self.regimen.sync_bn, o.sync_bn)),
            (
                "--label-smoothing",
                put(&mut self.regimen.label_smoothing, o.label_smoothing),
            ),
            ("--segments", put(&mut self.model.num_segments, o.segments)),
            (
                "--interval",
                put(
                    &mut self.regimen.interval,
                    o.interval.map(|v| (v > 0).then_some(v)),
                ),
            ),
            (
                "--input-size",
                put(&mut self.model.input_size, o.input_size),
            ),
            ("--scales", put(&mut self.regimen.scales, o.scales.clone())),
            ("--flip", put(&mut self.regimen.flip, o.flip)),
            ("--seed", put(&mut self.seed, o.seed)),
            ("--workers", put(&mut self.workers, o.workers)),
            ("--eval-every", put(&mut self.eval_every, o.eval_every)),
            ("--init", put(&mut self.init, o.init.clone().map(Some))),
            ("--amp", put(&mut self.regimen.amp, o.amp)),
            ("--strict", put(&mut self.strict, o.strict)),
            (
                "--checkpoint-every",
                put(
                    &mut self.checkpoint_every,
                    o.checkpoint_every.map(|v| (v > 0).then_some(v)),
                ),
            ),
            (
                "--cache-decoded",
                put(&mut self.regimen.cache_decoded, o.cache_decoded),
            ),
            (
                "--live-stride",
                put(&mut self.live_stride, o.live_stride.map(Some)),
            ),
            (
                "--test-clips",
                put(&mut self.regimen.test.clips, o.test_clips),
            ),
            ("--test-crop", put(&mut self.regimen.test.crop, o.test_crop)),
            (
                "--teacher",
                put(&mut self.distill, o.distill.clone().map(Some)),
            ),
        ];
        changes
            .into_iter()
            .filter_map(|(flag, changed)| changed.then_some(flag))
            .collect()
    }

    /// A new length for the run, with a step schedule's milestones moved to keep their place
    /// relative to it; true when it changed.
    fn set_epochs(&mut self, epochs: Option<u32>) -> bool {
        let Some(v) = epochs.filter(|v| *v != self.regimen.epochs) else {
            return false;
        };
        if let Decay::Step { milestones, .. } = &mut self.regimen.schedule.decay {
            let old = self.regimen.epochs.max(1);
            for m in milestones.iter_mut() {
                *m = ((u64::from(*m) * u64::from(v)).div_ceil(u64::from(old))) as u32;
            }
        }
        self.regimen.epochs = v;
        self.regimen.schedule.epochs = v;
        true
    }

    /// Applies the settings a resumed run may take and returns the flags that changed it;
    /// refuses, naming them, any that would change what the run computes. `--epochs` extends
    /// (or shortens) the run without moving the steps already taken: step milestones stay,
    /// a cosine schedule stretches to the new end.
    pub fn apply_on_resume(&mut self, o: &Overrides) -> Result<Vec<&'static str>, TrainError> {
        let mut probe = self.clone();
        let mut changed = probe.apply(&Overrides {
            epochs: None,
            ..o.clone()
        });
        let refused: Vec<&str> = changed
            .iter()
            .copied()
            .filter(|flag| !RESUMABLE.contains(flag))
            .collect();
        if !refused.is_empty() {
            return Err(TrainError::ResumeChanges {
                flags: refused.join(", "),
            });
        }
        *self = probe;
        if let Some(epochs) = o.epochs
            && epochs != self.regimen.epochs
        {
            self.regimen.epochs = epochs;
            self.regimen.schedule.epochs = epochs;
            changed.insert(0, "--epochs");
        }
        Ok(changed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Preset;
    use crate::train::DataSpec;

    fn tiny() -> TrainConfig {
        let data = DataSpec::Ucf101 {
            root: "data".into(),
            splits: None,
            split: 1,
            frames: false,
        };
        TrainConfig::preset(Preset::TsmR18TinyOnline, data)
    }

    #[test]
    fn apply_sets_the_given_fields_and_names_the_changes() {
        let mut c = tiny();
        let changed = c.apply(&Overrides {
            epochs: Some(80),
            batch_size: Some(8), // the recipe's already: no change
            clip_grad: Some(0.0),
            interval: Some(0),
            segments: Some(4),
            strict: Some(true),
            test_crop: Some(TestCrop::Three),
            ..Overrides::default()
        });
        assert_eq!(
            changed,
            [
                "--epochs",
                "--clip-grad",
                "--segments",
                "--interval",
                "--strict",
                "--test-crop"
            ]
        );
        // Milestone 30 of 40 epochs is at 60 of 80.
        assert_eq!(c.regimen.epochs, 80);
        assert_eq!(c.regimen.schedule.epochs, 80);
        assert!(
            matches!(&c.regimen.schedule.decay, Decay::Step { milestones, .. } if milestones == &[60])
        );
        assert_eq!((c.regimen.clip_grad, c.regimen.interval), (None, None));
        assert_eq!((c.model.num_segments, c.strict), (4, true));
        assert_eq!(c.regimen.test.crop, TestCrop::Three);
        assert!(c.apply(&Overrides::default()).is_empty());
    }

    #[test]
    fn a_resumed_run_refuses_changes_by_name_and_extends() {
        let saved = tiny();
        let mut c = saved.clone();
        let err = c
            .apply_on_resume(&Overrides {
                lr: Some(0.1),
                workers: Some(4),
                segments: Some(4),
                ..Overrides::default()
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("--lr, --segments"), "{err}");
        assert_eq!(c, saved, "a refused resume changes nothing");
        // Same values as saved are no change; workers and epochs apply.
        let changed = c
            .apply_on_resume(&Overrides {
                lr: Some(saved.regimen.schedule.base_lr),
                workers: Some(4),
                epochs: Some(60),
                ..Overrides::default()
            })
            .unwrap();
        assert_eq!(changed, ["--epochs", "--workers"]);
        assert_eq!(
            (c.regimen.epochs, c.regimen.schedule.epochs, c.workers),
            (60, 60, 4)
        );
        // The steps taken stay where they were.
        assert_eq!(c.regimen.schedule.decay, saved.regimen.schedule.decay);
    }
}
