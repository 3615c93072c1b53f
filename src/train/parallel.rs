//! Data-parallel training over a [`ProcessGroup`], as PyTorch's DistributedDataParallel does it:
//! rank 0's starting weights and buffers broadcast to all, each rank its shard of the epoch's
//! order ([`Shard`]), the gradients averaged over the ranks in buckets of about 25 MB between
//! backward and the update ([`GradSync`], the step's hook), so every rank takes the same SGD
//! step. BatchNorm keeps per-replica statistics (DDP's default), or with `--sync-bn` takes those
//! of the global batch (`model::sync_bn`). Validation is split over the
//! ranks and its counts summed; the step's loss and hits are summed, so rank 0's records are the
//! job's. Only rank 0 writes (see `Checkpointer::writing`). Before any work the ranks compare
//! their config and data lists and refuse to start if they differ.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;
use tch::{Device, Kind, Tensor, nn};

use super::TrainError;
use super::checkpointer::RunState;
use super::config::TrainConfig;
use super::eval::{EvalOptions, EvalReport, evaluate};
use super::metrics::Accuracy;
use super::optim::Sgd;
use super::step::{NoHook, StepHook};
use super::trainer::Trainer;
use crate::data::{Dataset, Shard};
use crate::dist::ProcessGroup;
use crate::model::ActionNet;

/// DistributedDataParallel's default bucket size.
pub const BUCKET_BYTES: usize = 25 << 20;

/// The step hook of a data-parallel run: averages the gradients over the ranks, then gives
/// every rank rank 0's buffers (BatchNorm running statistics), as DDP's `broadcast_buffers` does
/// before each forward: the statistics a checkpoint or a validation uses are rank 0's.
pub struct GradSync<'a> {
    pub pg: &'a ProcessGroup,
    pub bucket_bytes: usize,
    /// The variables without gradient, from [`buffers`].
    pub buffers: Vec<Tensor>,
}

impl StepHook for GradSync<'_> {
    fn after_backward(&mut self, sgd: &mut Sgd) -> Result<(), TrainError> {
        // Synchronised BatchNorm's collectives ran inside the passes: a failure there first.
        self.pg.check_passes()?;
        self.pg.all_reduce_mean(&sgd.grads(), self.bucket_bytes)?;
        broadcast_flat(self.pg, &self.buffers)
    }
}

/// The variables of `vs` that take no gradient (BatchNorm's running statistics), in name order.
pub fn buffers(vs: &nn::VarStore) -> Vec<Tensor> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars.into_iter()
        .filter(|(_, t)| !t.requires_grad())
        .map(|(_, t)| t)
        .collect()
}

