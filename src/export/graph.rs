//! The protobuf side of the ONNX writer: a graph under construction (nodes, initialisers, graph
//! inputs and outputs) and the shape without batch of every value, with the small node helpers
//! the emitter in `onnx.rs` is written with.

use tch::{Kind, Tensor};

use super::onnx::{BATCH, GraphKind, StateSpec};
use super::proto::{
    AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
};
use crate::model::{EmitError, Value};

pub(super) fn attr(name: &str, kind: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

pub(super) fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: values.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

pub(super) fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        i: Some(value),
        ..attr(name, AttributeType::Int)
    }
}

pub(super) fn tensor_type(dims: &[i64]) -> TypeProto {
    use tensor_shape_proto::{Dimension, dimension};
    let batch = std::iter::once(dimension::Value::DimParam(BATCH.into()));
    let dim = batch
        .chain(dims.iter().map(|&d| dimension::Value::DimValue(d)))
        .map(|value| Dimension {
            value: Some(value),
            ..Default::default()
        })
        .collect();
    TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(DataType::Float as i32),
            shape: Some(TensorShapeProto { dim }),
        })),
        ..Default::default()
    }
}

/// The emitter: nodes, initialisers and the shape (without batch) of every value.
pub(super) struct Builder {
    pub(super) kind: GraphKind,
    /// Frames per clip at the current point (halved by a temporal pool); 1 for streams.
    pub(super) frames: i64,
    pub(super) nodes: Vec<NodeProto>,
    pub(super) initializers: Vec<TensorProto>,
    pub(super) inputs: Vec<ValueInfoProto>,
    pub(super) outputs: Vec<ValueInfoProto>,
    pub(super) states: Vec<StateSpec>,
    /// Name and shape without batch of each value.
    pub(super) values: Vec<(String, Vec<i64>)>,
    pub(super) counter: usize,
}

impl Builder {
    pub(super) fn new(kind: GraphKind) -> Self {
        Self {
            kind,
            frames: match kind {
                GraphKind::Stream => 1,
                GraphKind::Clip { frames } => frames,
            },
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            states: Vec::new(),
            values: Vec::new(),
            counter: 0,
        }
    }

    pub(super) fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("{stem}_{}", self.counter)
    }

    pub(super) fn value(&mut self, name: String, shape: Vec<i64>) -> Value {
        self.values.push((name, shape));
        Value(self.values.len() - 1)
    }

    pub(super) fn name(&self, v: Value) -> String {
        self.values[v.0].0.clone()
    }

    pub(super) fn shape(&self, v: Value) -> Vec<i64> {
        self.values[v.0].1.clone()
    }

    pub(super) fn graph_input(&mut self, name: &str, dims: &[i64]) {
        self.inputs.push(ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(tensor_type(dims)),
            ..Default::default()
        });
    }

    pub(super) fn graph_output(&mut self, name: &str, dims: &[i64]) {
        self.outputs.push(ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(tensor_type(dims)),
            ..Default::default()
        });
    }

    /// Adds a node of one output, named after its op; returns the output's name.
    pub(super) fn node(
        &mut self,
        op: &str,
        inputs: &[String],
        attribute: Vec<AttributeProto>,
    ) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.node_to(op, inputs, attribute, out.clone());
        out
    }

    pub(super) fn node_to(
        &mut self,
        op: &str,
        inputs: &[String],
        attribute: Vec<AttributeProto>,
        out: String,
    ) {
        let name = self.fresh(op);
        self.nodes.push(NodeProto {
            input: inputs.to_vec(),
            output: vec![out],
            name: Some(name),
            op_type: Some(op.into()),
            attribute,
            ..Default::default()
        });
    }

    /// An fp32 initialiser holding `t` (any shape).
    pub(super) fn weight(&mut self, name: String, t: &Tensor) -> Result<String, EmitError> {
        let t = t
            .to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .contiguous();
        let data = Vec::<f32>::try_from(&t.flatten(0, -1))?;
        let raw = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims: t.size(),
            data_type: Some(DataType::Float as i32),
            name: Some(name.clone()),
            raw_data: Some(raw),
            ..Default::default()
        });
        Ok(name)
    }

    pub(super) fn scalar(&mut self, value: f32) -> String {
        let name = self.fresh("const");
        self.initializers.push(TensorProto {
            data_type: Some(DataType::Float as i32),
            name: Some(name.clone()),
            raw_data: Some(value.to_le_bytes().to_vec()),
            ..Default::default()
        });
        name
    }

    pub(super) fn int64s(&mut self, values: &[i64]) -> String {
        let name = self.fresh("const");
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(DataType::Int64 as i32),
            name: Some(name.clone()),
            raw_data: Some(values.iter().flat_map(|x| x.to_le_bytes()).collect()),
            ..Default::default()
        });
        name
    }

    /// `Reshape` to `to` (with the batch folded in as -1); `shape` is the result's without batch.
    pub(super) fn reshape(&mut self, x: Value, to: &[i64], shape: Vec<i64>) -> Value {
        let target = self.int64s(to);
        let x = self.name(x);
        let out = self.node("Reshape", &[x, target], Vec::new());
        self.value(out, shape)
    }

    /// `Slice` of `x` on `axes` (batch axis 0 counts), as a name.
    pub(super) fn slice(&mut self, x: &str, axes: &[i64], starts: &[i64], ends: &[i64]) -> String {
        let (starts, ends, axes) = (self.int64s(starts), self.int64s(ends), self.int64s(axes));
        self.node("Slice", &[x.to_string(), starts, ends, axes], Vec::new())
    }

    /// Zero padding of one frame along axis 1 of a 5-D `[N, T, C, H, W]` value, before or after.
    pub(super) fn pad_time(&mut self, x: String, before: bool) -> String {
        let mut pads = [0i64; 10];
        pads[if before { 1 } else { 6 }] = 1;
        let pads = self.int64s(&pads);
        self.node("Pad", &[x, pads], Vec::new())
    }

    pub(super) fn finish_output(&mut self, v: Value, name: &str) {
        let shape = self.shape(v);
        let x = self.name(v);
        self.node_to("Identity", &[x], Vec::new(), name.to_string());
        self.graph_output(name, &shape);
    }

    pub(super) fn unary(&mut self, op: &str, x: Value) -> Value {
        let shape = self.shape(x);
        let x = self.name(x);
        let out = self.node(op, &[x], Vec::new());
        self.value(out, shape)
    }
}
