//! VGG (Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
//! Recognition", ICLR 2015) without BatchNorm, in torchvision's layout and parameter names, as the
//! frame network of TSN the way GluonCV's `vgg16_ucf101` uses it (after Wang et al., "Towards Good
//! Practices for Very Deep Two-Stream ConvNets", arXiv 1507.02159).
//!
//! Five stages of 3x3 convs with bias and ReLU, each closed by a 2x2 max pool (`features.N`, N
//! counting ReLUs and pools as torchvision does), a 7x7 adaptive average pool, then fc6
//! (`classifier.0`) and fc7 (`classifier.3`), each followed by ReLU and dropout. The trunk ends
//! after fc7's ReLU: fc7's dropout and the action classifier (`classifier.6`, where torchvision
//! keeps its 1000-way layer) are the TSN head of [`crate::model::ActionNet`], so a torchvision
//! ImageNet `vgg16` state_dict maps onto the network key for key. Frames stay independent: there
//! are no residual blocks to put a temporal module in.

use tch::{TchError, Tensor, nn};

use super::layers::{
    CONV_INIT, ConvBn, ConvSpec, InferenceLayout, StageCost, linear_macs, path_name,
};
use super::shift::TimeAxis;
use super::trunk::{Layer, LayerKind, Trunk};

/// Side of the grid the adaptive pool makes before fc6 (torchvision's `avgpool`): 7, what a
/// 224x224 frame gives after five pools, so fc6 sees `8 * base_width * 49` features at any size.
const POOLED: i64 = 7;

/// 3x3 convs per stage, torchvision's configurations A (11), B (13), D (16) and E (19).
fn convs_per_stage(depth: u32) -> [usize; 5] {
    match depth {
        11 => [1, 1, 2, 2, 2],
        13 => [2, 2, 2, 2, 2],
        19 => [2, 2, 4, 4, 4],
        // Validated in ModelConfig::validate; 16 is the only depth left.
        _ => [2, 2, 3, 3, 3],
    }
}

/// A convolution with bias (VGG has no BatchNorm).
#[derive(Debug)]
struct Conv {
    /// Variable path (`features.0`).
    name: String,
    weight: Tensor,
    bias: Tensor,
    spec: ConvSpec,
    /// Inference-only copies in the compute dtype and layout.
    inference: Option<(Tensor, Tensor)>,
}

impl Conv {
    fn new(p: nn::Path, spec: ConvSpec) -> Self {
        let weight = p.var(
            "weight",
            &[spec.out_ch, spec.in_ch, spec.kernel, spec.kernel],
            CONV_INIT,
        );
        // torchvision initialises VGG's conv biases to zero.
        let bias = p.var("bias", &[spec.out_ch], nn::Init::Const(0.0));
        Self {
            name: path_name(&p),
            weight,
            bias,
            spec,
            inference: None,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (weight, bias) = match &self.inference {
            Some((w, b)) => (w, b),
            None => (&self.weight, &self.bias),
        };
        let s = self.spec;
        x.conv2d(
            weight,
            Some(bias),
            [s.stride, s.stride],
            [s.padding, s.padding],
            [1, 1],
            s.groups,
        )
    }

    fn params(&self) -> u64 {
        (self.weight.numel() + self.bias.numel()) as u64
    }
}

/// A fully connected layer with its inference-only copy.
#[derive(Debug)]
struct Fc {
    /// Variable path (`classifier.0`).
    name: String,
    linear: nn::Linear,
    inference: Option<(Tensor, Tensor)>,
}

impl Fc {
    fn new(p: nn::Path, in_features: i64, out_features: i64) -> Self {
        // torchvision's VGG init for its linear layers: N(0, 0.01), zero bias.
        let config = nn::LinearConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.01,
            },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        Self {
            name: path_name(&p),
            linear: nn::linear(p, in_features, out_features, config),
            inference: None,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        match &self.inference {
            Some((weight, bias)) => x.linear(weight, Some(bias)),
            None => x.apply(&self.linear),
        }
    }

    fn layer(&self) -> Layer {
        Layer {
            name: self.name.clone(),
            kind: LayerKind::Linear {
                in_features: self.in_features(),
                out_features: self.out_features(),
            },
        }
    }

    fn in_features(&self) -> i64 {
        self.linear.ws.size()[1]
    }

    fn out_features(&self) -> i64 {
        self.linear.ws.size()[0]
    }

    fn params(&self) -> u64 {
        let bias = self.linear.bs.as_ref().map_or(0, Tensor::numel);
        (self.linear.ws.numel() + bias) as u64
    }

