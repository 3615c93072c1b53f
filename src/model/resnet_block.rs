//! The residual blocks of [`crate::model::resnet::ResNet`] (He et al., CVPR 2016): a BasicBlock
//! (two 3x3 convs) or a Bottleneck (1x1, 3x3 with the stride, 1x1), the projection shortcut of a
//! block that changes resolution or width (ResNet-D: a 2x2 average pool before a stride-1 1x1
//! conv), and the temporal module the configuration puts in the block (TSM shift or MVF).

use tch::{TchError, Tensor, nn};

use super::config::{ResnetVariant, ShiftPlacement};
use super::emit::{EmitError, Emitter, Value};
use super::layers::{ConvBn, ConvSpec, path_name};
use super::mvf::Mvf;
use super::shift::{TemporalShift, TimeAxis};
use super::trunk::{Layer, LayerKind, ShiftPoint};

/// The per-block temporal module.
#[derive(Debug)]
pub(super) enum BlockTemporal {
    None,
    Shift(TemporalShift, ShiftPlacement),
    Mvf(Mvf),
}

/// The projection shortcut of a block that changes resolution or width.
#[derive(Debug)]
struct Downsample {
    /// ResNet-D on a strided block: 2x2 average pool, stride 2, before the (stride-1) conv.
    pool: bool,
    conv: ConvBn,
}

impl Downsample {
    /// torchvision's `downsample.{0,1}` (conv, BN); timm's ResNet-D `downsample.{1,2}`, index 0
    /// being the pool (an identity in stage 1).
    fn new(p: nn::Path, variant: ResnetVariant, in_ch: i64, out_ch: i64, stride: i64) -> Self {
        match variant {
            ResnetVariant::B => Self {
                pool: false,
                conv: ConvBn::new(&p / 0, &p / 1, ConvSpec::new(in_ch, out_ch, 1, stride)),
            },
            ResnetVariant::D => Self {
                pool: stride != 1,
                conv: ConvBn::new(&p / 1, &p / 2, ConvSpec::new(in_ch, out_ch, 1, 1)),
            },
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        if self.pool {
            // ceil_mode keeps odd sizes in step with the residual branch's padded 3x3 conv;
            // the clipped last window averages only what it covers (count_include_pad false).
            let pooled = x.avg_pool2d([2, 2], [2, 2], [0, 0], true, false, None::<i64>);
            self.conv.forward_t(&pooled, train)
        } else {
            self.conv.forward_t(x, train)
        }
    }

    /// Multiply-adds for `nt` frames of `h` x `w` (the pool is not counted, as no pool is).
    fn macs(&self, nt: i64, h: i64, w: i64) -> u64 {
        let (h, w) = if self.pool {
            (ceil_half(h), ceil_half(w))
        } else {
            (h, w)
        };
        self.conv.spec.macs(nt, h, w)
    }
}

/// Output side of a 2x2, stride-2 pool in ceil mode.
fn ceil_half(x: i64) -> i64 {
    (x + 1) / 2
}

/// The shape of one block.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockSpec {
    pub in_ch: i64,
    pub planes: i64,
    pub stride: i64,
    pub bottleneck: bool,
    pub variant: ResnetVariant,
}

impl BlockSpec {
    pub fn out_ch(&self) -> i64 {
        if self.bottleneck {
            self.planes * 4
        } else {
            self.planes
        }
    }
}

/// A BasicBlock or a Bottleneck with its shortcut and temporal module.
#[derive(Debug)]
pub(super) struct ResBlock {
    /// Variable path of the block (`layer1.0`).
    name: String,
    convs: Vec<ConvBn>,
    downsample: Option<Downsample>,
    temporal: BlockTemporal,
}

impl ResBlock {
    /// The block at `p` (torchvision's `convK`/`bnK` names); `temporal` builds its temporal
    /// module after the convs (the order the variables were always created in).
    pub fn new(
        p: &nn::Path,
        spec: BlockSpec,
        temporal: impl FnOnce(&nn::Path) -> BlockTemporal,
    ) -> Self {
        let BlockSpec {
            in_ch,
            planes,
            stride,
            ..
        } = spec;
        let out_ch = spec.out_ch();
        let conv = |k: usize, spec: ConvSpec| {
            ConvBn::new(p / format!("conv{k}"), p / format!("bn{k}"), spec)
        };
        let convs = if spec.bottleneck {
            vec![
                conv(1, ConvSpec::new(in_ch, planes, 1, 1)),
                conv(2, ConvSpec::new(planes, planes, 3, stride)),
                conv(3, ConvSpec::new(planes, out_ch, 1, 1)),
            ]
        } else {
            vec![
                conv(1, ConvSpec::new(in_ch, planes, 3, stride)),
                conv(2, ConvSpec::new(planes, planes, 3, 1)),
            ]
        };
        let downsample = (stride != 1 || in_ch != out_ch)
            .then(|| Downsample::new(p / "downsample", spec.variant, in_ch, out_ch, stride));
        Self {
            name: path_name(p),
            convs,
            downsample,
            temporal: temporal(p),
        }
    }

