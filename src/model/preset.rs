//! The named presets: each is one [`Preset`] variant, and one match ([`Preset::spec`]) gives its
//! model config and the training recipe it trains with, as candle's `Which` enum does. Every
//! command takes the same names (`train`, `profile`, `bench`, `live`, ...); the training names of
//! earlier versions (`tsm_online_tiny` for `tsm_r18_tiny_online`, ...) stay accepted as aliases.
//!
//! The full-size models are the papers' (ResNet-50, MobileNetV2, VGG16 and ECO at 224 px); the
//! `*_tiny` ones are narrow, low-resolution versions (64 px) that train from scratch on the
//! synthetic motion set on a CPU.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ModelError;
use super::config::{
    Backbone, EcoVariant, ModelConfig, MvfMode, ShiftDirection, ShiftPlacement, Temporal,
};

/// A named model with the training recipe it takes. The names are the models' names; the
/// aliases are the training names of earlier versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Preset {
    #[value(name = "tsn_r50", alias = "tsn")]
    TsnR50,
    #[value(name = "tsm_r50", alias = "tsm")]
    TsmR50,
    #[value(name = "tsm_r50_online", alias = "tsm_online")]
    TsmR50Online,
    #[value(name = "mvf_r50", alias = "mvf")]
    MvfR50,
    #[value(name = "tsm_mobilenet_v2")]
    TsmMobilenetV2,
    #[value(name = "tsm_mobilenet_v2_online")]
    TsmMobilenetV2Online,
    #[value(name = "tsn_vgg16")]
    TsnVgg16,
    #[value(name = "tsn_r50_vd")]
    TsnR50Vd,
    #[value(name = "tsm_r50_vd")]
    TsmR50Vd,
    #[value(name = "tsn_r18_tiny", alias = "tsn_tiny")]
    TsnR18Tiny,
    #[value(name = "tsm_r18_tiny", alias = "tsm_tiny")]
    TsmR18Tiny,
    #[value(name = "tsm_r18_tiny_online", alias = "tsm_online_tiny")]
    TsmR18TinyOnline,
    #[value(name = "mvf_r18_tiny", alias = "mvf_tiny")]
    MvfR18Tiny,
    #[value(
        name = "tsm_mobilenet_v2_tiny_online",
        alias = "tsm_mobilenet_v2_online_tiny"
    )]
    TsmMobilenetV2TinyOnline,
    #[value(name = "tsn_vgg16_tiny")]
    TsnVgg16Tiny,
    #[value(name = "tsm_r50_vd_tiny")]
    TsmR50VdTiny,
    #[value(name = "tsm_r50_vd_tiny_online", alias = "tsm_r50_vd_online_tiny")]
    TsmR50VdTinyOnline,
    #[value(name = "eco_lite")]
    EcoLite,
    #[value(name = "eco_full")]
    EcoFull,
    #[value(name = "eco_lite_tiny")]
    EcoLiteTiny,
    #[value(name = "eco_full_tiny")]
    EcoFullTiny,
}

/// The training recipe a preset takes; `train::Recipe::of` holds its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipeName {
    /// TSN/TSM fine-tuning on UCF-101 from ImageNet or Kinetics weights (Wang et al.; Lin et al.).
    Ucf101Finetune,
    /// GluonCV's `vgg16_ucf101` (TSN with VGG16, no BatchNorm).
    GluoncvVgg,
    /// PaddleMVF on UCF-101: dense clips, cosine schedule, tested in 10 clips x three crops.
    PaddleMvf,
    /// From scratch on the synthetic motion set (the `*_tiny` presets).
    MotionTiny,
}

impl Preset {
    /// The preset's model and recipe: the one table of presets.
    pub fn spec(self) -> (ModelConfig, RecipeName) {
        use RecipeName::{GluoncvVgg, MotionTiny, PaddleMvf, Ucf101Finetune};
        match self {
            Self::TsnR50 => (ModelConfig::tsn_r50(), Ucf101Finetune),
            Self::TsmR50 => (ModelConfig::tsm_r50(), Ucf101Finetune),
            Self::TsmR50Online => (ModelConfig::tsm_r50_online(), Ucf101Finetune),
            Self::MvfR50 => (ModelConfig::mvf_r50(), PaddleMvf),
            Self::TsmMobilenetV2 => (ModelConfig::tsm_mobilenet_v2(), Ucf101Finetune),
            Self::TsmMobilenetV2Online => (ModelConfig::tsm_mobilenet_v2_online(), Ucf101Finetune),
            Self::TsnVgg16 => (ModelConfig::tsn_vgg16(), GluoncvVgg),
            Self::TsnR50Vd => (ModelConfig::tsn_r50_vd(), Ucf101Finetune),
            Self::TsmR50Vd => (ModelConfig::tsm_r50_vd(), Ucf101Finetune),
            Self::TsnR18Tiny => (ModelConfig::tsn_r18_tiny(), MotionTiny),
            Self::TsmR18Tiny => (ModelConfig::tsm_r18_tiny(), MotionTiny),
            Self::TsmR18TinyOnline => (ModelConfig::tsm_r18_tiny_online(), MotionTiny),
            Self::MvfR18Tiny => (ModelConfig::mvf_r18_tiny(), MotionTiny),
            Self::TsmMobilenetV2TinyOnline => {
                (ModelConfig::tsm_mobilenet_v2_tiny_online(), MotionTiny)
            }
            Self::TsnVgg16Tiny => (ModelConfig::tsn_vgg16_tiny(), MotionTiny),
            Self::TsmR50VdTiny => (ModelConfig::tsm_r50_vd_tiny(), MotionTiny),
            Self::TsmR50VdTinyOnline => (ModelConfig::tsm_r50_vd_tiny_online(), MotionTiny),
            Self::EcoLite => (ModelConfig::eco_lite(), Ucf101Finetune),
            Self::EcoFull => (ModelConfig::eco_full(), Ucf101Finetune),
            Self::EcoLiteTiny => (ModelConfig::eco_lite_tiny(), MotionTiny),
            Self::EcoFullTiny => (ModelConfig::eco_full_tiny(), MotionTiny),
        }
    }

