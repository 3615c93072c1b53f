//! MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018)
//! in torchvision's layout (`features.N...`) with a width multiplier. The temporal shift goes on the
//! residual-branch input of every stride-1 block with an identity path, as in the TSM authors' online
//! demo (ten blocks at width 1.0).

use tch::{TchError, Tensor, nn};

use super::config::{ShiftPlacement, Temporal};
use super::emit::{EmitError, Emitter, Value};
use super::layers::{ConvBn, ConvSpec, StageCost, path_name, relu6};
use super::shift::{TemporalShift, TimeAxis};
use super::trunk::{Layer, ShiftPoint, Trunk};

/// (expansion t, channels c, repeats n, first stride s) of each stage, from the paper.
const SETTINGS: [(i64, i64, usize, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// Rounds a channel count to a multiple of 8, never more than 10% below the exact value
/// (torchvision's `_make_divisible`).
pub fn make_divisible(value: f64, divisor: i64) -> i64 {
    let d = divisor as f64;
    let rounded = (((value + d / 2.0) / d).floor() as i64 * divisor).max(divisor);
    if (rounded as f64) < 0.9 * value {
        rounded + divisor
    } else {
        rounded
    }
}

#[derive(Debug)]
struct InvertedResidual {
    /// Variable path of the block (`features.3`).
    name: String,
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    identity: bool,
    shift: Option<TemporalShift>,
}

impl InvertedResidual {
    fn forward_t(&self, x: &Tensor, time: &mut TimeAxis, train: bool) -> Result<Tensor, TchError> {
        let y = match &self.shift {
            Some(shift) => shift.branch(x, time, |shifted| Ok(self.branch_t(shifted, train)))?,
            None => self.branch_t(x, train),
        };
        Ok(if self.identity { y + x } else { y })
    }

    /// Expand (1x1), depthwise (3x3), project (1x1, linear).
    fn branch_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        if let Some(expand) = &self.expand {
            y = relu6(&expand.forward_t(&y, train));
        }
        y = relu6(&self.depthwise.forward_t(&y, train));
        self.project.forward_t(&y, train)
    }

    /// Emits the block as `forward_t` runs it in inference mode.
    fn emit(&self, e: &mut dyn Emitter, x: Value) -> Result<Value, EmitError> {
        let mut y = match &self.shift {
            Some(shift) => {
                let in_ch = self.convs().next().map_or(0, |c| c.spec.in_ch);
                e.shift(&ShiftPoint::new(*shift, ShiftPlacement::Blockres, in_ch), x)?
            }
            None => x,
        };
        if let Some(expand) = &self.expand {
            let expanded = e.conv(expand, y)?;
            y = e.relu6(expanded)?;
        }
        let depthwise = e.conv(&self.depthwise, y)?;
        y = e.relu6(depthwise)?;
        y = e.conv(&self.project, y)?;
        if self.identity { e.add(y, x) } else { Ok(y) }
    }

    fn convs(&self) -> impl Iterator<Item = &ConvBn> {
        self.expand.iter().chain([&self.depthwise, &self.project])
    }

    /// The shift on the residual branch's input, then the convs.
    fn layers(&self) -> Vec<Layer> {
        let in_ch = self.convs().next().map_or(0, |c| c.spec.in_ch);
        let shift = self.shift.map(|shift| {
            Layer::shift(
                &self.name,
                ShiftPoint::new(shift, ShiftPlacement::Blockres, in_ch),
            )
        });
        shift
            .into_iter()
            .chain(self.convs().map(Layer::conv_bn))
            .collect()
    }
}

/// A MobileNetV2 trunk without its classifier: `[N*T, 3, H, W]` in, pooled `[N*T, C]` out.
#[derive(Debug)]
pub struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    last: ConvBn,
}

impl MobileNetV2 {
    /// The classifier torchvision puts on a MobileNetV2 (`classifier.0` is its dropout).
    pub const CLASSIFIER: &'static str = "classifier.1";