/// Broadcasts `tensors` from rank 0 as one flat tensor per dtype (a few collectives instead of
/// one per tensor), copying the result back in place.
fn broadcast_flat(pg: &ProcessGroup, tensors: &[Tensor]) -> Result<(), TrainError> {
    let mut kinds: Vec<Kind> = tensors.iter().map(Tensor::kind).collect();
    kinds.dedup();
    for kind in kinds {
        let group: Vec<&Tensor> = tensors.iter().filter(|t| t.kind() == kind).collect();
        let flat: Vec<Tensor> = group.iter().map(|t| t.detach().reshape([-1])).collect();
        let mut one = [Tensor::f_cat(&flat, 0)?];
        pg.broadcast(&mut one, 0)?;
        let mut offset = 0;
        tch::no_grad(|| -> Result<(), TrainError> {
            for t in group {
                let n = t.numel() as i64;
                t.shallow_clone()
                    .f_copy_(&one[0].narrow(0, offset, n).view_as(t))?;
                offset += n;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Gives every rank rank 0's variables (weights and BatchNorm buffers), in name order.
pub fn broadcast_variables(pg: &ProcessGroup, vs: &nn::VarStore) -> Result<(), TrainError> {
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tensors: Vec<tch::Tensor> = vars.into_iter().map(|(_, t)| t).collect();
    Ok(pg.broadcast(&mut tensors, 0)?)
}

/// What a rank was asked to do, to compare with the others: each config field (long values by
/// hash) and each data list's size and hash.
pub fn describe(config: &TrainConfig, sets: &[(&str, &Dataset)]) -> Vec<(String, String)> {
    let mut items = Vec::new();
    if let Ok(Value::Object(fields)) = serde_json::to_value(config) {
        for (k, v) in fields {
            let text = v.to_string();
            let text = if text.len() > 80 {
                format!("{}... (hash {:016x})", &text[..60], fnv(text.as_bytes()))
            } else {
                text
            };
            items.push((format!("config field '{k}'"), text));
        }
    }
    for (what, set) in sets {
        let mut bytes = Vec::new();
        for it in &set.items {
            bytes.extend_from_slice(format!("{}\t{}\n", it.path.display(), it.label).as_bytes());
        }
        bytes.extend_from_slice(set.classes.join("\n").as_bytes());
        let text = format!("{} videos (hash {:016x})", set.items.len(), fnv(&bytes));
        items.push((format!("the {what} list"), text));
    }
    items
}

/// FNV-1a, 64 bits: the same on every machine and build.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Evaluates `set` split over the ranks (rank r takes items r, r + W, ...) and sums the counts:
/// every rank returns the scores, loss and confusion of the whole set; the per-video results and
/// skipped videos are this rank's (their `item` indexes into `set`).
pub fn evaluate_split(
    pg: &ProcessGroup,
    net: &ActionNet,
    set: &Dataset,
    options: &EvalOptions,
    device: Device,
) -> Result<EvalReport, TrainError> {
    let (rank, world) = (pg.rank(), pg.world());
    let mut part = set.clone();
    part.items = set
        .items
        .iter()
        .skip(rank)
        .step_by(world)
        .cloned()
        .collect();
    let classes = set.classes.len();
    let mut report = if part.items.is_empty() {
        EvalReport {
            scores: Accuracy::new(classes).scores(),
            loss: 0.0,
            videos: Vec::new(),
            confusion: vec![vec![0; classes]; classes],
            skipped: Vec::new(),
            seconds: 0.0,
            views: 1,
        }
    } else {
        evaluate(net, Arc::new(part), options, device)?
    };
    for video in &mut report.videos {
        video.item = rank + video.item * world;
    }
    let s = report.scores;
    let mut counts: Vec<f64> = report
        .confusion
        .iter()
        .flatten()
        .map(|&c| c as f64)
        .collect();
    counts.push((s.top5 * s.count as f64).round());
    counts.push(s.count as f64);
    counts.push(report.loss * s.count as f64);
    let sums = pg.sum_f64(&counts)?;
    let confusion: Vec<Vec<u64>> = sums[..classes * classes]
        .chunks(classes.max(1))
        .map(|row| row.iter().map(|&c| c as u64).collect())
        .collect();
    let acc = Accuracy::from_counts(
        confusion,
        sums[classes * classes] as u64,
        sums[classes * classes + 1] as u64,
    );
    report.scores = acc.scores();
    report.confusion = acc.confusion().to_vec();
    report.loss = sums[classes * classes + 2] / sums[classes * classes + 1].max(1.0);
    Ok(report)
}

impl Trainer {
    /// Trains as one rank of the data-parallel job `pg`: the batch size is per rank (the global
    /// batch is that times the world size); only rank 0 writes files.
    pub fn data_parallel(mut self, pg: Rc<ProcessGroup>) -> Self {
        self.dist = Some(pg);
        self
    }

    /// Whether this process writes the run's files (rank 0, or a run of one process).
    pub(super) fn writes(&self) -> bool {
        self.dist.as_ref().is_none_or(|pg| pg.rank() == 0)
    }

    pub(super) fn shard(&self) -> Option<Shard> {
        self.dist.as_ref().map(|pg| Shard {
            rank: pg.rank(),
            world: pg.world(),
        })
    }

    /// The hook between backward and the update.
    pub(super) fn hook(&self, vs: &nn::VarStore) -> Box<dyn StepHook + '_> {
        match &self.dist {
            Some(pg) => Box::new(GradSync {
                pg,
                bucket_bytes: BUCKET_BYTES,
                buffers: buffers(vs),
            }),
            None => Box::new(NoHook),
        }
    }

    /// Before the first step: the ranks agree on the config and data, and take rank 0's
    /// variables; a resumed run says when the world size differs from the saved one.
    pub(super) fn start_parallel(
        &self,
        config: &TrainConfig,
        sets: [&Dataset; 2],
        vs: &nn::VarStore,
        state: &mut RunState,
    ) -> Result<(), TrainError> {
        let world = self.dist.as_ref().map_or(1, |pg| pg.world());
        if let Some(saved) = state.world.filter(|&w| w != world) {
            if state.step > 0 {
                return Err(TrainError::Config(format!(
                    "the checkpoint stopped mid-epoch with {saved} ranks; resume it with {saved} \
                     ranks (this job has {world}), or from an epoch's end"
                )));
            }
            tracing::warn!(
                "resuming a run trained with {saved} rank(s) on {world}: the global batch and \
                 each epoch's data order change from here on"
            );
        }
        state.world = Some(world);
        let Some(pg) = &self.dist else { return Ok(()) };
        pg.agree(&describe(
            config,
            &[("training", sets[0]), ("validation", sets[1])],
        ))?;
        broadcast_variables(pg, vs)
    }

    /// The step's (loss sum, hits, clips) summed over the ranks; a stop asked on any rank
    /// stops all of them (at the same step).
    pub(super) fn reduce_step(
        &self,
        loss_sum: f64,
        hits: u64,
        n: u64,
    ) -> Result<(f64, u64, u64), TrainError> {
        let Some(pg) = &self.dist else {
            return Ok((loss_sum, hits, n));
        };
        let stop = self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst));
        let s = pg.sum_f64(&[loss_sum, hits as f64, n as f64, f64::from(u8::from(stop))])?;
        if s[3] > 0.0
            && let Some(flag) = &self.stop
        {
            flag.store(true, Ordering::SeqCst);
        }
        Ok((s[0], s[1] as u64, s[2] as u64))
    }

    /// Validation over the ranks (the whole set on one process).
    pub(super) fn evaluate_all(
        &self,
        net: &ActionNet,
        set: Arc<Dataset>,
        options: &EvalOptions,
    ) -> Result<EvalReport, TrainError> {
        match &self.dist {
            Some(pg) => evaluate_split(pg, net, &set, options, self.device),
            None => evaluate(net, set, options, self.device),
        }
    }
}
