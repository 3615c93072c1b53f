//! Typed model configurations (the named presets are in `preset.rs`).
//!
//! A [`ModelConfig`] says everything needed to rebuild a network: backbone, temporal module, number
//! of segments and classes, dropout and the input size it expects. It is saved as JSON in the
//! metadata of every checkpoint, so a checkpoint is self-describing.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The largest value each size of a config may take: several times the published networks
/// (224 px, 8 to 32 segments, 400 classes, base width 64, fc width 4096), far below what would
/// exhaust memory.
pub const LIMITS: &[(&str, i64)] = &[
    ("input_size", 1024),
    ("num_segments", 256),
    ("num_classes", 100_000),
    ("base_width", 256),
    ("fc_width", 16_384),
    ("shift_div", 1024),
];

/// The largest value `LIMITS` allows for `field` (`i64::MAX` for a field without a limit).
pub fn limit(field: &str) -> i64 {
    LIMITS
        .iter()
        .find(|(name, _)| *name == field)
        .map_or(i64::MAX, |(_, max)| *max)
}

/// The 2D backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backbone {
    /// ResNet; `base_width` 64 is the standard network, smaller widths give narrow test models
    /// with the same topology. `variant` picks torchvision's v1.5 (the default, what configs
    /// without the field mean) or ResNet-D.
    Resnet {
        depth: u32,
        base_width: i64,
        #[serde(default, skip_serializing_if = "ResnetVariant::is_b")]
        variant: ResnetVariant,
    },
    /// torchvision MobileNetV2 with a width multiplier.
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2 { width_mult: f64 },
    /// VGG without BatchNorm (torchvision's `vgg11`..`vgg19` layout): stage widths `base_width`
    /// x (1, 2, 4, 8, 8), a 7x7 adaptive average pool, then fc6 and fc7 of `fc_width` units.
    /// `base_width` 64 and `fc_width` 4096 are the standard network.
    Vgg {
        depth: u32,
        base_width: i64,
        fc_width: i64,
    },
    /// ECO (Zolfaghari et al., ECCV 2018): BN-Inception per frame up to inception-3c, then a 3D
    /// ResNet-18 over the clip; `Full` adds the rest of BN-Inception, averaged over the frames.
    /// `base_width` 64 is the published network; other even widths scale every layer alike.
    Eco {
        variant: EcoVariant,
        base_width: i64,
    },
}

/// Which ECO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcoVariant {
    /// 2D part up to inception-3c, then the 3D net (512 features per clip).
    Lite,
    /// ECO-Lite plus the whole BN-Inception per frame (1024 + 512 features per clip).
    Full,
}

/// Which ResNet, in the naming of He et al., "Bag of Tricks for Image Classification with
/// Convolutional Neural Networks", CVPR 2019.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResnetVariant {
    /// ResNet-B, torchvision's "v1.5": a 7x7 stem conv, the stride on the bottleneck's 3x3 conv,
    /// a strided 1x1 conv in the downsampling shortcut.
    #[default]
    B,
    /// ResNet-D (PaddleClas' "vd", timm's `resnet50d`): ResNet-B with a deep stem of three 3x3
    /// convs (base_width/2, base_width/2, base_width) and, in the downsampling shortcut, a 2x2
    /// average pool (stride 2, ceil mode, padding not counted) before a stride-1 1x1 conv.
    D,
}

impl ResnetVariant {
    /// True for the default variant (left out of the JSON, so configs stay as they were).
    pub fn is_b(&self) -> bool {
        *self == Self::B
    }
}

impl Backbone {
    /// torchvision's ResNet (v1.5, ResNet-B) of `depth` layers.
    pub fn resnet(depth: u32, base_width: i64) -> Self {
        Self::Resnet {
            depth,
            base_width,
            variant: ResnetVariant::B,
        }
    }

    /// ResNet-D ("vd") of `depth` layers.
    pub fn resnet_d(depth: u32, base_width: i64) -> Self {
        Self::Resnet {
            depth,
            base_width,
            variant: ResnetVariant::D,
        }
    }
}

