//! BN-Inception (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by
//! Reducing Internal Covariate Shift", ICML 2015), the 2D network of TSN and ECO, in the layout
//! and layer names of the ECO authors' PyTorch port (`tf_model_zoo/ECOfull/ECOfull.yaml`):
//! flat names such as `inception_3a_double_3x3_1` with its BatchNorm at `..._bn`.
//!
//! Every convolution has a bias (their layer factory builds all of them with one) and is
//! followed by BatchNorm and ReLU. Pools run in ceil mode as Caffe's do; the average pools of the
//! pool branches count the padding (PyTorch's default, which their factory keeps).
//!
//! ECO taps the ReLU'd output of inception-3c's first "double 3x3" conv (96 channels, 28x28 at
//! 224 px) for its 3D network; ECO-Lite stops there, ECO-Full runs the rest of the network.

use tch::{Tensor, nn};

use super::layers::{ConvBn, ConvSpec, InferenceLayout, StageCost};

/// The yaml's `X` (a conv with bias) and `X_bn`; the caller applies `X_relu`.
fn conv_bn(p: &nn::Path, name: &str, spec: ConvSpec) -> ConvBn {
    ConvBn::with_bias(p / name, p / format!("{name}_bn"), spec)
}

/// Conv, BatchNorm and ReLU: every layer of BN-Inception.
fn relu_t(conv: &ConvBn, x: &Tensor, train: bool) -> Tensor {
    conv.forward_t(x, train).relu()
}

/// Pooling of a pool branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Avg,
    Max,
}