    /// The block on `[N*T, C, H, W]` features: temporal module, residual branch, shortcut, sum,
    /// ReLU.
    pub fn forward_t(
        &self,
        features: &Tensor,
        time: &mut TimeAxis,
        train: bool,
    ) -> Result<Tensor, TchError> {
        // "block" placement shifts what both paths see; "blockres" only the residual branch.
        let input = match &self.temporal {
            BlockTemporal::Shift(shift, ShiftPlacement::Block) => shift.forward(features, time)?,
            _ => features.shallow_clone(),
        };
        let y = match &self.temporal {
            BlockTemporal::Shift(shift, ShiftPlacement::Blockres) => {
                shift.branch(&input, time, |shifted| Ok(self.branch_t(shifted, train)))?
            }
            BlockTemporal::Mvf(mvf) => {
                self.branch_t(&mvf.forward_t(&input, time.frames(), train)?, train)
            }
            _ => self.branch_t(&input, train),
        };
        let identity = match &self.downsample {
            Some(down) => down.forward_t(&input, train),
            None => input,
        };
        Ok((y + identity).relu())
    }

    /// Emits the block as `forward_t` runs it in inference mode.
    pub fn emit(&self, e: &mut dyn Emitter, x: Value) -> Result<Value, EmitError> {
        let point = |shift: &TemporalShift, placement: &ShiftPlacement| {
            ShiftPoint::new(*shift, *placement, self.convs[0].spec.in_ch)
        };
        let input = match &self.temporal {
            BlockTemporal::Shift(shift, placement @ ShiftPlacement::Block) => {
                e.shift(&point(shift, placement), x)?
            }
            _ => x,
        };
        let mut y = match &self.temporal {
            BlockTemporal::Shift(shift, placement @ ShiftPlacement::Blockres) => {
                e.shift(&point(shift, placement), input)?
            }
            BlockTemporal::Mvf(_) => {
                return Err(EmitError::Unsupported(format!(
                    "{}.mvf: MVF modules (3D depthwise convs) are not exported",
                    self.name
                )));
            }
            _ => input,
        };
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            y = e.conv(conv, y)?;
            if i < last {
                y = e.relu(y)?;
            }
        }
        let identity = match &self.downsample {
            Some(down) => {
                let pooled = if down.pool {
                    e.avg_pool_2x2_ceil(input)?
                } else {
                    input
                };
                e.conv(&down.conv, pooled)?
            }
            None => input,
        };
        let sum = e.add(y, identity)?;
        e.relu(sum)
    }

    /// The residual branch: conv-BN-ReLU, ..., conv-BN.
    fn branch_t(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, conv) in self.convs.iter().enumerate() {
            y = conv.forward_t(&y, train);
            if i < last {
                y = y.relu();
            }
        }
        y
    }

    /// The convolutions of the branch, then the shortcut's.
    pub fn conv_bns_mut(&mut self) -> impl Iterator<Item = &mut ConvBn> {
        self.convs
            .iter_mut()
            .chain(self.downsample.as_mut().map(|d| &mut d.conv))
    }

    fn conv_bns(&self) -> impl Iterator<Item = &ConvBn> {
        self.convs
            .iter()
            .chain(self.downsample.as_ref().map(|d| &d.conv))
    }

    /// The temporal module, the branch's convs, the shortcut's conv.
    pub fn layers(&self) -> Vec<Layer> {
        let in_ch = self.convs[0].spec.in_ch;
        let mut layers = match &self.temporal {
            BlockTemporal::None => Vec::new(),
            BlockTemporal::Shift(shift, placement) => {
                vec![Layer::shift(
                    &self.name,
                    ShiftPoint::new(*shift, *placement, in_ch),
                )]
            }
            BlockTemporal::Mvf(mvf) => vec![Layer {
                name: format!("{}.mvf", self.name),
                kind: LayerKind::Mvf {
                    channels: mvf.channels(),
                },
            }],
        };
        layers.extend(self.conv_bns().map(Layer::conv_bn));
        layers
    }

    pub fn params(&self) -> u64 {
        let convs: u64 = self.conv_bns().map(ConvBn::params).sum();
        match &self.temporal {
            BlockTemporal::Mvf(mvf) => convs + mvf.params(),
            _ => convs,
        }
    }

    /// Multiply-adds for `nt` frames of `h` x `w`; returns the output size too.
    pub fn macs(&self, nt: i64, h: i64, w: i64) -> (u64, i64, i64) {
        let mut total = match &self.temporal {
            BlockTemporal::Mvf(mvf) => mvf.macs(nt, h, w),
            _ => 0,
        };
        let (mut ch, mut cw) = (h, w);
        for conv in &self.convs {
            total += conv.spec.macs(nt, ch, cw);
            (ch, cw) = conv.spec.out_hw(ch, cw);
        }
        if let Some(down) = &self.downsample {
            total += down.macs(nt, h, w);
        }
        (total, ch, cw)
    }
}
