//! `shiftlive train`: a preset (or a config file) on UCF-101 or lists of labelled videos, the
//! flags turned into one `train::Overrides`; `--resume` continues a run as it was configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, ensure};
use shiftlive::device::device_name;
use shiftlive::model::Preset;
use shiftlive::train::{DataSpec, Decay, Distill, FlipSpec, Overrides, TrainConfig, Trainer};

use super::args::{self, ComputeArgs, CropArg, DataArgs};

/// The preset `train` takes when none is given.
const DEFAULT_PRESET: Preset = Preset::TsmR18TinyOnline;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Preset: a model with its training recipe (see `shiftlive presets`; default
    /// tsm_r18_tiny_online, alias tsm_online_tiny)
    #[arg(long, value_parser = args::preset)]
    preset: Option<Preset>,
    /// A training config (JSON, as written to OUT/config.json); flags override its fields
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// UCF-101 split (1, 2 or 3)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
    split: u8,
    /// Training list: `relative/path label` lines, labels 0-based (0..=N-1 for N classes)
    #[arg(long, requires = "val_list")]
    train_list: Option<PathBuf>,
    /// Validation list, as --train-list
    #[arg(long)]
    val_list: Option<PathBuf>,
    /// Output directory: checkpoint, best model, metrics, curves, confusion matrices
    #[arg(long)]
    out: PathBuf,
    /// Continue from OUT/checkpoint.safetensors as OUT/config.json says; flags that would change
    /// the run are refused, --epochs extends it
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Start a new run in OUT even though it holds one, replacing its models and metrics
    #[arg(long)]
    force: bool,
    /// Print the fully resolved training config (preset, config file and flags applied) as
    /// JSON and exit without training
    #[arg(long)]
    dry_run: bool,
    /// Epochs to train, at least 1 (default: the preset's, see `shiftlive presets`); with
    /// --resume, extends a finished run
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: Option<u32>,
    /// Clips per step, at least 1 (default: the preset's)
    #[arg(long, value_parser = super::ranges::positive())]
    batch_size: Option<usize>,
    /// Base learning rate, in (0, 1e12] (default: the preset's); a huge one is allowed, to
    /// see a divergence stop the run with its message
    #[arg(long, value_parser = super::ranges::above64(0.0..=1e12))]
    lr: Option<f64>,
    /// Linear warm-up epochs, 0..=1000 (default: the preset's, 0 for most)
    #[arg(long, value_parser = super::ranges::finite64(0.0..=1000.0))]
    warmup: Option<f64>,
    /// Step decay at these epochs (comma-separated) (default: the preset's schedule)
    #[arg(long, value_delimiter = ',', conflicts_with = "cosine")]
    milestones: Option<Vec<u32>>,
    /// Factor of the learning rate at each of --milestones, in (0, 1]
    #[arg(long, default_value_t = 0.1, value_parser = super::ranges::above64(0.0..=1.0))]
    gamma: f64,
    /// Cosine decay to zero at the last epoch (default: the preset's schedule)
    #[arg(long)]
    cosine: bool,
    /// SGD momentum, 0..=0.999 (default: the preset's, 0.9 for all)
    #[arg(long, value_parser = super::ranges::finite64(0.0..=0.999))]
    momentum: Option<f64>,
    /// Nesterov momentum (default: the preset's)
    #[arg(long, action = clap::ArgAction::Set)]
    nesterov: Option<bool>,
    /// L2 weight decay, 0..=0.1 (default: the preset's)
    #[arg(long, value_parser = super::ranges::finite64(0.0..=0.1))]
    weight_decay: Option<f64>,
    /// Clip the gradients' joint L2 norm to this, 0..=1e6, 0 for off (default: the preset's)
    #[arg(long, value_parser = super::ranges::finite64(0.0..=1e6))]
    clip_grad: Option<f64>,
    /// Dropout before the classifier, 0..=0.99 (default: the preset's)
    #[arg(long, value_parser = super::ranges::finite64(0.0..=0.99))]
    dropout: Option<f64>,
    /// Freeze the BatchNorm statistics of all but the first layer, as TSN fine-tunes (default:
    /// the preset's)
    #[arg(long, action = clap::ArgAction::Set)]
    partial_bn: Option<bool>,
    /// Synchronised BatchNorm in a data-parallel run: every rank normalises with the statistics
    /// of the global batch (one small all-reduce per BatchNorm in forward and in backward);
    /// without it each rank uses its own share's, as DistributedDataParallel does
    #[arg(long)]
    sync_bn: bool,
    /// Label smoothing of the cross-entropy, 0..=0.99 (default: 0)
    #[arg(long, value_parser = super::ranges::finite64(0.0..=0.99))]
    label_smoothing: Option<f64>,
    /// Frames per clip (TSN segments or dense clip length), at least 1 (default: the preset's)
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
    segments: Option<i64>,
    /// Dense clips with this frame interval (MVF); 0 for TSN segments (default: the preset's)
    #[arg(long)]
    interval: Option<usize>,
    /// Input side in pixels, 16..=1024 (default: the preset's)
    #[arg(long, value_parser = clap::value_parser!(i64).range(16..=1024))]
    input_size: Option<i64>,
    /// Multi-scale crop scales, comma-separated, each in 0.05..=1 (default: the preset's)
    #[arg(long, value_delimiter = ',', value_parser = super::ranges::finite(0.05..=1.0))]
    scales: Option<Vec<f32>>,
    /// Horizontal flips in training (default: the preset's; mirror for the tiny motion presets)
    #[arg(long, value_enum)]
    flip: Option<FlipSpec>,
    /// Seed of every random choice; a run is reproducible from it (default: 0)
    #[arg(long)]
    seed: Option<u64>,
    /// Data worker threads, at least 1 (default: 2)
    #[arg(long, value_parser = super::ranges::positive())]
    workers: Option<usize>,
    /// Validate every N epochs, and always after the last; 0: after the last only (default: 1)
    #[arg(long)]
    eval_every: Option<u32>,
    /// Initial weights (safetensors, e.g. from `shiftlive import`); the classifier is replaced if
    /// its class count differs (default: none, from scratch)
    #[arg(long)]
    init: Option<PathBuf>,
    /// Mixed precision, CUDA only (default: the preset's, on for the UCF-101 recipes)
    #[arg(long, action = clap::ArgAction::Set)]
    amp: Option<bool>,
    /// Stop at the first unreadable video instead of skipping it
    #[arg(long)]
    strict: bool,
    /// Also checkpoint every N steps, at least 1 (default: only after each epoch)
    #[arg(long, value_parser = super::ranges::positive())]
    checkpoint_every: Option<usize>,
    /// Keep decoded videos in memory across epochs (default: the preset's, on for the tiny
    /// motion presets)
    #[arg(long, action = clap::ArgAction::Set)]
    cache_decoded: Option<bool>,
    /// Frame stride for running the trained model live (the spacing of its training frames in
    /// the videos), stored in the checkpoints (default: the dense clips' --interval)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    live_stride: Option<u32>,
    /// Clips per video in the trained model's test protocol (used by `eval` and `predict`),
    /// 1..=100 (default: the preset's, 1 for most)
    #[arg(long, value_parser = super::ranges::count(1..=100))]
    test_clips: Option<usize>,
    /// Crops per clip in the trained model's test protocol (default: the preset's, centre for
    /// most)
    #[arg(long, value_enum)]
    test_crop: Option<CropArg>,
    /// Distil from this trained model (same classes and input size): its softened scores are
    /// mixed with the labels in the loss (default: none)
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Softmax temperature of the distillation, in (0, 100]
    #[arg(long, default_value_t = 4.0, requires = "teacher", value_parser = super::ranges::above64(0.0..=100.0))]
    distill_temperature: f64,
    /// Weight of the teacher's soft targets in the loss (the labels get 1 - weight), 0..=1
    #[arg(long, default_value_t = 0.5, requires = "teacher", value_parser = super::ranges::finite64(0.0..=1.0))]
    distill_weight: f64,
    #[command(flatten)]
    compute: ComputeArgs,
    /// Seconds a data-parallel rank waits for the others (start-up, each collective) before
    /// giving up (default: SHIFTLIVE_DIST_TIMEOUT, else 300)
    #[arg(long)]
    dist_timeout: Option<f64>,
    /// No progress bars
    #[arg(long)]
    quiet: bool,
}

