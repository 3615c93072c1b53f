//! Training recipes: the optimiser, schedule, augmentation and test settings a preset trains
//! with, each written out whole from its source (the TSN/TSM papers, GluonCV, PaddleMVF, and the
//! small recipe of the synthetic motion set). A preset picks one recipe ([`Preset::spec`]);
//! [`TrainConfig::preset`] puts the two together.

use serde::Serialize;

use super::config::{DataSpec, FlipSpec, Regimen, TrainConfig};
use super::optim::SgdOptions;
use super::protocol::TestViews;
use super::schedule::{Decay, Schedule};
use crate::data::TestCrop;
use crate::model::{ModelConfig, Preset, RecipeName};

/// How a preset trains. The fields a run does not take from its recipe (seed, workers,
/// validation interval, checkpoints, data) start at [`TrainConfig::from_recipe`]'s defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    pub name: RecipeName,
    /// What a run takes over from the recipe.
    #[serde(flatten)]
    pub regimen: Regimen,
    /// Frames per clip, replacing the model preset's; None keeps it.
    pub segments: Option<i64>,
    /// Dropout before the classifier, replacing the model preset's.
    pub dropout: f64,
    /// Whether the recipe starts from pretrained weights (`--init`) rather than from scratch.
    pub wants_init: bool,
}

/// A step schedule without warm-up: `base_lr`, times `gamma` at each milestone.
fn steps(base_lr: f64, epochs: u32, milestones: &[u32]) -> Schedule {
    Schedule {
        base_lr,
        warmup_epochs: 0.0,
        epochs,
        decay: Decay::Step {
            milestones: milestones.to_vec(),
            gamma: 0.1,
        },
    }
}

impl Recipe {
    /// The settings of a named recipe.
    pub fn of(name: RecipeName) -> Self {
        match name {
            RecipeName::Ucf101Finetune => Self::ucf101_finetune(),
            RecipeName::GluoncvVgg => Self::gluoncv_vgg(),
            RecipeName::PaddleMvf => Self::paddle_mvf(),
            RecipeName::MotionTiny => Self::motion_tiny(),
        }
    }

    /// TSN/TSM fine-tuning on UCF-101 (R50, 224 px, from `--init` weights): lr 0.001 with 5x on
    /// the classifier, divided by 10 at epochs 10 and 20 of 25, batch 64, weight decay 5e-4,
    /// clip 20, dropout 0.8, partial BN, TSN's multi-scale crops, flips.
    pub fn ucf101_finetune() -> Self {
        Self {
            name: RecipeName::Ucf101Finetune,
            regimen: Regimen {
                epochs: 25,
                batch_size: 64,
                schedule: steps(0.001, 25, &[10, 20]),
                sgd: SgdOptions {
                    momentum: 0.9,
                    nesterov: false,
                    weight_decay: 5e-4,
                    classifier_lr_mult: 5.0,
                },
                clip_grad: Some(20.0),
                partial_bn: true,
                sync_bn: false,
                label_smoothing: 0.0,
                scales: vec![1.0, 0.875, 0.75, 0.66],
                flip: FlipSpec::On,
                interval: None,
                amp: true,
                cache_decoded: false,
                test: TestViews::default(),
            },
            segments: None,
            dropout: 0.8,
            wants_init: true,
        }
    }

    /// GluonCV's `vgg16_ucf101` with TSN (3 segments): lr 0.001 divided by 10 at epochs 30 and
    /// 60 of 80, momentum 0.9, weight decay 5e-4, no gradient clipping, dropout 0.9 after fc6 and
    /// fc7, no extra learning rate for the classifier; VGG has no BatchNorm.
    pub fn gluoncv_vgg() -> Self {
        let base = Self::ucf101_finetune();
        Self {
            name: RecipeName::GluoncvVgg,
            regimen: Regimen {
                epochs: 80,
                schedule: steps(0.001, 80, &[30, 60]),
                sgd: SgdOptions {
                    classifier_lr_mult: 1.0,
                    ..base.regimen.sgd
                },
                clip_grad: None,
                partial_bn: false,
                ..base.regimen
            },
            dropout: 0.9,
            ..base
        }
    }