/// Which way the temporal shift moves channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftDirection {
    /// Offline TSM: 1/shift_div of the channels from t+1, 1/shift_div from t-1.
    Bi,
    /// Online TSM: 1/shift_div of the channels from t-1 only; never reads a future frame.
    Uni,
}

/// Where the shift sits in a residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftPlacement {
    /// On the residual branch input only (the identity keeps the unshifted activation).
    Blockres,
    /// On the whole block input.
    Block,
}

/// MVF views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MvfMode {
    #[serde(rename = "THW")]
    Thw,
    #[serde(rename = "TH")]
    Th,
    #[serde(rename = "T")]
    T,
}

/// The temporal module inserted into the backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Temporal {
    /// Plain TSN: frames are independent until the consensus.
    None,
    Shift {
        direction: ShiftDirection,
        shift_div: i64,
        placement: ShiftPlacement,
        temporal_pool: bool,
    },
    Mvf {
        alpha: f64,
        mvf_freq: [u8; 4],
        mode: MvfMode,
    },
}

/// Everything needed to rebuild a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub name: String,
    pub backbone: Backbone,
    pub temporal: Temporal,
    /// Frames per clip in offline use (TSN segments or clip length).
    pub num_segments: i64,
    pub num_classes: i64,
    pub dropout: f64,
    /// Side of the square crop the network expects.
    pub input_size: i64,
}

impl ModelConfig {
    /// True when the network never reads a future frame, so it can run frame by frame (see
    /// [`ModelConfig::check_causal`]).
    pub fn is_causal(&self) -> bool {
        self.check_causal().is_ok()
    }

    /// Refuses, saying why, a network that reads a future frame and so cannot run frame by
    /// frame. ECO classifies whole clips (online it runs through `online::EcoRunner`). The one
    /// definition of causality: `is_causal` and `ActionNet::check_causal` use it.
    pub fn check_causal(&self) -> Result<(), ModelError> {
        let why = if matches!(self.backbone, Backbone::Eco { .. }) {
            "ECO classifies a whole clip at once with its 3D network; run it online through its \
             working memory (online::EcoRunner)"
        } else {
            match &self.temporal {
                Temporal::Shift {
                    direction: ShiftDirection::Bi,
                    ..
                } => {
                    "its temporal shift is bidirectional: every frame reads the next one. Train a \
                     model with a uni-directional shift (e.g. preset tsm_r50_online or \
                     tsm_mobilenet_v2_online)"
                }
                Temporal::Shift {
                    temporal_pool: true,
                    ..
                } => "its temporal pool mixes each frame with the next",
                Temporal::Mvf { .. } => {
                    "its MVF module convolves over the next frame as well as the previous"
                }
                Temporal::None | Temporal::Shift { .. } => return Ok(()),
            }
        };
        Err(ModelError::NotCausal {
            model: self.name.clone(),
            why: why.to_string(),
        })
    }

