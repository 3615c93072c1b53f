//! A training run's configuration: the model, the data, the optimiser and schedule, augmentation
//! and the test protocol, written to `OUT/config.json` and read back by `--config` and `--resume`.
//! [`TrainConfig::validate`] checks what a hand-written file could get wrong; presets build one
//! from a recipe (`recipe.rs`), flags change one through `Overrides` (`overrides.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::optim::SgdOptions;
use super::protocol::TestViews;
use super::schedule::Schedule;
use crate::data::{Dataset, DecodeCache, Flip, Layout, LoaderOptions, Mode, Sampling, Subset};
use crate::model::ModelConfig;
use crate::preprocess::Transform;

/// Where the videos and their labels come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum DataSpec {
    /// UCF-101 as released: `root/<Class>/<video>.avi` (or `root/rawframes/...` with `frames`) and
    /// the split files in `splits` (default `root/ucfTrainTestlist`).
    Ucf101 {
        root: PathBuf,
        #[serde(default)]
        splits: Option<PathBuf>,
        split: u8,
        #[serde(default)]
        frames: bool,
    },
    /// Any data set as two lists of `relative/path label` lines.
    List {
        root: PathBuf,
        train: PathBuf,
        val: PathBuf,
        #[serde(default)]
        classes: Option<PathBuf>,
    },
}

impl DataSpec {
    /// The training and validation (test split) sets.
    pub fn datasets(&self) -> Result<(Dataset, Dataset), TrainError> {
        match self {
            Self::Ucf101 {
                root,
                splits,
                split,
                frames,
            } => {
                let splits = splits
                    .clone()
                    .unwrap_or_else(|| root.join("ucfTrainTestlist"));
                let layout = if *frames {
                    Layout::Frames
                } else {
                    Layout::Video
                };
                let train = Dataset::ucf101(root, &splits, *split, Subset::Train, layout)?;
                let val = Dataset::ucf101(root, &splits, *split, Subset::Test, layout)?;
                Ok((train, val))
            }
            Self::List {
                root,
                train,
                val,
                classes,
            } => Ok((
                Dataset::from_list(train, root, classes.as_deref())?,
                Dataset::from_list(val, root, classes.as_deref())?,
            )),
        }
    }

    /// The training and validation sets, checked to make a run. Lists without `--classes`
    /// have the classes 0..=largest label of the training list; a validation label beyond
    /// them is named with its line.
    pub fn training_sets(&self) -> Result<(Dataset, Dataset), TrainError> {
        let (train, mut val) = self.datasets()?;
        if let Self::List {
            root,
            val: list,
            classes: None,
            ..
        } = self
        {
            let k = train.classes.len();
            if let Some(item) = val.items.iter().find(|i| i.label >= k) {
                let line = std::fs::read_to_string(list).ok().and_then(|text| {
                    let mut lines = text.lines().enumerate();
                    lines
                        .find(|(_, l)| {
                            l.split_whitespace().next().map(|r| root.join(r))
                                == Some(item.path.clone())
                        })
                        .map(|(n, _)| n + 1)
                });
                return Err(TrainError::Config(format!(
                    "{}{}: label {} is out of range 0..={} for the {k} classes of the training \
                     list (labels are 0-based; give --classes to name them)",
                    list.display(),
                    line.map_or(String::new(), |n| format!(" line {n}")),
                    item.label,
                    k - 1
                )));
            }
            val.classes = train.classes.clone();
        }
        if train.items.is_empty() {
            return Err(TrainError::Config(format!(
                "the training set {} is empty",
                train.source
            )));
        }
        if val.classes != train.classes {
            return Err(TrainError::Config(format!(
                "the validation set {} has other classes than the training set {}",
                val.source, train.source
            )));
        }
        Ok((train, val))
    }
}

/// Horizontal flips in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FlipSpec {
    Off,
    /// Flip half the clips, labels unchanged (classes without a direction).
    On,
    /// Flip half the clips and swap the labels of mirrored classes, paired by name
    /// (Left/Right, Clockwise/Anticlockwise).
    Mirror,
}

impl FlipSpec {
    /// The loader's flip for a data set of these classes.
    pub fn flip(self, classes: &[String]) -> Flip {
        match self {
            Self::Off => Flip::Off,
            Self::On => Flip::On,
            Self::Mirror => Flip::Mapped(mirror_label_map(classes)),
        }
    }
}