impl TrainArgs {
    /// The settings the flags change.
    fn overrides(&self) -> Overrides {
        Overrides {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            warmup: self.warmup,
            decay: match (&self.milestones, self.cosine) {
                (Some(milestones), _) => Some(Decay::Step {
                    milestones: milestones.clone(),
                    gamma: self.gamma,
                }),
                (None, true) => Some(Decay::Cosine),
                (None, false) => None,
            },
            momentum: self.momentum,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            clip_grad: self.clip_grad,
            dropout: self.dropout,
            partial_bn: self.partial_bn,
            sync_bn: self.sync_bn.then_some(true),
            label_smoothing: self.label_smoothing,
            segments: self.segments,
            interval: self.interval,
            input_size: self.input_size,
            scales: self.scales.clone(),
            flip: self.flip,
            seed: self.seed,
            workers: self.workers,
            eval_every: self.eval_every,
            init: self.init.clone(),
            amp: self.amp,
            strict: self.strict.then_some(true),
            checkpoint_every: self.checkpoint_every,
            cache_decoded: self.cache_decoded,
            live_stride: self.live_stride,
            test_clips: self.test_clips,
            test_crop: self.test_crop.map(CropArg::test_crop),
            distill: self.teacher.as_ref().map(|teacher| Distill {
                teacher: teacher.clone(),
                temperature: self.distill_temperature,
                weight: self.distill_weight,
            }),
        }
    }

