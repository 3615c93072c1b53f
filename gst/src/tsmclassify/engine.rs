//! What the element runs per frame, free of GStreamer: the recogniser loaded from a checkpoint
//! (the same `Recognizer` and preprocessing as `shiftlive live`), the smoothing, the stride, and
//! the resets that follow the stream. Elements on the same model file and device share its
//! weights (a process-wide registry of loaded networks); each has its own cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use shiftlive::backend::{Backend, BackendError, BackendOptions};
use shiftlive::device::{DeviceArg, DeviceError};
use shiftlive::fsio::{ReadError, read_text_file};
use shiftlive::model::{ModelError, TensorFile, checkpoint};
use shiftlive::online::{
    FrameStride, OnlineError, Recognizer, RecognizerOptions, Smoother, StepTiming, WeakNet,
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
    /// The element labels every frame through its own smoothing; ECO answers every N frames
    /// from its working memory, which `shiftlive live` and `play` report as such.
    #[error(
        "{}: an ECO model, which answers every {every} frames from its working memory; \
         tsmclassify runs frame-by-frame (online TSM) models: run ECO with `shiftlive live` or `play`",
        path.display()
    )]
    Eco { path: PathBuf, every: usize },
    #[error("property 'backend': '{0}' is not auto, libtorch, onnxruntime or openvino")]
    BackendName(String),
    #[error("property 'backend'")]
    Backend(#[from] BackendError),
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
        let backend = [
            Backend::Auto,
            Backend::Libtorch,
            Backend::Onnxruntime,
            Backend::Openvino,
        ]
        .into_iter()
        .find(|b| b.name().eq_ignore_ascii_case(settings.backend.trim()))
        .ok_or_else(|| LoadError::BackendName(settings.backend.clone()))?;
        let mut recognizer = recognizer(path, options).map_err(model_error)?;
        if let Some(memory) = recognizer.memory_status(0) {
            return Err(LoadError::Eco {
                path: path.to_path_buf(),
                every: memory.every,
            });
        }
        recognizer.set_backend(backend, &BackendOptions::from_env())?;
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

/// Which loaded network a model file and device map to: the file's identity and change time, so
/// a rewritten checkpoint is loaded again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ModelKey {
    path: PathBuf,
    modified: Option<SystemTime>,
    len: u64,
    device: String,
}

/// The networks loaded in this process, held weakly: the weights go when the last element using
/// them stops.
static LOADED: LazyLock<Mutex<HashMap<ModelKey, WeakNet>>> = LazyLock::new(Default::default);

/// A recogniser on the weights of `path`: those already loaded for the same file and device, else
/// loaded now. The registry's lock is held while loading, so two elements starting together load
/// the file once.
fn recognizer(path: &Path, options: RecognizerOptions) -> Result<Recognizer, ModelError> {
    let meta = std::fs::metadata(path).ok();
    let key = ModelKey {
        path: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        modified: meta.as_ref().and_then(|m| m.modified().ok()),
        len: meta.map_or(0, |m| m.len()),
        device: format!("{:?}", options.device),
    };
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    loaded.retain(|_, weak| weak.upgrade().is_some());
    if let Some(shared) = loaded.get(&key).and_then(WeakNet::upgrade) {
        return Ok(Recognizer::from_shared(&shared));
    }
    let recognizer = Recognizer::from_checkpoint(path, options)?;
    loaded.insert(key, recognizer.shared().downgrade());
    Ok(recognizer)
}

/// The weights `engine` runs on (tests: two elements on one model share them).
#[cfg(test)]
pub fn weights(engine: &Engine) -> &shiftlive::online::SharedNet {
    engine.recognizer.shared()
}

fn read_labels(path: &Path, classes: i64) -> Result<Vec<String>, LoadError> {
    let labels = checkpoint::label_lines(&read_text_file(path, MAX_LABELS_BYTES)?);
    if labels.len() as i64 != classes {
        return Err(LoadError::LabelCount {
            path: path.to_path_buf(),
            got: labels.len(),
            classes,
        });
    }
    Ok(labels)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use shiftlive::preprocess::FrameRef;

    fn settings() -> Settings {
        Settings {
            model: Some(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../assets/models/motion-tsm-r18-tiny.safetensors"),
            ),
            stride: 1,
            ..Settings::default()
        }
    }

    fn frame(seed: u8) -> Vec<u8> {
        (0..80 * 60 * 3)
            .map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn two_engines_on_one_model_share_the_weights_not_the_cache() {
        let mut a = Engine::load(&settings()).unwrap();
        let mut b = Engine::load(&settings()).unwrap();
        assert!(weights(&a).same(weights(&b)), "one copy of the weights");
        let (f1, f2) = (frame(3), frame(7));
        let step = |e: &mut Engine, f: &[u8]| {
            e.push(&FrameRef::rgb(f, 80, 60), false)
                .unwrap()
                .unwrap()
                .logits
        };
        // A steps twice; B, stepped once on another frame, then on f2, must not see A's past.
        step(&mut a, &f1);
        let a2 = step(&mut a, &f2);
        step(&mut b, &f2);
        let mut fresh = Engine::load(&settings()).unwrap();
        step(&mut fresh, &f2);
        assert_eq!(
            step(&mut b, &f2),
            step(&mut fresh, &f2),
            "B's cache is its own"
        );
        // And A's own run equals a recogniser of its own weights.
        drop((a, b, fresh));
        let mut alone = Engine::load(&settings()).unwrap();
        step(&mut alone, &f1);
        assert_eq!(step(&mut alone, &f2), a2);
    }
}
