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
    /// In a TorchScript export: its name by position in Triton's libtorch naming (`INPUT__0`
    /// the frame, `OUTPUT__0` the logits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torchscript: Option<String>,
}

/// The positional names of a state in a TorchScript export (Triton's libtorch naming): the
/// K-th state goes in as `INPUT__{K+1}` and comes out as `OUTPUT__{K+1}` (the module returns the
/// tuple `(logits, state_out_0, ...)`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TorchscriptNames {
    pub input: String,
    pub output: String,
}

/// One state of the online step: feed `output` of frame t back as `input` of frame t+1 of the
/// same stream; zeros start a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateEntry {
    pub input: String,
    pub output: String,
    pub shape: Vec<i64>,
    pub dtype: &'static str,
    /// In a TorchScript export: its positional names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torchscript: Option<TorchscriptNames>,
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
                torchscript: None,
            },
            output: TensorSpec {
                name: "logits".into(),
                shape: vec![graph.classes],
                dtype: f32,
                torchscript: None,
            },
            states: graph.states.iter().map(state_entry).collect(),
            preprocess,
            labels,
            stride,
            batch: super::onnx::BATCH,
        }
    }

    /// Adds the TorchScript positions: `INPUT__0` the frame, `OUTPUT__0` the logits, and
    /// `INPUT__{K+1}` / `OUTPUT__{K+1}` the K-th state.
    pub fn with_torchscript_names(mut self) -> Self {
        self.input.torchscript = Some("INPUT__0".into());
        self.output.torchscript = Some("OUTPUT__0".into());
        for (k, state) in self.states.iter_mut().enumerate() {
            state.torchscript = Some(TorchscriptNames {
                input: format!("INPUT__{}", k + 1),
                output: format!("OUTPUT__{}", k + 1),
            });
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
