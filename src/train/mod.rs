//! Offline training and evaluation (TSN, TSM bi- and uni-directional, MVF, ECO) on UCF-101 or any
//! list of labelled videos: SGD with momentum, schedules with warm-up, checkpoints that resume
//! exactly, top-1/top-5/mean class accuracy over centre, three or ten crops.

mod checkpointer;
mod config;
mod confusion;
mod error;
mod eval;
mod eval_files;
mod heatmap;
mod lock;
mod metrics;
mod mirror;
mod optim;
mod overrides;
mod parallel;
mod plot;
mod predict;
mod protocol;
mod recipe;
mod report;
mod schedule;
mod step;
mod tensorboard;
mod text;
mod trainer;
mod warnings;

pub use checkpointer::TRAIN_STATE_KEY;
pub use config::{DataSpec, Distill, FlipSpec, Regimen, TrainConfig, mirror_label_map};
pub use confusion::{ClassScore, Confusion, ConfusionTitle};
pub use error::{ResumeError, TrainError};
pub use eval::{
    EvalOptions, EvalReport, OnlineReport, TOP_K, VideoResult, evaluate, evaluate_online,
};
pub use eval_files::{file_part, predictions_csv, predictions_jsonl, write_eval_files};
pub use metrics::{Accuracy, Scores};
pub use mirror::{FLIP_KEY, FlipRecord, combine_views, mirror_map_of, mirrored_view_map};
pub use optim::{MOMENTUM_PREFIX, OptimError, Sgd, SgdOptions};
pub use overrides::Overrides;
pub use parallel::{
    BUCKET_BYTES, GradSync, broadcast_variables, buffers, describe, evaluate_split,
};
pub use plot::{CurvePoint, curves};
pub use predict::{Prediction, predict};
pub use protocol::{ProtocolError, ProtocolOverrides, TEST_PROTOCOL_KEY, TestProtocol, TestViews};
pub use recipe::Recipe;
pub use report::{EpochRecord, TrainOutcome};
pub use schedule::{Decay, Schedule};
pub use step::{
    NoHook, SoftTargets, StepHook, StepOutput, StepSettings, distillation_loss, train_step,
    train_step_with,
};
pub use trainer::Trainer;
pub use warnings::{clip_length_warning, clip_span};
