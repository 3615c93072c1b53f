//! Checkpointing and resume: after every epoch (and every N steps if asked) `checkpoint.safetensors`
//! gets the weights, the optimiser's momentum and the run's state, so `--resume` continues bit for
//! bit; `best.safetensors` is the best model by validation top-1 as a plain model checkpoint that
//! `live` and `play` load as it is. Both carry the metadata of a trained model (labels,
//! preprocessing, live stride, test protocol); the file format and its tag belong to
//! `model::checkpoint`.
//!
//! Every file a run writes goes through [`Checkpointer`] (and the metrics log): a data-parallel
//! run gives its ranks other than 0 no checkpointer, so only rank 0 writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor, nn};

use super::config::TrainConfig;
use super::error::{ResumeError, TrainError};
use super::mirror::{FLIP_KEY, FlipRecord};
use super::optim::{MOMENTUM_PREFIX, Sgd};
use super::protocol::{TEST_PROTOCOL_KEY, TestProtocol};
use super::report::EpochRecord;
use crate::model::checkpoint::{self, TensorFile, preprocess_metadata};
use crate::model::{ActionNet, ModelConfig};
use crate::preprocess::Transform;

/// Metadata key of the run state in `checkpoint.safetensors`.
pub const TRAIN_STATE_KEY: &str = "shiftlive.train";

/// The state saved with each checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct RunState {
    /// Epochs finished.
    pub epoch: u32,
    /// Steps done within `epoch` (a mid-epoch checkpoint), with the running sums of that epoch.
    pub step: usize,
    pub loss_sum: f64,
    pub correct: u64,
    pub seen: u64,
    pub best_top1: Option<f64>,
    pub history: Vec<EpochRecord>,
    pub train_seconds: f64,
    /// Ranks of the job that trained it (None: written before data-parallel training existed).
    #[serde(default)]
    pub world: Option<usize>,
}

/// Writes and reads a run's checkpoints in its output folder.
pub(super) struct Checkpointer {
    out: PathBuf,
    /// The class names as JSON, for the `labels` metadata.
    labels_json: String,
    /// False on a data-parallel run's ranks other than 0: they only read (resume).
    writes: bool,
    classes: Vec<String>,
}

impl Checkpointer {
    pub fn new(out: &Path, classes: &[String]) -> Result<Self, TrainError> {
        let labels_json = serde_json::to_string(classes).map_err(|source| TrainError::Json {
            what: "the class names",
            source,
        })?;
        Ok(Self {
            out: out.to_path_buf(),
            labels_json,
            writes: true,
            classes: classes.to_vec(),
        })
    }

    /// With `false`, `save` and `save_best` write nothing (the single-writer seam).
    pub fn writing(mut self, writes: bool) -> Self {
        self.writes = writes;
        self
    }

    pub fn checkpoint_path(out: &Path) -> PathBuf {
        out.join("checkpoint.safetensors")
    }

    pub fn best_path(out: &Path) -> PathBuf {
        out.join("best.safetensors")
    }

    /// The training checkpoint: weights, momentum, the run's state.
    pub fn save(
        &self,
        vs: &nn::VarStore,
        config: &TrainConfig,
        sgd: &Sgd,
        state: &RunState,
    ) -> Result<(), TrainError> {
        if !self.writes {
            return Ok(());
        }
        let metadata = self.metadata(config, state.epoch)?;
        let mut file = checkpoint::model_file(vs, &config.model, &metadata);
        for (name, tensor) in sgd.state() {
            file.tensors.insert(name, tensor.to_device(Device::Cpu));
        }
        let state = serde_json::to_string(state).map_err(|source| TrainError::Json {
            what: "the run state",
            source,
        })?;
        file.metadata.insert(TRAIN_STATE_KEY.to_string(), state);
        file.write(&Self::checkpoint_path(&self.out))?;
        Ok(())
    }

    /// The model alone, as `live`, `play`, `eval` and `predict` load it.
    pub fn save_best(
        &self,
        vs: &nn::VarStore,
        config: &TrainConfig,
        epoch: u32,
    ) -> Result<(), TrainError> {
        if !self.writes {
            return Ok(());
        }
        let metadata = self.metadata(config, epoch)?;
        checkpoint::save(vs, &config.model, &metadata, &Self::best_path(&self.out))?;
        Ok(())
    }