    pub fn new(p: &nn::Path, width_mult: f64, temporal: &Temporal) -> Self {
        let features = p / "features";
        let mut in_ch = make_divisible(32.0 * width_mult, 8);
        let last_ch = make_divisible(1280.0 * width_mult.max(1.0), 8);
        let stem = ConvBn::new(
            &features / 0 / 0,
            &features / 0 / 1,
            ConvSpec::new(3, in_ch, 3, 2),
        );
        let mut shift_slots = 0;
        let mut blocks = Vec::new();
        for (t, c, n, s) in SETTINGS {
            let out_ch = make_divisible(c as f64 * width_mult, 8);
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let block = &features / (blocks.len() + 1);
                let bp = &block / "conv";
                let hidden = in_ch * t;
                let identity = stride == 1 && in_ch == out_ch;
                // Layer indices inside `conv` shift by one when there is no expansion conv.
                let (expand, first) = if t != 1 {
                    let expand =
                        ConvBn::new(&bp / 0 / 0, &bp / 0 / 1, ConvSpec::new(in_ch, hidden, 1, 1));
                    (Some(expand), 1)
                } else {
                    (None, 0)
                };
                let depthwise = ConvBn::new(
                    &bp / first / 0,
                    &bp / first / 1,
                    ConvSpec::depthwise(hidden, 3, stride),
                );
                let project = ConvBn::new(
                    &bp / (first + 1),
                    &bp / (first + 2),
                    ConvSpec::new(hidden, out_ch, 1, 1),
                );
                let shift = match temporal {
                    Temporal::Shift {
                        direction,
                        shift_div,
                        ..
                    } if identity => Some(TemporalShift::take_slot(
                        *direction,
                        *shift_div,
                        &mut shift_slots,
                    )),
                    _ => None,
                };
                blocks.push(InvertedResidual {
                    name: path_name(&block),
                    expand,
                    depthwise,
                    project,
                    identity,
                    shift,
                });
                in_ch = out_ch;
            }
        }
        let lp = &features / (blocks.len() + 1);
        let last = ConvBn::new(&lp / 0, &lp / 1, ConvSpec::new(in_ch, last_ch, 1, 1));
        Self { stem, blocks, last }
    }
}

impl Trunk for MobileNetV2 {
    fn classifier(&self) -> &'static str {
        Self::CLASSIFIER
    }

    fn out_channels(&self) -> i64 {
        self.last.spec.out_ch
    }

    /// Every convolution with its BatchNorm, in forward order (the stem first).
    fn conv_bns_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut all = vec![&mut self.stem];
        for block in &mut self.blocks {
            all.extend(
                block
                    .expand
                    .iter_mut()
                    .chain([&mut block.depthwise, &mut block.project]),
            );
        }
        all.push(&mut self.last);
        all
    }

    fn forward_t(&self, x: &Tensor, time: &mut TimeAxis, train: bool) -> Result<Tensor, TchError> {
        let mut x = relu6(&self.stem.forward_t(x, train));
        for block in &self.blocks {
            x = block.forward_t(&x, time, train)?;
        }
        Ok(relu6(&self.last.forward_t(&x, train))
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)) // [N*T, C]
    }

    fn emit(&self, e: &mut dyn Emitter, x: Value) -> Result<Value, EmitError> {
        let stem = e.conv(&self.stem, x)?;
        let mut x = e.relu6(stem)?;
        for block in &self.blocks {
            x = block.emit(e, x)?;
        }
        let last = e.conv(&self.last, x)?;
        let last = e.relu6(last)?;
        e.global_avg_pool(last) // [B, C]
    }

    fn layers(&self) -> Vec<Layer> {
        let mut layers = vec![Layer::conv_bn(&self.stem)];
        layers.extend(self.blocks.iter().flat_map(InvertedResidual::layers));
        layers.push(Layer::conv_bn(&self.last));
        layers
    }

    /// Cost per stage: the stem, the blocks grouped by output resolution, the last conv.
    fn stage_costs(&self, nt: i64, size: i64) -> Vec<StageCost> {
        let mut rows = Vec::new();
        let stem = self.stem.spec.macs(nt, size, size);
        rows.push(StageCost {
            name: "features.0 (stem)".into(),
            params: self.stem.params(),
            macs: stem,
        });
        let (mut h, mut w) = self.stem.spec.out_hw(size, size);
        let mut first = 1;
        let (mut params, mut macs) = (0, 0);
        for (i, block) in self.blocks.iter().enumerate() {
            let index = i + 1;
            for conv in block.convs() {
                params += conv.params();
                macs += conv.spec.macs(nt, h, w);
                (h, w) = conv.spec.out_hw(h, w);
            }
            let stage_ends = self
                .blocks
                .get(i + 1)
                .is_none_or(|b| b.depthwise.spec.stride > 1);
            if stage_ends {
                rows.push(StageCost {
                    name: format!("features.{first}-{index} ({h}x{w})"),
                    params,
                    macs,
                });
                (params, macs) = (0, 0);
                first = index + 1;
            }
        }
        let n = self.blocks.len() + 1;
        let last = self.last.spec.macs(nt, h, w);
        rows.push(StageCost {
            name: format!("features.{n} (1x1 conv)"),
            params: self.last.params(),
            macs: last,
        });
        rows
    }
}
