//! The synthetic motion data set: UCF-101-layout videos whose nine classes differ only by motion
//! (see `render` for how a single frame is kept uninformative), with UCF-101's split files.

mod demo;
mod encode;
mod render;
mod write;

use serde::{Deserialize, Serialize};

pub use demo::{DemoSegment, DemoTruth, demo_clip};
pub use render::{VideoParams, render_video};
pub use write::{SynthOptions, SynthReport, UCF_GROUPS, generate, group_of, split_tests_group};

/// The classes, in label order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SynthClass {
    MoveLeft,
    MoveRight,
    MoveUp,
    MoveDown,
    RotateClockwise,
    RotateAnticlockwise,
    ZoomIn,
    ZoomOut,
    Still,
}

impl SynthClass {
    pub const ALL: [SynthClass; 9] = [
        SynthClass::MoveLeft,
        SynthClass::MoveRight,
        SynthClass::MoveUp,
        SynthClass::MoveDown,
        SynthClass::RotateClockwise,
        SynthClass::RotateAnticlockwise,
        SynthClass::ZoomIn,
        SynthClass::ZoomOut,
        SynthClass::Still,
    ];

    /// The CamelCase name used for folders, file names and classInd.
    pub fn name(self) -> &'static str {
        match self {
            SynthClass::MoveLeft => "MoveLeft",
            SynthClass::MoveRight => "MoveRight",
            SynthClass::MoveUp => "MoveUp",
            SynthClass::MoveDown => "MoveDown",
            SynthClass::RotateClockwise => "RotateClockwise",
            SynthClass::RotateAnticlockwise => "RotateAnticlockwise",
            SynthClass::ZoomIn => "ZoomIn",
            SynthClass::ZoomOut => "ZoomOut",
            SynthClass::Still => "Still",
        }
    }

    /// Parses a name, ignoring case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The class of the horizontally mirrored video.
    pub fn mirrored(self) -> Self {
        match self {
            SynthClass::MoveLeft => SynthClass::MoveRight,
            SynthClass::MoveRight => SynthClass::MoveLeft,
            SynthClass::RotateClockwise => SynthClass::RotateAnticlockwise,
            SynthClass::RotateAnticlockwise => SynthClass::RotateClockwise,
            other => other,
        }
    }
}

/// The flip label map for a class list (`map[label]` = label of the mirrored clip):
/// MoveLeft <-> MoveRight, RotateClockwise <-> RotateAnticlockwise, every other class (and any
/// name that is not a synth class, or whose mirror is not in the list) maps to itself.
pub fn flip_label_map(classes: &[String]) -> Vec<usize> {
    classes
        .iter()
        .enumerate()
        .map(|(i, name)| {
            SynthClass::from_name(name)
                .map(|c| c.mirrored().name())
                .and_then(|m| classes.iter().position(|n| n == m))
                .unwrap_or(i)
        })
        .collect()
}
