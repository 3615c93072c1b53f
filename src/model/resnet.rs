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

use tch::{Tensor, nn};

use super::config::{ResnetVariant, ShiftDirection, ShiftPlacement, Temporal};
use super::layers::{ConvBn, ConvSpec, InferenceLayout, StageCost};
use super::mvf::Mvf;
use super::shift::{TemporalShift, TimeAxis, temporal_pool};

/// The per-block temporal module.
#[derive(Debug)]
enum BlockTemporal {
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

/// A BasicBlock (two 3x3 convs) or a Bottleneck (1x1, 3x3 with the stride, 1x1).
#[derive(Debug)]
struct ResBlock {
    convs: Vec<ConvBn>,
    downsample: Option<Downsample>,
    temporal: BlockTemporal,
}

impl ResBlock {
    fn forward_t(&self, x: &Tensor, time: &mut TimeAxis, train: bool) -> Tensor {
        // "block" placement shifts what both paths see; "blockres" only the residual branch.
        let input = match &self.temporal {
            BlockTemporal::Shift(shift, ShiftPlacement::Block) => shift.forward(x, time),
            _ => x.shallow_clone(),
        };
        let y = match &self.temporal {
            BlockTemporal::Shift(shift, ShiftPlacement::Blockres) => {
                shift.branch(&input, time, |shifted| self.branch_t(shifted, train))
            }
            BlockTemporal::Mvf(mvf) => {
                self.branch_t(&mvf.forward_t(&input, time.frames(), train), train)
            }
            _ => self.branch_t(&input, train),
        };
        let identity = match &self.downsample {
            Some(down) => down.forward_t(&input, train),
            None => input,
        };
        (y + identity).relu()
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

    fn params(&self) -> u64 {
        let convs: u64 = self
            .convs
            .iter()
            .chain(self.downsample.as_ref().map(|d| &d.conv))
            .map(ConvBn::params)
            .sum();
        match &self.temporal {
            BlockTemporal::Mvf(mvf) => convs + mvf.params(),
            _ => convs,
        }
    }

    /// Multiply-adds for `nt` frames of `h` x `w`; returns the output size too.
    fn macs(&self, nt: i64, h: i64, w: i64) -> (u64, i64, i64) {
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

/// A ResNet trunk without its classifier: `[N*T, 3, H, W]` in, pooled `[N*T', C]` features out.
#[derive(Debug)]
pub struct ResNet {
    /// One 7x7 conv (ResNet-B) or three 3x3 convs (ResNet-D), each followed by ReLU.
    stem: Vec<ConvBn>,
    stages: Vec<Vec<ResBlock>>,
    temporal_pool: bool,
    out_channels: i64,
    shift_slots: usize,
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

impl ResNet {
    pub fn new(
        p: &nn::Path,
        depth: u32,
        base_width: i64,
        variant: ResnetVariant,
        temporal: &Temporal,
    ) -> Self {
        let (blocks, bottleneck) = layout(depth);
        let expansion = if bottleneck { 4 } else { 1 };
        let stem = stem(p, base_width, variant);
        // TSM shifts every second block when layer3 is as deep as ResNet-101's (in every stage).
        let shift_every = if blocks[2] >= 23 { 2 } else { 1 };
        let mut shift_slots = 0;
        let mut in_ch = base_width;
        let mut stages = Vec::with_capacity(4);
        for (s, &count) in blocks.iter().enumerate() {
            let planes = base_width << s;
            let stage_path = p / format!("layer{}", s + 1);
            let mut stage = Vec::with_capacity(count);
            for i in 0..count {
                let bp = &stage_path / i;
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                let out_ch = planes * expansion;
                let convs = if bottleneck {
                    vec![
                        ConvBn::new(
                            &bp / "conv1",
                            &bp / "bn1",
                            ConvSpec::new(in_ch, planes, 1, 1),
                        ),
                        ConvBn::new(
                            &bp / "conv2",
                            &bp / "bn2",
                            ConvSpec::new(planes, planes, 3, stride),
                        ),
                        ConvBn::new(
                            &bp / "conv3",
                            &bp / "bn3",
                            ConvSpec::new(planes, out_ch, 1, 1),
                        ),
                    ]
                } else {
                    vec![
                        ConvBn::new(
                            &bp / "conv1",
                            &bp / "bn1",
                            ConvSpec::new(in_ch, planes, 3, stride),
                        ),
                        ConvBn::new(
                            &bp / "conv2",
                            &bp / "bn2",
                            ConvSpec::new(planes, planes, 3, 1),
                        ),
                    ]
                };
                let downsample = (stride != 1 || in_ch != out_ch).then(|| {
                    let dp = &bp / "downsample";
                    match variant {
                        ResnetVariant::B => Downsample {
                            pool: false,
                            conv: ConvBn::new(
                                &dp / 0,
                                &dp / 1,
                                ConvSpec::new(in_ch, out_ch, 1, stride),
                            ),
                        },
                        // Index 0 is the pool (an identity in stage 1), as in timm.
                        ResnetVariant::D => Downsample {
                            pool: stride != 1,
                            conv: ConvBn::new(&dp / 1, &dp / 2, ConvSpec::new(in_ch, out_ch, 1, 1)),
                        },
                    }
                });
                let temporal = match temporal {
                    Temporal::None => BlockTemporal::None,
                    Temporal::Shift {
                        direction,
                        shift_div,
                        placement,
                        ..
                    } => {
                        let every = if *placement == ShiftPlacement::Blockres {
                            shift_every
                        } else {
                            1
                        };
                        if i % every == 0 {
                            let shift = new_shift(*direction, *shift_div, &mut shift_slots);
                            BlockTemporal::Shift(shift, *placement)
                        } else {
                            BlockTemporal::None
                        }
                    }
                    Temporal::Mvf {
                        alpha,
                        mvf_freq,
                        mode,
                    } => {
                        if mvf_freq[s] == 1 {
                            BlockTemporal::Mvf(Mvf::new(&bp / "mvf", in_ch, *alpha, *mode))
                        } else {
                            BlockTemporal::None
                        }
                    }
                };
                stage.push(ResBlock {
                    convs,
                    downsample,
                    temporal,
                });
                in_ch = out_ch;
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
            shift_slots,
        }
    }

    /// Folds every BatchNorm into its convolution and converts the weights to `layout`.
    /// MVF modules keep their own weights: MVF networks are offline-only.
    pub fn fold(&mut self, layout: InferenceLayout) {
        for conv in self.conv_bns_mut() {
            conv.fold(layout);
        }
    }

    /// Every convolution with its BatchNorm, in forward order (the stem first).
    pub fn conv_bns_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut all: Vec<&mut ConvBn> = self.stem.iter_mut().collect();
        for block in self.stages.iter_mut().flatten() {
            all.extend(
                block
                    .convs
                    .iter_mut()
                    .chain(block.downsample.as_mut().map(|d| &mut d.conv)),
            );
        }
        all
    }

    /// Width of the pooled features.
    pub fn out_channels(&self) -> i64 {
        self.out_channels
    }

    /// Number of shifted blocks (slots of a shift cache).
    pub fn shift_slots(&self) -> usize {
        self.shift_slots
    }

    /// `[N*T, 3, H, W]` -> `[N*T', C]`; a temporal pool shortens `time` in place.
    pub fn forward_t(&self, x: &Tensor, time: &mut TimeAxis, train: bool) -> Tensor {
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
                x = temporal_pool(&x, *t);
                *t = (*t + 1) / 2;
            }
            for block in stage {
                x = block.forward_t(&x, time, train);
            }
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1) // [N*T', C]
    }

    /// Cost per stage (`stem`, `layer1`..`layer4`) for `nt` frames of `size` x `size`.
    pub fn stage_costs(&self, nt: i64, size: i64) -> Vec<StageCost> {
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
            if s == 1 && self.temporal_pool {
                frames = (frames + 1) / 2;
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

/// A shift for the next cache slot.
pub(super) fn new_shift(
    direction: ShiftDirection,
    shift_div: i64,
    slots: &mut usize,
) -> TemporalShift {
    let shift = TemporalShift {
        direction,
        shift_div,
        slot: *slots,
    };
    *slots += 1;
    shift
}
