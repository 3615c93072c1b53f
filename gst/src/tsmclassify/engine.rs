//! What the element runs per frame, free of GStreamer: the recogniser loaded from a checkpoint
//! (the same `Recognizer` and preprocessing as `shiftlive live`), the smoothing, the stride, and
//! the resets that follow the stream.

use std::path::{Path, PathBuf};

use shiftlive::device::{DeviceArg, DeviceError};
use shiftlive::fsio::{ReadError, read_text_file};
use shiftlive::model::{ModelError, TensorFile, checkpoint};
use shiftlive::online::{
    FrameStride, OnlineError, Recognizer, RecognizerOptions, Smoother, StepTiming,
};
use shiftlive::preprocess::FrameRef;

use super::settings::Settings;

/// The most a labels file may hold (as the CLI's bound).
const MAX_LABELS_BYTES: u64 = 16 << 20;

/// Why the element could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no model: set the 'model' property to a shiftlive checkpoint (.safetensors)")]
    NoModel,
    #[error("property 'device': {0}")]
    Device(#[from] DeviceError),
    /// The model error names the file.
    #[error("property 'model'")]
    Model(#[source] ModelError),
    #[error("labels")]
    Labels(#[from] ReadError),
    #[error("{}: {got} labels for a model of {classes} classes", path.display())]
    LabelCount {
        path: PathBuf,
        got: usize,
        classes: i64,
    },
    #[error("{}: metadata 'stride' is '{text}', not a positive number", path.display())]
    Stride { path: PathBuf, text: String },
}

/// One processed frame.
#[derive(Debug, Clone)]
pub struct Output {
    pub label: Option<String>,
    pub score: f32,
    pub top: Vec<(String, f32)>,
    pub logits: Vec<f32>,
    pub timing: StepTiming,
}

#[derive(Debug)]
pub struct Engine {
    recognizer: Recognizer,
    smoother: Smoother,
    stride: FrameStride,
    labels: Vec<String>,
    /// Empty the cache and the smoothing before the next frame.
    reset_next: bool,
}

impl Engine {
    /// Loads the model of `settings` (on its device, with its threads).
    pub fn load(settings: &Settings) -> Result<Self, LoadError> {
        let path = settings.model.as_deref().ok_or(LoadError::NoModel)?;
        let device = settings.device.parse::<DeviceArg>()?.resolve()?;
        if settings.threads > 0 {
            tch::set_num_threads(settings.threads);
        }
        let model_error = LoadError::Model;
        let options = RecognizerOptions {
            device,
            ..Default::default()
        };
        let recognizer = Recognizer::from_checkpoint(path, options).map_err(model_error)?;
        let metadata = TensorFile::read_metadata(path).map_err(model_error)?;
        let classes = recognizer.config().num_classes;
        let labels = match &settings.labels {
            Some(file) => read_labels(file, classes)?,
            None => checkpoint::labels_of(&metadata, path)
                .map_err(model_error)?
                .unwrap_or_default(),
        };
        let stride = match (settings.stride, metadata.get("stride")) {
            (0, Some(text)) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| LoadError::Stride {
                    path: path.to_path_buf(),
                    text: text.clone(),
                })?,
            (0, None) => 1,
            (stride, _) => stride,
        };
        Ok(Self {
            recognizer,
            smoother: Smoother::new(settings.smoothing_options()),
            stride: FrameStride::new(stride),
            labels,
            reset_next: false,
        })
    }

    /// The stride in use (the property, else the checkpoint's).
    pub fn stride(&self) -> u32 {
        self.stride.every()
    }

    /// Applies the settings that may change while playing (the stride only when set explicitly).
    pub fn update(&mut self, settings: &Settings) {
        if self.smoother.options() != &settings.smoothing_options() {
            self.smoother.set_options(settings.smoothing_options());
        }
        if settings.stride != 0 && settings.stride != self.stride.every() {
            self.stride = FrameStride::new(settings.stride);
        }
    }

    /// Forgets the past before the next frame (a flush, a new stream, new caps).
    pub fn reset(&mut self) {
        self.reset_next = true;
    }

    fn label(&self, class: usize) -> String {
        self.labels
            .get(class)
            .cloned()
            .unwrap_or_else(|| format!("class_{class}"))
    }

    /// One frame: None when the stride leaves it out. A discontinuity empties the cache and the
    /// smoothing first, and the stride counts again from this frame (as `live` does).
    pub fn push(
        &mut self,
        frame: &FrameRef,
        discontinuity: bool,
    ) -> Result<Option<Output>, OnlineError> {
        if std::mem::take(&mut self.reset_next) || discontinuity {
            self.recognizer.reset();
            self.smoother.reset();
            self.stride.reset();
        }
        if !self.stride.take() {
            return Ok(None);
        }
        let (logits, timing) = self.recognizer.step(frame)?;
        let logits = logits.to_vec();
        let prediction = self.smoother.push(&logits);
        Ok(Some(Output {
            label: prediction.label.map(|c| self.label(c)),
            score: prediction.score,
            top: prediction
                .top
                .iter()
                .map(|&(c, s)| (self.label(c), s))
                .collect(),
            logits,
            timing,
        }))
    }
}

fn read_labels(path: &Path, classes: i64) -> Result<Vec<String>, LoadError> {
    let labels: Vec<String> = read_text_file(path, MAX_LABELS_BYTES)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if labels.len() as i64 != classes {
        return Err(LoadError::LabelCount {
            path: path.to_path_buf(),
            got: labels.len(),
            classes,
        });
    }
    Ok(labels)
}
