//! What the TSN head of [`crate::model::ActionNet`] sits on: a per-frame [`Trunk`] (ResNet,
//! MobileNetV2, VGG), or ECO, which reasons over whole clips and so is not a trunk. This is the
//! one place that turns a [`Backbone`] into a network and the one place that knows ECO's
//! differences: its per-clip features, its 2D-only partial BN, its own cost rows.

use tch::{TchError, Tensor, nn};

use super::config::{Backbone, ModelConfig};
use super::eco::Eco;
use super::layers::{ConvBn, InferenceLayout, StageCost};
use super::mobilenet_v2::MobileNetV2;
use super::resnet::ResNet;
use super::shift::TimeAxis;
use super::trunk::Trunk;
use super::vgg::Vgg;

/// The network under the classifier.
#[derive(Debug)]
pub(crate) enum Body {
    /// A 2D network run on every frame.
    Frames(Box<dyn Trunk>),
    /// ECO: 2D per frame, then 3D over the clip; one feature vector per clip.
    Eco(Box<Eco>),
}

/// Name of the classifier the head puts on `backbone`, before any network is built (an
/// import reads the class count from it). Each network type spells its own.
pub(crate) fn classifier_of(backbone: &Backbone) -> &'static str {
    match backbone {
        Backbone::Resnet { .. } => ResNet::CLASSIFIER,
        Backbone::MobileNetV2 { .. } => MobileNetV2::CLASSIFIER,
        Backbone::Vgg { .. } => Vgg::CLASSIFIER,
        Backbone::Eco { .. } => Eco::CLASSIFIER,
    }
}

impl Body {
    /// The network of `config.backbone` (with its temporal modules) under `p`.
    pub fn new(p: &nn::Path, config: &ModelConfig) -> Self {
        let trunk: Box<dyn Trunk> = match &config.backbone {
            Backbone::Resnet {
                depth,
                base_width,
                variant,
            } => Box::new(ResNet::new(
                p,
                *depth,
                *base_width,
                *variant,
                &config.temporal,
            )),
            Backbone::MobileNetV2 { width_mult } => {
                Box::new(MobileNetV2::new(p, *width_mult, &config.temporal))
            }
            // Validation admits VGG with Temporal::None only.
            Backbone::Vgg {
                depth,
                base_width,
                fc_width,
            } => Box::new(Vgg::new(p, *depth, *base_width, *fc_width, config.dropout)),
            Backbone::Eco {
                variant,
                base_width,
            } => return Body::Eco(Box::new(Eco::new(p, *variant, *base_width))),
        };
        Body::Frames(trunk)
    }

