//! A demo clip: one continuous video made of segments of several classes (each a synthetic
//! video of its class, rendered with a video index the training sets do not use), and beside it
//! a JSON file saying which frames show which class, so a test can check the labels a model
//! gives frame by frame.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SynthClass, SynthOptions, encode::encode, render_video};
use crate::data::{DataError, write_atomic};

/// What a demo clip shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoTruth {
    pub fps: u32,
    pub width: usize,
    pub height: usize,
    pub frames: usize,
    pub segments: Vec<DemoSegment>,
}

/// Frames `start..end` (0-based, end excluded) show `class`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSegment {
    pub class: String,
    pub start: usize,
    pub end: usize,
}

impl DemoTruth {
    /// The class shown at frame `index`.
    pub fn class_at(&self, index: usize) -> Option<&str> {
        self.segments
            .iter()
            .find(|s| (s.start..s.end).contains(&index))
            .map(|s| s.class.as_str())
    }

    /// The truth file beside a clip: `clip.avi` -> `clip.json`.
    pub fn path_for(clip: &Path) -> PathBuf {
        clip.with_extension("json")
    }

    pub fn read(path: &Path) -> Result<Self, DataError> {
        // A truth file holds a few lines per class.
        let text = crate::fsio::read_text_file(path, 16 << 20)?;
        serde_json::from_str(&text).map_err(|e| DataError::Io {
            path: path.to_path_buf(),
            why: format!("not a demo truth file: {e}"),
        })
    }
}

/// The most memory the rendered frames of a demo clip may take.
const MAX_DEMO_BYTES: usize = 2 << 30;

/// Renders `sequence` (each class for `segment_frames` frames) into `out` (MJPEG in AVI) and
/// writes the truth beside it. Video index `1000 + i` keeps the textures apart from any data set
/// made with fewer than 1000 videos per class.
pub fn demo_clip(
    out: &Path,
    sequence: &[SynthClass],
    segment_frames: usize,
    options: &SynthOptions,
) -> Result<DemoTruth, DataError> {
    if sequence.is_empty() || segment_frames == 0 {
        return Err(DataError::Options(
            "a demo clip needs at least one class and one frame per segment".into(),
        ));
    }
    // Every frame is rendered before encoding: refuse what would not fit in memory.
    let bytes =
        (sequence.len() * segment_frames).saturating_mul(options.width * options.height * 3);
    if bytes > MAX_DEMO_BYTES {
        return Err(DataError::Options(format!(
            "a demo clip of {} frames of {}x{} takes {} MiB in memory; at most {} MiB",
            sequence.len() * segment_frames,
            options.width,
            options.height,
            bytes >> 20,
            MAX_DEMO_BYTES >> 20
        )));
    }
    let mut frames = Vec::with_capacity(sequence.len() * segment_frames);
    let mut segments = Vec::new();
    for (i, class) in sequence.iter().enumerate() {
        let (_, video) = render_video(
            options.seed,
            *class,
            1000 + i,
            segment_frames,
            options.width,
            options.height,
        );
        segments.push(DemoSegment {
            class: class.name().to_string(),
            start: frames.len(),
            end: frames.len() + video.len(),
        });
        frames.extend(video);
    }
    encode(options, &frames, out, None)?;
    let truth = DemoTruth {
        fps: options.fps,
        width: options.width,
        height: options.height,
        frames: frames.len(),
        segments,
    };
    let text =
        serde_json::to_string_pretty(&truth).map_err(|e| DataError::Options(e.to_string()))?;
    write_atomic(&DemoTruth::path_for(out), text.as_bytes())?;
    Ok(truth)
}
