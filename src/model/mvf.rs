//! The Multi-View Fusion module (Wu et al., "MVFNet: Multi-View Fusion Network for Efficient Video
//! Recognition", AAAI 2021, arXiv 2012.06977).
//!
//! A fraction `alpha` of the channels, viewed as a `[N, C', T, H, W]` volume, goes through depthwise
//! 3D convolutions along T (3x1x1), H (1x3x1) and W (1x1x3); their sum goes through BatchNorm3d and
//! hardswish and replaces those channels. The rest pass untouched. Sits before conv1 of a residual
//! block's branch.

use tch::{TchError, Tensor, nn};

use super::config::MvfMode;

#[derive(Debug)]
pub struct Mvf {
    channels: i64,
    t_conv: Tensor,
    h_conv: Option<Tensor>,
    w_conv: Option<Tensor>,
    bn: nn::BatchNorm,
}

impl Mvf {
    /// `in_channels` of the block, of which `int(in_channels * alpha)` go through the module.
    pub fn new(p: nn::Path, in_channels: i64, alpha: f64, mode: MvfMode) -> Self {
        let channels = ((in_channels as f64) * alpha) as i64;
        // MVFNet initialises these convs with N(0, sqrt(2 / (k * out_channels))), k = 3 taps.
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: (2.0 / (3.0 * channels.max(1) as f64)).sqrt(),
        };
        let conv = |name: &str, kernel: [i64; 3]| {
            (&p / name).var(
                "weight",
                &[channels, 1, kernel[0], kernel[1], kernel[2]],
                init,
            )
        };
        let t_conv = conv("t_conv", [3, 1, 1]);
        let h_conv = matches!(mode, MvfMode::Thw | MvfMode::Th).then(|| conv("h_conv", [1, 3, 1]));
        let w_conv = matches!(mode, MvfMode::Thw).then(|| conv("w_conv", [1, 1, 3]));
        let bn = nn::batch_norm3d(&p / "bn", channels, Default::default());
        Self {
            channels,
            t_conv,
            h_conv,
            w_conv,
            bn,
        }
    }

    /// Channels that go through the module.
    pub fn channels(&self) -> i64 {
        self.channels
    }

    pub fn forward_t(&self, x: &Tensor, t: i64, train: bool) -> Result<Tensor, TchError> {
        let (nt, c, h, w) = x.size4()?;
        if self.channels == 0 {
            return Ok(x.shallow_clone());
        }
        let n = nt / t;
        let x5 = x.view([n, t, c, h, w]).transpose(1, 2); // [N, C, T, H, W]
        let part = x5.narrow(1, 0, self.channels); // [N, C', T, H, W]
        let dw = |weight: &Tensor, padding: [i64; 3]| {
            part.conv3d(
                weight,
                None::<&Tensor>,
                [1, 1, 1],
                padding,
                [1, 1, 1],
                self.channels,
            )
        };
        let mut fused = dw(&self.t_conv, [1, 0, 0]);
        if let Some(weight) = &self.h_conv {
            fused += dw(weight, [0, 1, 0]);
        }
        if let Some(weight) = &self.w_conv {
            fused += dw(weight, [0, 0, 1]);
        }
        let fused = fused.apply_t(&self.bn, train).hardswish();
        let rest = x5.narrow(1, self.channels, c - self.channels);
        Ok(Tensor::cat(&[fused, rest], 1)
            .transpose(1, 2)
            .contiguous()
            .view([nt, c, h, w])) // [N*T, C, H, W]
    }

    /// Trainable parameters: the depthwise kernels and the BatchNorm scale and shift.
    pub fn params(&self) -> u64 {
        let kernels: i64 = [
            Some(&self.t_conv),
            self.h_conv.as_ref(),
            self.w_conv.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|w| w.numel() as i64)
        .sum();
        (kernels + 2 * self.channels) as u64
    }

    /// Multiply-adds of the depthwise convolutions for `nt` frames of `h` x `w`.
    pub fn macs(&self, nt: i64, h: i64, w: i64) -> u64 {
        let views = 1 + self.h_conv.is_some() as i64 + self.w_conv.is_some() as i64;
        (views * 3 * self.channels * nt * h * w) as u64
    }
}
