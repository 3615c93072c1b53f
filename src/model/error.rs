//! Errors of the model layer: configs, inputs and checkpoints.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown preset '{name}' (known: {known})")]
    UnknownPreset { name: String, known: String },

    #[error("invalid model config '{name}': {what}")]
    InvalidConfig { name: String, what: String },

    #[error("malformed model config JSON: {0}")]
    ConfigJson(String),

    #[error("bad input for model '{model}': expected {expected}, got {got}")]
    Input {
        model: String,
        expected: String,
        got: String,
    },

    #[error("model '{model}' cannot run online: {why}")]
    NotCausal { model: String, why: String },

    #[error("checkpoint {path}: {what}")]
    Checkpoint { path: PathBuf, what: String },

    #[error("checkpoint {path} does not fit model '{model}':\n{report}")]
    CheckpointMismatch {
        path: PathBuf,
        model: String,
        report: String,
    },

    #[error(transparent)]
    Write(#[from] crate::fsio::WriteError),

    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