    /// Checks the values a hand-written config file could get wrong.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |what: String| {
            Err(ModelError::InvalidConfig {
                name: self.name.clone(),
                what,
            })
        };
        match &self.backbone {
            Backbone::Resnet {
                depth,
                base_width,
                variant,
            } => {
                if ![18, 34, 50, 101].contains(depth) {
                    return bad(format!(
                        "ResNet depth {depth} is not one of 18, 34, 50, 101"
                    ));
                }
                if *base_width < 1 {
                    return bad(format!("ResNet base_width {base_width} must be positive"));
                }
                if *variant == ResnetVariant::D && (*base_width < 2 || base_width % 2 != 0) {
                    return bad(format!(
                        "ResNet-D base_width {base_width} must be even: its deep stem starts \
                         with base_width/2 channels"
                    ));
                }
            }
            Backbone::Vgg {
                depth,
                base_width,
                fc_width,
            } => {
                if ![11, 13, 16, 19].contains(depth) {
                    return bad(format!("VGG depth {depth} is not one of 11, 13, 16, 19"));
                }
                if *base_width < 1 || *fc_width < 1 {
                    return bad(format!(
                        "VGG base_width ({base_width}) and fc_width ({fc_width}) must be positive"
                    ));
                }
                if !matches!(self.temporal, Temporal::None) {
                    return bad(
                        "VGG runs as TSN only (temporal kind \"none\"): it has no residual \
                         blocks to put a temporal shift or MVF module in"
                            .into(),
                    );
                }
            }
            Backbone::MobileNetV2 { width_mult } => {
                if !(*width_mult > 0.0 && *width_mult <= 4.0) {
                    return bad(format!(
                        "MobileNetV2 width_mult {width_mult} must be in (0, 4]"
                    ));
                }
            }
            Backbone::Eco { base_width, .. } => {
                if *base_width < 2 || base_width % 2 != 0 {
                    return bad(format!(
                        "ECO base_width {base_width} must be even and positive: every width \
                         (32 to 1024 at 64) scales by base_width/64"
                    ));
                }
                if !matches!(self.temporal, Temporal::None) {
                    return bad(
                        "ECO models time with its 3D network: temporal kind must be \"none\""
                            .into(),
                    );
                }
            }
        }
        match &self.temporal {
            Temporal::None => {}
            Temporal::Shift {
                shift_div,
                temporal_pool,
                ..
            } => {
                if *shift_div < 2 {
                    return bad(format!("shift_div {shift_div} must be at least 2"));
                }
                if *temporal_pool {
                    if matches!(self.backbone, Backbone::MobileNetV2 { .. }) {
                        return bad("temporal_pool is defined for ResNet backbones only".into());
                    }
                    if self.num_segments % 2 != 0 {
                        return bad(format!(
                            "temporal_pool halves the frames: num_segments {} must be even",
                            self.num_segments
                        ));
                    }
                }
            }
            Temporal::Mvf {
                alpha, mvf_freq, ..
            } => {
                if !(*alpha > 0.0 && *alpha <= 1.0) {
                    return bad(format!("MVF alpha {alpha} must be in (0, 1]"));
                }
                if mvf_freq.iter().any(|f| *f > 1) {
                    return bad(format!("mvf_freq {mvf_freq:?} must hold 0 or 1 per stage"));
                }
                if matches!(self.backbone, Backbone::MobileNetV2 { .. }) {
                    return bad("MVF is defined for ResNet backbones only".into());
                }
            }
        }
        if self.num_segments < 1 || self.num_classes < 1 {
            return bad(format!(
                "num_segments ({}) and num_classes ({}) must be positive",
                self.num_segments, self.num_classes
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        if self.input_size < 32 {
            return bad(format!(
                "input_size {} is below the 32 px the backbones downsample by",
                self.input_size
            ));
        }
        self.check_bounds()
    }

    /// Checks every size against its upper bound ([`LIMITS`]), so that a config never asks for
    /// more memory than a real network needs (`input_size` 64000 would allocate 49 GB).
    fn check_bounds(&self) -> Result<(), ModelError> {
        let widths = match &self.backbone {
            Backbone::Resnet { base_width, .. } | Backbone::Eco { base_width, .. } => {
                vec![("base_width", *base_width)]
            }
            Backbone::Vgg {
                base_width,
                fc_width,
                ..
            } => vec![("base_width", *base_width), ("fc_width", *fc_width)],
            Backbone::MobileNetV2 { .. } => Vec::new(),
        };
        let shift_div = match &self.temporal {
            Temporal::Shift { shift_div, .. } => vec![("shift_div", *shift_div)],
            _ => Vec::new(),
        };
        let values = [
            ("input_size", self.input_size),
            ("num_segments", self.num_segments),
            ("num_classes", self.num_classes),
        ];
        for (field, value) in values.into_iter().chain(widths).chain(shift_div) {
            let max = limit(field);
            if value > max {
                return Err(ModelError::InvalidConfig {
                    name: self.name.clone(),
                    what: format!("{field} {value} is above the allowed maximum {max}"),
                });
            }
        }
        Ok(())
    }

    /// The config as pretty JSON (what checkpoints carry).
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let config: Self =
            serde_json::from_str(text).map_err(|e| ModelError::ConfigJson(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }
}