    fn convert(&mut self, layout: InferenceLayout) {
        let weight = self.linear.ws.detach().to_kind(layout.kind);
        let bias = match &self.linear.bs {
            Some(b) => b.detach().to_kind(layout.kind),
            None => weight.new_zeros([self.out_features()], (layout.kind, weight.device())),
        };
        self.inference = Some((weight, bias));
    }
}

/// A VGG trunk up to fc7: `[N*T, 3, H, W]` in, `[N*T, fc_width]` out (after fc7's ReLU).
#[derive(Debug)]
pub struct Vgg {
    stages: Vec<Vec<Conv>>,
    fc6: Fc,
    fc7: Fc,
    /// Dropout after fc6 (fc7's is applied by the head, with the same rate).
    dropout: f64,
    /// Set by [`Vgg::fold`]: training passes then run as evaluation passes.
    inference: bool,
}

impl Vgg {
    /// The action classifier, where torchvision keeps its 1000-way layer.
    pub const CLASSIFIER: &'static str = "classifier.6";

    /// Builds the trunk under `p` (`features.N`, `classifier.0`, `classifier.3`).
    pub fn new(p: &nn::Path, depth: u32, base_width: i64, fc_width: i64, dropout: f64) -> Self {
        let features = p / "features";
        let classifier = p / "classifier";
        let mut index = 0;
        let mut in_ch = 3;
        let mut stages = Vec::with_capacity(5);
        for (s, count) in convs_per_stage(depth).into_iter().enumerate() {
            let out_ch = base_width << s.min(3);
            let mut stage = Vec::with_capacity(count);
            for _ in 0..count {
                stage.push(Conv::new(
                    &features / index,
                    ConvSpec::new(in_ch, out_ch, 3, 1),
                ));
                in_ch = out_ch;
                index += 2; // the conv and its ReLU
            }
            index += 1; // the max pool
            stages.push(stage);
        }
        let fc6 = Fc::new(&classifier / 0, in_ch * POOLED * POOLED, fc_width);
        let fc7 = Fc::new(&classifier / 3, fc_width, fc_width);
        Self {
            stages,
            fc6,
            fc7,
            dropout,
            inference: false,
        }
    }
}

impl Trunk for Vgg {
    fn classifier(&self) -> &'static str {
        Self::CLASSIFIER
    }

    /// Width of the features the head sees (fc7's units).
    fn out_channels(&self) -> i64 {
        self.fc7.out_features()
    }

    /// VGG has no BatchNorm.
    fn conv_bns_mut(&mut self) -> Vec<&mut ConvBn> {
        Vec::new()
    }

    /// Converts every weight to `layout` for inference (there is no BatchNorm to fold).
    fn fold(&mut self, layout: InferenceLayout) {
        tch::no_grad(|| {
            for conv in self.stages.iter_mut().flatten() {
                conv.inference = Some((
                    layout.apply(&conv.weight.detach()),
                    conv.bias.detach().to_kind(layout.kind),
                ));
            }
            self.fc6.convert(layout);
            self.fc7.convert(layout);
        });
        self.inference = true;
    }

    /// `[N*T, 3, H, W]` -> `[N*T, fc_width]`; frames stay independent (`time` is not used).
    fn forward_t(&self, x: &Tensor, _time: &mut TimeAxis, train: bool) -> Result<Tensor, TchError> {
        let train = train && !self.inference;
        let mut x = x.shallow_clone();
        for stage in &self.stages {
            for conv in stage {
                x = conv.forward(&x).relu();
            }
            x = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        }
        let x = x.adaptive_avg_pool2d([POOLED, POOLED]).flatten(1, -1); // [N*T, C*7*7]
        let x = self.fc6.forward(&x).relu().dropout(self.dropout, train);
        Ok(self.fc7.forward(&x).relu()) // [N*T, fc_width]
    }

    fn layers(&self) -> Vec<Layer> {
        let convs = self.stages.iter().flatten().map(|conv| Layer {
            name: conv.name.clone(),
            kind: LayerKind::Conv { spec: conv.spec },
        });
        convs.chain([self.fc6.layer(), self.fc7.layer()]).collect()
    }

    /// Cost per stage (`features` stages 1..5, fc6, fc7) for `nt` frames of `size` x `size`.
    fn stage_costs(&self, nt: i64, size: i64) -> Vec<StageCost> {
        let mut rows = Vec::with_capacity(7);
        let (mut h, mut w) = (size, size);
        let mut first = 0;
        for stage in &self.stages {
            let mut macs = 0;
            for conv in stage {
                macs += conv.spec.macs(nt, h, w);
                (h, w) = conv.spec.out_hw(h, w);
            }
            (h, w) = (h / 2, w / 2);
            let last = first + 2 * stage.len(); // index of the pool
            rows.push(StageCost {
                name: format!("features.{first}-{last} ({h}x{w})"),
                params: stage.iter().map(Conv::params).sum(),
                macs,
            });
            first = last + 1;
        }
        for (name, fc) in [
            ("classifier.0 (fc6)", &self.fc6),
            ("classifier.3 (fc7)", &self.fc7),
        ] {
            rows.push(StageCost {
                name: name.into(),
                params: fc.params(),
                macs: linear_macs(nt, fc.in_features(), fc.out_features()),
            });
        }
        rows
    }
}
