//! The figures of each step: the running loss and accuracy of the epoch (summed over the ranks
//! of a data-parallel job), the progress line, the checkpoint every N steps; and the error of a
//! non-finite loss, naming the batch's videos.

use tch::{Device, Kind};

use super::{EpochProgress, Run, Trainer};
use crate::data::Batch;
use crate::train::TrainError;
use crate::train::step::StepOutput;

impl Trainer {
    /// Adds a step's loss and hits to the epoch's figures; a checkpoint every N steps if asked.
    pub(super) fn tally(
        &self,
        run: &mut Run,
        batch: &Batch,
        out: &StepOutput,
        p: &mut EpochProgress,
    ) -> Result<(), TrainError> {
        let n = batch.labels.size()[0] as u64;
        let predicted = out.logits.argmax(1, false).to_device(Device::Cpu);
        let hits = predicted
            .eq_tensor(&batch.labels)
            .sum(Kind::Int64)
            .int64_value(&[]) as u64;
        let (loss_sum, hits, n) = self.reduce_step(out.loss * n as f64, hits, n)?;
        let state = &mut run.state;
        state.loss_sum += loss_sum;
        state.correct += hits;
        state.seen += n;
        p.clips += n;
        p.bar.set_message(format!(
            "loss {:.3} acc {:.3} lr {:.2e} {:.1} clips/s wait {:.1}s",
            state.loss_sum / state.seen.max(1) as f64,
            state.correct as f64 / state.seen.max(1) as f64,
            p.lr,
            p.clips as f64 / p.started.elapsed().as_secs_f64().max(1e-9),
            p.wait.as_secs_f64()
        ));
        if let Some(every) = run.config.checkpoint_every
            && state.step.is_multiple_of(every)
            && state.step < p.steps
        {
            let mut s = state.clone();
            s.train_seconds += p.started.elapsed().as_secs_f64();
            run.checkpointer.save(&run.vs, &run.config, &run.sgd, &s)?;
        }
        Ok(())
    }

    /// The error of a non-finite loss, naming the batch's videos and the last checkpoint.
    pub(super) fn non_finite(
        &self,
        run: &Run,
        batch: &Batch,
        loss: f64,
        step: usize,
    ) -> TrainError {
        let names: Vec<String> = batch
            .items
            .iter()
            .filter_map(|&i| run.train_set.items.get(i))
            .map(|it| it.path.display().to_string())
            .collect();
        let checkpoint = self.checkpoint_path();
        TrainError::NonFiniteLoss {
            loss,
            epoch: run.state.epoch + 1,
            step,
            items: names.join(", "),
            checkpoint: checkpoint.exists().then_some(checkpoint),
        }
    }
}
