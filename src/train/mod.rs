//! Offline training and evaluation (TSN, TSM bi- and uni-directional, MVF) on UCF-101 or any
//! list of labelled videos: SGD with momentum, schedules with warm-up, checkpoints that resume
//! exactly, top-1/top-5/mean class accuracy over centre, three or ten crops.

mod eval;
mod metrics;
mod optim;
mod plot;
mod predict;
mod protocol;
mod schedule;
mod trainer;

use std::path::PathBuf;

pub use eval::{EvalOptions, EvalReport, OnlineReport, evaluate, evaluate_online};
pub use metrics::{Accuracy, Scores};
pub use optim::{MOMENTUM_PREFIX, Sgd, SgdOptions};
pub use plot::{CurvePoint, confusion, curves};
pub use predict::{Prediction, predict};
pub use protocol::{ProtocolOverrides, TEST_PROTOCOL_KEY, TestProtocol, TestViews};
pub use schedule::{Decay, Schedule};
pub use trainer::{
    DataSpec, Distill, EpochRecord, FlipSpec, SoftTargets, StepOutput, StepSettings, TRAIN_PRESETS,
    TRAIN_STATE_KEY, TrainConfig, TrainOutcome, Trainer, distillation_loss, mirror_label_map,
    train_step, train_step_with,
};

use crate::data::DataError;
use crate::model::ModelError;
use crate::online::OnlineError;

/// What can stop training or evaluation.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Online(#[from] OnlineError),
    #[error("{}: {what}", path.display())]
    Io { path: PathBuf, what: String },
    #[error("training config: {0}")]
    Config(String),
    #[error(
        "loss is {loss} at epoch {epoch}, step {step} (batch of {items}); stopped, the last good checkpoint is {}",
        checkpoint.as_ref().map_or("none (no epoch finished)".to_string(), |p| p.display().to_string())
    )]
    NonFiniteLoss {
        loss: f64,
        epoch: u32,
        step: usize,
        items: String,
        checkpoint: Option<PathBuf>,
    },
    #[error("{0}")]
    Tensor(#[from] tch::TchError),
    #[error(transparent)]
    Write(#[from] crate::fsio::WriteError),
    #[error("resume from {}: {what}", path.display())]
    Resume { path: PathBuf, what: String },
}
