//! ECO (Zolfaghari, Singh, Brox, "ECO: Efficient Convolutional Network for Online Video
//! Understanding", ECCV 2018, arXiv 1804.09066): a 2D BN-Inception runs on each of the T frames of
//! a clip up to inception-3c; the 96-channel maps of the frames are stacked into
//! `[N, 96, T, 28, 28]` and a 3D ResNet-18 (res3a..res5b) reasons over the whole clip at once.
//! ECO-Lite classifies its 512 pooled features; ECO-Full also runs the rest of BN-Inception per
//! frame, averages its 1024 features over the frames and classifies `[2D, 3D]` (1536).
//!
//! The 3D part follows the authors' nets (their `ECOfull.yaml`): res3a is one 3x3x3 conv from the
//! 2D features, and every BatchNorm comes after a residual sum ("pre-activation" order: the raw
//! sum is the next identity), res4a and res5a have a strided 3x3x3 shortcut conv (`res4a_down`),
//! the convs have biases. The 3D part's strides (2 in T, H and W at res4a and res5a) make
//! 16 frames of 28x28 into 4 of 7x7, which the global average pool reduces to one vector.
//!
//! The 2D part is a function of each frame alone, which the online runner (`online::EcoRunner`)
//! uses: it computes it once per frame entering the working memory, see [`EcoFrames`].

use tch::{TchError, Tensor, nn};

use super::bn_inception::BnInception;
use super::config::EcoVariant;
use super::layers::{CONV_INIT, ConvBn, InferenceLayout, StageCost, bn_affine};

/// A 3x3x3 convolution with bias, padding 1 (`res*_1`, `res*_2`, `res*_down`).
#[derive(Debug)]
struct Conv3d {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    inference: Option<(Tensor, Tensor)>,
}