    pub fn model(self) -> ModelConfig {
        self.spec().0
    }

    pub fn recipe(self) -> RecipeName {
        self.spec().1
    }

    /// Every preset, in the order `presets` lists them.
    pub fn all() -> &'static [Self] {
        Self::value_variants()
    }

    /// The canonical name, then the aliases.
    pub fn names(self) -> Vec<String> {
        self.to_possible_value().map_or_else(Vec::new, |v| {
            v.get_name_and_aliases().map(str::to_string).collect()
        })
    }

    /// The canonical name (the model's name).
    pub fn name(self) -> String {
        // The derive gives every variant a value; the Debug name is only a formal fallback.
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_string())
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Preset {
    type Err = ModelError;

    /// A canonical name or an alias; an unknown name is an error listing the known ones.
    fn from_str(name: &str) -> Result<Self, ModelError> {
        <Self as ValueEnum>::from_str(name, false).map_err(|_| ModelError::UnknownPreset {
            name: name.to_string(),
            known: Self::all()
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

impl Serialize for Preset {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Preset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

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

/// The model configs of the presets; [`Preset::spec`] names which is which.
impl ModelConfig {
    /// Looks a preset up by name or alias (see [`Preset`]).
    pub fn from_preset(name: &str) -> Result<Self, ModelError> {
        Ok(name.parse::<Preset>()?.model())
    }

    fn base(name: &str, backbone: Backbone, temporal: Temporal) -> Self {
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
        Backbone::resnet(50, 64)
    }

    /// TSN with ResNet-50, 8 segments.
    pub fn tsn_r50() -> Self {
        Self::base("tsn_r50", Self::r50(), Temporal::None)
    }

    /// Offline (bidirectional) TSM ResNet-50, 8 frames, blockres, shift_div 8.
    pub fn tsm_r50() -> Self {
        Self::base("tsm_r50", Self::r50(), shift(ShiftDirection::Bi))
    }

    /// Uni-directional TSM ResNet-50: trainable offline, runs online frame by frame.
    pub fn tsm_r50_online() -> Self {
        Self::base("tsm_r50_online", Self::r50(), shift(ShiftDirection::Uni))
    }

    /// MVF ResNet-50 (alpha 0.125 in layers 3 and 4, THW), 16 frames as PaddleMVF trains it on UCF-101.
    pub fn mvf_r50() -> Self {
        Self {
            num_segments: 16,
            ..Self::base("mvf_r50", Self::r50(), mvf())
        }
    }

    /// Offline TSM MobileNetV2 (width 1.0).
    pub fn tsm_mobilenet_v2() -> Self {
        Self::base(
            "tsm_mobilenet_v2",
            Backbone::MobileNetV2 { width_mult: 1.0 },
            shift(ShiftDirection::Bi),
        )
    }

    /// The online model of the TSM authors' demo: MobileNetV2 with a uni-directional shift.
    pub fn tsm_mobilenet_v2_online() -> Self {
        Self::base(
            "tsm_mobilenet_v2_online",
            Backbone::MobileNetV2 { width_mult: 1.0 },
            shift(ShiftDirection::Uni),
        )
    }

    /// TSN with VGG16 as GluonCV's `vgg16_ucf101` (after Wang et al., "Towards Good Practices
    /// for Very Deep Two-Stream ConvNets", 2015): 3 segments, 101 UCF-101 classes, dropout 0.9
    /// after fc6 and after fc7.
    pub fn tsn_vgg16() -> Self {
        Self {
            num_segments: 3,
            num_classes: 101,
            dropout: 0.9,
            ..Self::base(
                "tsn_vgg16",
                Backbone::Vgg {
                    depth: 16,
                    base_width: 64,
                    fc_width: 4096,
                },
                Temporal::None,
            )
        }
    }

    /// TSN with ResNet-50-D (the backbone of PaddleVideo's PP-TSN), 8 segments.
    pub fn tsn_r50_vd() -> Self {
        Self::base("tsn_r50_vd", Backbone::resnet_d(50, 64), Temporal::None)
    }

    /// Offline TSM with ResNet-50-D, 8 frames, as PaddleVideo's PP-TSM.
    pub fn tsm_r50_vd() -> Self {
        Self::base(
            "tsm_r50_vd",
            Backbone::resnet_d(50, 64),
            shift(ShiftDirection::Bi),
        )
    }

    fn tiny(name: &str, backbone: Backbone, temporal: Temporal) -> Self {
        Self {
            num_segments: 4,
            num_classes: 10,
            input_size: 64,
            ..Self::base(name, backbone, temporal)
        }
    }

    fn r18_tiny() -> Backbone {
        Backbone::resnet(18, 16)
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

    /// VGG16's topology at 1/8 of the width (8 to 64 channels, fc6 and fc7 of 64 units) on
    /// 32x32 frames.
    pub fn tsn_vgg16_tiny() -> Self {
        Self {
            input_size: 32,
            ..Self::tiny(
                "tsn_vgg16_tiny",
                Backbone::Vgg {
                    depth: 16,
                    base_width: 8,
                    fc_width: 64,
                },
                Temporal::None,
            )
        }
    }
    pub fn tsm_r50_vd_tiny() -> Self {
        Self::tiny(
            "tsm_r50_vd_tiny",
            Backbone::resnet_d(50, 16),
            shift(ShiftDirection::Bi),
        )
    }
    pub fn tsm_r50_vd_tiny_online() -> Self {
        Self::tiny(
            "tsm_r50_vd_tiny_online",
            Backbone::resnet_d(50, 16),
            shift(ShiftDirection::Uni),
        )
    }

    fn eco(name: &str, variant: EcoVariant, base_width: i64) -> Self {
        Self {
            num_segments: 16,
            ..Self::base(
                name,
                Backbone::Eco {
                    variant,
                    base_width,
                },
                Temporal::None,
            )
        }
    }

    /// ECO-Lite, 16 frames, 400 classes (37.5 M parameters, 46.5 G multiply-adds per clip).
    pub fn eco_lite() -> Self {
        Self::eco("eco_lite", EcoVariant::Lite, 64)
    }

    /// ECO-Full, 16 frames, 400 classes.
    pub fn eco_full() -> Self {
        Self::eco("eco_full", EcoVariant::Full, 64)
    }

    /// ECO at a quarter of the width (3D net 32 to 128 channels), 8 frames of 64x64, 10 classes.
    pub fn eco_lite_tiny() -> Self {
        Self::eco_tiny("eco_lite_tiny", EcoVariant::Lite)
    }
    pub fn eco_full_tiny() -> Self {
        Self::eco_tiny("eco_full_tiny", EcoVariant::Full)
    }

    fn eco_tiny(name: &str, variant: EcoVariant) -> Self {
        Self {
            num_segments: 8,
            ..Self::tiny(
                name,
                Backbone::Eco {
                    variant,
                    base_width: 16,
                },
                Temporal::None,
            )
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Each preset's model carries the preset's name, and every name and alias finds its preset.
    #[test]
    fn names_aliases_and_models_agree() {
        assert_eq!(Preset::all().len(), 21);
        let mut seen = std::collections::HashSet::new();
        for &preset in Preset::all() {
            let model = preset.model();
            assert_eq!(model.name, preset.name());
            model.validate().unwrap();
            for name in preset.names() {
                assert!(seen.insert(name.clone()), "{name} names two presets");
                assert_eq!(name.parse::<Preset>().unwrap(), preset, "{name}");
            }
            let json = serde_json::to_string(&preset).unwrap();
            assert_eq!(json, format!("\"{}\"", preset.name()));
            assert_eq!(serde_json::from_str::<Preset>(&json).unwrap(), preset);
        }
        // The training names of earlier versions.
        for (old, new) in [
            ("tsm_online_tiny", Preset::TsmR18TinyOnline),
            ("tsn", Preset::TsnR50),
            ("mvf_tiny", Preset::MvfR18Tiny),
            (
                "tsm_mobilenet_v2_online_tiny",
                Preset::TsmMobilenetV2TinyOnline,
            ),
        ] {
            assert_eq!(old.parse::<Preset>().unwrap(), new);
            assert_eq!(ModelConfig::from_preset(old).unwrap().name, new.name());
        }
        let err = "tsm_r77".parse::<Preset>().unwrap_err().to_string();
        assert!(err.contains("unknown preset 'tsm_r77'") && err.contains("eco_full_tiny"));
    }

    /// The tiny presets take the motion recipe, the others the papers'.
    #[test]
    fn recipes_follow_the_model() {
        for &preset in Preset::all() {
            let model = preset.model();
            let want = if model.name.contains("tiny") {
                RecipeName::MotionTiny
            } else if matches!(model.backbone, Backbone::Vgg { .. }) {
                RecipeName::GluoncvVgg
            } else if matches!(model.temporal, Temporal::Mvf { .. }) {
                RecipeName::PaddleMvf
            } else {
                RecipeName::Ucf101Finetune
            };
            assert_eq!(preset.recipe(), want, "{preset}");
        }
    }
}
