//! `shiftlive train` and `shiftlive eval`: offline training and evaluation on UCF-101 or any list
//! of labelled videos.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;
use shiftlive::data::{Dataset, Layout, Subset, TestCrop};
use shiftlive::device::{DeviceArg, device_name};
use shiftlive::model::{ActionNet, TensorFile};
use shiftlive::online::{Recognizer, RecognizerOptions};
use shiftlive::train::{
    DataSpec, Decay, Distill, EvalOptions, FlipSpec, ProtocolOverrides, Scores, TestProtocol,
    TrainConfig, Trainer, evaluate, evaluate_online,
};

/// Where the data is: UCF-101 (`--data`) or lists (`--train-list`/`--val-list`).
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    /// UCF-101 root: <Class>/<video>.avi, or rawframes/<Class>/<video>/img_*.jpg with --frames
    #[arg(long)]
    data: Option<PathBuf>,
    /// Directory of classInd.txt, trainlist0N.txt, testlist0N.txt (default: DATA/ucfTrainTestlist)
    #[arg(long)]
    splits: Option<PathBuf>,
    /// Read pre-extracted frames (DATA/rawframes/...) instead of videos
    #[arg(long)]
    frames: bool,
    /// Root of the paths in --train-list / --val-list / --list
    #[arg(long)]
    root: Option<PathBuf>,
    /// Class names, one per line, for list files
    #[arg(long)]
    classes: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training preset: tsn, tsm, tsm_online, mvf (UCF-101 recipes, R50) or their *_tiny
    /// versions (64 px, from scratch, for the synthetic motion set)
    #[arg(long, default_value = "tsm_online_tiny")]
    preset: String,
    /// A training config (JSON, as written to OUT/config.json); flags override its fields
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// UCF-101 split (1, 2 or 3)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    split: u8,
    /// Training list (`relative/path label` lines)
    #[arg(long, requires = "val_list")]
    train_list: Option<PathBuf>,
    /// Validation list
    #[arg(long)]
    val_list: Option<PathBuf>,
    /// Output directory: checkpoint, best model, metrics, curves
    #[arg(long)]
    out: PathBuf,
    /// Continue from OUT/checkpoint.safetensors
    #[arg(long)]
    resume: bool,
    #[arg(long)]
    epochs: Option<u32>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate
    #[arg(long)]
    lr: Option<f64>,
    /// Linear warm-up epochs
    #[arg(long)]
    warmup: Option<f64>,
    /// Step decay at these epochs (comma-separated); otherwise the preset's schedule
    #[arg(long, value_delimiter = ',', conflicts_with = "cosine")]
    milestones: Option<Vec<u32>>,
    #[arg(long, default_value_t = 0.1)]
    gamma: f64,
    /// Cosine decay to zero at the last epoch
    #[arg(long)]
    cosine: bool,
    #[arg(long)]
    momentum: Option<f64>,
    #[arg(long, action = clap::ArgAction::Set)]
    nesterov: Option<bool>,
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Clip the gradients' norm to this (0: off)
    #[arg(long)]
    clip_grad: Option<f64>,
    #[arg(long)]
    dropout: Option<f64>,
    #[arg(long, action = clap::ArgAction::Set)]
    partial_bn: Option<bool>,
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Frames per clip (TSN segments or dense clip length)
    #[arg(long)]
    segments: Option<i64>,
    /// Dense clips with this frame interval (MVF); 0 for TSN segments
    #[arg(long)]
    interval: Option<usize>,
    /// Input side in pixels
    #[arg(long)]
    input_size: Option<i64>,
    /// Multi-scale crop scales, comma-separated
    #[arg(long, value_delimiter = ',')]
    scales: Option<Vec<f32>>,
    #[arg(long, value_enum)]
    flip: Option<FlipSpec>,
    #[arg(long)]
    seed: Option<u64>,
    /// Data worker threads
    #[arg(long)]
    workers: Option<usize>,
    #[arg(long)]
    eval_every: Option<u32>,
    /// Initial weights (safetensors); the classifier is replaced if its class count differs
    #[arg(long)]
    init: Option<PathBuf>,
    /// Mixed precision on CUDA
    #[arg(long, action = clap::ArgAction::Set)]
    amp: Option<bool>,
    /// Stop at the first unreadable video instead of skipping it
    #[arg(long)]
    strict: bool,
    /// Also checkpoint every N steps
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Keep decoded videos in memory across epochs
    #[arg(long, action = clap::ArgAction::Set)]
    cache_decoded: Option<bool>,
    /// Frame stride for running the trained model live (the spacing of its training frames in
    /// the videos), stored in the checkpoints
    #[arg(long)]
    live_stride: Option<u32>,
    /// Clips per video in the trained model's test protocol (used by `eval` and `predict`)
    #[arg(long)]
    test_clips: Option<usize>,
    /// Crops per clip in the trained model's test protocol
    #[arg(long, value_enum)]
    test_crop: Option<CropArg>,
    /// Distil from this trained model (same classes and input size): its softened scores are
    /// mixed with the labels in the loss
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Softmax temperature of the distillation
    #[arg(long, default_value_t = 4.0, requires = "teacher")]
    distill_temperature: f64,
    /// Weight of the teacher's soft targets in the loss (the labels get 1 - weight)
    #[arg(long, default_value_t = 0.5, requires = "teacher")]
    distill_weight: f64,
    /// auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    device: DeviceArg,
    /// Intra-op threads (default: all cores)
    #[arg(long)]
    threads: Option<i32>,
    /// No progress bars
    #[arg(long)]
    quiet: bool,
}