impl Conv3d {
    fn new(p: &nn::Path, name: &str, in_ch: i64, out_ch: i64, stride: i64) -> Self {
        let conv = p / name;
        Self {
            weight: conv.var("weight", &[out_ch, in_ch, 3, 3, 3], CONV_INIT),
            bias: conv.var("bias", &[out_ch], nn::Init::Const(0.0)),
            stride,
            inference: None,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (w, b) = match &self.inference {
            Some((w, b)) => (w, b),
            None => (&self.weight, &self.bias),
        };
        let s = self.stride;
        x.conv3d(w, Some(b), [s, s, s], [1, 1, 1], [1, 1, 1], 1)
    }

    fn params(&self) -> u64 {
        (self.weight.numel() + self.bias.numel()) as u64
    }

    /// Multiply-adds for `n` clips of `t` x `h` x `w`; returns the output size too.
    fn macs(&self, n: i64, (t, h, w): (i64, i64, i64)) -> (u64, (i64, i64, i64)) {
        let out = |x: i64| (x + 2 - 3) / self.stride + 1;
        let size = self.weight.size();
        let per_output: i64 = size[1..].iter().product();
        let (ot, oh, ow) = (out(t), out(h), out(w));
        (
            (n * size[0] * ot * oh * ow * per_output) as u64,
            (ot, oh, ow),
        )
    }

    fn fold(&mut self, layout: InferenceLayout) {
        let kind = layout.kind;
        self.inference = Some(tch::no_grad(|| {
            (self.weight.to_kind(kind), self.bias.to_kind(kind))
        }));
    }
}

/// A BatchNorm3d; for inference an affine map in the compute dtype.
#[derive(Debug)]
struct Bn3d {
    bn: nn::BatchNorm,
    inference: Option<(Tensor, Tensor)>,
}

impl Bn3d {
    fn new(p: &nn::Path, name: &str, ch: i64) -> Self {
        Self {
            bn: nn::batch_norm3d(p / name, ch, Default::default()),
            inference: None,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match &self.inference {
            Some((scale, shift)) => x * scale + shift,
            None => x.apply_t(&self.bn, train),
        }
    }

    fn params(&self) -> u64 {
        self.bn.ws.as_ref().map_or(0, |w| 2 * w.numel() as u64)
    }

    fn fold(&mut self, layout: InferenceLayout) {
        let (scale, shift) = tch::no_grad(|| bn_affine(&self.bn));
        let shape = [-1, 1, 1, 1];
        self.inference = Some((
            scale.view(shape).to_kind(layout.kind),
            shift.view(shape).to_kind(layout.kind),
        ));
    }
}

/// One stage of the 3D ResNet-18: an "a" block (res3a: a single conv; res4a, res5a: two convs
/// and a strided shortcut conv) and a "b" block, each sum followed by BatchNorm and ReLU.
#[derive(Debug)]
struct Stage3d {
    /// `res{s}a_1`, its BatchNorm and `res{s}a_down` (absent in res3a).
    first: Option<(Conv3d, Bn3d, Conv3d)>,
    a2: Conv3d,
    a_bn: Bn3d,
    b1: Conv3d,
    b1_bn: Bn3d,
    b2: Conv3d,
    b_bn: Bn3d,
}

impl Stage3d {
    fn new(p: &nn::Path, stage: u32, in_ch: i64, out_ch: i64) -> Self {
        let r = |suffix: &str| format!("res{stage}{suffix}");
        let first = (stage > 3).then(|| {
            (
                Conv3d::new(p, &r("a_1"), in_ch, out_ch, 2),
                Bn3d::new(p, &r("a_1_bn"), out_ch),
                Conv3d::new(p, &r("a_down"), in_ch, out_ch, 2),
            )
        });
        let a2_in = if stage > 3 { out_ch } else { in_ch };
        Self {
            first,
            a2: Conv3d::new(p, &r("a_2"), a2_in, out_ch, 1),
            a_bn: Bn3d::new(p, &r("a_bn"), out_ch),
            b1: Conv3d::new(p, &r("b_1"), out_ch, out_ch, 1),
            b1_bn: Bn3d::new(p, &r("b_1_bn"), out_ch),
            b2: Conv3d::new(p, &r("b_2"), out_ch, out_ch, 1),
            b_bn: Bn3d::new(p, &r("b_bn"), out_ch),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        // The raw sums (before BatchNorm) are the identities of the next block.
        let a = match &self.first {
            None => self.a2.forward(x),
            Some((a1, a1_bn, down)) => {
                let h = a1_bn.forward_t(&a1.forward(x), train).relu();
                self.a2.forward(&h) + down.forward(x)
            }
        };
        let h = self.a_bn.forward_t(&a, train).relu();
        let h = self.b1_bn.forward_t(&self.b1.forward(&h), train).relu();
        let sum = self.b2.forward(&h) + a;
        self.b_bn.forward_t(&sum, train).relu()
    }

    fn convs(&self) -> Vec<&Conv3d> {
        let mut all = Vec::with_capacity(5);
        if let Some((a1, _, down)) = &self.first {
            all.extend([a1, down]);
        }
        all.extend([&self.a2, &self.b1, &self.b2]);
        all
    }

    fn params(&self) -> u64 {
        let bns = [&self.a_bn, &self.b1_bn, &self.b_bn];
        let first_bn = self.first.as_ref().map_or(0, |(_, bn, _)| bn.params());
        self.convs().iter().map(|c| c.params()).sum::<u64>()
            + bns.iter().map(|b| b.params()).sum::<u64>()
            + first_bn
    }

    fn macs(&self, n: i64, size: (i64, i64, i64)) -> (u64, (i64, i64, i64)) {
        let mut total = 0;
        let out = match &self.first {
            Some((a1, _, down)) => {
                let (m1, out) = a1.macs(n, size);
                total += m1 + down.macs(n, size).0 + self.a2.macs(n, out).0;
                out
            }
            None => {
                let (m, out) = self.a2.macs(n, size);
                total += m;
                out
            }
        };
        total += self.b1.macs(n, out).0 + self.b2.macs(n, out).0;
        (total, out)
    }

    fn fold(&mut self, layout: InferenceLayout) {
        if let Some((a1, bn, down)) = self.first.as_mut() {
            a1.fold(layout);
            bn.fold(layout);
            down.fold(layout);
        }
        for conv in [&mut self.a2, &mut self.b1, &mut self.b2] {
            conv.fold(layout);
        }
        for bn in [&mut self.a_bn, &mut self.b1_bn, &mut self.b_bn] {
            bn.fold(layout);
        }
    }
}

/// The per-frame output of ECO's 2D part for B frames.
#[derive(Debug)]
pub struct EcoFrames {
    /// `[B, 96, h, w]`: inception-3c's `double_3x3_1` after its ReLU, the 3D net's input.
    pub tap: Tensor,
    /// `[B, 1024]`: ECO-Full's pooled 2D features; `None` for ECO-Lite.
    pub pooled: Option<Tensor>,
}

impl EcoFrames {
    /// Frames one after another (all of one kind).
    pub fn cat(parts: &[EcoFrames]) -> Self {
        let taps: Vec<&Tensor> = parts.iter().map(|f| &f.tap).collect();
        let pooled: Option<Vec<&Tensor>> = parts.iter().map(|f| f.pooled.as_ref()).collect();
        Self {
            tap: Tensor::cat(&taps, 0),
            pooled: pooled.map(|p| Tensor::cat(&p, 0)),
        }
    }

