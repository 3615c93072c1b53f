//! Typed model configurations and the named presets.
//!
//! A [`ModelConfig`] says everything needed to rebuild a network: backbone, temporal module, number
//! of segments and classes, dropout and the input size it expects. It is saved as JSON in the
//! metadata of every checkpoint, so a checkpoint is self-describing.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// The 2D backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backbone {
    /// torchvision ResNet v1.5 (stride on the 3x3 conv); `base_width` 64 is the standard network,
    /// smaller widths give narrow test models with the same topology.
    Resnet { depth: u32, base_width: i64 },
    /// torchvision MobileNetV2 with a width multiplier.
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2 { width_mult: f64 },
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

/// Names of the presets, in the order `presets` lists them.
pub const PRESET_NAMES: &[&str] = &[
    "tsn_r50",
    "tsm_r50",
    "tsm_r50_online",
    "mvf_r50",
    "tsm_mobilenet_v2",
    "tsm_mobilenet_v2_online",
    "tsn_r18_tiny",
    "tsm_r18_tiny",
    "tsm_r18_tiny_online",
    "mvf_r18_tiny",
    "tsm_mobilenet_v2_tiny_online",
];

fn shift(direction: ShiftDirection) -> Temporal {
    Temporal::Shift {
        direction,
        shift_div: 8,
        placement: ShiftPlacement::Blockres,
        temporal_pool: false,
    }
}

fn mvf() -> Temporal {
    Temporal::Mvf {
        alpha: 0.125,
        mvf_freq: [0, 0, 1, 1],
        mode: MvfMode::Thw,
    }
}

impl ModelConfig {
    fn preset(name: &str, backbone: Backbone, temporal: Temporal) -> Self {
        Self {
            name: name.to_string(),
            backbone,
            temporal,
            num_segments: 8,
            num_classes: 400,
            dropout: 0.5,
            input_size: 224,
        }
    }

    fn r50() -> Backbone {
        Backbone::Resnet {
            depth: 50,
            base_width: 64,
        }
    }

    /// TSN with ResNet-50, 8 segments.
    pub fn tsn_r50() -> Self {
        Self::preset("tsn_r50", Self::r50(), Temporal::None)
    }

    /// Offline (bidirectional) TSM ResNet-50, 8 frames, blockres, shift_div 8.
    pub fn tsm_r50() -> Self {
        Self::preset("tsm_r50", Self::r50(), shift(ShiftDirection::Bi))
    }

    /// Uni-directional TSM ResNet-50: trainable offline, runs online frame by frame.
    pub fn tsm_r50_online() -> Self {
        Self::preset("tsm_r50_online", Self::r50(), shift(ShiftDirection::Uni))
    }

    /// MVF ResNet-50 (alpha 0.125 in layers 3 and 4, THW), 16 frames as PaddleMVF trains it on UCF-101.
    pub fn mvf_r50() -> Self {
        Self {
            num_segments: 16,
            ..Self::preset("mvf_r50", Self::r50(), mvf())
        }
    }

    /// Offline TSM MobileNetV2 (width 1.0).
    pub fn tsm_mobilenet_v2() -> Self {
        Self::preset(
            "tsm_mobilenet_v2",
            Backbone::MobileNetV2 { width_mult: 1.0 },
            shift(ShiftDirection::Bi),
        )
    }

    /// The online model of the TSM authors' demo: MobileNetV2 with a uni-directional shift.
    pub fn tsm_mobilenet_v2_online() -> Self {
        Self::preset(
            "tsm_mobilenet_v2_online",
            Backbone::MobileNetV2 { width_mult: 1.0 },
            shift(ShiftDirection::Uni),
        )
    }

    fn tiny(name: &str, backbone: Backbone, temporal: Temporal) -> Self {
        Self {
            num_segments: 4,
            num_classes: 10,
            input_size: 64,
            ..Self::preset(name, backbone, temporal)
        }
    }

    fn r18_tiny() -> Backbone {
        Backbone::Resnet {
            depth: 18,
            base_width: 16,
        }
    }

    /// Narrow, low-resolution variants for tests and quick experiments.
    pub fn tsn_r18_tiny() -> Self {
        Self::tiny("tsn_r18_tiny", Self::r18_tiny(), Temporal::None)
    }
    pub fn tsm_r18_tiny() -> Self {
        Self::tiny("tsm_r18_tiny", Self::r18_tiny(), shift(ShiftDirection::Bi))
    }
    pub fn tsm_r18_tiny_online() -> Self {
        Self::tiny(
            "tsm_r18_tiny_online",
            Self::r18_tiny(),
            shift(ShiftDirection::Uni),
        )
    }
    pub fn mvf_r18_tiny() -> Self {
        Self::tiny("mvf_r18_tiny", Self::r18_tiny(), mvf())
    }
    pub fn tsm_mobilenet_v2_tiny_online() -> Self {
        Self::tiny(
            "tsm_mobilenet_v2_tiny_online",
            Backbone::MobileNetV2 { width_mult: 0.5 },
            shift(ShiftDirection::Uni),
        )
    }

    /// Looks a preset up by name.
    pub fn from_preset(name: &str) -> Result<Self, ModelError> {
        let config = match name {
            "tsn_r50" => Self::tsn_r50(),
            "tsm_r50" => Self::tsm_r50(),
            "tsm_r50_online" => Self::tsm_r50_online(),
            "mvf_r50" => Self::mvf_r50(),
            "tsm_mobilenet_v2" => Self::tsm_mobilenet_v2(),
            "tsm_mobilenet_v2_online" => Self::tsm_mobilenet_v2_online(),
            "tsn_r18_tiny" => Self::tsn_r18_tiny(),
            "tsm_r18_tiny" => Self::tsm_r18_tiny(),
            "tsm_r18_tiny_online" => Self::tsm_r18_tiny_online(),
            "mvf_r18_tiny" => Self::mvf_r18_tiny(),
            "tsm_mobilenet_v2_tiny_online" => Self::tsm_mobilenet_v2_tiny_online(),
            _ => {
                return Err(ModelError::UnknownPreset {
                    name: name.to_string(),
                    known: PRESET_NAMES.join(", "),
                });
            }
        };
        Ok(config)
    }

    /// True when the network never reads a future frame, so it can run frame by frame.
    pub fn is_causal(&self) -> bool {
        match &self.temporal {
            Temporal::None => true,
            Temporal::Shift {
                direction,
                temporal_pool,
                ..
            } => *direction == ShiftDirection::Uni && !*temporal_pool,
            Temporal::Mvf { .. } => false,
        }
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
            Backbone::Resnet { depth, base_width } => {
                if ![18, 34, 50, 101].contains(depth) {
                    return bad(format!(
                        "ResNet depth {depth} is not one of 18, 34, 50, 101"
                    ));
                }
                if *base_width < 1 {
                    return bad(format!("ResNet base_width {base_width} must be positive"));
                }
            }
            Backbone::MobileNetV2 { width_mult } => {
                if !(*width_mult > 0.0 && *width_mult <= 4.0) {
                    return bad(format!(
                        "MobileNetV2 width_mult {width_mult} must be in (0, 4]"
                    ));
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