    /// PaddleMVF on UCF-101: 16 frames x 4, batch 16, 50 epochs, cosine 0.00125 with 5 warm-up
    /// epochs, Nesterov, clip 40, dropout 0.5; tested in 10 clips x ThreeCrop.
    pub fn paddle_mvf() -> Self {
        let base = Self::ucf101_finetune();
        Self {
            name: RecipeName::PaddleMvf,
            regimen: Regimen {
                epochs: 50,
                batch_size: 16,
                schedule: Schedule {
                    base_lr: 0.00125,
                    warmup_epochs: 5.0,
                    epochs: 50,
                    decay: Decay::Cosine,
                },
                sgd: SgdOptions {
                    nesterov: true,
                    classifier_lr_mult: 1.0,
                    ..base.regimen.sgd
                },
                clip_grad: Some(40.0),
                partial_bn: false,
                interval: Some(4),
                test: TestViews {
                    clips: 10,
                    crop: TestCrop::Three,
                },
                ..base.regimen
            },
            dropout: 0.5,
            ..base
        }
    }

    /// From scratch on the synthetic motion set (PyTorch's default initialisation): 9 direction
    /// classes, so flips swap labels; no scale jitter (it would change the apparent speed), no
    /// dropout, no partial BN (nothing pretrained to keep); dense clips of 8 frames 4 apart, so
    /// every step between frames is the same motion (with TSN's random frame per segment the
    /// spacing varies from 1 to 7 frames and the networks stayed at chance for 20+ epochs with
    /// some seeds), and the online model runs live at stride 4. The networks sit at chance for
    /// some epochs, then learn fast. Tested on one centre-cropped clip, as the motion benchmark
    /// reports every model (MVF included).
    pub fn motion_tiny() -> Self {
        Self {
            name: RecipeName::MotionTiny,
            regimen: Regimen {
                epochs: 40,
                batch_size: 8,
                schedule: steps(0.003, 40, &[30]),
                sgd: SgdOptions {
                    momentum: 0.9,
                    nesterov: true,
                    weight_decay: 1e-4,
                    classifier_lr_mult: 1.0,
                },
                clip_grad: Some(20.0),
                partial_bn: false,
                sync_bn: false,
                label_smoothing: 0.0,
                scales: vec![1.0],
                flip: FlipSpec::Mirror,
                interval: Some(4),
                amp: false,
                cache_decoded: true,
                test: TestViews::default(),
            },
            segments: Some(8),
            dropout: 0.0,
            wants_init: false,
        }
    }

    /// The model as this recipe trains it (its dropout and frames per clip).
    pub fn model(&self, mut model: ModelConfig) -> ModelConfig {
        model.dropout = self.dropout;
        if let Some(segments) = self.segments {
            model.num_segments = segments;
        }
        model
    }

    /// One line for `shiftlive presets`: schedule, length, batch, frames, clipping, dropout,
    /// partial BN, flip, test views, and whether it starts from `--init` weights, for `model`
    /// (before this recipe).
    pub fn describe(&self, model: &ModelConfig) -> String {
        let r = &self.regimen;
        let s = &r.schedule;
        let decay = match &s.decay {
            Decay::Step { milestones, gamma } => format!("x{gamma} at epochs {milestones:?}"),
            Decay::Cosine => "cosine".to_string(),
        };
        let warmup = if s.warmup_epochs > 0.0 {
            format!(" after {} warm-up epochs", s.warmup_epochs)
        } else {
            String::new()
        };
        let frames = self.segments.unwrap_or(model.num_segments);
        let clip = match r.interval {
            Some(interval) => format!("{frames} frames x {interval}"),
            None => format!("{frames} segments"),
        };
        format!(
            "{:?}: lr {} {decay}{warmup}, {} epochs, batch {}, {clip}, clip {}, dropout {}, \
             partial BN {}, flip {:?}, tested {} clip(s) x {:?}, {}",
            self.name,
            s.base_lr,
            r.epochs,
            r.batch_size,
            r.clip_grad.map_or("off".to_string(), |c| c.to_string()),
            self.dropout,
            if r.partial_bn { "on" } else { "off" },
            r.flip,
            r.test.clips,
            r.test.crop,
            if self.wants_init {
                "from --init weights"
            } else {
                "from scratch"
            }
        )
    }
}

impl TrainConfig {
    /// A preset's model trained with its recipe on `data`.
    pub fn preset(preset: Preset, data: DataSpec) -> Self {
        let (model, recipe) = preset.spec();
        Self::from_recipe(model, &Recipe::of(recipe), data)
    }

