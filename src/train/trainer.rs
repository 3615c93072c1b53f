//! The training loop: data on worker threads, SGD with a schedule, validation, a checkpoint after
//! every epoch. [`Trainer::run`] prepares a `Run` (data, network, optimiser, starting weights),
//! then loops over three parts, as burn's learner keeps them apart: `train_epoch` (the steps,
//! each through `step::train_step_with`), `validate`, and `end_epoch` (the record, the metric
//! files through `report::MetricsLog`, the checkpoints through `checkpointer::Checkpointer`).
//!
//! Every random choice is a function of the seed and the position in the run: the data order and
//! augmentation of (seed, epoch, item), dropout of (seed, epoch, step). Resuming at a step replays
//! the same numbers an uninterrupted run would have produced.
//!
//! Data-parallel training (`parallel.rs`) hooks in at the gradients between backward and the
//! update (`step::StepHook`), the loader's shard, the step's figures, validation, and the files
//! (only rank 0's `Checkpointer` and `MetricsLog` write).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tch::{Device, nn};

use super::TrainError;
use super::checkpointer::{Checkpointer, RunState, init_from};
use super::config::TrainConfig;
use super::eval::{EvalOptions, EvalReport};
use super::lock::RunLock;
use super::optim::Sgd;
use super::report::{EpochRecord, MetricsLog, TrainOutcome, write_atomic};
use super::step::{SoftTargets, StepSettings, Teacher, mix, train_step_with};
use super::warnings::clip_length_warning;
use crate::data::{Batch, Dataset, DecodeCache, Flip, Loader, Mode, TestCrop};
use crate::model::ActionNet;

mod tally;

/// A training run writing into `out`.
pub struct Trainer {
    config: TrainConfig,
    out: PathBuf,
    pub(super) device: Device,
    progress: bool,
    /// Replace a run already in `out` (a new run refuses to otherwise).
    force: bool,
    /// Set (by a signal handler) to stop at the next step with a checkpoint.
    pub(super) stop: Option<Arc<AtomicBool>>,
    /// The data-parallel job this process is a rank of.
    pub(super) dist: Option<std::rc::Rc<crate::dist::ProcessGroup>>,
}

/// A run in progress: what `prepare` builds and the epoch functions advance.
struct Run {
    /// The trainer's config with the data set's class count.
    config: TrainConfig,
    classes: Vec<String>,
    flip: Flip,
    train_set: Arc<Dataset>,
    val_set: Arc<Dataset>,
    cache: Option<Arc<DecodeCache>>,
    vs: nn::VarStore,
    net: ActionNet,
    sgd: Sgd,
    teacher: Option<Teacher>,
    state: RunState,
    checkpointer: Checkpointer,
    metrics: MetricsLog,
    /// Unreadable videos left out so far, with the reason.
    skipped: BTreeMap<PathBuf, String>,
    /// Mixed precision's loss scale (CUDA with `amp`), halved at each fp16 overflow.
    loss_scale: Option<f64>,
}

/// The running figures of the epoch being trained.
struct EpochProgress {
    started: Instant,
    steps: usize,
    /// Time the model waited for data.
    wait: Duration,
    /// Clips trained in this process (not before a resume).
    clips: u64,
    /// The rate of the last step.
    lr: f64,
    seconds: f64,
    bar: ProgressBar,
}

impl Trainer {
    pub fn new(config: TrainConfig, out: &Path, device: Device) -> Result<Self, TrainError> {
        config.validate()?;
        Ok(Self {
            config,
            out: out.to_path_buf(),
            device,
            progress: true,
            force: false,
            stop: None,
            dist: None,
        })
    }

    /// Draw progress bars (on by default; off for tests and logs).
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// Start a new run even where one was written before, replacing it.
    pub fn force(mut self, on: bool) -> Self {
        self.force = on;
        self
    }

