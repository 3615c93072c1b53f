//! ResNet-18/34/50/101 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) in
//! torchvision's v1.5 layout and parameter names, with a temporal module (TSM shift or MVF) placed in
//! the residual blocks by configuration.
//!
//! The ResNet-D variant (He et al., "Bag of Tricks for Image Classification with Convolutional
//! Neural Networks", CVPR 2019; PaddleClas' "vd", the trunk of PaddleVideo's PP-TSN and PP-TSM)
//! replaces the 7x7 stem conv by three 3x3 convs and strides the downsampling shortcut with a 2x2
//! average pool instead of the 1x1 conv, which otherwise skips three quarters of its input. Its
//! parameter names are timm's (`resnet50d`): `conv1.{0,3,6}` with BatchNorms `conv1.1`, `conv1.4`
//! and `bn1`; `downsample.1` (conv) and `downsample.2` (BN), `downsample.0` being the pool.

use tch::{TchError, Tensor, nn};

use super::config::{ResnetVariant, ShiftPlacement, Temporal};
use super::emit::{EmitError, Emitter, Value};
use super::layers::{ConvBn, ConvSpec, StageCost};
use super::mvf::Mvf;
use super::resnet_block::{BlockSpec, BlockTemporal, ResBlock};
use super::shift::{TemporalShift, TimeAxis, temporal_pool};
use super::trunk::{Layer, LayerKind, Trunk};

/// A ResNet trunk without its classifier: `[N*T, 3, H, W]` in, pooled `[N*T', C]` features out.
#[derive(Debug)]
pub struct ResNet {
    /// One 7x7 conv (ResNet-B) or three 3x3 convs (ResNet-D), each followed by ReLU.
    stem: Vec<ConvBn>,
    stages: Vec<Vec<ResBlock>>,
    temporal_pool: bool,
    out_channels: i64,
}

/// Blocks per stage and whether the blocks are bottlenecks.
fn layout(depth: u32) -> ([usize; 4], bool) {
    match depth {
        18 => ([2, 2, 2, 2], false),
        34 => ([3, 4, 6, 3], false),
        50 => ([3, 4, 6, 3], true),
        // Validated in ModelConfig::validate; 101 is the only depth left.
        _ => ([3, 4, 23, 3], true),
    }
}

/// The stem convs: torchvision's `conv1`/`bn1`, or timm's deep stem `conv1.{0,3,6}` with
/// BatchNorms `conv1.{1,4}` and `bn1` (widths base/2, base/2, base; the first strided).
fn stem(p: &nn::Path, base_width: i64, variant: ResnetVariant) -> Vec<ConvBn> {
    match variant {
        ResnetVariant::B => vec![ConvBn::new(
            p / "conv1",
            p / "bn1",
            ConvSpec::new(3, base_width, 7, 2),
        )],
        ResnetVariant::D => {
            let (conv1, half) = (p / "conv1", base_width / 2);
            vec![
                ConvBn::new(&conv1 / 0, &conv1 / 1, ConvSpec::new(3, half, 3, 2)),
                ConvBn::new(&conv1 / 3, &conv1 / 4, ConvSpec::new(half, half, 3, 1)),
                ConvBn::new(&conv1 / 6, p / "bn1", ConvSpec::new(half, base_width, 3, 1)),
            ]
        }
    }
}

/// The temporal module of block `i` of stage `s`, taking the next cache slot for a shift.
fn block_temporal(
    temporal: &Temporal,
    (s, i): (usize, usize),
    shift_every: usize,
    in_ch: i64,
    slots: &mut usize,
) -> impl FnOnce(&nn::Path) -> BlockTemporal {
    let chosen = match temporal {
        Temporal::None => None,
        Temporal::Shift {
            direction,
            shift_div,
            placement,
            ..
        } => {
            // TSM shifts every second block when layer3 is as deep as ResNet-101's (in every
            // stage), with the blockres placement.
            let every = if *placement == ShiftPlacement::Blockres {
                shift_every
            } else {
                1
            };
            (i % every == 0).then(|| {
                let shift = TemporalShift::take_slot(*direction, *shift_div, slots);
                BlockTemporal::Shift(shift, *placement)
            })
        }
        Temporal::Mvf { .. } => None,
    };
    let mvf = match temporal {
        Temporal::Mvf {
            alpha,
            mvf_freq,
            mode,
        } if mvf_freq[s] == 1 => Some((*alpha, *mode)),
        _ => None,
    };
    move |bp: &nn::Path| match (chosen, mvf) {
        (Some(shift), _) => shift,
        (None, Some((alpha, mode))) => BlockTemporal::Mvf(Mvf::new(bp / "mvf", in_ch, alpha, mode)),
        (None, None) => BlockTemporal::None,
    }
}

impl ResNet {
    /// The classifier torchvision puts on a ResNet.
    pub const CLASSIFIER: &'static str = "fc";