fn data_spec(
    data: &DataArgs,
    split: u8,
    train: Option<&PathBuf>,
    val: Option<&PathBuf>,
) -> anyhow::Result<DataSpec> {
    match (&data.data, train, val) {
        (Some(root), None, None) => Ok(DataSpec::Ucf101 {
            root: root.clone(),
            splits: data.splits.clone(),
            split,
            frames: data.frames,
        }),
        (None, Some(train), Some(val)) => Ok(DataSpec::List {
            root: data.root.clone().unwrap_or_else(|| PathBuf::from(".")),
            train: train.clone(),
            val: val.clone(),
            classes: data.classes.clone(),
        }),
        _ => bail!("give either --data (UCF-101 layout) or --train-list and --val-list"),
    }
}

fn set_threads(threads: Option<i32>) {
    if let Some(t) = threads {
        tch::set_num_threads(t);
    }
}

pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    set_threads(args.threads);
    let device = args.device.resolve().map_err(anyhow::Error::msg)?;
    let has_data_flags = args.data.data.is_some() || args.train_list.is_some();
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading training config {}", path.display()))?;
            serde_json::from_str::<TrainConfig>(&text)
                .with_context(|| format!("training config {}", path.display()))?
        }
        None => {
            let spec = data_spec(
                &args.data,
                args.split,
                args.train_list.as_ref(),
                args.val_list.as_ref(),
            )?;
            TrainConfig::preset(&args.preset, spec)?
        }
    };
    if args.config.is_some() && has_data_flags {
        config.data = data_spec(
            &args.data,
            args.split,
            args.train_list.as_ref(),
            args.val_list.as_ref(),
        )?;
    }
    if args.resume {
        // The run continues as it was configured.
        let saved = args.out.join("config.json");
        let text = std::fs::read_to_string(&saved)
            .with_context(|| format!("--resume: reading {}", saved.display()))?;
        config = serde_json::from_str(&text)
            .with_context(|| format!("--resume: training config {}", saved.display()))?;
    } else {
        apply_overrides(&mut config, &args);
    }
    tracing::info!(
        "training {} on {} ({} epochs, batch {}, lr {}), device {}, output {}",
        config.model.name,
        match &config.data {
            DataSpec::Ucf101 { root, split, .. } => format!("{} split {split}", root.display()),
            DataSpec::List { train, .. } => train.display().to_string(),
        },
        config.epochs,
        config.batch_size,
        config.schedule.base_lr,
        device_name(device),
        args.out.display()
    );
    let outcome = Trainer::new(config, &args.out, device)?
        .progress(!args.quiet)
        .run(args.resume)?;
    super::out::outln!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

