//! What can stop training, evaluation or prediction: one variant per failure, each keeping the
//! error that caused it as its source, so `main`'s `{:#}` prints the whole chain.

use std::path::PathBuf;

use super::optim::OptimError;
use super::protocol::ProtocolError;
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
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A setting or a data set that cannot make a run (no source error: the message says why).
    #[error("training config: {0}")]
    Config(String),
    #[error("writing {what} as JSON")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
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
    #[error(transparent)]
    Tensor(#[from] tch::TchError),
    #[error(transparent)]
    Write(#[from] crate::fsio::WriteError),
    #[error("resume from {}", path.display())]
    Resume {
        path: PathBuf,
        #[source]
        source: ResumeError,
    },
    #[error(
        "--resume continues the run as OUT/config.json says; {flags} would change it (leave them \
         out, or start a new run in another folder)"
    )]
    ResumeChanges { flags: String },
    /// The teacher does not fit the student: `mismatch` says how ("has 10 classes, the data
    /// set 9").
    #[error("{}: cannot teach {student}: the teacher {mismatch}", path.display())]
    TeacherMismatch {
        path: PathBuf,
        student: String,
        mismatch: String,
    },
    #[error(
        "{} holds a run (checkpoint, best model or metrics): give --resume to continue it, \
         --force to replace it, or another --out",
        out.display()
    )]
    RunExists { out: PathBuf },
    #[error(
        "{} is in use by another training (pid {pid}, lock file {}); wait for it or give \
         another --out",
        out.display(),
        lock.display()
    )]
    Locked {
        out: PathBuf,
        lock: PathBuf,
        pid: u32,
    },
    #[error(
        "interrupted at epoch {epoch}, step {step}: saved the weights, momentum and run state \
         to {}; resume with: shiftlive train --out {} --resume",
        checkpoint.display(),
        out.display()
    )]
    Interrupted {
        epoch: u32,
        step: usize,
        checkpoint: PathBuf,
        out: PathBuf,
    },
    #[error("{}: test protocol", path.display())]
    Protocol {
        path: PathBuf,
        #[source]
        source: ProtocolError,
    },
    #[error(
        "{}: --crop ten has mirrored views, but the model was trained with --flip off and its \
         classes have mirrored pairs ({pair}): it never saw a mirror image, so a mirrored view's \
         class is unknown to it; test it with --crop centre or three",
        path.display()
    )]
    MirroredViews { path: PathBuf, pair: String },
    #[error("{}: metadata 'flip' ({text}) {why}", path.display())]
    FlipRule {
        path: PathBuf,
        text: String,
        why: String,
    },
    #[error("drawing {}", path.display())]
    Plot {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading the logits of {}", path.display())]
    Logits {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
    /// A data-parallel job's ranks lost each other, or disagree.
    #[error(transparent)]
    Dist(#[from] crate::dist::DistError),
}

/// Why a training checkpoint cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("the checkpoint's model ({saved}) differs from this run's ({run})")]
    ModelDiffers { saved: String, run: String },
    #[error("no '{key}' metadata: not a training checkpoint")]
    NotTraining { key: &'static str },
    #[error("metadata '{key}' is not a run state")]
    State {
        key: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("the optimiser state")]
    Momentum(#[from] OptimError),
}