/// A whole training run. Written to `out/config.json`; `--config` reads one back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub data: DataSpec,
    /// How the model is optimised and tested: what its recipe set, with the run's overrides.
    #[serde(flatten)]
    pub regimen: Regimen,
    pub seed: u64,
    /// Data worker threads.
    pub workers: usize,
    /// Evaluate on the validation set every N epochs (and after the last).
    pub eval_every: u32,
    /// Weights to start from (ImageNet, Kinetics or an earlier run); the classifier is replaced
    /// when its class count differs.
    pub init: Option<PathBuf>,
    /// Stop at the first unreadable video instead of skipping it.
    pub strict: bool,
    /// Also checkpoint every N steps within an epoch.
    pub checkpoint_every: Option<usize>,
    /// The frame stride the online model should run at (the spacing of the training frames in
    /// the source video), written into the checkpoints for `live` and `play`.
    #[serde(default)]
    pub live_stride: Option<u32>,
    /// Knowledge distillation from a trained teacher (None: labels only).
    #[serde(default)]
    pub distill: Option<Distill>,
}

/// The part of a run a training recipe sets: optimiser and schedule, augmentation, sampling,
/// precision and the test protocol. A [`super::Recipe`] holds one; a run's config holds the
/// recipe's, changed by its flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regimen {
    pub epochs: u32,
    pub batch_size: usize,
    pub schedule: Schedule,
    pub sgd: SgdOptions,
    /// Clip the gradients' joint L2 norm to this.
    pub clip_grad: Option<f64>,
    pub partial_bn: bool,
    /// Synchronised BatchNorm in a data-parallel run: the statistics of the global batch
    /// instead of each rank's share (`--sync-bn`; a run of one process is unchanged).
    #[serde(default)]
    pub sync_bn: bool,
    pub label_smoothing: f64,
    /// Multi-scale crop scales (TSN: 1, .875, .75, .66).
    pub scales: Vec<f32>,
    pub flip: FlipSpec,
    /// Dense clips with this frame interval (MVF: 16 frames x 4); None: TSN segments.
    pub interval: Option<usize>,
    /// Mixed precision (CUDA only).
    pub amp: bool,
    /// Keep decoded videos in memory across epochs (small data sets).
    pub cache_decoded: bool,
    /// How the trained model is tested (clips per video, crops), written into the checkpoints
    /// with the clip sampling for `eval` and `predict`; validation during training stays at one
    /// centre-cropped clip.
    #[serde(default)]
    pub test: TestViews,
}

/// Knowledge distillation (Hinton et al., 2015): the loss mixes the labels' cross-entropy with the
/// divergence from a teacher's softened class distribution,
/// `(1 - weight) * CE(student, y) + weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))`,
/// the KL divergence summed over classes and averaged over the batch (T^2 keeps the soft term's
/// gradients on the scale of the hard one's as T changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distill {
    /// A trained checkpoint of the same classes and input size; any architecture.
    pub teacher: PathBuf,
    pub temperature: f64,
    /// Share of the soft (teacher) term, in [0, 1].
    pub weight: f64,
}

impl TrainConfig {
    /// The live stride to record and where it comes from: `--live-stride`, else the interval
    /// of dense training clips (their frames are that far apart); None for TSN segments
    /// without `--live-stride` (their spacing depends on each video's length).
    /// Logs the live stride the checkpoints will carry and where it comes from.
    pub fn log_live_stride(&self) {
        match self.live_stride_with_origin() {
            Some((stride, origin)) => tracing::info!("live stride {stride} ({origin})"),
            None => tracing::info!(
                "no live stride recorded (TSN segments, no --live-stride): `live` runs the model \
                 at stride 1"
            ),
        }
    }

    pub fn live_stride_with_origin(&self) -> Option<(u32, &'static str)> {
        match (self.live_stride, self.regimen.interval) {
            (Some(stride), _) => Some((stride, "--live-stride")),
            (None, Some(interval)) => u32::try_from(interval)
                .ok()
                .map(|s| (s, "the training clips' frame interval")),
            (None, None) => None,
        }
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |what: String| Err(TrainError::Config(what));
        if self.regimen.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.regimen.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if !(self.regimen.schedule.base_lr > 0.0 && self.regimen.schedule.base_lr.is_finite()) {
            return bad(format!(
                "learning rate {} is not positive",
                self.regimen.schedule.base_lr
            ));
        }
        if !(0.0..1.0).contains(&self.regimen.label_smoothing) {
            return bad(format!(
                "label smoothing {} is outside [0, 1)",
                self.regimen.label_smoothing
            ));
        }
        if self.regimen.scales.is_empty()
            || self.regimen.scales.iter().any(|s| !(*s > 0.0 && *s <= 1.0))
        {
            return bad(format!(
                "crop scales {:?} must lie in (0, 1]",
                self.regimen.scales
            ));
        }
        if self.regimen.interval == Some(0) {
            return bad("frame interval must be at least 1".into());
        }
        if self.regimen.test.clips == 0 {
            return bad("test clips must be at least 1".into());
        }
        if let Some(d) = &self.distill {
            if !(d.temperature > 0.0 && d.temperature.is_finite()) {
                return bad(format!(
                    "distillation temperature {} is not positive",
                    d.temperature
                ));
            }
            if !(0.0..=1.0).contains(&d.weight) {
                return bad(format!(
                    "distillation weight {} is outside [0, 1]",
                    d.weight
                ));
            }
        }
        self.model.validate().map_err(TrainError::Model)
    }