/// One inception module at full width: name, 1x1, 3x3 reduce, 3x3, double reduce, double 1,
/// double 2, pool, pool projection (0: none), stride. A stride-2 module has no 1x1 branch, strides
/// its 3x3 and second double conv and max-pools with stride 2.
type ModuleSpec = (&'static str, i64, i64, i64, i64, i64, i64, Pool, i64, i64);

const MODULES: [ModuleSpec; 10] = [
    ("3a", 64, 64, 64, 64, 96, 96, Pool::Avg, 32, 1),
    ("3b", 64, 64, 96, 64, 96, 96, Pool::Avg, 64, 1),
    ("3c", 0, 128, 160, 64, 96, 96, Pool::Max, 0, 2),
    ("4a", 224, 64, 96, 96, 128, 128, Pool::Avg, 128, 1),
    ("4b", 192, 96, 128, 96, 128, 128, Pool::Avg, 128, 1),
    ("4c", 160, 128, 160, 128, 160, 160, Pool::Avg, 128, 1),
    ("4d", 96, 128, 192, 160, 192, 192, Pool::Avg, 128, 1),
    ("4e", 0, 128, 192, 192, 256, 256, Pool::Max, 0, 2),
    ("5a", 352, 192, 320, 160, 224, 224, Pool::Avg, 128, 1),
    ("5b", 352, 192, 320, 192, 224, 224, Pool::Max, 128, 1),
];

/// An inception module; for ECO-Lite's 3c only the double branch's first two convs exist.
#[derive(Debug)]
struct Inception {
    one: Option<ConvBn>,
    three: Option<(ConvBn, ConvBn)>,
    double: (ConvBn, ConvBn),
    double_2: Option<ConvBn>,
    /// The pool branch: pooling, stride and the optional 1x1 projection.
    pool: Option<(Pool, i64, Option<ConvBn>)>,
    out_channels: i64,
}

impl Inception {
    /// `tap_only` builds only `double_3x3_reduce` and `double_3x3_1` (ECO-Lite's 3c).
    fn new(p: &nn::Path, spec: &ModuleSpec, in_ch: i64, scale: i64, tap_only: bool) -> Self {
        let (name, one, r3, c3, rd, d1, d2, pool, proj, stride) = *spec;
        let w = |c: i64| c * scale / 64;
        let conv = |suffix: &str, cin: i64, cout: i64, k: i64, s: i64| {
            conv_bn(
                p,
                &format!("inception_{name}_{suffix}"),
                ConvSpec::new(cin, cout, k, s),
            )
        };
        let double = (
            conv("double_3x3_reduce", in_ch, w(rd), 1, 1),
            conv("double_3x3_1", w(rd), w(d1), 3, 1),
        );
        if tap_only {
            return Self {
                one: None,
                three: None,
                double,
                double_2: None,
                pool: None,
                out_channels: w(d1),
            };
        }
        let one_conv = (one > 0).then(|| conv("1x1", in_ch, w(one), 1, 1));
        let three = Some((
            conv("3x3_reduce", in_ch, w(r3), 1, 1),
            conv("3x3", w(r3), w(c3), 3, stride),
        ));
        let double_2 = Some(conv("double_3x3_2", w(d1), w(d2), 3, stride));
        let projection = (proj > 0).then(|| conv("pool_proj", in_ch, w(proj), 1, 1));
        let pooled = if proj > 0 { w(proj) } else { in_ch };
        Self {
            one: one_conv,
            three,
            double,
            double_2,
            pool: Some((pool, stride, projection)),
            out_channels: w(one) + w(c3) + w(d2) + pooled,
        }
    }

    fn convs_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut all: Vec<&mut ConvBn> = self.one.iter_mut().collect();
        if let Some((a, b)) = self.three.as_mut() {
            all.extend([a, b]);
        }
        all.extend([&mut self.double.0, &mut self.double.1]);
        all.extend(self.double_2.iter_mut());
        if let Some((_, _, Some(proj))) = self.pool.as_mut() {
            all.push(proj);
        }
        all
    }

    fn params(&self) -> u64 {
        let mut total = self.double.0.params() + self.double.1.params();
        total += self.one.as_ref().map_or(0, ConvBn::params);
        total += self
            .three
            .as_ref()
            .map_or(0, |(a, b)| a.params() + b.params());
        total += self.double_2.as_ref().map_or(0, ConvBn::params);
        if let Some((_, _, Some(proj))) = &self.pool {
            total += proj.params();
        }
        total
    }

    /// Multiply-adds for `n` images of `h` x `w`, and the output side.
    fn macs(&self, n: i64, h: i64, w: i64) -> (u64, i64, i64) {
        let chain = |convs: &[&ConvBn]| {
            let (mut total, mut ch, mut cw) = (0, h, w);
            for conv in convs {
                total += conv.spec.macs(n, ch, cw);
                (ch, cw) = conv.spec.out_hw(ch, cw);
            }
            (total, ch, cw)
        };
        let (mut total, mut oh, mut ow) = chain(&[&self.double.0, &self.double.1]);
        if let Some(d2) = &self.double_2 {
            total += d2.spec.macs(n, oh, ow);
            (oh, ow) = d2.spec.out_hw(oh, ow);
        }
        if let Some(one) = &self.one {
            total += one.spec.macs(n, h, w);
        }
        if let Some((a, b)) = &self.three {
            total += chain(&[a, b]).0;
        }
        if let Some((_, _, Some(proj))) = &self.pool {
            total += proj.spec.macs(n, h, w);
        }
        (total, oh, ow)
    }

    /// `[B, C, H, W]` -> (the module's output, the double branch's first conv output). For a
    /// tap-only module both are the tap.
    fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let reduced = relu_t(&self.double.0, x, train);
        let tap = relu_t(&self.double.1, &reduced, train);
        let Some((pool, stride, projection)) = &self.pool else {
            return (tap.shallow_clone(), tap);
        };
        let mut parts = Vec::with_capacity(4);
        if let Some(one) = &self.one {
            parts.push(relu_t(one, x, train));
        }
        if let Some((reduce, conv)) = &self.three {
            parts.push(relu_t(conv, &relu_t(reduce, x, train), train));
        }
        if let Some(d2) = &self.double_2 {
            parts.push(relu_t(d2, &tap, train));
        }
        // Stride-2 pools have no padding; the stride-1 ones keep the size with padding 1.
        let (s, pad) = (*stride, if *stride == 2 { 0 } else { 1 });
        let pooled = match pool {
            Pool::Max => x.max_pool2d([3, 3], [s, s], [pad, pad], [1, 1], true),
            Pool::Avg => x.avg_pool2d([3, 3], [s, s], [pad, pad], true, true, None::<i64>),
        };
        parts.push(match projection {
            Some(proj) => relu_t(proj, &pooled, train),
            None => pooled,
        });
        (Tensor::cat(&parts, 1), tap)
    }
}

/// Output side of the stem's 3x3, stride-2 max pools (ceil mode, no padding).
fn pool_out(x: i64) -> i64 {
    (x - 3 + 1) / 2 + 1
}

/// BN-Inception per frame: the stem, 3a, 3b and 3c (whole, or up to the tap), and for ECO-Full
/// 4a to 5b with the global average pool.
#[derive(Debug)]
pub struct BnInception {
    stem: [ConvBn; 3],
    modules: Vec<Inception>,
    full: bool,
}