    fn has_data_flags(&self) -> bool {
        self.data.data.is_some() || self.train_list.is_some()
    }

    fn data_spec(&self) -> anyhow::Result<DataSpec> {
        self.data
            .spec(self.split, self.train_list.as_ref(), self.val_list.as_ref())
    }
}

fn read_config(path: &Path) -> anyhow::Result<TrainConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading training config {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("training config {}", path.display()))
}

/// A new run: the preset's (or `--config`'s) settings with the flags applied.
fn new_config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let mut config = read_config(path)?;
            if args.has_data_flags() {
                config.data = args.data_spec()?;
            }
            config
        }
        None => TrainConfig::preset(args.preset.unwrap_or(DEFAULT_PRESET), args.data_spec()?),
    };
    config.apply(&args.overrides());
    Ok(config)
}

/// A resumed run: OUT/config.json, which a preset, config or data flags may repeat but not
/// change; flags that do not change what the run computes are applied and logged.
fn resumed_config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let saved = args.out.join("config.json");
    let mut config = read_config(&saved).context("--resume")?;
    if let Some(preset) = args.preset {
        ensure!(
            preset.name() == config.model.name,
            "--resume: --preset {preset} differs from the run's model {}",
            config.model.name
        );
    }
    if let Some(path) = &args.config {
        ensure!(
            read_config(path)? == config,
            "--resume: --config {} differs from the run's {}",
            path.display(),
            saved.display()
        );
    }
    if args.has_data_flags() {
        ensure!(
            args.data_spec()? == config.data,
            "--resume: the data flags differ from the run's data ({:?})",
            config.data
        );
    }
    let applied = config.apply_on_resume(&args.overrides())?;
    if !applied.is_empty() {
        tracing::info!(
            "--resume: applied {} to the run (now {} epochs)",
            applied.join(", "),
            config.regimen.epochs
        );
    }
    Ok(config)
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let launch = super::dist::launch()?;
    let device = super::dist::pin(args.compute.init()?, launch.as_ref())?;
    let config = if args.resume {
        resumed_config(&args)?
    } else {
        new_config(&args)?
    };
    for warning in config.warnings(device, args.resume) {
        tracing::warn!("{warning}");
    }
    if args.dry_run {
        config.validate()?;
        super::out::outln!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(());
    }
    tracing::info!(
        "training {} on {} ({} epochs, batch {}, lr {}), device {}, output {}",
        config.model.name,
        match &config.data {
            DataSpec::Ucf101 { root, split, .. } => format!("{} split {split}", root.display()),
            DataSpec::List { train, .. } => train.display().to_string(),
        },
        config.regimen.epochs,
        config.regimen.batch_size,
        config.regimen.schedule.base_lr,
        device_name(device),
        args.out.display()
    );
    let job = super::dist::join(launch.as_ref(), device, args.dist_timeout)?;
    // Ranks other than 0 draw no bars and print no outcome (rank 0's is the job's).
    let rank0 = job.as_ref().is_none_or(|pg| pg.rank() == 0);
    let mut trainer = Trainer::new(config, &args.out, device)?;
    if let Some(pg) = job {
        trainer = trainer.data_parallel(pg);
    }
    let outcome = trainer
        .progress(!args.quiet && rank0)
        .force(args.force)
        .stop_on(stop_on_signal())
        .run(args.resume)?;
    if rank0 {
        super::out::outln!("{}", serde_json::to_string(&outcome)?);
    }
    Ok(())
}

/// A flag set by Ctrl-C (SIGINT) or SIGTERM: the trainer checkpoints at the next step and
/// stops. A second signal ends the process at once.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handler = move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("second interrupt: stopping without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("interrupt: stopping after this step with a checkpoint (again to quit now)");
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        tracing::warn!("Ctrl-C handler not installed (an interrupt loses the epoch): {e}");
    }
    stop
}