fn apply_overrides(config: &mut TrainConfig, a: &TrainArgs) {
    if let Some(v) = a.epochs {
        // A preset's step milestones keep their place relative to the run's length.
        if let Decay::Step { milestones, .. } = &mut config.schedule.decay {
            let old = config.epochs.max(1);
            for m in milestones.iter_mut() {
                *m = ((u64::from(*m) * u64::from(v)).div_ceil(u64::from(old))) as u32;
            }
        }
        config.epochs = v;
        config.schedule.epochs = v;
    }
    if let Some(v) = a.batch_size {
        config.batch_size = v;
    }
    if let Some(v) = a.lr {
        config.schedule.base_lr = v;
    }
    if let Some(v) = a.warmup {
        config.schedule.warmup_epochs = v;
    }
    if let Some(m) = &a.milestones {
        config.schedule.decay = Decay::Step {
            milestones: m.clone(),
            gamma: a.gamma,
        };
    }
    if a.cosine {
        config.schedule.decay = Decay::Cosine;
    }
    if let Some(v) = a.momentum {
        config.sgd.momentum = v;
    }
    if let Some(v) = a.nesterov {
        config.sgd.nesterov = v;
    }
    if let Some(v) = a.weight_decay {
        config.sgd.weight_decay = v;
    }
    if let Some(v) = a.clip_grad {
        config.clip_grad = (v > 0.0).then_some(v);
    }
    if let Some(v) = a.dropout {
        config.model.dropout = v;
    }
    if let Some(v) = a.partial_bn {
        config.partial_bn = v;
    }
    if let Some(v) = a.label_smoothing {
        config.label_smoothing = v;
    }
    if let Some(v) = a.segments {
        config.model.num_segments = v;
    }
    if let Some(v) = a.interval {
        config.interval = (v > 0).then_some(v);
    }
    if let Some(v) = a.input_size {
        config.model.input_size = v;
    }
    if let Some(v) = &a.scales {
        config.scales = v.clone();
    }
    if let Some(v) = a.flip {
        config.flip = v;
    }
    if let Some(v) = a.seed {
        config.seed = v;
    }
    if let Some(v) = a.workers {
        config.workers = v;
    }
    if let Some(v) = a.eval_every {
        config.eval_every = v;
    }
    if let Some(v) = &a.init {
        config.init = Some(v.clone());
    }
    if let Some(v) = a.amp {
        config.amp = v;
    }
    if a.strict {
        config.strict = true;
    }
    if let Some(v) = a.checkpoint_every {
        config.checkpoint_every = (v > 0).then_some(v);
    }
    if let Some(v) = a.cache_decoded {
        config.cache_decoded = v;
    }
    if let Some(v) = a.live_stride {
        config.live_stride = Some(v);
    }
    if let Some(v) = a.test_clips {
        config.test.clips = v;
    }
    if let Some(v) = a.test_crop {
        config.test.crop = v.test_crop();
    }
    if let Some(teacher) = &a.teacher {
        config.distill = Some(Distill {
            teacher: teacher.clone(),
            temperature: a.distill_temperature,
            weight: a.distill_weight,
        });
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum CropArg {
    #[value(alias = "center")]
    Centre,
    Three,
    Ten,
}

impl CropArg {
    pub(crate) fn test_crop(self) -> TestCrop {
        match self {
            CropArg::Centre => TestCrop::Centre,
            CropArg::Three => TestCrop::Three,
            CropArg::Ten => TestCrop::Ten,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Trained model(s); with several --split, one per split in the same order
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// UCF-101 split(s): 1, 2, 3 or a list such as 1,2,3 (the mean over them is printed too)
    #[arg(long, value_delimiter = ',', default_value = "1")]
    split: Vec<u8>,
    /// Evaluate a list file (`relative/path label` lines) instead of a UCF-101 split
    #[arg(long)]
    list: Option<PathBuf>,
    /// Crops per clip (default: the model's test protocol, else centre)
    #[arg(long, value_enum)]
    crop: Option<CropArg>,
    /// Clips per video (default: the model's test protocol, else 1)
    #[arg(long)]
    clips: Option<usize>,
    /// Frames per clip (default: the model's)
    #[arg(long)]
    segments: Option<usize>,
    /// Dense clips with this frame interval, 0 for TSN segments (default: as the model was
    /// trained; for models that do not say, 4 for MVF and TSN segments otherwise)
    #[arg(long)]
    interval: Option<usize>,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Also run uni-directional models frame by frame through the online recogniser
    #[arg(long)]
    online: bool,
    /// Write the confusion matrix of each split here (PNG)
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    strict: bool,
    #[arg(long, default_value = "auto")]
    device: DeviceArg,
    #[arg(long)]
    threads: Option<i32>,
    #[arg(long)]
    quiet: bool,
}

fn scores_json(s: &Scores) -> serde_json::Value {
    json!({"top1": s.top1, "top5": s.top5, "mean_class_acc": s.mean_class_acc, "videos": s.count})
}

pub fn eval(args: EvalArgs) -> anyhow::Result<()> {
    set_threads(args.threads);
    let device = args.device.resolve().map_err(anyhow::Error::msg)?;
    let sets: Vec<(String, Dataset)> = if let Some(list) = &args.list {
        let root = args.data.root.clone().unwrap_or_else(|| PathBuf::from("."));
        vec![(
            list.display().to_string(),
            Dataset::from_list(list, &root, args.data.classes.as_deref())?,
        )]
    } else {
        let Some(root) = &args.data.data else {
            bail!("give --data (UCF-101 layout) or --list");
        };
        let splits_dir = args
            .data
            .splits
            .clone()
            .unwrap_or_else(|| root.join("ucfTrainTestlist"));
        let layout = if args.data.frames {
            Layout::Frames
        } else {
            Layout::Video
        };
        let mut sets = Vec::new();
        for &split in &args.split {
            if !(1..=3).contains(&split) {
                bail!("--split {split}: UCF-101 has splits 1, 2 and 3");
            }
            sets.push((
                format!("split {split}"),
                Dataset::ucf101(root, &splits_dir, split, Subset::Test, layout)?,
            ));
        }
        sets
    };
    if args.model.len() != 1 && args.model.len() != sets.len() {
        bail!(
            "{} models for {} evaluation sets: give one model, or one per split",
            args.model.len(),
            sets.len()
        );
    }
    if args.model.len() == 1 && sets.len() > 1 {
        tracing::warn!(
            "one model evaluated on {} splits: the protocol trains one model per split",
            sets.len()
        );
    }
    let mut all = Vec::new();
    for (i, (name, set)) in sets.into_iter().enumerate() {
        let path = &args.model[i.min(args.model.len() - 1)];
        let (_vs, net) = ActionNet::load(path, device)
            .with_context(|| format!("loading model {}", path.display()))?;
        let config = net.config().clone();
        if set.classes.len() as i64 != config.num_classes {
            bail!(
                "{}: the model has {} classes, {name} has {}",
                path.display(),
                config.num_classes,
                set.classes.len()
            );
        }
        let protocol =
            TestProtocol::of_checkpoint(&TensorFile::read_metadata(path)?, &config, path)?.with(
                ProtocolOverrides {
                    frames: args.segments,
                    interval: args.interval,
                    clips: args.clips,
                    crop: args.crop.map(CropArg::test_crop),
                },
            );
        let options = EvalOptions {
            crop: protocol.crop,
            clips: protocol.clips,
            batch_size: args.batch_size,
            workers: args.workers,
            sampling: protocol.sampling(),
            strict: args.strict,
            cache: None,
            progress: !args.quiet,
        };
        let set = Arc::new(set);
        let report = evaluate(&net, set.clone(), &options, device)?;
        if !report.skipped.is_empty() {
            tracing::warn!(
                "{} unreadable videos left out of {name}: {}",
                report.skipped.len(),
                report
                    .skipped
                    .iter()
                    .map(|(p, why)| format!("{} ({why})", p.display()))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let mut line = json!({
            "set": name,
            "model": path.display().to_string(),
            "arch": config.name,
            "crop": protocol.crop,
            "clips": protocol.clips,
            "frames": protocol.frames,
            "interval": protocol.interval,
            "views": report.views,
            "skipped": report.skipped.len(),
            "seconds": report.seconds,
        });
        if let (Some(obj), serde_json::Value::Object(s)) =
            (line.as_object_mut(), scores_json(&report.scores))
        {
            obj.extend(s);
        }
        if args.online {
            if !config.is_causal() {
                bail!(
                    "--online: {} is not uni-directional ({}), it cannot run frame by frame",
                    path.display(),
                    config.name
                );
            }
            let mut recognizer = Recognizer::from_checkpoint(
                path,
                RecognizerOptions {
                    device,
                    ..RecognizerOptions::default()
                },
            )?;
            let online = evaluate_online(&mut recognizer, &net, set.clone(), &options, 0)?;
            if let Some(obj) = line.as_object_mut() {
                obj.insert("online".into(), serde_json::to_value(&online)?);
            }
        }
        if let Some(out) = &args.out {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let file = out.join(format!("confusion-{}.png", name.replace([' ', '/'], "_")));
            shiftlive::train::confusion(
                &file,
                &report.confusion,
                &set.classes,
                &format!("{} on {name}", config.name),
            )?;
        }
        super::out::outln!("{line}");
        all.push(report.scores);
    }
    if all.len() > 1 {
        let n = all.len() as f64;
        super::out::outln!(
            "{}",
            json!({"mean": {
                "sets": all.len(),
                "top1": all.iter().map(|s| s.top1).sum::<f64>() / n,
                "top5": all.iter().map(|s| s.top5).sum::<f64>() / n,
                "mean_class_acc": all.iter().map(|s| s.mean_class_acc).sum::<f64>() / n,
            }})
        );
    }
    Ok(())
}