impl BnInception {
    /// `base_width` 64 is the real network; other even widths scale every layer alike.
    pub fn new(p: &nn::Path, base_width: i64, full: bool) -> Self {
        let w = |c: i64| c * base_width / 64;
        let stem = [
            conv_bn(p, "conv1_7x7_s2", ConvSpec::new(3, w(64), 7, 2)),
            conv_bn(p, "conv2_3x3_reduce", ConvSpec::new(w(64), w(64), 1, 1)),
            conv_bn(p, "conv2_3x3", ConvSpec::new(w(64), w(192), 3, 1)),
        ];
        let count = if full { MODULES.len() } else { 3 };
        let mut in_ch = w(192);
        let mut modules = Vec::with_capacity(count);
        for (i, spec) in MODULES.iter().take(count).enumerate() {
            let module = Inception::new(p, spec, in_ch, base_width, !full && i == 2);
            in_ch = module.out_channels;
            modules.push(module);
        }
        Self {
            stem,
            modules,
            full,
        }
    }

    /// Channels of the tap (inception-3c's `double_3x3_1`).
    pub fn tap_channels(&self) -> i64 {
        self.modules[2].double.1.spec.out_ch
    }

    /// Width of the pooled 2D features of ECO-Full (1024 at full width); 0 for ECO-Lite.
    pub fn out_channels(&self) -> i64 {
        if self.full {
            self.modules.last().map_or(0, |m| m.out_channels)
        } else {
            0
        }
    }

    /// Every conv with its BatchNorm, in forward order (the stem first).
    pub fn convs_mut(&mut self) -> Vec<&mut ConvBn> {
        let mut all: Vec<&mut ConvBn> = self.stem.iter_mut().collect();
        for module in &mut self.modules {
            all.extend(module.convs_mut());
        }
        all
    }

    /// `[B, 3, H, W]` -> (tap `[B, 96, H/8, W/8]`, for ECO-Full the pooled features `[B, 1024]`).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let pool = |x: &Tensor| x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], true);
        let x = pool(&relu_t(&self.stem[0], x, train));
        let x = relu_t(&self.stem[1], &x, train);
        let mut x = pool(&relu_t(&self.stem[2], &x, train)); // [B, 192, H/8, W/8]
        let mut tap = None;
        for (i, module) in self.modules.iter().enumerate() {
            let (out, module_tap) = module.forward_t(&x, train);
            if i == 2 {
                tap = Some(module_tap);
            }
            x = out;
        }
        // Three modules always exist (see `new`), so the tap is set.
        let tap = tap.unwrap_or_else(|| x.shallow_clone());
        let pooled = self
            .full
            .then(|| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1)); // [B, 1024]
        (tap, pooled)
    }

    /// Folds every BatchNorm into its conv.
    pub fn fold(&mut self, layout: InferenceLayout) {
        for conv in self.convs_mut() {
            conv.fold(layout);
        }
    }

    /// Cost rows for `n` frames of `size` x `size`: the stem, 3a+3b, the tap, and for ECO-Full
    /// the rest of the 2D network; returns the tap's side too.
    pub fn stage_costs(&self, n: i64, size: i64) -> (Vec<StageCost>, i64) {
        let mut rows = Vec::new();
        let (mut macs, mut h, mut w) = (0, size, size);
        for (i, conv) in self.stem.iter().enumerate() {
            macs += conv.spec.macs(n, h, w);
            (h, w) = conv.spec.out_hw(h, w);
            if i != 1 {
                (h, w) = (pool_out(h), pool_out(w));
            }
        }
        rows.push(StageCost {
            name: "2D stem (conv1, conv2)".into(),
            params: self.stem.iter().map(ConvBn::params).sum(),
            macs,
        });
        let side = h;
        let (m3a, _, _) = self.modules[0].macs(n, h, w);
        let (m3b, _, _) = self.modules[1].macs(n, h, w);
        rows.push(StageCost {
            name: format!("2D inception 3a, 3b ({h}x{w})"),
            params: self.modules[0].params() + self.modules[1].params(),
            macs: m3a + m3b,
        });
        if !self.full {
            rows.push(StageCost {
                name: "2D inception 3c to the tap".into(),
                params: self.modules[2].params(),
                macs: self.modules[2].macs(n, h, w).0,
            });
            return (rows, side);
        }
        let (mut macs, mut params) = (0, 0);
        for module in &self.modules[2..] {
            let (m, oh, ow) = module.macs(n, h, w);
            macs += m;
            params += module.params();
            (h, w) = (oh, ow);
        }
        rows.push(StageCost {
            name: format!("2D inception 3c-5b (to {h}x{w})"),
            params,
            macs,
        });
        (rows, side)
    }
}
