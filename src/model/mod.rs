//! The networks: ResNet and MobileNetV2 trunks, the temporal modules (TSM shift, MVF) placed in
//! them by configuration, the TSN head, presets and checkpoints.

pub mod checkpoint;
pub mod config;
mod error;
pub mod import;
pub mod layers;
pub mod mobilenet_v2;
pub mod mvf;
pub mod net;
pub mod resnet;
pub mod shift;

pub use checkpoint::TensorFile;
pub use config::{
    Backbone, ModelConfig, MvfMode, PRESET_NAMES, ShiftDirection, ShiftPlacement, Temporal,
};
pub use error::ModelError;
pub use layers::{InferenceLayout, StageCost};
pub use net::{ActionNet, ClipOutput};
pub use shift::{ShiftCache, TimeAxis};
