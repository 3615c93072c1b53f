//! A model's test protocol: which frames make a clip, how many clips a video gives and which
//! crops each clip is seen in. Training writes it into the checkpoint (metadata `test`), so `eval`
//! and `predict` test a model the way its recipe says without being told.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::TrainError;
use crate::data::{Sampling, TestCrop};
use crate::model::{ModelConfig, Temporal};

/// The checkpoint metadata key of the protocol (JSON).
pub const TEST_PROTOCOL_KEY: &str = "test";

/// Clips per video and crops per clip of a training recipe's test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestViews {
    pub clips: usize,
    pub crop: TestCrop,
}

impl Default for TestViews {
    /// One clip, centre crop: what TSN and TSM validate with during training.
    fn default() -> Self {
        Self {
            clips: 1,
            crop: TestCrop::Centre,
        }
    }
}

/// How a model is tested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestProtocol {
    /// Frames per clip (TSN segments or dense clip length).
    pub frames: usize,
    /// Dense clips with this frame interval; None: TSN segments.
    pub interval: Option<usize>,
    pub clips: usize,
    pub crop: TestCrop,
}

/// Why a checkpoint's recorded protocol is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("metadata '{TEST_PROTOCOL_KEY}' is not a test protocol: {text}")]
    Json {
        text: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("frames {frames}, clips {clips} and interval {interval:?} must all be at least 1")]
    Invalid {
        frames: usize,
        clips: usize,
        interval: Option<usize>,
    },
}

/// Settings given on the command line, each overriding the protocol's own.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProtocolOverrides {
    pub frames: Option<usize>,
    /// 0 asks for TSN segments.
    pub interval: Option<usize>,
    pub clips: Option<usize>,
    pub crop: Option<TestCrop>,
}

impl TestProtocol {
    /// The protocol of a model that does not record one: its own number of segments (dense
    /// clips 4 frames apart for MVF, as PaddleMVF samples), one clip, centre crop.
    pub fn default_for(config: &ModelConfig) -> Self {
        Self {
            frames: config.num_segments.max(1) as usize,
            interval: match config.temporal {
                Temporal::Mvf { .. } => Some(4),
                _ => None,
            },
            clips: 1,
            crop: TestCrop::Centre,
        }
    }

    /// The protocol recorded in a checkpoint's metadata, else [`TestProtocol::default_for`].
    pub fn of_checkpoint(
        metadata: &BTreeMap<String, String>,
        config: &ModelConfig,
        path: &Path,
    ) -> Result<Self, TrainError> {
        let Some(text) = metadata.get(TEST_PROTOCOL_KEY) else {
            return Ok(Self::default_for(config));
        };
        let fail = |source| TrainError::Protocol {
            path: path.to_path_buf(),
            source,
        };
        let protocol: Self = serde_json::from_str(text).map_err(|source| {
            fail(ProtocolError::Json {
                text: text.clone(),
                source,
            })
        })?;
        protocol.validate().map_err(fail)?;
        Ok(protocol)
    }

    pub fn validate(&self) -> Result<(), ProtocolError> {
        if self.frames == 0 || self.clips == 0 || self.interval == Some(0) {
            return Err(ProtocolError::Invalid {
                frames: self.frames,
                clips: self.clips,
                interval: self.interval,
            });
        }
        Ok(())
    }

    pub fn with(mut self, o: ProtocolOverrides) -> Self {
        if let Some(frames) = o.frames {
            self.frames = frames.max(1);
        }
        if let Some(interval) = o.interval {
            self.interval = (interval > 0).then_some(interval);
        }
        if let Some(clips) = o.clips {
            self.clips = clips.max(1);
        }
        if let Some(crop) = o.crop {
            self.crop = crop;
        }
        self
    }

    /// Evaluation options that test with this protocol (no cache, not strict, no progress bar, no
    /// mirror map:
    /// callers set those with struct update syntax).
    pub fn eval_options(&self, batch_size: usize, workers: usize) -> super::EvalOptions {
        super::EvalOptions {
            crop: self.crop,
            clips: self.clips,
            batch_size,
            workers,
            sampling: self.sampling(),
            strict: false,
            cache: None,
            progress: false,
            mirror_map: None,
        }
    }

    pub fn sampling(&self) -> Sampling {
        match self.interval {
            Some(interval) => Sampling::Dense {
                clip_len: self.frames,
                interval,
            },
            None => Sampling::Segments {
                num_segments: self.frames,
            },
        }
    }

    /// Views per video (clips x crops).
    pub fn views(&self) -> usize {
        self.clips * self.crop.count()
    }

    /// `8 segments x 1 clip x centre` or `16 frames every 4 x 10 clips x three`.
    pub fn describe(&self) -> String {
        let crop = match self.crop {
            TestCrop::Centre => "centre crop",
            TestCrop::Three => "three crops",
            TestCrop::Ten => "ten crops",
        };
        let clip = match self.interval {
            Some(i) => format!("{} frames every {i}", self.frames),
            None => format!("{} segments", self.frames),
        };
        format!("{clip} x {} clips x {crop}", self.clips)
    }
}
