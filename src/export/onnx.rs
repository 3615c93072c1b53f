//! The ONNX graph of a network, written by shiftlive from its own module tree: an [`Emitter`]
//! that turns each op of [`ActionNet::emit`] into ONNX nodes (opset 17), the weights into
//! initialisers (BatchNorm folded, fp32) and the temporal shift into explicit `Slice`/`Concat`
//! with fixed shapes, so no runtime has to guess what a traced in-place copy meant.
//!
//! Two graphs:
//! - the online step (`Stream`): `frame` `[N, 3, S, S]` and one `state_in_K` `[N, fold, H, W]` per
//!   shifted block in, `logits` `[N, classes]` and the matching `state_out_K` (the block input's
//!   first `fold` channels, which the next frame needs) out; zero states are a fresh stream;
//! - a clip model (`Clip`): `frames` `[N, T, 3, S, S]` in, the consensus `logits` `[N, classes]`
//!   out, with the shift (bi- or uni-directional) and the temporal pool along T inside.
//!
//! N is symbolic everywhere (several streams or clips in one call).

use prost::Message;
use tch::Tensor;

use super::graph::{Builder, int, ints};
use super::proto::{GraphProto, ModelProto, OperatorSetIdProto};
use crate::model::layers::ConvBn;
use crate::model::{ActionNet, EmitError, Emitter, ShiftDirection, ShiftPoint, Value};

/// The opset the graphs are written for (ReduceMean still takes `axes` as an attribute there).
pub const OPSET: i64 = 17;
/// IR version 8 is the one that goes with opset 17.
const IR_VERSION: i64 = 8;
/// Name of the symbolic batch dimension.
pub const BATCH: &str = "N";

/// Which graph to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphKind {
    /// One frame per stream, the shift cache as explicit state tensors.
    Stream,
    /// Whole clips of `frames` frames, no state.
    Clip { frames: i64 },
}

/// One state tensor pair of the online step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSpec {
    /// Slot of the shift cache (the K of the names).
    pub slot: usize,
    pub input: String,
    pub output: String,
    /// Shape without the batch dimension: `[fold, H, W]`.
    pub shape: Vec<i64>,
}

/// A written graph and what a consumer needs to drive it.
#[derive(Debug)]
pub struct OnnxGraph {
    pub model: ModelProto,
    pub states: Vec<StateSpec>,
    /// Name and shape without batch of the input (`frame` or `frames`).
    pub input: (String, Vec<i64>),
    pub classes: i64,
}

impl OnnxGraph {
    /// The serialised model (protobuf wire format).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.model.encode_to_vec()
    }
}

