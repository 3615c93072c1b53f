//! Building blocks shared by the backbones: a convolution followed by BatchNorm, and the
//! multiply-add count of each layer (used by `shiftlive profile`).

use tch::{Tensor, nn};

use super::sync_bn::{self, SyncBn};

/// Geometry of a 2D convolution with a square kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvSpec {
    pub in_ch: i64,
    pub out_ch: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
    pub groups: i64,
}

impl ConvSpec {
    pub fn new(in_ch: i64, out_ch: i64, kernel: i64, stride: i64) -> Self {
        Self {
            in_ch,
            out_ch,
            kernel,
            stride,
            padding: (kernel - 1) / 2,
            groups: 1,
        }
    }

    /// A depthwise convolution (one filter per channel).
    pub fn depthwise(ch: i64, kernel: i64, stride: i64) -> Self {
        Self {
            groups: ch,
            ..Self::new(ch, ch, kernel, stride)
        }
    }

    /// Output height and width for an input of `h` x `w`.
    pub fn out_hw(&self, h: i64, w: i64) -> (i64, i64) {
        let out = |x: i64| (x + 2 * self.padding - self.kernel) / self.stride + 1;
        (out(h), out(w))
    }

    /// Multiply-adds for `n` images of `h` x `w`.
    pub fn macs(&self, n: i64, h: i64, w: i64) -> u64 {
        let (oh, ow) = self.out_hw(h, w);
        let per_output = (self.in_ch / self.groups) * self.kernel * self.kernel;
        (n * self.out_ch * oh * ow * per_output) as u64
    }
}

/// Initialisation of convolution weights: Kaiming normal, fan-out, as torchvision does.
pub const CONV_INIT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

/// A convolution and its BatchNorm. Parameter names follow PyTorch: the conv weight sits at
/// `<conv>.weight` (and its bias, if it has one, at `<conv>.bias`), the BatchNorm at
/// `<bn>.{weight,bias,running_mean,running_var}`. torchvision's convs have no bias; those of the
/// ECO authors' BN-Inception do.
#[derive(Debug)]
pub struct ConvBn {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub bn: nn::BatchNorm,
    pub spec: ConvSpec,
    /// Variable paths of the conv and of the BatchNorm (`layer1.0.conv1`, `layer1.0.bn1`).
    names: (String, String),
    /// Inference-only weights (BatchNorm folded in, converted to the compute dtype and layout);
    /// when set, `forward_t` uses them and ignores `train`.
    inference: Option<(Tensor, Tensor)>,
    /// Partial BN (TSN): this BatchNorm keeps its running statistics and runs in evaluation mode
    /// even in a training pass.
    frozen_bn: bool,
    /// Synchronised BatchNorm (data-parallel training): a training pass takes the statistics of
    /// all replicas.
    sync: Option<SyncBn>,
}

/// Puts a 4-D tensor in channels-last memory order (NHWC strides, NCHW shape).
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// How a network is laid out for inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferenceLayout {
    pub kind: tch::Kind,
    pub channels_last: bool,
}

impl InferenceLayout {
    /// Converts an input or weight to this layout.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let x = x.to_kind(self.kind);
        if self.channels_last && x.dim() == 4 {
            channels_last(&x)
        } else {
            x
        }
    }
}

impl ConvBn {
    /// A bias-free conv (torchvision's convs).
    pub fn new(conv: nn::Path, bn: nn::Path, spec: ConvSpec) -> Self {
        Self::build(conv, bn, spec, false)
    }

    /// A conv with a bias, zero at first (BN-Inception's convs).
    pub fn with_bias(conv: nn::Path, bn: nn::Path, spec: ConvSpec) -> Self {
        Self::build(conv, bn, spec, true)
    }

    fn build(conv: nn::Path, bn: nn::Path, spec: ConvSpec, bias: bool) -> Self {
        let shape = [
            spec.out_ch,
            spec.in_ch / spec.groups,
            spec.kernel,
            spec.kernel,
        ];
        let weight = conv.var("weight", &shape, CONV_INIT);
        let bias = bias.then(|| conv.var("bias", &[spec.out_ch], nn::Init::Const(0.0)));
        let names = (path_name(&conv), path_name(&bn));
        let bn = nn::batch_norm2d(bn, spec.out_ch, Default::default());
        Self {
            weight,
            bias,
            bn,
            spec,
            names,
            inference: None,
            frozen_bn: false,
            sync: None,
        }
    }

    /// Variable path of the conv (`layer1.0.conv1`).
    pub fn name(&self) -> &str {
        &self.names.0
    }

    /// Variable path of the BatchNorm (`layer1.0.bn1`).
    pub fn bn_name(&self) -> &str {
        &self.names.1
    }

