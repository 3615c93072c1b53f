//! A Triton Inference Server model repository for the online step: `OUT/<name>/config.pbtxt`,
//! `OUT/<name>/1/model.onnx` and `OUT/<name>/labels.txt`. The sequence batcher keeps each
//! camera's shift cache as implicit state (one `state` entry per shifted block, zero initial
//! state), so a client sends only frames with a sequence id and the start/end flags.

use std::fmt::Write;

use super::onnx::OnnxGraph;

/// Streams (cameras) batched into one call. The step's batch dimension is symbolic; 8 keeps the
/// added latency of waiting for a batch small on a CPU (a MobileNetV2 step is a few ms) while a
/// GPU instance still fills its kernels; raise it for many cameras on a GPU.
pub const MAX_BATCH_SIZE: u32 = 8;

/// A sequence idle this long is freed with its state. 5 s: a camera whose frames stop for longer
/// has lost its temporal context anyway (the shift assumes consecutive frames), and its next
/// frame should start a new sequence; shorter gaps (a dropped frame or two, a slow network) keep
/// their state.
pub const MAX_SEQUENCE_IDLE_US: u64 = 5_000_000;

/// Sequences the `oldest` strategy considers at once for a batch (several batches' worth).
pub const MAX_CANDIDATE_SEQUENCES: u32 = 64;

fn dims(shape: &[i64]) -> String {
    let items: Vec<String> = shape.iter().map(i64::to_string).collect();
    format!("[ {} ]", items.join(", "))
}

/// The `config.pbtxt` of model `name` with `labels_file` naming the class of each logit.
pub fn config_pbtxt(graph: &OnnxGraph, name: &str, labels_file: Option<&str>) -> String {
    let (input, input_shape) = &graph.input;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        "# Written by shiftlive export: the online step with implicit state."
    );
    let _ = writeln!(s, "name: \"{name}\"");
    let _ = writeln!(s, "backend: \"onnxruntime\"");
    let _ = writeln!(
        s,
        "# Up to {MAX_BATCH_SIZE} streams per call (see the README, Deploying)."
    );
    let _ = writeln!(s, "max_batch_size: {MAX_BATCH_SIZE}");
    let _ = writeln!(
        s,
        "input [\n  {{\n    name: \"{input}\"\n    data_type: TYPE_FP32"
    );
    let _ = writeln!(s, "    dims: {}\n  }}\n]", dims(input_shape));
    let _ = writeln!(
        s,
        "output [\n  {{\n    name: \"logits\"\n    data_type: TYPE_FP32"
    );
    let _ = writeln!(s, "    dims: [ {} ]", graph.classes);
    if let Some(labels) = labels_file {
        let _ = writeln!(s, "    label_filename: \"{labels}\"");
    }
    let _ = writeln!(s, "  }}\n]");
    let _ = writeln!(s, "sequence_batching {{");
    let _ = writeln!(
        s,
        "  # A sequence idle for 5 s is freed with its state: its next frame must start a new one."
    );
    let _ = writeln!(
        s,
        "  max_sequence_idle_microseconds: {MAX_SEQUENCE_IDLE_US}"
    );
    let _ = writeln!(
        s,
        "  # No control inputs: a sequence's first request gets the zero initial state, which is\n  \
         # a fresh stream; the client marks it with sequence_start and the last with sequence_end."
    );
    let _ = writeln!(s, "  oldest {{");
    let _ = writeln!(s, "    max_candidate_sequences: {MAX_CANDIDATE_SEQUENCES}");
    let _ = writeln!(s, "    preferred_batch_size: [ {MAX_BATCH_SIZE} ]");
    let _ = writeln!(s, "    max_queue_delay_microseconds: 1000");
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "  state [");
    for (i, state) in graph.states.iter().enumerate() {
        let sep = if i + 1 < graph.states.len() { "," } else { "" };
        let _ = writeln!(s, "    {{");
        let _ = writeln!(s, "      input_name: \"{}\"", state.input);
        let _ = writeln!(s, "      output_name: \"{}\"", state.output);
        let _ = writeln!(s, "      data_type: TYPE_FP32");
        let _ = writeln!(s, "      dims: {}", dims(&state.shape));
        let _ = writeln!(s, "      initial_state: {{");
        let _ = writeln!(s, "        data_type: TYPE_FP32");
        let _ = writeln!(s, "        dims: {}", dims(&state.shape));
        let _ = writeln!(s, "        zero_data: true");
        let _ = writeln!(s, "        name: \"zeros_{}\"", state.slot);
        let _ = writeln!(s, "      }}");
        let _ = writeln!(s, "    }}{sep}");
    }
    let _ = writeln!(s, "  ]");
    let _ = writeln!(s, "}}");
    s
}
