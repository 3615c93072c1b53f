//! The training loop: data on worker threads, SGD with a schedule, a checkpoint after every epoch
//! (and every N steps if asked) holding the weights, the optimiser's momentum and the run's state,
//! so `--resume` continues bit for bit; the best model by validation top-1 kept as a plain model
//! checkpoint that `live` and `play` load as it is.
//!
//! Every random choice is a function of the seed and the position in the run: the data order and
//! augmentation of (seed, epoch, item), dropout of (seed, epoch, step). Resuming at a step replays
//! the same numbers an uninterrupted run would have produced.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Reduction, Tensor, nn};

use super::TrainError;
use super::eval::{EvalOptions, evaluate};
use super::optim::{MOMENTUM_PREFIX, Sgd, SgdOptions};
use super::plot::{self, CurvePoint};
use super::protocol::{TEST_PROTOCOL_KEY, TestProtocol, TestViews};
use super::schedule::{Decay, Schedule};
use crate::data::{
    Dataset, DecodeCache, Flip, Layout, Loader, LoaderOptions, Mode, Sampling, Subset, TestCrop,
};
use crate::model::checkpoint::{self, CONFIG_KEY, TensorFile, preprocess_metadata};
use crate::model::{ActionNet, ModelConfig, Temporal};
use crate::preprocess::Transform;

/// Metadata key of the run state in `checkpoint.safetensors`.
pub const TRAIN_STATE_KEY: &str = "shiftlive.train";

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

/// A whole training run. Written to `out/config.json`; `--config` reads one back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub data: DataSpec,
    pub epochs: u32,
    pub batch_size: usize,
    pub schedule: Schedule,
    pub sgd: SgdOptions,
    /// Clip the gradients' joint L2 norm to this.
    pub clip_grad: Option<f64>,
    pub partial_bn: bool,
    pub label_smoothing: f64,
    /// Multi-scale crop scales (TSN: 1, .875, .75, .66).
    pub scales: Vec<f32>,
    pub flip: FlipSpec,
    /// Dense clips with this frame interval (MVF: 16 frames x 4); None: TSN segments.
    pub interval: Option<usize>,
    pub seed: u64,
    /// Data worker threads.
    pub workers: usize,
    /// Evaluate on the validation set every N epochs (and after the last).
    pub eval_every: u32,
    /// Weights to start from (ImageNet, Kinetics or an earlier run); the classifier is replaced
    /// when its class count differs.
    pub init: Option<PathBuf>,
    /// Mixed precision (CUDA only).
    pub amp: bool,
    /// Stop at the first unreadable video instead of skipping it.
    pub strict: bool,
    /// Also checkpoint every N steps within an epoch.
    pub checkpoint_every: Option<usize>,
    /// Keep decoded videos in memory across epochs (small data sets).
    pub cache_decoded: bool,
    /// The frame stride the online model should run at (the spacing of the training frames in
    /// the source video), written into the checkpoints for `live` and `play`.
    #[serde(default)]
    pub live_stride: Option<u32>,
    /// How the trained model is tested (clips per video, crops), written into the checkpoints
    /// with the clip sampling for `eval` and `predict`; validation during training stays at one
    /// centre-cropped clip.
    #[serde(default)]
    pub test: TestViews,
    /// Knowledge distillation from a trained teacher (None: labels only).
    #[serde(default)]
    pub distill: Option<Distill>,
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

/// Training presets: the papers' recipes for UCF-101 (fine-tuning R50 at 224 px; VGG16 as
/// GluonCV's `vgg16_ucf101`) and small ones for the synthetic motion set (`*_tiny`, 64 px,
/// trained from scratch on 2 CPU cores).
pub const TRAIN_PRESETS: &[(&str, &str)] = &[
    ("tsn", "tsn_r50"),
    ("tsm", "tsm_r50"),
    ("tsm_online", "tsm_r50_online"),
    ("mvf", "mvf_r50"),
    ("tsn_vgg16", "tsn_vgg16"),
    ("tsn_r50_vd", "tsn_r50_vd"),
    ("tsm_r50_vd", "tsm_r50_vd"),
    ("tsn_tiny", "tsn_r18_tiny"),
    ("tsm_tiny", "tsm_r18_tiny"),
    ("tsm_online_tiny", "tsm_r18_tiny_online"),
    ("mvf_tiny", "mvf_r18_tiny"),
    (
        "tsm_mobilenet_v2_online_tiny",
        "tsm_mobilenet_v2_tiny_online",
    ),
    ("tsn_vgg16_tiny", "tsn_vgg16_tiny"),
    ("tsm_r50_vd_tiny", "tsm_r50_vd_tiny"),
    ("tsm_r50_vd_online_tiny", "tsm_r50_vd_tiny_online"),
    // ECO trains with the TSN/TSM recipe above (clip logits, no consensus needed).
    ("eco_lite", "eco_lite"),
    ("eco_full", "eco_full"),
    ("eco_lite_tiny", "eco_lite_tiny"),
    ("eco_full_tiny", "eco_full_tiny"),
];