    /// Frame `i` alone.
    pub fn frame(&self, i: i64) -> Self {
        Self {
            tap: self.tap.narrow(0, i, 1),
            pooled: self.pooled.as_ref().map(|p| p.narrow(0, i, 1)),
        }
    }

    /// Number of frames.
    pub fn len(&self) -> i64 {
        self.tap.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// ECO without its classifier: frames in, one feature vector per clip out.
#[derive(Debug)]
pub struct Eco {
    inception: BnInception,
    stages: Vec<Stage3d>,
    out_3d: i64,
}

impl Eco {
    /// The classifier, named as the ECO authors' TSN wrapper names it.
    pub const CLASSIFIER: &'static str = "new_fc";

    /// `base_width` 64 is the published network (3D widths 128, 256, 512).
    pub fn new(p: &nn::Path, variant: EcoVariant, base_width: i64) -> Self {
        let inception = BnInception::new(p, base_width, variant == EcoVariant::Full);
        let w = |c: i64| c * base_width / 64;
        let mut in_ch = inception.tap_channels();
        let mut stages = Vec::with_capacity(3);
        for (stage, width) in [(3, w(128)), (4, w(256)), (5, w(512))] {
            stages.push(Stage3d::new(p, stage, in_ch, width));
            in_ch = width;
        }
        Self {
            inception,
            stages,
            out_3d: in_ch,
        }
    }

    /// Width of the clip features: 512 (Lite) or 1024 + 512 (Full) at full width.
    pub fn out_channels(&self) -> i64 {
        self.inception.out_channels() + self.out_3d
    }

    /// The 2D part on `[B, 3, H, W]` frames.
    pub fn frames_t(&self, x: &Tensor, train: bool) -> EcoFrames {
        let (tap, pooled) = self.inception.forward_t(x, train);
        EcoFrames { tap, pooled }
    }

    /// The 3D part (and ECO-Full's temporal average) on `N*T` frames, clip by clip:
    /// -> `[N, C]` clip features.
    pub fn clip_t(&self, frames: &EcoFrames, t: i64, train: bool) -> Result<Tensor, TchError> {
        let (nt, c, h, w) = frames.tap.size4()?;
        let n = nt / t;
        // [N*T, C, h, w] -> [N, C, T, h, w]; reshape copes with a channels-last tap
        let mut x = frames
            .tap
            .reshape([n, t, c, h, w])
            .permute([0, 2, 1, 3, 4])
            .contiguous();
        for stage in &self.stages {
            x = stage.forward_t(&x, train);
        }
        let features = x.adaptive_avg_pool3d([1, 1, 1]).flatten(1, -1); // [N, 512]
        Ok(match &frames.pooled {
            // The 2D features averaged over the clip's frames, then [2D, 3D].
            Some(pooled) => {
                let mean = pooled.reshape([n, t, -1]).mean_dim(1, false, None); // [N, 1024]
                Tensor::cat(&[mean.to_kind(features.kind()), features], 1)
            }
            None => features,
        })
    }

    /// The 2D convs with their BatchNorms, for partial BN (the authors' TSN freezes every 2D
    /// BatchNorm but the first, and leaves the 3D ones training).
    pub fn convs_2d_mut(&mut self) -> Vec<&mut ConvBn> {
        self.inception.convs_mut()
    }

    /// BatchNorm folded into the 2D convs, the 3D BatchNorms turned into affine maps, all in
    /// `layout`'s dtype.
    pub fn fold(&mut self, layout: InferenceLayout) {
        self.inception.fold(layout);
        for stage in &mut self.stages {
            stage.fold(layout);
        }
    }

    /// Cost rows for `nt` frames of `size` x `size` taken as clips of `t` frames.
    pub fn stage_costs(&self, nt: i64, t: i64, size: i64) -> Vec<StageCost> {
        let (mut rows, side) = self.inception.stage_costs(nt, size);
        let t = t.clamp(1, nt.max(1));
        let n = (nt / t).max(1);
        let mut shape = (t, side, side);
        for (i, stage) in self.stages.iter().enumerate() {
            let (macs, out) = stage.macs(n, shape);
            rows.push(StageCost {
                name: format!("3D res{} ({}x{}x{})", i + 3, out.0, out.1, out.2),
                params: stage.params(),
                macs,
            });
            shape = out;
        }
        rows
    }
}