    /// Metadata a trained model carries for `live`, `play` and `eval`: class names, the
    /// preprocessing it was trained with, the frame stride to run it at, the test protocol, the
    /// training flip rule, the epoch.
    fn metadata(
        &self,
        config: &TrainConfig,
        epoch: u32,
    ) -> Result<Vec<(&'static str, String)>, TrainError> {
        let transform = Transform::imagenet(config.model.input_size as usize);
        let mut meta = vec![
            ("labels", self.labels_json.clone()),
            ("epoch", epoch.to_string()),
            ("preprocess", preprocess_metadata(&transform)),
        ];
        if let Some((stride, _)) = config.live_stride_with_origin() {
            meta.push(("stride", stride.to_string()));
        }
        let protocol = TestProtocol {
            frames: config.model.num_segments.max(1) as usize,
            interval: config.regimen.interval,
            clips: config.regimen.test.clips.max(1),
            crop: config.regimen.test.crop,
        };
        let protocol = serde_json::to_string(&protocol).map_err(|source| TrainError::Json {
            what: "the test protocol",
            source,
        })?;
        meta.push((TEST_PROTOCOL_KEY, protocol));
        meta.push((
            FLIP_KEY,
            FlipRecord::new(config.regimen.flip, &self.classes).to_json(),
        ));
        Ok(meta)
    }

    /// Loads the weights of `out/checkpoint.safetensors` into `vs` and returns the run's state
    /// with the file's tensors (for the optimiser's momentum).
    pub fn resume(
        &self,
        vs: &nn::VarStore,
        model: &ModelConfig,
    ) -> Result<(RunState, BTreeMap<String, Tensor>), TrainError> {
        let path = Self::checkpoint_path(&self.out);
        let fail = |source| TrainError::Resume {
            path: path.clone(),
            source,
        };
        let file = TensorFile::read(&path)?;
        let saved = checkpoint::config_of(&file, &path)?;
        if saved != *model {
            return Err(fail(ResumeError::ModelDiffers {
                saved: saved.to_json(),
                run: model.to_json(),
            }));
        }
        let text = file.metadata.get(TRAIN_STATE_KEY).ok_or_else(|| {
            fail(ResumeError::NotTraining {
                key: TRAIN_STATE_KEY,
            })
        })?;
        let state: RunState = serde_json::from_str(text).map_err(|source| {
            fail(ResumeError::State {
                key: TRAIN_STATE_KEY,
                source,
            })
        })?;
        checkpoint::load_weights(vs, &weights_only(&file.tensors), &path, &model.name)?;
        tracing::info!(
            "resuming from {} at epoch {}, step {}",
            path.display(),
            state.epoch + 1,
            state.step
        );
        Ok((state, file.tensors))
    }

    /// Restores the optimiser's momentum from the tensors [`Checkpointer::resume`] returned.
    pub fn resume_optimiser(
        &self,
        sgd: &mut Sgd,
        tensors: &BTreeMap<String, Tensor>,
    ) -> Result<(), TrainError> {
        sgd.load_state(tensors)
            .map_err(|e| TrainError::Resume {
                path: Self::checkpoint_path(&self.out),
                source: e.into(),
            })
            .map(|_| ())
    }
}

/// The tensors of a checkpoint without the optimiser's momentum.
fn weights_only(tensors: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    tensors
        .iter()
        .filter(|(k, _)| !k.starts_with(MOMENTUM_PREFIX))
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect()
}

/// Loads initial weights from a checkpoint (shiftlive or imported): every tensor of the network
/// must be there with its shape, except the classifier when the class count differs, which keeps
/// its fresh initialisation.
pub(super) fn init_from(
    vs: &nn::VarStore,
    net: &ActionNet,
    path: &Path,
    model: &ModelConfig,
) -> Result<(), TrainError> {
    let file = TensorFile::read(path)?;
    let prefix = net.classifier_prefix();
    let vars = vs.variables();
    let replace = file.tensors.iter().any(|(name, t)| {
        name.starts_with(prefix) && vars.get(name).is_some_and(|v| v.size() != t.size())
    });
    let mut tensors = weights_only(&file.tensors);
    if replace {
        tracing::info!(
            "{}: classifier of another class count, replaced by a fresh one of {}",
            path.display(),
            model.num_classes
        );
        for (name, var) in &vars {
            if name.starts_with(prefix) {
                tensors.insert(name.clone(), var.detach().to_device(Device::Cpu));
            }
        }
    }
    checkpoint::load_weights(vs, &tensors, path, &model.name)?;
    Ok(())
}
