//! A trunk walked as a graph: each trunk emits its forward pass, op by op, into an [`Emitter`]
//! (the ONNX writer, or the stateless tch step that TorchScript tracing records), so an export
//! follows the module tree itself instead of a copy of it. [`super::Trunk::layers`] lists the
//! weights; activations, residual sums and pools only show up here.
//!
//! Values are handles the emitter hands out. A convolution is emitted with its BatchNorm folded
//! (fp32, as [`ConvBn::folded`] computes it for inference). The temporal shift is one op: the
//! emitter decides what it becomes (explicit state inputs and outputs for a stream step, a shift
//! along the time axis of a clip).

use tch::{TchError, Tensor};

use super::layers::ConvBn;
use super::trunk::ShiftPoint;

/// A value of the emitted graph (an activation), as the emitter numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value(pub usize);

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// Something of the network this export does not cover.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Tch(#[from] TchError),
}

/// The ops a trunk and its head are made of, in inference mode (BatchNorm folded, no dropout).
pub trait Emitter {
    /// A convolution with its BatchNorm folded in.
    fn conv(&mut self, conv: &ConvBn, x: Value) -> Result<Value, EmitError>;
    fn relu(&mut self, x: Value) -> Result<Value, EmitError>;
    /// `min(max(x, 0), 6)` (MobileNetV2).
    fn relu6(&mut self, x: Value) -> Result<Value, EmitError>;
    /// Element-wise sum (a residual connection).
    fn add(&mut self, a: Value, b: Value) -> Result<Value, EmitError>;
    /// Square 2D max pool, floor mode.
    fn max_pool(
        &mut self,
        x: Value,
        kernel: i64,
        stride: i64,
        padding: i64,
    ) -> Result<Value, EmitError>;
    /// ResNet-D's shortcut pool: 2x2, stride 2, ceil mode, averaging only what a window covers.
    fn avg_pool_2x2_ceil(&mut self, x: Value) -> Result<Value, EmitError>;
    /// Spatial mean: `[B, C, H, W]` -> `[B, C]`.
    fn global_avg_pool(&mut self, x: Value) -> Result<Value, EmitError>;
    /// The temporal shift at `point` (its slot names the state of a stream step).
    fn shift(&mut self, point: &ShiftPoint, x: Value) -> Result<Value, EmitError>;
    /// TSM's temporal pool (max over time, kernel 3, stride 2, padding 1).
    fn temporal_pool(&mut self, x: Value) -> Result<Value, EmitError>;
    /// `x W^T + b` (the classifier's own variables: detach or convert them before use).
    fn linear(
        &mut self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        x: Value,
    ) -> Result<Value, EmitError>;
}