    /// Freezes (or thaws) the BatchNorm for partial-BN training: statistics fixed, scale and
    /// shift no longer trained.
    pub fn freeze_bn(&mut self, frozen: bool) {
        self.frozen_bn = frozen;
        set_bn_trainable(&mut self.bn, !frozen);
    }

    /// Synchronises the BatchNorm's training statistics over the replicas (None: per replica).
    pub fn sync_bn(&mut self, sync: Option<SyncBn>) {
        self.sync = sync;
    }

    /// Folds the BatchNorm into the convolution (computed in fp32, then converted to `layout`):
    /// `w' = w s`, `b' = (b - mean) s + beta` with `s = g / sqrt(v + eps)` (`b` = 0 without a
    /// conv bias). Inference only.
    pub fn fold(&mut self, layout: InferenceLayout) {
        let (weight, bias) = self.folded();
        let folded = tch::no_grad(|| (layout.apply(&weight), bias.to_kind(layout.kind)));
        self.inference = Some(folded);
    }

    /// The folded weight and bias in fp32 (contiguous, NCHW), as [`ConvBn::fold`] computes them:
    /// what an export writes.
    pub fn folded(&self) -> (Tensor, Tensor) {
        tch::no_grad(|| {
            let (scale, shift) = bn_affine(&self.bn);
            let weight = self.weight.to_kind(tch::Kind::Float) * scale.view([-1, 1, 1, 1]);
            let bias = match &self.bias {
                Some(b) => b.to_kind(tch::Kind::Float) * &scale + shift,
                None => shift,
            };
            (weight.contiguous(), bias.contiguous())
        })
    }

    /// Trainable parameters: the conv weight (and bias) and the BatchNorm scale and shift.
    pub fn params(&self) -> u64 {
        let bias = self.bias.as_ref().map_or(0, Tensor::numel);
        (self.weight.numel() + bias) as u64 + 2 * self.spec.out_ch as u64
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let s = self.spec;
        let (stride, padding) = ([s.stride, s.stride], [s.padding, s.padding]);
        if let Some((weight, bias)) = &self.inference {
            return x.conv2d(weight, Some(bias), stride, padding, [1, 1], s.groups);
        }
        let y = x.conv2d(
            &self.weight,
            self.bias.as_ref(),
            stride,
            padding,
            [1, 1],
            s.groups,
        );
        let train = train && !self.frozen_bn;
        if let (true, Some(sync)) = (train, &self.sync) {
            match sync_bn::batch_norm(&y, &self.bn, sync.0.as_ref()) {
                Ok(y) => return y,
                // tch's own failures (the collectives keep theirs for the step): the tensor ops
                // around this one would have failed the same way.
                Err(e) => tracing::error!("{}: synchronised BatchNorm failed: {e}", self.names.1),
            }
        }
        y.apply_t(&self.bn, train)
    }
}

/// The dotted variable path of `p` (`layer1.0.conv1`).
pub(crate) fn path_name(p: &nn::Path) -> String {
    p.components().collect::<Vec<_>>().join(".")
}

/// A BatchNorm in evaluation mode as `x * scale + shift` (fp32, per channel).
pub(crate) fn bn_affine(bn: &nn::BatchNorm) -> (Tensor, Tensor) {
    let eps = 1e-5;
    let float = |t: &Tensor| t.to_kind(tch::Kind::Float);
    let gamma = bn
        .ws
        .as_ref()
        .map_or_else(|| bn.running_var.ones_like(), |w| w.shallow_clone());
    let beta = bn
        .bs
        .as_ref()
        .map_or_else(|| bn.running_mean.zeros_like(), |b| b.shallow_clone());
    let scale = float(&gamma) / (float(&bn.running_var) + eps).sqrt();
    let shift = float(&beta) - float(&bn.running_mean) * &scale;
    (scale, shift)
}

/// ReLU6, the activation of MobileNetV2.
pub fn relu6(x: &Tensor) -> Tensor {
    x.clamp(0.0, 6.0)
}

/// Multiply-adds of a fully connected layer on `n` rows.
pub fn linear_macs(n: i64, in_features: i64, out_features: i64) -> u64 {
    (n * in_features * out_features) as u64
}

/// Cost of one stage of a network, as `shiftlive profile` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StageCost {
    pub name: String,
    pub params: u64,
    /// Multiply-adds of convolutions and fully connected layers (BatchNorm is folded into the
    /// convolutions at inference and activations are not counted).
    pub macs: u64,
}

/// Partial BN: whether a BatchNorm's scale and shift are trained (its statistics are fixed by
/// running it in evaluation mode, which the caller decides).
pub(crate) fn set_bn_trainable(bn: &mut nn::BatchNorm, trainable: bool) {
    for t in [bn.ws.as_mut(), bn.bs.as_mut()].into_iter().flatten() {
        let _ = t.set_requires_grad(trainable);
    }
}
