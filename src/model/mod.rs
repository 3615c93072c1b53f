//! The networks: ResNet (v1.5 and ResNet-D), MobileNetV2 and VGG trunks, ECO (BN-Inception and
//! a 3D ResNet-18), the temporal modules (TSM shift, MVF) placed in them by configuration, the
//! TSN head, presets and checkpoints.

pub mod bn_inception;
mod body;
pub mod checkpoint;
pub mod config;
pub mod eco;
pub mod emit;
mod error;
pub mod import;
pub mod layers;
pub mod mobilenet_v2;
pub mod mvf;
pub mod net;
pub mod preset;
pub mod resnet;
mod resnet_block;
pub mod shift;
pub mod sync_bn;
pub mod trunk;
pub mod vgg;

pub use checkpoint::TensorFile;
pub use config::{
    Backbone, EcoVariant, ModelConfig, MvfMode, ResnetVariant, ShiftDirection, ShiftPlacement,
    Temporal, limit,
};
pub use eco::EcoFrames;
pub use emit::{EmitError, Emitter, Value};
pub use error::ModelError;
pub use layers::{InferenceLayout, StageCost};
pub use net::{ActionNet, ClipOutput};
pub use preset::{Preset, RecipeName};
pub use shift::{ShiftCache, TimeAxis};
pub use trunk::{Layer, LayerKind, ShiftPoint, Trunk};