    /// How the training loader reads this run's clips.
    pub(super) fn loader_options(
        &self,
        mode: Mode,
        cache: Option<Arc<DecodeCache>>,
    ) -> LoaderOptions {
        let c = self;
        let imagenet = Transform::imagenet(c.model.input_size as usize);
        LoaderOptions {
            batch_size: c.regimen.batch_size,
            workers: c.workers.max(1),
            queue: 2 * c.workers.max(1),
            seed: c.seed,
            input_size: c.model.input_size as usize,
            sampling: c.sampling(),
            mode,
            shuffle: true,
            drop_last: true,
            strict: c.strict,
            mean: imagenet.mean,
            std: imagenet.std,
            cache,
        }
    }

    /// Which frames make a training clip: dense with `interval`, else TSN segments.
    pub fn sampling(&self) -> Sampling {
        let frames = self.model.num_segments as usize;
        match self.regimen.interval {
            Some(interval) => Sampling::Dense {
                clip_len: frames,
                interval,
            },
            None => Sampling::Segments {
                num_segments: frames,
            },
        }
    }
}

/// The label map of a mirrored clip, pairing class names that differ by Left/Right or
/// Clockwise/Anticlockwise (case as written); unpaired classes map to themselves.
pub fn mirror_label_map(classes: &[String]) -> Vec<usize> {
    const PAIRS: &[(&str, &str)] = &[
        ("Anticlockwise", "Clockwise"),
        ("anticlockwise", "clockwise"),
        ("CounterClockwise", "Clockwise"),
        ("Left", "Right"),
        ("left", "right"),
    ];
    classes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            for (a, b) in PAIRS {
                for (from, to) in [(a, b), (b, a)] {
                    // "Anticlockwise" contains "clockwise": try the longer names first.
                    if name.contains(from) && !(from == b && name.contains(a)) {
                        let mirrored = name.replace(from, to);
                        if let Some(j) = classes.iter().position(|c| *c == mirrored) {
                            return j;
                        }
                    }
                }
            }
            i
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The live stride is --live-stride, else the dense clips' interval, else none.
    #[test]
    fn live_stride_defaults_to_the_training_interval() {
        let data = DataSpec::Ucf101 {
            root: "data".into(),
            splits: None,
            split: 1,
            frames: false,
        };
        let mut c = TrainConfig::preset(crate::model::Preset::TsmR18TinyOnline, data);
        (c.live_stride, c.regimen.interval) = (None, Some(4));
        assert_eq!(c.live_stride_with_origin().map(|s| s.0), Some(4));
        c.live_stride = Some(2);
        assert_eq!(c.live_stride_with_origin(), Some((2, "--live-stride")));
        (c.live_stride, c.regimen.interval) = (None, None);
        assert_eq!(c.live_stride_with_origin(), None);
    }

    /// Left/Right and Clockwise/Anticlockwise swap; classes without a mirror map to themselves.
    #[test]
    fn mirror_label_map_pairs_directions() {
        let classes = names(&[
            "MoveLeft",
            "MoveRight",
            "RotateClockwise",
            "RotateAnticlockwise",
            "MoveUp",
            "ZoomIn",
            "turn_left",
            "turn_right",
        ]);
        assert_eq!(mirror_label_map(&classes), [1, 0, 3, 2, 4, 5, 7, 6]);
        // A direction without its partner in the set stays.
        let lone = names(&["MoveLeft", "MoveUp", "SpinClockwise"]);
        assert_eq!(mirror_label_map(&lone), [0, 1, 2]);
        // CounterClockwise pairs with Clockwise too.
        let counter = names(&["SpinCounterClockwise", "SpinClockwise"]);
        assert_eq!(mirror_label_map(&counter), [1, 0]);
        assert!(mirror_label_map(&[]).is_empty());
    }

    #[test]
    fn flip_spec_maps_to_the_loader_flip() {
        let classes = names(&["MoveLeft", "MoveRight", "Still"]);
        assert!(matches!(FlipSpec::Off.flip(&classes), Flip::Off));
        assert!(matches!(FlipSpec::On.flip(&classes), Flip::On));
        match FlipSpec::Mirror.flip(&classes) {
            Flip::Mapped(map) => assert_eq!(map, [1, 0, 2]),
            other => panic!("{other:?}"),
        }
    }
}