    /// Stop when `flag` is set: after the step in progress, with a checkpoint at that step,
    /// returning [`TrainError::Interrupted`].
    pub fn stop_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst))
    }

    fn interrupted(&self, state: &RunState) -> TrainError {
        TrainError::Interrupted {
            epoch: state.epoch + 1,
            step: state.step,
            checkpoint: self.checkpoint_path(),
            out: self.out.clone(),
        }
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        Checkpointer::checkpoint_path(&self.out)
    }

    pub fn best_path(&self) -> PathBuf {
        Checkpointer::best_path(&self.out)
    }

    /// Runs the training, from scratch or, with `resume`, from `out/checkpoint.safetensors`,
    /// holding `out`'s lock meanwhile.
    pub fn run(&self, resume: bool) -> Result<TrainOutcome, TrainError> {
        let lock = || RunLock::acquire(&self.out, resume, self.force);
        let _lock = self.writes().then(lock).transpose()?;
        let mut run = self.prepare(resume)?;
        if resume && run.state.epoch >= run.config.regimen.epochs {
            tracing::warn!(
                "the run in {} is finished ({} of {} epochs): nothing to train; give --epochs \
                 with more to extend it",
                self.out.display(),
                run.state.epoch,
                run.config.regimen.epochs
            );
        }
        while run.state.epoch < run.config.regimen.epochs {
            let progress = self.train_epoch(&mut run)?;
            let val = self.validate(&mut run)?;
            self.end_epoch(&mut run, &progress, val)?;
            if self.stopping() && run.state.epoch < run.config.regimen.epochs {
                // The epoch's checkpoint is written: it is the one to resume from.
                return Err(self.interrupted(&run.state));
            }
        }
        Ok(TrainOutcome {
            model: run.config.model.name.clone(),
            classes: run.classes.len(),
            epochs: run.config.regimen.epochs,
            final_record: run.state.history.last().cloned(),
            best_top1: run.state.best_top1,
            train_seconds: run.state.train_seconds,
            best: self.best_path(),
            checkpoint: self.checkpoint_path(),
        })
    }

    /// The data, the teacher, the network with its starting weights, the optimiser; writes
    /// `config.json`.
    fn prepare(&self, resume: bool) -> Result<Run, TrainError> {
        std::fs::create_dir_all(&self.out).map_err(|source| TrainError::Io {
            path: self.out.clone(),
            source,
        })?;
        let (train_set, val_set) = self.config.data.training_sets()?;
        let classes = train_set.classes.clone();
        let mut config = self.config.clone();
        config.model.num_classes = classes.len() as i64;
        config.validate()?;
        let checkpointer = Checkpointer::new(&self.out, &classes)?.writing(self.writes());
        let teacher = match &config.distill {
            Some(d) => Some(Teacher::load(d, &config.model, self.device)?),
            None => None,
        };
        tch::manual_seed(mix(config.seed, u64::MAX, 0));
        let vs = nn::VarStore::new(self.device);
        let mut net = ActionNet::new(&vs.root(), &config.model)?;
        let mut state = RunState::default();
        let mut saved = None;
        if resume {
            let (s, tensors) = checkpointer.resume(&vs, &config.model)?;
            (state, saved) = (s, Some(tensors));
        } else if let Some(init) = &config.init {
            init_from(&vs, &net, init, &config.model)?;
        } else {
            // From scratch: PyTorch's default initialisation (see the two functions).
            ActionNet::reset_convs_default(&vs);
            net.reset_classifier_default();
        }
        self.start_parallel(&config, [&train_set, &val_set], &vs, &mut state)?;
        config.log_live_stride();
        let lengths = super::warnings::probe_lengths(&train_set);
        if let Some(w) = clip_length_warning(&config.sampling(), &lengths, &train_set.source) {
            tracing::warn!("{w}");
        }
        net.set_partial_bn(config.regimen.partial_bn);
        if config.regimen.sync_bn {
            match &self.dist {
                Some(pg) if pg.world() > 1 => net.sync_batch_norm(Some(pg.replica_sum()?)),
                _ => tracing::info!("--sync-bn: a run of one process, BatchNorm as without it"),
            }
        }
        let mut sgd = Sgd::new(&vs, config.regimen.sgd, net.classifier_prefix());
        if let Some(tensors) = &saved {
            checkpointer.resume_optimiser(&mut sgd, tensors)?;
        }
        let json = serde_json::to_string_pretty(&config).map_err(|source| TrainError::Json {
            what: "the training config",
            source,
        })?;
        if self.writes() {
            write_atomic(&self.out.join("config.json"), &json)?;
        }
        Ok(Run {
            flip: config.regimen.flip.flip(&classes),
            cache: config
                .regimen
                .cache_decoded
                .then(|| Arc::new(DecodeCache::new(4 << 30))),
            loss_scale: (config.regimen.amp && self.device.is_cuda()).then_some(65536.0),
            metrics: MetricsLog::new(&self.out, &config.model.name).writing(self.writes()),
            train_set: Arc::new(train_set),
            val_set: Arc::new(val_set),
            skipped: BTreeMap::new(),
            classes,
            vs,
            net,
            sgd,
            teacher,
            state,
            checkpointer,
            config,
        })
    }

    /// The steps of one epoch (from the saved step when resuming mid-epoch).
    fn train_epoch(&self, run: &mut Run) -> Result<EpochProgress, TrainError> {
        let (c, epoch) = (&run.config, run.state.epoch);
        let mode = Mode::Train {
            scales: c.regimen.scales.clone(),
            flip: run.flip.clone(),
        };
        let options = c.loader_options(mode, run.cache.clone());
        let (set, epoch64) = (run.train_set.clone(), u64::from(epoch));
        let mut loader = Loader::sharded(set, options, epoch64, self.shard())?;
        let steps = loader.len();
        if steps == 0 {
            return Err(TrainError::Config(format!(
                "the training set {} has {} videos, fewer than one batch of {}",
                run.train_set.source,
                run.train_set.items.len(),
                c.regimen.batch_size
            )));
        }
        let prefix = format!("epoch {}/{}", epoch + 1, c.regimen.epochs);
        let bar = super::eval::bar(self.progress, steps as u64, &prefix);
        bar.set_position(run.state.step as u64);
        let mut progress = EpochProgress {
            started: Instant::now(),
            steps,
            wait: Duration::ZERO,
            clips: 0,
            lr: c.regimen.schedule.lr(f64::from(epoch)),
            seconds: 0.0,
            bar,
        };
        for step in 0..steps {
            let Some(batch) = loader.next() else { break };
            let batch = batch?;
            if step < run.state.step {
                // Already done before the interruption; the loader's content depends only
                // on (seed, epoch, batch), so skipping it keeps the rest identical.
                continue;
            }
            self.train_batch(run, &batch, step, &mut progress)?;
            if self.stopping() && run.state.step < steps {
                progress.bar.abandon();
                let mut s = run.state.clone();
                s.train_seconds += progress.started.elapsed().as_secs_f64();
                run.checkpointer.save(&run.vs, &run.config, &run.sgd, &s)?;
                return Err(self.interrupted(&s));
            }
        }
        for s in loader.skipped() {
            run.skipped.insert(s.path.clone(), s.reason.clone());
        }
        drop(loader);
        if run.state.seen == 0 {
            progress.bar.abandon();
            let example = run.skipped.iter().next().map_or(String::new(), |(p, why)| {
                format!(": {} ({why})", p.display())
            });
            return Err(TrainError::Config(format!(
                "epoch {}: not one clip of {} could be read, all {} videos skipped{example}",
                epoch + 1,
                run.train_set.source,
                run.skipped.len()
            )));
        }
        progress.bar.finish_and_clear();
        progress.seconds = progress.started.elapsed().as_secs_f64();
        run.state.train_seconds += progress.seconds;
        Ok(progress)
    }

    /// One step on `batch` (a data-parallel run passes its gradient hook where `NoHook` is).
    fn train_batch(
        &self,
        run: &mut Run,
        batch: &Batch,
        step: usize,
        p: &mut EpochProgress,
    ) -> Result<(), TrainError> {
        let (c, epoch) = (&run.config, run.state.epoch);
        p.wait += batch.wait;
        tch::manual_seed(mix(c.seed, u64::from(epoch), step as u64));
        p.lr = c
            .regimen
            .schedule
            .lr(f64::from(epoch) + step as f64 / p.steps as f64);
        let x = batch.input.to_device(self.device);
        let y = batch.labels.to_device(self.device);
        let settings = StepSettings {
            lr: p.lr,
            label_smoothing: c.regimen.label_smoothing,
            clip_grad: c.regimen.clip_grad,
            loss_scale: run.loss_scale,
        };
        let soft = match &run.teacher {
            Some(t) => Some((t.logits(&x, &y)?, t)),
            None => None,
        };
        let targets = soft.as_ref().map(|(logits, t)| SoftTargets {
            logits,
            temperature: t.temperature,
            weight: t.weight,
        });
        let (net, sgd) = (&run.net, &mut run.sgd);
        let out = train_step_with(
            net,
            sgd,
            &x,
            &y,
            targets.as_ref(),
            &settings,
            &mut *self.hook(&run.vs),
        )?;
        if !out.loss.is_finite() {
            p.bar.abandon();
            return Err(self.non_finite(run, batch, out.loss, step));
        }
        run.state.step = step + 1;
        p.bar.inc(1);
        if !out.stepped {
            // fp16 overflow: the update was skipped; halve the scale (as GradScaler).
            if let Some(scale) = &mut run.loss_scale {
                *scale /= 2.0;
                tracing::debug!("fp16 overflow: loss scale now {scale}");
            }
            return Ok(());
        }
        self.tally(run, batch, &out, p)
    }

    /// One centre-cropped clip per validation video, every `eval_every` epochs and after the
    /// last (with the confusion matrix).
    fn validate(&self, run: &mut Run) -> Result<Option<EvalReport>, TrainError> {
        let (c, epoch) = (&run.config, run.state.epoch);
        let last = epoch + 1 == c.regimen.epochs;
        if !(last || (c.eval_every > 0 && (epoch + 1).is_multiple_of(c.eval_every))) {
            return Ok(None);
        }
        let options = EvalOptions {
            crop: TestCrop::Centre,
            clips: 1,
            batch_size: c.regimen.batch_size,
            workers: c.workers.max(1),
            sampling: c.sampling(),
            strict: c.strict,
            cache: run.cache.clone(),
            progress: self.progress,
            mirror_map: None,
        };
        let report = self.evaluate_all(&run.net, run.val_set.clone(), &options)?;
        for (path, why) in &report.skipped {
            run.skipped.insert(path.clone(), why.clone());
        }
        Ok(Some(report))
    }

    /// The epoch's record, the best model if it improved, the checkpoint, the metric files.
    fn end_epoch(
        &self,
        run: &mut Run,
        p: &EpochProgress,
        report: Option<EvalReport>,
    ) -> Result<(), TrainError> {
        let val = report.as_ref().map(|r| r.scores);
        let state = &mut run.state;
        let record = EpochRecord {
            epoch: state.epoch + 1,
            lr: p.lr,
            train_loss: state.loss_sum / state.seen.max(1) as f64,
            train_top1: state.correct as f64 / state.seen.max(1) as f64,
            val_loss: report.as_ref().map(|r| r.loss),
            val_top1: val.map(|s| s.top1),
            val_top5: val.map(|s| s.top5),
            val_mean_class_acc: val.map(|s| s.mean_class_acc),
            clips_per_second: p.clips as f64 / p.seconds.max(1e-9),
            data_wait_seconds: p.wait.as_secs_f64(),
            epoch_seconds: p.seconds,
            skipped_videos: run.skipped.len(),
        };
        run.metrics.log(&record, run.config.regimen.epochs);
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
            let epoch = run.state.epoch;
            run.checkpointer.save_best(&run.vs, &run.config, epoch)?;
        }
        if improved && let Some(report) = &report {
            // The best model's confusion, written when it becomes the best.
            let (set, epoch) = (&run.val_set.source, run.state.epoch);
            run.metrics
                .confusion(&report.confusion, &run.classes, set, epoch)?;
        }
        run.checkpointer
            .save(&run.vs, &run.config, &run.sgd, &run.state)?;
        run.metrics.write(&run.state.history)?;
        run.metrics.skipped(&run.skipped)
    }
}
