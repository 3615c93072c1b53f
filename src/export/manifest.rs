//! The manifest written beside every export (`OUT.json`, or `manifest.json` in a directory):
//! everything a consumer needs to feed the exported graph, so it needs nothing of shiftlive.

use serde::Serialize;

use super::onnx::{OnnxGraph, StateSpec};
use crate::preprocess::Transform;

/// Format tag of the manifest.
pub const MANIFEST_FORMAT: &str = "shiftlive-export/1";

/// A named tensor, its shape without the batch dimension and its dtype.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<i64>,
    pub dtype: &'static str,
}

/// One state of the online step: feed `output` of frame t back as `input` of frame t+1 of the
/// same stream; zeros start a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateEntry {
    pub input: String,
    pub output: String,
    pub shape: Vec<i64>,
    pub dtype: &'static str,
    /// In a TorchScript export: the positional input (`INPUT__{K+1}`, Triton's libtorch naming)
    /// and the columns `[start, end)` of the packed output `OUTPUT__0` holding the new state
    /// (flattened `[N, fold*H*W]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torchscript: Option<(String, [i64; 2])>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    pub format: &'static str,
    pub model: String,
    /// `stream` (the online step with state) or `clip` (whole clips, no state).
    pub graph: &'static str,
    /// The model file, relative to the manifest.
    pub file: String,
    /// Side of the square input.
    pub input_size: i64,
    pub input: TensorSpec,
    pub output: TensorSpec,
    pub states: Vec<StateEntry>,
    /// What a frame goes through before `input`: shorter side resized to `resize`, centre crop
    /// `crop`, RGB in [0, 1], minus `mean`, divided by `std`, channels first.
    pub preprocess: Transform,
    pub labels: Option<Vec<String>>,
    /// Run the step on every `stride`-th frame of a camera (as the model was trained).
    pub stride: u32,
    /// Batch dimension: symbolic (`N`) in ONNX, several streams in one call.
    pub batch: &'static str,
}

impl Manifest {
    pub fn new(
        graph: &OnnxGraph,
        model: &str,
        file: String,
        preprocess: Transform,
        labels: Option<Vec<String>>,
        stride: u32,
    ) -> Self {
        let f32 = "float32";
        Self {
            format: MANIFEST_FORMAT,
            model: model.to_string(),
            graph: if graph.input.0 == "frame" {
                "stream"
            } else {
                "clip"
            },
            file,
            // The side of the graph's input (the last dimension of `frame` or `frames`).
            input_size: graph.input.1.last().copied().unwrap_or_default(),
            input: TensorSpec {
                name: graph.input.0.clone(),
                shape: graph.input.1.clone(),
                dtype: f32,
            },
            output: TensorSpec {
                name: "logits".into(),
                shape: vec![graph.classes],
                dtype: f32,
            },
            states: graph.states.iter().map(state_entry).collect(),
            preprocess,
            labels,
            stride,
            batch: super::onnx::BATCH,
        }
    }

    /// Adds the TorchScript positions: `INPUT__0` the frame, `INPUT__{K+1}` the K-th state;
    /// one output `OUTPUT__0` `[N, classes + sum of state sizes]`: the logits, then each new
    /// state flattened, in order (see `export::step`, which says why it is packed).
    pub fn with_torchscript_names(mut self) -> Self {
        let mut start = self.output.shape[0];
        for (k, state) in self.states.iter_mut().enumerate() {
            let end = start + state.shape.iter().product::<i64>();
            state.torchscript = Some((format!("INPUT__{}", k + 1), [start, end]));
            start = end;
        }
        self
    }

    pub fn to_json(&self) -> String {
        // Plain data of strings and numbers: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

fn state_entry(state: &StateSpec) -> StateEntry {
    StateEntry {
        input: state.input.clone(),
        output: state.output.clone(),
        shape: state.shape.clone(),
        dtype: "float32",
        torchscript: None,
    }
}