/// Builds the ONNX graph of `net` (its weights as they are now) for `kind`.
pub fn build(net: &ActionNet, kind: GraphKind, name: &str) -> Result<OnnxGraph, EmitError> {
    let side = net.config().input_size;
    let mut g = Builder::new(kind);
    let frame = match kind {
        GraphKind::Stream => {
            g.graph_input("frame", &[3, side, side]);
            g.value("frame".into(), vec![3, side, side])
        }
        GraphKind::Clip { frames } => {
            g.graph_input("frames", &[frames, 3, side, side]);
            let clip = g.value("frames".into(), vec![frames, 3, side, side]);
            // [N, T, 3, S, S] -> [N*T, 3, S, S]
            g.reshape(clip, &[-1, 3, side, side], vec![3, side, side])
        }
    };
    let logits = net.emit(&mut g, frame)?; // [N*T', classes]
    let classes = g.shape(logits)[0];
    let out = match kind {
        GraphKind::Stream => logits,
        GraphKind::Clip { .. } => {
            // Segment consensus: the mean of the per-frame logits over the clip.
            let t = g.frames;
            let per_clip = g.reshape(logits, &[-1, t, classes], vec![t, classes]);
            let per_clip = g.name(per_clip);
            let mean = g.node(
                "ReduceMean",
                &[per_clip],
                vec![ints("axes", &[1]), int("keepdims", 0)],
            );
            g.value(mean, vec![classes])
        }
    };
    g.finish_output(out, "logits");
    for state in g.states.clone() {
        g.graph_output(&state.output, &state.shape);
    }
    let input = match kind {
        GraphKind::Stream => ("frame".to_string(), vec![3, side, side]),
        GraphKind::Clip { frames } => ("frames".to_string(), vec![frames, 3, side, side]),
    };
    let Builder {
        nodes,
        initializers,
        inputs,
        outputs,
        states,
        ..
    } = g;
    let graph = GraphProto {
        node: nodes,
        name: Some(name.to_string()),
        initializer: initializers,
        input: inputs,
        output: outputs,
        doc_string: Some(format!(
            "shiftlive {} of '{name}': BatchNorm folded, the temporal shift as Slice/Concat",
            match kind {
                GraphKind::Stream => "online step",
                GraphKind::Clip { .. } => "clip model",
            }
        )),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("shiftlive".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        ..Default::default()
    };
    Ok(OnnxGraph {
        model,
        states,
        input,
        classes,
    })
}

impl Builder {
    /// The stream shift: the cached past in, this frame's first `fold` channels out as state.
    fn shift_stream(&mut self, point: &ShiftPoint, x: Value) -> Result<Value, EmitError> {
        if point.shift.direction == ShiftDirection::Bi {
            return Err(EmitError::Unsupported(
                "a bidirectional shift needs the next frame: only a uni-directional (online) \
                 model runs as a stream step"
                    .into(),
            ));
        }
        let shape = self.shape(x);
        let (c, h, w, fold) = (shape[0], shape[1], shape[2], point.fold);
        let slot = point.shift.slot;
        let state = StateSpec {
            slot,
            input: format!("state_in_{slot}"),
            output: format!("state_out_{slot}"),
            shape: vec![fold, h, w],
        };
        self.graph_input(&state.input, &state.shape);
        let x = self.name(x);
        let kept = self.slice(&x, &[1], &[0], &[fold]);
        self.node_to("Identity", &[kept], Vec::new(), state.output.clone());
        let rest = self.slice(&x, &[1], &[fold], &[c]);
        let shifted = self.node("Concat", &[state.input.clone(), rest], vec![int("axis", 1)]);
        self.states.push(state);
        Ok(self.value(shifted, vec![c, h, w]))
    }

    /// The clip shift along T of `[N*T, C, H, W]`, as `model::shift` computes it.
    fn shift_clip(&mut self, point: &ShiftPoint, x: Value) -> Value {
        let shape = self.shape(x);
        let (c, h, w, fold, t) = (shape[0], shape[1], shape[2], point.fold, self.frames);
        let x5 = self.reshape(x, &[-1, t, c, h, w], vec![t, c, h, w]); // [N, T, C, H, W]
        let x5 = self.name(x5);
        let mut parts = Vec::new();
        let from_prev_channels = match point.shift.direction {
            ShiftDirection::Bi => {
                let next = self.slice(&x5, &[1, 2], &[1, 0], &[t, fold]);
                parts.push(self.pad_time(next, false));
                fold
            }
            ShiftDirection::Uni => 0,
        };
        let prev = self.slice(
            &x5,
            &[1, 2],
            &[0, from_prev_channels],
            &[t - 1, from_prev_channels + fold],
        );
        parts.push(self.pad_time(prev, true));
        let moved = from_prev_channels + fold;
        parts.push(self.slice(&x5, &[2], &[moved], &[c]));
        let cat = self.node("Concat", &parts, vec![int("axis", 2)]);
        let cat = self.value(cat, vec![t, c, h, w]);
        self.reshape(cat, &[-1, c, h, w], vec![c, h, w]) // [N*T, C, H, W]
    }
}

impl Emitter for Builder {
    fn conv(&mut self, conv: &ConvBn, x: Value) -> Result<Value, EmitError> {
        let (weight, bias) = conv.folded();
        let w = self.weight(format!("{}.weight", conv.name()), &weight)?;
        let b = self.weight(format!("{}.bias", conv.name()), &bias)?;
        let s = conv.spec;
        let shape = self.shape(x);
        let (oh, ow) = s.out_hw(shape[1], shape[2]);
        let x = self.name(x);
        let out = self.node(
            "Conv",
            &[x, w, b],
            vec![
                ints("kernel_shape", &[s.kernel, s.kernel]),
                ints("strides", &[s.stride, s.stride]),
                ints("pads", &[s.padding; 4]),
                ints("dilations", &[1, 1]),
                int("group", s.groups),
            ],
        );
        Ok(self.value(out, vec![s.out_ch, oh, ow]))
    }

    fn relu(&mut self, x: Value) -> Result<Value, EmitError> {
        Ok(self.unary("Relu", x))
    }

    fn relu6(&mut self, x: Value) -> Result<Value, EmitError> {
        let shape = self.shape(x);
        let (lo, hi) = (self.scalar(0.0), self.scalar(6.0));
        let x = self.name(x);
        let out = self.node("Clip", &[x, lo, hi], Vec::new());
        Ok(self.value(out, shape))
    }

    fn add(&mut self, a: Value, b: Value) -> Result<Value, EmitError> {
        let shape = self.shape(a);
        let (a, b) = (self.name(a), self.name(b));
        let out = self.node("Add", &[a, b], Vec::new());
        Ok(self.value(out, shape))
    }

    fn max_pool(
        &mut self,
        x: Value,
        kernel: i64,
        stride: i64,
        padding: i64,
    ) -> Result<Value, EmitError> {
        let shape = self.shape(x);
        let out_side = |side: i64| (side + 2 * padding - kernel) / stride + 1;
        let out_shape = vec![shape[0], out_side(shape[1]), out_side(shape[2])];
        let x = self.name(x);
        let out = self.node(
            "MaxPool",
            &[x],
            vec![
                ints("kernel_shape", &[kernel, kernel]),
                ints("strides", &[stride, stride]),
                ints("pads", &[padding; 4]),
            ],
        );
        Ok(self.value(out, out_shape))
    }

    fn avg_pool_2x2_ceil(&mut self, x: Value) -> Result<Value, EmitError> {
        let shape = self.shape(x);
        let out_shape = vec![shape[0], (shape[1] + 1) / 2, (shape[2] + 1) / 2];
        let x = self.name(x);
        let out = self.node(
            "AveragePool",
            &[x],
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
                int("count_include_pad", 0),
            ],
        );
        Ok(self.value(out, out_shape))
    }

    fn global_avg_pool(&mut self, x: Value) -> Result<Value, EmitError> {
        let c = self.shape(x)[0];
        let x = self.name(x);
        let pooled = self.node("GlobalAveragePool", &[x], Vec::new());
        let flat = self.node("Flatten", &[pooled], vec![int("axis", 1)]);
        Ok(self.value(flat, vec![c]))
    }

    fn shift(&mut self, point: &ShiftPoint, x: Value) -> Result<Value, EmitError> {
        if point.fold == 0 {
            return Ok(x);
        }
        match self.kind {
            GraphKind::Stream => self.shift_stream(point, x),
            GraphKind::Clip { .. } => Ok(self.shift_clip(point, x)),
        }
    }

    fn temporal_pool(&mut self, x: Value) -> Result<Value, EmitError> {
        if self.kind == GraphKind::Stream {
            return Err(EmitError::Unsupported(
                "the temporal pool halves whole clips: it has no stream step".into(),
            ));
        }
        let shape = self.shape(x);
        let (c, h, w, t) = (shape[0], shape[1], shape[2], self.frames);
        let x5 = self.reshape(x, &[-1, t, c, h, w], vec![t, c, h, w]);
        let x5 = self.name(x5);
        let nc = self.node("Transpose", &[x5], vec![ints("perm", &[0, 2, 1, 3, 4])]);
        let pooled = self.node(
            "MaxPool",
            &[nc],
            vec![
                ints("kernel_shape", &[3, 1, 1]),
                ints("strides", &[2, 1, 1]),
                ints("pads", &[1, 0, 0, 1, 0, 0]),
            ],
        );
        let back = self.node("Transpose", &[pooled], vec![ints("perm", &[0, 2, 1, 3, 4])]);
        self.frames = (t + 1) / 2;
        let back = self.value(back, vec![self.frames, c, h, w]);
        Ok(self.reshape(back, &[-1, c, h, w], vec![c, h, w]))
    }

    fn linear(
        &mut self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        x: Value,
    ) -> Result<Value, EmitError> {
        let out_features = weight.size()[0];
        let mut inputs = vec![self.name(x), self.weight("fc.weight".into(), weight)?];
        if let Some(bias) = bias {
            inputs.push(self.weight("fc.bias".into(), bias)?);
        }
        let out = self.node("Gemm", &inputs, vec![int("transB", 1)]);
        Ok(self.value(out, vec![out_features]))
    }
}
