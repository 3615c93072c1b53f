//! What a run reports: one [`EpochRecord`] per epoch, logged and written to `metrics.jsonl`,
//! `metrics.csv`, `curves.png` and TensorBoard's `tb/`; the confusion matrix of the best model
//! (PNG, CSV, JSON); the unreadable videos skipped so far (`skipped.txt`); the [`TrainOutcome`]
//! printed at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TrainError;
use super::confusion::{Confusion, ConfusionTitle};
use super::plot::{self, CurvePoint};

/// Writes `text` to `path` atomically (see [`crate::fsio`]).
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<(), TrainError> {
    Ok(crate::fsio::write_atomic(path, text.as_bytes())?)
}

/// One epoch's figures: a line of `metrics.jsonl` and `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u32,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    /// Mean cross-entropy of the validation videos (absent in runs saved before it was kept).
    #[serde(default)]
    pub val_loss: Option<f64>,
    pub val_top1: Option<f64>,
    pub val_top5: Option<f64>,
    pub val_mean_class_acc: Option<f64>,
    pub clips_per_second: f64,
    /// Time the model waited for data, over the epoch.
    pub data_wait_seconds: f64,
    pub epoch_seconds: f64,
    pub skipped_videos: usize,
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

/// The metric files of a run in its output folder.
pub(super) struct MetricsLog {
    out: PathBuf,
    /// The model's name, in titles.
    model: String,
    /// False on a data-parallel run's ranks other than 0: nothing written, nothing logged.
    writes: bool,
}

impl MetricsLog {
    pub fn new(out: &Path, model: &str) -> Self {
        Self {
            out: out.to_path_buf(),
            model: model.to_string(),
            writes: true,
        }
    }

    /// With `false`, the log and the files are left to another rank.
    pub fn writing(mut self, writes: bool) -> Self {
        self.writes = writes;
        self
    }

    /// The epoch's line in the log.
    pub fn log(&self, record: &EpochRecord, epochs: u32) {
        if !self.writes {
            return;
        }
        tracing::info!(
            "epoch {}/{}: loss {:.4} train top-1 {:.3}{} ({:.1} clips/s, data wait {:.1} s of {:.1} s)",
            record.epoch,
            epochs,
            record.train_loss,
            record.train_top1,
            record
                .val_top1
                .map_or(String::new(), |v| format!(", val top-1 {v:.3}")),
            record.clips_per_second,
            record.data_wait_seconds,
            record.epoch_seconds
        );
    }

    /// `metrics.jsonl`, `metrics.csv`, `curves.png` and `tb/` of every epoch so far.
    pub fn write(&self, history: &[EpochRecord]) -> Result<(), TrainError> {
        if !self.writes {
            return Ok(());
        }
        let mut jsonl = String::new();
        let mut csv = String::from(
            "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,val_mean_class_acc,clips_per_second,data_wait_seconds,epoch_seconds,skipped_videos\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        for r in history {
            let line = serde_json::to_string(r).map_err(|source| TrainError::Json {
                what: "an epoch record",
                source,
            })?;
            jsonl.push_str(&line);
            jsonl.push('\n');
            csv.push_str(&format!(
                "{},{:.6e},{:.6},{:.6},{},{},{},{},{:.3},{:.3},{:.3},{}\n",
                r.epoch,
                r.lr,
                r.train_loss,
                r.train_top1,
                opt(r.val_loss),
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
                lr: r.lr,
                train_loss: r.train_loss,
                train_top1: r.train_top1,
                val_loss: r.val_loss,
                val_top1: r.val_top1,
            })
            .collect();
        plot::curves(&self.out.join("curves.png"), &points, &self.model)?;
        // Wall times: now, less the epochs' seconds (a resumed run keeps its spacing).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let start = now - history.iter().map(|r| r.epoch_seconds).sum::<f64>();
        super::tensorboard::write(&self.out, history, start)
    }

    /// `confusion.png`, `.csv` and `.json` of the best model (validated after `epoch`).
    pub fn confusion(
        &self,
        matrix: &[Vec<u64>],
        classes: &[String],
        set: &str,
        epoch: u32,
    ) -> Result<(), TrainError> {
        if !self.writes {
            return Ok(());
        }
        let title = ConfusionTitle {
            model: self.model.clone(),
            set: set.to_string(),
            epoch: Some(epoch),
            what: "best model".into(),
        };
        Confusion { matrix, classes }.write(&self.out.join("confusion"), &title)?;
        Ok(())
    }

    /// `skipped.txt`: the unreadable videos left out so far, with the reason.
    pub fn skipped(&self, skipped: &BTreeMap<PathBuf, String>) -> Result<(), TrainError> {
        if skipped.is_empty() || !self.writes {
            return Ok(());
        }
        let text: String = skipped
            .iter()
            .map(|(p, why)| format!("{}\t{why}\n", p.display()))
            .collect();
        let path = self.out.join("skipped.txt");
        write_atomic(&path, &text)?;
        tracing::warn!(
            "{} unreadable videos skipped, listed in {}",
            skipped.len(),
            path.display()
        );
        Ok(())
    }
}