    /// `model` trained with `recipe` on `data`; seed 0, 2 data workers, validation every
    /// epoch, no intermediate checkpoints.
    pub fn from_recipe(model: ModelConfig, recipe: &Recipe, data: DataSpec) -> Self {
        Self {
            model: recipe.model(model),
            data,
            regimen: recipe.regimen.clone(),
            seed: 0,
            workers: 2,
            eval_every: 1,
            init: None,
            strict: false,
            checkpoint_every: None,
            live_stride: None,
            distill: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    type Row = (
        &'static str,
        u32,
        usize,
        f64,
        Option<f64>,
        f64,
        i64,
        Option<usize>,
        bool,
        usize,
        f64,
    );

    /// A few fields of every preset's resolved config, as the recipes gave them before they were
    /// written out one by one (`mvf_r18_tiny` excepted: its test protocol is now the motion
    /// benchmark's one clip, centre crop, no longer PaddleMVF's 10 clips x three).
    #[test]
    fn every_preset_resolves_to_its_recipe() {
        // (preset, epochs, batch, base lr, clip, dropout, frames, interval, partial BN, test
        // clips, classifier lr x)
        #[rustfmt::skip]
        let want: &[Row] = &[
            ("tsn_r50", 25, 64, 0.001, Some(20.0), 0.8, 8, None, true, 1, 5.0),
            ("tsm_r50", 25, 64, 0.001, Some(20.0), 0.8, 8, None, true, 1, 5.0),
            ("tsm_r50_online", 25, 64, 0.001, Some(20.0), 0.8, 8, None, true, 1, 5.0),
            ("mvf_r50", 50, 16, 0.00125, Some(40.0), 0.5, 16, Some(4), false, 10, 1.0),
            ("tsm_mobilenet_v2", 25, 64, 0.001, Some(20.0), 0.8, 8, None, true, 1, 5.0),
            ("tsm_mobilenet_v2_online", 25, 64, 0.001, Some(20.0), 0.8, 8, None, true, 1, 5.0),
            ("tsn_vgg16", 80, 64, 0.001, None, 0.9, 3, None, false, 1, 1.0),
            ("tsn_r50_vd", 25, 64, 0.001, Some(20.0), 0.8, 8, None, true, 1, 5.0),
            ("tsm_r50_vd", 25, 64, 0.001, Some(20.0), 0.8, 8, None, true, 1, 5.0),
            ("tsn_r18_tiny", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("tsm_r18_tiny", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("tsm_r18_tiny_online", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("mvf_r18_tiny", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("tsm_mobilenet_v2_tiny_online", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("tsn_vgg16_tiny", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("tsm_r50_vd_tiny", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("tsm_r50_vd_tiny_online", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("eco_lite", 25, 64, 0.001, Some(20.0), 0.8, 16, None, true, 1, 5.0),
            ("eco_full", 25, 64, 0.001, Some(20.0), 0.8, 16, None, true, 1, 5.0),
            ("eco_lite_tiny", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
            ("eco_full_tiny", 40, 8, 0.003, Some(20.0), 0.0, 8, Some(4), false, 1, 1.0),
        ];
        assert_eq!(want.len(), Preset::all().len());
        let data = DataSpec::Ucf101 {
            root: "UCF-101".into(),
            splits: None,
            split: 1,
            frames: false,
        };
        for &(name, epochs, batch, lr, clip, dropout, frames, interval, pbn, clips, cls) in want {
            let c = TrainConfig::preset(name.parse().unwrap(), data.clone());
            c.validate().unwrap();
            assert_eq!(c.model.name, name);
            let got = (
                c.regimen.epochs,
                c.regimen.batch_size,
                c.regimen.schedule.base_lr,
                c.regimen.clip_grad,
            );
            assert_eq!(got, (epochs, batch, lr, clip), "{name}");
            assert_eq!(c.regimen.schedule.epochs, epochs, "{name}");
            let got = (
                c.model.dropout,
                c.model.num_segments,
                c.regimen.interval,
                c.regimen.partial_bn,
            );
            assert_eq!(got, (dropout, frames, interval, pbn), "{name}");
            assert_eq!(
                (c.regimen.test.clips, c.regimen.sgd.classifier_lr_mult),
                (clips, cls),
                "{name}"
            );
            let tiny = name.contains("tiny");
            assert_eq!(
                c.regimen.flip,
                if tiny { FlipSpec::Mirror } else { FlipSpec::On }
            );
            assert_eq!(
                (c.regimen.amp, c.regimen.cache_decoded),
                (!tiny, tiny),
                "{name}"
            );
        }
    }
}