    /// Module path of the classifier (`fc`, `classifier.1`, `classifier.6`, `new_fc`).
    pub fn classifier(&self) -> &'static str {
        match self {
            Body::Frames(trunk) => trunk.classifier(),
            Body::Eco(_) => Eco::CLASSIFIER,
        }
    }

    /// Width of the features the classifier sees.
    pub fn out_channels(&self) -> i64 {
        match self {
            Body::Frames(trunk) => trunk.out_channels(),
            Body::Eco(eco) => eco.out_channels(),
        }
    }

    /// The per-frame trunk (`None` for ECO).
    pub fn trunk(&self) -> Option<&dyn Trunk> {
        match self {
            Body::Frames(trunk) => Some(trunk.as_ref()),
            Body::Eco(_) => None,
        }
    }

    pub fn eco(&self) -> Option<&Eco> {
        match self {
            Body::Frames(_) => None,
            Body::Eco(eco) => Some(eco),
        }
    }

    /// BatchNorm folded in, weights converted to `layout`.
    pub fn fold(&mut self, layout: InferenceLayout) {
        match self {
            Body::Frames(trunk) => trunk.fold(layout),
            Body::Eco(eco) => eco.fold(layout),
        }
    }

    /// The convolutions whose BatchNorms partial BN freezes, in forward order: ECO's 2D ones
    /// only (the authors' TSN leaves the 3D BatchNorms training).
    pub fn conv_bns_mut(&mut self) -> Vec<&mut ConvBn> {
        match self {
            Body::Frames(trunk) => trunk.conv_bns_mut(),
            Body::Eco(eco) => eco.convs_2d_mut(),
        }
    }

    /// Slots of a shift cache (the shift points of the trunk; none in ECO).
    pub fn shift_slots(&self) -> usize {
        self.trunk().map_or(0, |trunk| trunk.shift_points().len())
    }

    /// `[N*T, 3, H, W]` -> `[N*T', C]` features for the classifier. A trunk keeps a row per frame
    /// (T' = T/2 after a temporal pool); ECO gives one row per clip, so `time` becomes one frame
    /// per clip. On a stream ECO sees each frame as a one-frame clip.
    pub fn forward_t(
        &self,
        x: &Tensor,
        time: &mut TimeAxis,
        train: bool,
    ) -> Result<Tensor, TchError> {
        match self {
            Body::Frames(trunk) => trunk.forward_t(x, time, train),
            Body::Eco(eco) => {
                let features = eco.clip_t(&eco.frames_t(x, train), time.frames(), train)?;
                if let TimeAxis::Clip { t } = time {
                    *t = 1;
                }
                Ok(features) // [N, C]
            }
        }
    }

    /// Cost rows for `frames` frames of `size` x `size` (for ECO, one clip), and the rows that
    /// reach the classifier.
    pub fn stage_costs(&self, frames: i64, size: i64) -> (Vec<StageCost>, i64) {
        match self {
            Body::Frames(trunk) => (trunk.stage_costs(frames, size), trunk.frames_out(frames)),
            Body::Eco(eco) => (eco.stage_costs(frames, frames, size), 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::trunk::LayerKind;

    fn preset(name: &str) -> ModelConfig {
        ModelConfig::from_preset(name).unwrap()
    }

    fn build(config: &ModelConfig) -> (nn::VarStore, Body) {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let body = Body::new(&vs.root(), config);
        (vs, body)
    }

    #[test]
    fn shift_points_follow_the_forward_order_of_their_slots() {
        for (config, points) in [
            (preset("tsm_mobilenet_v2_tiny_online"), 10),
            (preset("tsm_r18_tiny_online"), 8),
            (preset("tsn_r18_tiny"), 0),
        ] {
            let (_vs, body) = build(&config);
            let Some(trunk) = body.trunk() else {
                panic!("{} has a per-frame trunk", config.name);
            };
            let shifts = trunk.shift_points();
            assert_eq!(shifts.len(), points, "{}", config.name);
            assert_eq!(body.shift_slots(), points);
            for (i, point) in shifts.iter().enumerate() {
                assert_eq!(point.shift.slot, i);
                assert_eq!(point.fold, point.channels / 8);
            }
        }
    }

    #[test]
    fn layers_carry_their_variable_paths() {
        let (vs, body) = build(&preset("tsm_r18_tiny_online"));
        let names = vs.variables();
        let layers = body.trunk().map(|t| t.layers()).unwrap_or_default();
        let first_shift = layers
            .iter()
            .find(|l| matches!(l.kind, LayerKind::Shift(_)))
            .map(|l| l.name.as_str());
        assert_eq!(first_shift, Some("layer1.0"));
        for layer in &layers {
            if let LayerKind::ConvBn { bn, .. } = &layer.kind {
                assert!(names.contains_key(&format!("{}.weight", layer.name)));
                assert!(names.contains_key(&format!("{bn}.running_mean")));
            }
        }
        let (_vs, vgg) = build(&preset("tsn_vgg16_tiny"));
        let linears: Vec<String> = vgg
            .trunk()
            .map(|t| t.layers())
            .unwrap_or_default()
            .into_iter()
            .filter(|l| matches!(l.kind, LayerKind::Linear { .. }))
            .map(|l| l.name)
            .collect();
        assert_eq!(linears, ["classifier.0", "classifier.3"]);
        assert_eq!(classifier_of(&preset("eco_lite_tiny").backbone), "new_fc");
        assert_eq!(build(&preset("eco_lite_tiny")).1.classifier(), "new_fc");
    }
}
