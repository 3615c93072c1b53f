//! The per-frame trunk of a network, and the list of its layers that a visitor walks.
//!
//! A [`Trunk`] is a 2D network run on every frame (ResNet, MobileNetV2, VGG) with the temporal
//! modules its configuration put in it; the TSN head of [`crate::model::ActionNet`] sits on its
//! pooled features. ECO is not one: it reasons over whole clips (see `body.rs`).
//!
//! Each trunk lists its layers in forward order ([`Trunk::layers`]), each under its variable path:
//! convolutions with their BatchNorm (one convolution once folded), shift points with their cache
//! slot and fold, MVF modules, the temporal pool and fully connected layers; a residual branch
//! comes before its shortcut. The shift points, and with them the slots of a
//! [`crate::model::ShiftCache`], come from that list, so a visitor (the ONNX export of a later
//! issue) reaches them without knowing the concrete trunk. Activations, spatial pools and
//! residual sums are not listed: [`Trunk::emit`] walks the whole forward pass for an export.

use tch::{TchError, Tensor};

use super::config::ShiftPlacement;
use super::emit::{EmitError, Emitter, Value};
use super::layers::{ConvBn, ConvSpec, InferenceLayout, StageCost};
use super::shift::{TemporalShift, TimeAxis};

/// A 2D network run frame by frame, without its classifier.
/// `Send`: one thread owns the model, and it may be built on another.
pub trait Trunk: std::fmt::Debug + Send {
    /// Module path of the classifier the TSN head puts on this trunk, as PyTorch names it
    /// (`fc`, `classifier.1`, `classifier.6`).
    fn classifier(&self) -> &'static str;

    /// Width of the pooled features of each frame.
    fn out_channels(&self) -> i64;

    /// `[N*T, 3, H, W]` -> `[N*T', C]`; a temporal pool shortens `time` in place.
    fn forward_t(&self, x: &Tensor, time: &mut TimeAxis, train: bool) -> Result<Tensor, TchError>;

    /// Every convolution with its BatchNorm, in forward order (for partial BN and folding).
    fn conv_bns_mut(&mut self) -> Vec<&mut ConvBn>;

    /// Readies the weights for inference in `layout`: every BatchNorm folded into its conv.
    fn fold(&mut self, layout: InferenceLayout) {
        for conv in self.conv_bns_mut() {
            conv.fold(layout);
        }
    }

    /// Parameters and multiply-adds per stage for `nt` frames of `size` x `size`.
    fn stage_costs(&self, nt: i64, size: i64) -> Vec<StageCost>;

    /// Frames per clip that reach the head for `frames` frames in (fewer after a temporal pool).
    fn frames_out(&self, frames: i64) -> i64 {
        frames
    }

    /// The layers in forward order.
    fn layers(&self) -> Vec<Layer>;

    /// Emits the inference forward pass of a frame batch `[B, 3, H, W]` -> pooled `[B, C]`
    /// (see [`crate::model::emit`]). Trunks without an emitter refuse export.
    fn emit(&self, _e: &mut dyn Emitter, _x: Value) -> Result<Value, EmitError> {
        Err(EmitError::Unsupported(format!(
            "the {} trunk has no graph emitter (export covers ResNet and MobileNetV2)",
            self.classifier()
        )))
    }

    /// The shift points in forward order: point `i` uses slot `i` of a shift cache.
    fn shift_points(&self) -> Vec<ShiftPoint> {
        self.layers()
            .into_iter()
            .filter_map(|layer| match layer.kind {
                LayerKind::Shift(point) => Some(point),
                _ => None,
            })
            .collect()
    }
}

/// One layer of a trunk, under its variable path (`layer1.0.conv1`; a shift point under its
/// block, `layer1.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub name: String,
    pub kind: LayerKind,
}

/// What a listed layer is.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerKind {
    /// A convolution and its BatchNorm (variable path `bn`); `bias`: the conv has its own.
    ConvBn {
        spec: ConvSpec,
        bn: String,
        bias: bool,
    },
    /// A convolution with a bias and no BatchNorm (VGG).
    Conv { spec: ConvSpec },
    /// A temporal shift.
    Shift(ShiftPoint),
    /// An MVF module on the first `channels` channels of the block input.
    Mvf { channels: i64 },
    /// TSM's temporal pool: max over time, halving the frames.
    TemporalPool,
    /// A fully connected layer.
    Linear { in_features: i64, out_features: i64 },
}

/// A temporal shift as a visitor sees it: its direction, fold and cache slot, and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShiftPoint {
    pub shift: TemporalShift,
    /// On the block input (`Block`) or on its residual branch only (`Blockres`).
    pub placement: ShiftPlacement,
    /// Channels of the shifted activation.
    pub channels: i64,
    /// Channels that move (`channels / shift_div`): a cache slot holds `[S, fold, H, W]`.
    pub fold: i64,
}

impl ShiftPoint {
    pub fn new(shift: TemporalShift, placement: ShiftPlacement, channels: i64) -> Self {
        Self {
            shift,
            placement,
            channels,
            fold: shift.fold(channels),
        }
    }
}

impl Layer {
    /// A convolution with its BatchNorm.
    pub fn conv_bn(conv: &ConvBn) -> Self {
        Self {
            name: conv.name().to_string(),
            kind: LayerKind::ConvBn {
                spec: conv.spec,
                bn: conv.bn_name().to_string(),
                bias: conv.bias.is_some(),
            },
        }
    }

    /// A shift point of the block `block`.
    pub fn shift(block: &str, point: ShiftPoint) -> Self {
        Self {
            name: block.to_string(),
            kind: LayerKind::Shift(point),
        }
    }
}