impl TrainConfig {
    /// A training preset (see [`TRAIN_PRESETS`]) on `data`.
    pub fn preset(name: &str, data: DataSpec) -> Result<Self, TrainError> {
        let model_name = TRAIN_PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                TrainError::Config(format!(
                    "no training preset '{name}'; known: {}",
                    TRAIN_PRESETS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let mut model = ModelConfig::from_preset(model_name)?;
        let tiny = name.ends_with("_tiny");
        let mvf = matches!(model.temporal, Temporal::Mvf { .. });
        let vgg = matches!(model.backbone, crate::model::Backbone::Vgg { .. });
        let mut config = Self {
            model: model.clone(),
            data,
            epochs: 25,
            batch_size: 64,
            schedule: Schedule {
                base_lr: 0.001,
                warmup_epochs: 0.0,
                epochs: 25,
                decay: Decay::Step {
                    milestones: vec![10, 20],
                    gamma: 0.1,
                },
            },
            sgd: SgdOptions {
                momentum: 0.9,
                nesterov: false,
                weight_decay: 5e-4,
                classifier_lr_mult: 5.0,
            },
            clip_grad: Some(20.0),
            partial_bn: true,
            label_smoothing: 0.0,
            scales: vec![1.0, 0.875, 0.75, 0.66],
            flip: FlipSpec::On,
            interval: None,
            seed: 0,
            workers: 2,
            eval_every: 1,
            init: None,
            amp: true,
            strict: false,
            checkpoint_every: None,
            cache_decoded: false,
            live_stride: None,
            test: TestViews::default(),
            distill: None,
        };
        model.dropout = 0.8;
        if vgg {
            // GluonCV's vgg16_ucf101 with TSN (3 segments): lr 0.001 divided by 10 at epochs 30
            // and 60 of 80, momentum 0.9, weight decay 5e-4, no gradient clipping, dropout 0.9
            // after fc6 and fc7, no extra learning rate for the classifier; VGG has no BatchNorm.
            config.epochs = 80;
            config.schedule = Schedule {
                base_lr: 0.001,
                warmup_epochs: 0.0,
                epochs: 80,
                decay: Decay::Step {
                    milestones: vec![30, 60],
                    gamma: 0.1,
                },
            };
            config.sgd.classifier_lr_mult = 1.0;
            config.clip_grad = None;
            config.partial_bn = false;
            model.dropout = 0.9;
        }
        if mvf {
            // PaddleMVF: 16 frames x 4, batch 16, 50 epochs, cosine 0.00125 with 5 warm-up
            // epochs, Nesterov, clip 40.
            config.interval = Some(4);
            config.batch_size = 16;
            config.epochs = 50;
            config.schedule = Schedule {
                base_lr: 0.00125,
                warmup_epochs: 5.0,
                epochs: 50,
                decay: Decay::Cosine,
            };
            config.sgd.nesterov = true;
            config.sgd.classifier_lr_mult = 1.0;
            config.clip_grad = Some(40.0);
            config.partial_bn = false;
            model.dropout = 0.5;
            // PaddleMVF's UCF-101 test: 10 clips x ThreeCrop.
            config.test = TestViews {
                clips: 10,
                crop: TestCrop::Three,
            };
        }
        if tiny {
            // From scratch on the synthetic motion set (PyTorch's default initialisation, see
            // `run`): 9 direction classes, so flips swap labels; no scale jitter (it would change
            // the apparent speed), no dropout, no partial BN (nothing pretrained to keep); dense
            // clips of 8 frames 4 apart, so every step between frames is the same motion (with
            // TSN's random frame per segment the spacing varies from 1 to 7 frames and the
            // networks stayed at chance for 20+ epochs with some seeds), and the online model
            // runs live at stride 4. The networks sit at chance for some epochs, then learn fast.
            model.dropout = 0.0;
            model.num_segments = 8;
            config.interval = Some(4);
            config.epochs = 40;
            config.batch_size = 8;
            config.schedule = Schedule {
                base_lr: 0.003,
                warmup_epochs: 0.0,
                epochs: 40,
                decay: Decay::Step {
                    milestones: vec![30],
                    gamma: 0.1,
                },
            };
            config.sgd = SgdOptions {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 1e-4,
                classifier_lr_mult: 1.0,
            };
            config.clip_grad = Some(20.0);
            config.partial_bn = false;
            config.flip = FlipSpec::Mirror;
            config.scales = vec![1.0];
            config.amp = false;
            config.cache_decoded = true;
        }
        config.model = model;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |what: String| Err(TrainError::Config(what));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if !(self.schedule.base_lr > 0.0 && self.schedule.base_lr.is_finite()) {
            return bad(format!(
                "learning rate {} is not positive",
                self.schedule.base_lr
            ));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(format!(
                "label smoothing {} is outside [0, 1)",
                self.label_smoothing
            ));
        }
        if self.scales.is_empty() || self.scales.iter().any(|s| !(*s > 0.0 && *s <= 1.0)) {
            return bad(format!("crop scales {:?} must lie in (0, 1]", self.scales));
        }
        if self.interval == Some(0) {
            return bad("frame interval must be at least 1".into());
        }
        if self.test.clips == 0 {
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

    fn sampling(&self) -> Sampling {
        let frames = self.model.num_segments as usize;
        match self.interval {
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

/// One epoch's figures: a line of `metrics.jsonl` and `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u32,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_top1: Option<f64>,
    pub val_top5: Option<f64>,
    pub val_mean_class_acc: Option<f64>,
    pub clips_per_second: f64,
    /// Time the model waited for data, over the epoch.
    pub data_wait_seconds: f64,
    pub epoch_seconds: f64,
    pub skipped_videos: usize,
}

/// The state saved with each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunState {
    /// Epochs finished.
    epoch: u32,
    /// Steps done within `epoch` (a mid-epoch checkpoint), with the running sums of that epoch.
    step: usize,
    loss_sum: f64,
    correct: u64,
    seen: u64,
    best_top1: Option<f64>,
    history: Vec<EpochRecord>,
    train_seconds: f64,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    pub model: String,
    pub classes: usize,
    pub epochs: u32,
    pub final_record: Option<EpochRecord>,
    pub best_top1: Option<f64>,
    pub train_seconds: f64,
    pub best: PathBuf,
    pub checkpoint: PathBuf,
}

/// A training run writing into `out`.
pub struct Trainer {
    config: TrainConfig,
    out: PathBuf,
    device: Device,
    progress: bool,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io {
        path: path.to_path_buf(),
        what: e.to_string(),
    }
}

/// Writes `text` to `path` atomically (see [`crate::fsio`]).
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), TrainError> {
    Ok(crate::fsio::write_atomic(path, text.as_bytes())?)
}

fn mix(seed: u64, a: u64, b: u64) -> i64 {
    // SplitMix64 of the three, so nearby (epoch, step) give unrelated seeds.
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(a.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(b.wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

impl Trainer {
    pub fn new(config: TrainConfig, out: &Path, device: Device) -> Result<Self, TrainError> {
        config.validate()?;
        Ok(Self {
            config,
            out: out.to_path_buf(),
            device,
            progress: true,
        })
    }

    /// Draw progress bars (on by default; off for tests and logs).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.out.join("checkpoint.safetensors")
    }

    pub fn best_path(&self) -> PathBuf {
        self.out.join("best.safetensors")
    }

    /// The distillation teacher, in evaluation mode: it must know the same classes and take the
    /// same input size as the student.
    fn load_teacher(
        &self,
        path: &Path,
        student: &ModelConfig,
    ) -> Result<(nn::VarStore, ActionNet), TrainError> {
        let (vs, teacher) = ActionNet::load(path, self.device)?;
        let t = teacher.config();
        let mismatch = |what: String| TrainError::Io {
            path: path.to_path_buf(),
            what: format!("cannot teach {}: {what}", student.name),
        };
        if t.num_classes != student.num_classes {
            return Err(mismatch(format!(
                "the teacher has {} classes, the data set {}",
                t.num_classes, student.num_classes
            )));
        }
        if t.input_size != student.input_size {
            return Err(mismatch(format!(
                "the teacher takes {} px input, the student {} px",
                t.input_size, student.input_size
            )));
        }
        tracing::info!("distilling from {} ({})", path.display(), t.name);
        Ok((vs, teacher))
    }

    fn loader_options(&self, mode: Mode, cache: Option<Arc<DecodeCache>>) -> LoaderOptions {
        let c = &self.config;
        let imagenet = Transform::imagenet(c.model.input_size as usize);
        LoaderOptions {
            batch_size: c.batch_size,
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

    /// Runs the training, from scratch or, with `resume`, from `out/checkpoint.safetensors`.
    pub fn run(&self, resume: bool) -> Result<TrainOutcome, TrainError> {
        std::fs::create_dir_all(&self.out).map_err(|e| io_err(&self.out, e))?;
        let (train_set, val_set) = self.config.data.datasets()?;
        if train_set.items.is_empty() {
            return Err(TrainError::Config(format!(
                "the training set {} is empty",
                train_set.source
            )));
        }
        if val_set.classes != train_set.classes {
            return Err(TrainError::Config(format!(
                "the validation set {} has other classes than the training set {}",
                val_set.source, train_set.source
            )));
        }
        let classes = train_set.classes.clone();
        let mut config = self.config.clone();
        config.model.num_classes = classes.len() as i64;
        config.validate()?;
        let flip = match config.flip {
            FlipSpec::Off => Flip::Off,
            FlipSpec::On => Flip::On,
            FlipSpec::Mirror => Flip::Mapped(mirror_label_map(&classes)),
        };
        let labels_json =
            serde_json::to_string(&classes).map_err(|e| TrainError::Config(e.to_string()))?;

        let teacher = match &config.distill {
            Some(d) => Some((self.load_teacher(&d.teacher, &config.model)?, d.clone())),
            None => None,
        };
        tch::manual_seed(mix(config.seed, u64::MAX, 0));
        let mut vs = nn::VarStore::new(self.device);
        let mut net = ActionNet::new(&vs.root(), &config.model)?;
        let mut state = RunState {
            epoch: 0,
            step: 0,
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
            best_top1: None,
            history: Vec::new(),
            train_seconds: 0.0,
        };
        let mut resume_tensors = None;
        if resume {
            let path = self.checkpoint_path();
            let file = TensorFile::read(&path)?;
            let saved = checkpoint::config_of(&file, &path)?;
            if saved != config.model {
                return Err(TrainError::Resume {
                    path,
                    what: format!(
                        "the checkpoint's model ({}) differs from this run's ({})",
                        saved.to_json(),
                        config.model.to_json()
                    ),
                });
            }
            let text = file
                .metadata
                .get(TRAIN_STATE_KEY)
                .ok_or_else(|| TrainError::Resume {
                    path: path.clone(),
                    what: format!("no '{TRAIN_STATE_KEY}' metadata: not a training checkpoint"),
                })?;
            state = serde_json::from_str(text).map_err(|e| TrainError::Resume {
                path: path.clone(),
                what: e.to_string(),
            })?;
            let model_tensors: BTreeMap<String, Tensor> = file
                .tensors
                .iter()
                .filter(|(k, _)| !k.starts_with(MOMENTUM_PREFIX))
                .map(|(k, v)| (k.clone(), v.shallow_clone()))
                .collect();
            checkpoint::load_weights(&vs, &model_tensors, &path, &config.model.name)?;
            resume_tensors = Some((path, file.tensors));
            tracing::info!(
                "resuming from {} at epoch {}, step {}",
                self.checkpoint_path().display(),
                state.epoch + 1,
                state.step
            );
        } else if let Some(init) = &config.init {
            init_from(&vs, &net, init, &config.model)?;
        } else {
            // From scratch: PyTorch's default initialisation (see the two functions).
            ActionNet::reset_convs_default(&vs);
            net.reset_classifier_default();
        }
        net.set_partial_bn(config.partial_bn);
        let mut sgd = Sgd::new(&vs, config.sgd, net.classifier_prefix());
        if let Some((path, tensors)) = &resume_tensors {
            sgd.load_state(tensors).map_err(|what| TrainError::Resume {
                path: path.clone(),
                what,
            })?;
        }
        write_atomic(
            &self.out.join("config.json"),
            &serde_json::to_string_pretty(&config)
                .map_err(|e| TrainError::Config(e.to_string()))?,
        )?;
        let _ = &mut vs;

        let train_set = Arc::new(train_set);
        let val_set = Arc::new(val_set);
        let cache = config
            .cache_decoded
            .then(|| Arc::new(DecodeCache::new(4 << 30)));
        let mut skipped_all: BTreeMap<PathBuf, String> = BTreeMap::new();
        let use_amp = config.amp && self.device.is_cuda();
        let mut loss_scale = 65536.0f64;

        while state.epoch < config.epochs {
            let epoch = state.epoch;
            let started = Instant::now();
            let loader = Loader::new(
                train_set.clone(),
                self.loader_options(
                    Mode::Train {
                        scales: config.scales.clone(),
                        flip: flip.clone(),
                    },
                    cache.clone(),
                ),
                u64::from(epoch),
            )?;
            let steps = loader.len();
            if steps == 0 {
                return Err(TrainError::Config(format!(
                    "the training set {} has {} videos, fewer than one batch of {}",
                    train_set.source,
                    train_set.items.len(),
                    config.batch_size
                )));
            }
            let bar = self.bar(
                steps as u64,
                &format!("epoch {}/{}", epoch + 1, config.epochs),
            );
            bar.set_position(state.step as u64);
            let mut wait = Duration::ZERO;
            let mut clips_this_run = 0u64;
            let mut lr = config.schedule.lr(f64::from(epoch));
            let mut loader = loader;
            for step in 0..steps {
                let batch = match loader.next() {
                    Some(b) => b?,
                    None => break,
                };
                if step < state.step {
                    // Already done before the interruption; the loader's content depends only
                    // on (seed, epoch, batch), so skipping it keeps the rest identical.
                    continue;
                }
                wait += batch.wait;
                tch::manual_seed(mix(config.seed, u64::from(epoch), step as u64));
                lr = config
                    .schedule
                    .lr(f64::from(epoch) + step as f64 / steps as f64);
                let x = batch.input.to_device(self.device);
                let y = batch.labels.to_device(self.device);
                let settings = StepSettings {
                    lr,
                    label_smoothing: config.label_smoothing,
                    clip_grad: config.clip_grad,
                    loss_scale: use_amp.then_some(loss_scale),
                };
                let out = match &teacher {
                    Some(((_teacher_vs, teacher), d)) => {
                        let frames = x.size()[0] / y.size()[0];
                        let soft = tch::no_grad(|| teacher.forward_clip_t(&x, frames, false))?
                            .logits
                            .to_kind(Kind::Float);
                        let targets = SoftTargets {
                            logits: &soft,
                            temperature: d.temperature,
                            weight: d.weight,
                        };
                        train_step_with(&net, &mut sgd, &x, &y, Some(&targets), &settings)?
                    }
                    None => train_step(&net, &mut sgd, &x, &y, &settings)?,
                };
                let loss_value = out.loss;
                if !loss_value.is_finite() {
                    bar.abandon();
                    let names: Vec<String> = batch
                        .items
                        .iter()
                        .filter_map(|&i| train_set.items.get(i))
                        .map(|it| it.path.display().to_string())
                        .collect();
                    let checkpoint = self.checkpoint_path();
                    return Err(TrainError::NonFiniteLoss {
                        loss: loss_value,
                        epoch: epoch + 1,
                        step,
                        items: names.join(", "),
                        checkpoint: checkpoint.exists().then_some(checkpoint),
                    });
                }
                if !out.stepped {
                    // fp16 overflow: the update was skipped; halve the scale (as GradScaler).
                    loss_scale /= 2.0;
                    tracing::debug!("fp16 overflow: loss scale now {loss_scale}");
                    state.step = step + 1;
                    bar.inc(1);
                    continue;
                }
                let logits = out.logits;
                let n = batch.labels.size()[0] as u64;
                let predicted = logits.argmax(1, false).to_device(Device::Cpu);
                let hits = predicted
                    .eq_tensor(&batch.labels)
                    .sum(Kind::Int64)
                    .int64_value(&[]) as u64;
                state.loss_sum += loss_value * n as f64;
                state.correct += hits;
                state.seen += n;
                state.step = step + 1;
                clips_this_run += n;
                bar.inc(1);
                bar.set_message(format!(
                    "loss {:.3} acc {:.3} lr {:.2e} {:.1} clips/s wait {:.1}s",
                    state.loss_sum / state.seen.max(1) as f64,
                    state.correct as f64 / state.seen.max(1) as f64,
                    lr,
                    clips_this_run as f64 / started.elapsed().as_secs_f64().max(1e-9),
                    wait.as_secs_f64()
                ));
                if let Some(every) = config.checkpoint_every
                    && state.step.is_multiple_of(every)
                    && state.step < steps
                {
                    let mut s = state.clone();
                    s.train_seconds += started.elapsed().as_secs_f64();
                    self.save_checkpoint(&vs, &config, &sgd, &s, &labels_json)?;
                }
            }
            for s in loader.skipped() {
                skipped_all.insert(s.path.clone(), s.reason.clone());
            }
            drop(loader);
            if state.seen == 0 {
                bar.abandon();
                let example = skipped_all.iter().next().map_or(String::new(), |(p, why)| {
                    format!(": {} ({why})", p.display())
                });
                return Err(TrainError::Config(format!(
                    "epoch {}: not one clip of {} could be read, all {} videos skipped{example}",
                    epoch + 1,
                    train_set.source,
                    skipped_all.len()
                )));
            }
            bar.finish_and_clear();
            let epoch_seconds = started.elapsed().as_secs_f64();
            state.train_seconds += epoch_seconds;

            let last = epoch + 1 == config.epochs;
            let val = if last
                || (config.eval_every > 0 && (epoch + 1).is_multiple_of(config.eval_every))
            {
                let report = evaluate(
                    &net,
                    val_set.clone(),
                    &EvalOptions {
                        crop: TestCrop::Centre,
                        clips: 1,
                        batch_size: config.batch_size,
                        workers: config.workers.max(1),
                        sampling: config.sampling(),
                        strict: config.strict,
                        cache: cache.clone(),
                        progress: self.progress,
                    },
                    self.device,
                )?;
                for s in &report.skipped {
                    skipped_all.insert(s.0.clone(), s.1.clone());
                }
                if last {
                    plot::confusion(
                        &self.out.join("confusion.png"),
                        &report.confusion,
                        &classes,
                        &format!("{} on {}", config.model.name, val_set.source),
                    )?;
                }
                Some(report.scores)
            } else {
                None
            };
            let record = EpochRecord {
                epoch: epoch + 1,
                lr,
                train_loss: state.loss_sum / state.seen.max(1) as f64,
                train_top1: state.correct as f64 / state.seen.max(1) as f64,
                val_top1: val.map(|s| s.top1),
                val_top5: val.map(|s| s.top5),
                val_mean_class_acc: val.map(|s| s.mean_class_acc),
                clips_per_second: clips_this_run as f64 / epoch_seconds.max(1e-9),
                data_wait_seconds: wait.as_secs_f64(),
                epoch_seconds,
                skipped_videos: skipped_all.len(),
            };
            tracing::info!(
                "epoch {}/{}: loss {:.4} train top-1 {:.3}{} ({:.1} clips/s, data wait {:.1} s of {:.1} s)",
                record.epoch,
                config.epochs,
                record.train_loss,
                record.train_top1,
                record
                    .val_top1
                    .map_or(String::new(), |v| format!(", val top-1 {v:.3}")),
                record.clips_per_second,
                record.data_wait_seconds,
                record.epoch_seconds
            );
            let improved = match (record.val_top1, state.best_top1) {
                (Some(v), Some(best)) => v > best,
                (Some(_), None) => true,
                _ => false,
            };
            if improved {
                state.best_top1 = record.val_top1;
            }
            state.history.push(record);
            state.epoch += 1;
            state.step = 0;
            state.loss_sum = 0.0;
            state.correct = 0;
            state.seen = 0;
            // Best first: a crash between the two writes leaves a best model at least as new
            // as the checkpoint's record of it.
            if improved || !self.best_path().exists() {
                checkpoint::save(
                    &vs,
                    &config.model,
                    &model_metadata(&config, &labels_json, state.epoch),
                    &self.best_path(),
                )?;
            }
            self.save_checkpoint(&vs, &config, &sgd, &state, &labels_json)?;
            self.write_metrics(&state.history, &config)?;
            if !skipped_all.is_empty() {
                let text: String = skipped_all
                    .iter()
                    .map(|(p, why)| format!("{}\t{why}\n", p.display()))
                    .collect();
                write_atomic(&self.out.join("skipped.txt"), &text)?;
                tracing::warn!(
                    "{} unreadable videos skipped, listed in {}",
                    skipped_all.len(),
                    self.out.join("skipped.txt").display()
                );
            }
        }
        Ok(TrainOutcome {
            model: config.model.name.clone(),
            classes: classes.len(),
            epochs: config.epochs,
            final_record: state.history.last().cloned(),
            best_top1: state.best_top1,
            train_seconds: state.train_seconds,
            best: self.best_path(),
            checkpoint: self.checkpoint_path(),
        })
    }

    fn bar(&self, len: u64, prefix: &str) -> ProgressBar {
        super::eval::bar(self.progress, len, prefix)
    }

    fn save_checkpoint(
        &self,
        vs: &nn::VarStore,
        config: &TrainConfig,
        sgd: &Sgd,
        state: &RunState,
        labels_json: &str,
    ) -> Result<(), TrainError> {
        let mut file = TensorFile::default();
        for (name, tensor) in vs.variables() {
            file.tensors
                .insert(name, tensor.detach().to_device(Device::Cpu));
        }
        for (name, tensor) in sgd.state() {
            file.tensors.insert(name, tensor.to_device(Device::Cpu));
        }
        file.metadata
            .insert(CONFIG_KEY.to_string(), config.model.to_json());
        file.metadata
            .insert("format".to_string(), "shiftlive/1".to_string());
        for (key, value) in model_metadata(config, labels_json, state.epoch) {
            file.metadata.insert(key.to_string(), value);
        }
        file.metadata.insert(
            TRAIN_STATE_KEY.to_string(),
            serde_json::to_string(state).map_err(|e| TrainError::Config(e.to_string()))?,
        );
        file.write(&self.checkpoint_path())?;
        Ok(())
    }

    fn write_metrics(
        &self,
        history: &[EpochRecord],
        config: &TrainConfig,
    ) -> Result<(), TrainError> {
        let mut jsonl = String::new();
        let mut csv = String::from(
            "epoch,lr,train_loss,train_top1,val_top1,val_top5,val_mean_class_acc,clips_per_second,data_wait_seconds,epoch_seconds,skipped_videos\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        for r in history {
            jsonl.push_str(
                &serde_json::to_string(r).map_err(|e| TrainError::Config(e.to_string()))?,
            );
            jsonl.push('\n');
            csv.push_str(&format!(
                "{},{:.6e},{:.6},{:.6},{},{},{},{:.3},{:.3},{:.3},{}\n",
                r.epoch,
                r.lr,
                r.train_loss,
                r.train_top1,
                opt(r.val_top1),
                opt(r.val_top5),
                opt(r.val_mean_class_acc),
                r.clips_per_second,
                r.data_wait_seconds,
                r.epoch_seconds,
                r.skipped_videos
            ));
        }
        write_atomic(&self.out.join("metrics.jsonl"), &jsonl)?;
        write_atomic(&self.out.join("metrics.csv"), &csv)?;
        let points: Vec<CurvePoint> = history
            .iter()
            .map(|r| CurvePoint {
                epoch: f64::from(r.epoch),
                train_loss: r.train_loss,
                train_top1: r.train_top1,
                val_top1: r.val_top1,
            })
            .collect();
        plot::curves(&self.out.join("curves.png"), &points, &config.model.name)
    }
}

/// Metadata a trained model carries for `live`, `play` and `eval`: class names, the
/// preprocessing it was trained with, the frame stride to run it at, the epoch.
fn model_metadata(
    config: &TrainConfig,
    labels_json: &str,
    epoch: u32,
) -> Vec<(&'static str, String)> {
    let transform = Transform::imagenet(config.model.input_size as usize);
    let mut meta = vec![
        ("labels", labels_json.to_string()),
        ("epoch", epoch.to_string()),
        ("preprocess", preprocess_metadata(&transform)),
    ];
    if let Some(stride) = config.live_stride {
        meta.push(("stride", stride.to_string()));
    }
    let protocol = TestProtocol {
        frames: config.model.num_segments.max(1) as usize,
        interval: config.interval,
        clips: config.test.clips.max(1),
        crop: config.test.crop,
    };
    meta.push((
        TEST_PROTOCOL_KEY,
        serde_json::to_string(&protocol).unwrap_or_default(),
    ));
    meta
}

/// How one optimisation step runs.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    pub lr: f64,
    pub label_smoothing: f64,
    pub clip_grad: Option<f64>,
    /// Mixed precision with this loss scale (CUDA); None: fp32.
    pub loss_scale: Option<f64>,
}

/// What one step computed.
pub struct StepOutput {
    /// The batch's mean loss before the update.
    pub loss: f64,
    /// `[N, classes]` logits before the update (fp32, no gradient).
    pub logits: Tensor,
    /// The gradient norm before clipping.
    pub grad_norm: Option<f64>,
    /// False when mixed precision overflowed and the update was skipped (or the loss was not
    /// finite, in which case nothing was touched).
    pub stepped: bool,
}

/// One SGD step of `net` on the clips `x` `[N*T, 3, H, W]` with labels `y` `[N]`: forward in
/// training mode, cross-entropy, backward, clipping, update. A non-finite loss returns before the
/// backward pass, leaving the weights as they were.
pub fn train_step(
    net: &ActionNet,
    sgd: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    s: &StepSettings,
) -> Result<StepOutput, TrainError> {
    train_step_with(net, sgd, x, y, None, s)
}

/// A teacher's logits for a batch and how to mix them into the loss (see [`Distill`]).
pub struct SoftTargets<'a> {
    /// `[N, classes]`, no gradient.
    pub logits: &'a Tensor,
    pub temperature: f64,
    pub weight: f64,
}

/// The distillation loss of `student` logits `[N, K]`: the labels' cross-entropy and the soft
/// targets' `T^2 * KL(teacher || student)` mixed by the soft weight (see [`Distill`]).
pub fn distillation_loss(
    student: &Tensor,
    y: &Tensor,
    soft: &SoftTargets<'_>,
    label_smoothing: f64,
) -> Tensor {
    let hard =
        student.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, label_smoothing);
    let t = soft.temperature;
    let log_p_student = (student / t).log_softmax(1, Kind::Float);
    let log_p_teacher = (soft.logits / t).log_softmax(1, Kind::Float);
    let kl = (log_p_teacher.exp() * (&log_p_teacher - &log_p_student))
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float);
    hard * (1.0 - soft.weight) + kl * (soft.weight * t * t)
}

/// [`train_step`] with an optional teacher's soft targets mixed into the loss.
pub fn train_step_with(
    net: &ActionNet,
    sgd: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    soft: Option<&SoftTargets<'_>>,
    s: &StepSettings,
) -> Result<StepOutput, TrainError> {
    let out = tch::autocast(s.loss_scale.is_some(), || net.forward_clip(x, true))?;
    let logits = out.logits.to_kind(Kind::Float);
    let loss = match soft {
        Some(soft) => distillation_loss(&logits, y, soft, s.label_smoothing),
        None => {
            logits.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, s.label_smoothing)
        }
    };
    let loss_value = loss.double_value(&[]);
    let detached = logits.detach();
    if !loss_value.is_finite() {
        return Ok(StepOutput {
            loss: loss_value,
            logits: detached,
            grad_norm: None,
            stepped: false,
        });
    }
    sgd.zero_grad();
    match s.loss_scale {
        Some(scale) => {
            (&loss * scale).backward();
            sgd.scale_grads(1.0 / scale);
            if !sgd.grads_finite() {
                return Ok(StepOutput {
                    loss: loss_value,
                    logits: detached,
                    grad_norm: None,
                    stepped: false,
                });
            }
        }
        None => loss.backward(),
    }
    let grad_norm = s.clip_grad.map(|max| sgd.clip_grad_norm(max));
    sgd.step(s.lr);
    Ok(StepOutput {
        loss: loss_value,
        logits: detached,
        grad_norm,
        stepped: true,
    })
}

/// Loads initial weights from a checkpoint (shiftlive or imported): every tensor of the network
/// must be there with its shape, except the classifier when the class count differs, which keeps
/// its fresh initialisation.
fn init_from(
    vs: &nn::VarStore,
    net: &ActionNet,
    path: &Path,
    model: &ModelConfig,
) -> Result<(), TrainError> {
    let file = TensorFile::read(path)?;
    let prefix = net.classifier_prefix();
    let vars = vs.variables();
    let replace = file.tensors.iter().any(|(name, t)| {
        name.starts_with(prefix) && vars.get(name).is_some_and(|v| v.size() != t.size())
    });
    let mut tensors: BTreeMap<String, Tensor> = file
        .tensors
        .iter()
        .filter(|(k, _)| !k.starts_with(MOMENTUM_PREFIX))
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    if replace {
        tracing::info!(
            "{}: classifier of another class count, replaced by a fresh one of {}",
            path.display(),
            model.num_classes
        );
        for (name, var) in &vars {
            if name.starts_with(prefix) {
                tensors.insert(name.clone(), var.detach().to_device(Device::Cpu));
            }
        }
    }
    checkpoint::load_weights(vs, &tensors, path, &model.name)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The distillation loss against the formula evaluated by hand in f64.
    #[test]
    fn distillation_loss_is_the_mixed_cross_entropy_and_kl() {
        let student = [[1.0f64, -0.5, 2.0], [0.3, 0.2, -1.0]];
        let teacher = [[0.5f64, 0.0, 3.0], [-1.0, 2.0, 0.0]];
        let labels = [2i64, 0];
        let (t, w) = (3.0f64, 0.6f64);
        let log_softmax = |v: &[f64], t: f64| -> Vec<f64> {
            let m = v.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b / t));
            let z = v.iter().map(|x| (x / t - m).exp()).sum::<f64>().ln() + m;
            v.iter().map(|x| x / t - z).collect()
        };
        let mut want = 0.0;
        for i in 0..2 {
            let ce = -log_softmax(&student[i], 1.0)[labels[i] as usize];
            let (ls, lt) = (log_softmax(&student[i], t), log_softmax(&teacher[i], t));
            let kl: f64 = (0..3).map(|k| lt[k].exp() * (lt[k] - ls[k])).sum();
            want += ((1.0 - w) * ce + w * t * t * kl) / 2.0;
        }
        let tensor = |v: &[[f64; 3]; 2]| {
            Tensor::from_slice(&v.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>())
                .view([2, 3])
        };
        let teacher_logits = tensor(&teacher);
        let soft = SoftTargets {
            logits: &teacher_logits,
            temperature: t,
            weight: w,
        };
        let got = distillation_loss(&tensor(&student), &Tensor::from_slice(&labels), &soft, 0.0)
            .double_value(&[]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Weight 0 is plain cross-entropy; a teacher equal to the student adds nothing.
        let same = tensor(&student);
        let none = SoftTargets {
            logits: &same,
            temperature: t,
            weight: 0.5,
        };
        let plain = tensor(&student)
            .cross_entropy_loss::<Tensor>(
                &Tensor::from_slice(&labels),
                None,
                Reduction::Mean,
                -100,
                0.0,
            )
            .double_value(&[]);
        let mixed =
            distillation_loss(&same, &Tensor::from_slice(&labels), &none, 0.0).double_value(&[]);
        assert!((mixed - 0.5 * plain).abs() < 1e-6, "{mixed} vs {plain}");
    }
}