    pub fn new(
        p: &nn::Path,
        depth: u32,
        base_width: i64,
        variant: ResnetVariant,
        temporal: &Temporal,
    ) -> Self {
        let (blocks, bottleneck) = layout(depth);
        let stem = stem(p, base_width, variant);
        let shift_every = if blocks[2] >= 23 { 2 } else { 1 };
        let mut slots = 0;
        let mut in_ch = base_width;
        let mut stages = Vec::with_capacity(4);
        for (s, &count) in blocks.iter().enumerate() {
            let stage_path = p / format!("layer{}", s + 1);
            let mut stage = Vec::with_capacity(count);
            for i in 0..count {
                let spec = BlockSpec {
                    in_ch,
                    planes: base_width << s,
                    stride: if s > 0 && i == 0 { 2 } else { 1 },
                    bottleneck,
                    variant,
                };
                let temporal = block_temporal(temporal, (s, i), shift_every, in_ch, &mut slots);
                stage.push(ResBlock::new(&(&stage_path / i), spec, temporal));
                in_ch = spec.out_ch();
            }
            stages.push(stage);
        }
        let temporal_pool = matches!(
            temporal,
            Temporal::Shift {
                temporal_pool: true,
                ..
            }
        );
        Self {
            stem,
            stages,
            temporal_pool,
            out_channels: in_ch,
        }
    }
}

impl Trunk for ResNet {
    fn classifier(&self) -> &'static str {
        Self::CLASSIFIER
    }

    fn out_channels(&self) -> i64 {
        self.out_channels
    }

    /// Every convolution with its BatchNorm, in forward order (the stem first). MVF modules keep
    /// their own weights when folding: MVF networks are offline-only.
    fn conv_bns_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut all: Vec<&mut ConvBn> = self.stem.iter_mut().collect();
        for block in self.stages.iter_mut().flatten() {
            all.extend(block.conv_bns_mut());
        }
        all
    }

    fn forward_t(&self, x: &Tensor, time: &mut TimeAxis, train: bool) -> Result<Tensor, TchError> {
        let mut x = x.shallow_clone();
        for conv in &self.stem {
            x = conv.forward_t(&x, train).relu();
        }
        let mut x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for (s, stage) in self.stages.iter().enumerate() {
            if s == 1
                && self.temporal_pool
                && let TimeAxis::Clip { t } = time
            {
                x = temporal_pool(&x, *t)?;
                *t = (*t + 1) / 2;
            }
            for block in stage {
                x = block.forward_t(&x, time, train)?;
            }
        }
        Ok(x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)) // [N*T', C]
    }

    fn emit(&self, e: &mut dyn Emitter, x: Value) -> Result<Value, EmitError> {
        let mut x = x;
        for conv in &self.stem {
            let y = e.conv(conv, x)?;
            x = e.relu(y)?;
        }
        x = e.max_pool(x, 3, 2, 1)?;
        for (s, stage) in self.stages.iter().enumerate() {
            if s == 1 && self.temporal_pool {
                x = e.temporal_pool(x)?;
            }
            for block in stage {
                x = block.emit(e, x)?;
            }
        }
        e.global_avg_pool(x) // [B, C]
    }

    fn frames_out(&self, frames: i64) -> i64 {
        if self.temporal_pool {
            (frames + 1) / 2
        } else {
            frames
        }
    }

    fn layers(&self) -> Vec<Layer> {
        let mut layers: Vec<Layer> = self.stem.iter().map(Layer::conv_bn).collect();
        for (s, stage) in self.stages.iter().enumerate() {
            if s == 1 && self.temporal_pool {
                layers.push(Layer {
                    name: "layer2".into(),
                    kind: LayerKind::TemporalPool,
                });
            }
            layers.extend(stage.iter().flat_map(ResBlock::layers));
        }
        layers
    }

    /// Cost per stage (`stem`, `layer1`..`layer4`) for `nt` frames of `size` x `size`.
    fn stage_costs(&self, nt: i64, size: i64) -> Vec<StageCost> {
        let mut rows = Vec::with_capacity(5);
        let (mut h, mut w) = (size, size);
        let (mut stem_params, mut stem_macs) = (0, 0);
        for conv in &self.stem {
            stem_params += conv.params();
            stem_macs += conv.spec.macs(nt, h, w);
            (h, w) = conv.spec.out_hw(h, w);
        }
        let pool = |x: i64| (x + 2 - 3) / 2 + 1;
        let (mut h, mut w) = (pool(h), pool(w));
        rows.push(StageCost {
            name: if self.stem.len() > 1 {
                "stem (conv1, 3 convs)".into()
            } else {
                "stem (conv1)".into()
            },
            params: stem_params,
            macs: stem_macs,
        });
        let mut frames = nt;
        for (s, stage) in self.stages.iter().enumerate() {
            if s == 1 {
                frames = self.frames_out(frames);
            }
            let mut macs = 0;
            for block in stage {
                let (block_macs, oh, ow) = block.macs(frames, h, w);
                macs += block_macs;
                (h, w) = (oh, ow);
            }
            let params = stage.iter().map(ResBlock::params).sum();
            rows.push(StageCost {
                name: format!("layer{} ({h}x{w})", s + 1),
                params,
                macs,
            });
        }
        rows
    }
}
