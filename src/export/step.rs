//! The online step as a stateless tch function, `(frame, state_in_0, ...) -> (logits,
//! state_out_0, ...)`, run by the same emitter walk as the ONNX graph; TorchScript records it by
//! tracing. Inputs follow Triton's libtorch naming by position (`INPUT__0` is the frame,
//! `INPUT__{K+1}` the K-th state).
//!
//! The traced module returns a tuple `(logits, state_out_0, ...)`, as Python's tracer makes of a
//! function returning several tensors: Triton's libtorch backend reads it as `OUTPUT__0` (the
//! logits) and `OUTPUT__{K+1}` (the K-th new state). tch's tracer would register the outputs as
//! several graph returns, which TorchScript refuses to save ("Exportable methods must have a
//! single return value"); `trace.cpp` ends the trace with the tuple instead.

use std::collections::HashMap;
use tch::{CModule, Tensor};

use super::trace::return_tuple;

use crate::model::layers::ConvBn;
use crate::model::{ActionNet, EmitError, Emitter, ShiftDirection, ShiftPoint, Value};

/// The stateless step of a causal network: folded weights computed once, then any number of runs.
pub struct StatelessStep<'a> {
    net: &'a ActionNet,
    folded: HashMap<String, (Tensor, Tensor)>,
}

impl<'a> StatelessStep<'a> {
    pub fn new(net: &'a ActionNet) -> Result<Self, EmitError> {
        net.check_causal()
            .map_err(|e| EmitError::Unsupported(e.to_string()))?;
        Ok(Self {
            net,
            folded: HashMap::new(),
        })
    }

    /// `inputs`: the frame `[N, 3, S, S]` then one state per shifted block, in slot order;
    /// returns the logits then the new states in the same order.
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EmitError> {
        let Some((frame, states)) = inputs.split_first() else {
            return Err(EmitError::Unsupported("a step needs a frame".into()));
        };
        let (logits, run) = self.walk(frame, Some(states))?;
        if run.new_states.len() != states.len() {
            return Err(EmitError::Unsupported(format!(
                "{} state tensors given, the network has {}",
                states.len(),
                run.new_states.len()
            )));
        }
        let mut out = vec![logits];
        out.extend(run.new_states);
        Ok(out)
    }

    /// Zero states for `batch` streams at input side `side`: found by one run on a zero frame
    /// (the shapes come from the network).
    pub fn zero_states(&mut self, batch: i64, side: i64) -> Result<Vec<Tensor>, EmitError> {
        let frame = Tensor::zeros(
            [batch, 3, side, side],
            (tch::Kind::Float, self.net.device()),
        );
        let (_, run) = self.walk(&frame, None)?;
        Ok(run.new_states.iter().map(Tensor::zeros_like).collect())
    }

    /// One walk of the network; `states: None` takes zeros for every past.
    fn walk<'s>(
        &'s mut self,
        frame: &Tensor,
        states: Option<&'s [Tensor]>,
    ) -> Result<(Tensor, Run<'s>), EmitError> {
        let mut run = Run {
            folded: &mut self.folded,
            values: vec![frame.shallow_clone()],
            states,
            new_states: Vec::new(),
        };
        let logits = tch::no_grad(|| self.net.emit(&mut run, Value(0)))?;
        Ok((run.values[logits.0].shallow_clone(), run))
    }

    /// Traces the step on `batch` zero streams into a TorchScript module.
    pub fn trace(&mut self, batch: i64) -> Result<CModule, EmitError> {
        let side = self.net.config().input_size;
        let frame = Tensor::zeros(
            [batch, 3, side, side],
            (tch::Kind::Float, self.net.device()),
        );
        let mut inputs = vec![frame];
        inputs.extend(self.zero_states(batch, side)?);
        // Fills the folded weights outside the trace: they become constants, not ops.
        self.run(&inputs)?;
        let mut failure = None;
        // The closure registers the tuple itself and hands tch no outputs (see the module doc).
        let module = CModule::create_by_tracing("ShiftliveStep", "forward", &inputs, &mut |xs| {
            if let Err(e) = self.run(xs).and_then(|out| return_tuple(&out)) {
                failure = Some(e);
            }
            Vec::new()
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(module),
        }
    }
}

/// One run of the step.
struct Run<'s> {
    folded: &'s mut HashMap<String, (Tensor, Tensor)>,
    values: Vec<Tensor>,
    /// The past of each shifted block; `None`: zeros.
    states: Option<&'s [Tensor]>,
    new_states: Vec<Tensor>,
}

impl Run<'_> {
    fn push(&mut self, t: Tensor) -> Value {
        self.values.push(t);
        Value(self.values.len() - 1)
    }
}

impl Emitter for Run<'_> {
    fn conv(&mut self, conv: &ConvBn, x: Value) -> Result<Value, EmitError> {
        let s = conv.spec;
        let (w, b) = self
            .folded
            .entry(conv.name().to_string())
            .or_insert_with(|| conv.folded());
        let y = self.values[x.0].conv2d(
            &*w,
            Some(&*b),
            [s.stride, s.stride],
            [s.padding, s.padding],
            [1, 1],
            s.groups,
        );
        Ok(self.push(y))
    }

    fn relu(&mut self, x: Value) -> Result<Value, EmitError> {
        let y = self.values[x.0].relu();
        Ok(self.push(y))
    }

    fn relu6(&mut self, x: Value) -> Result<Value, EmitError> {
        let y = self.values[x.0].clamp(0.0, 6.0);
        Ok(self.push(y))
    }

    fn add(&mut self, a: Value, b: Value) -> Result<Value, EmitError> {
        let y = &self.values[a.0] + &self.values[b.0];
        Ok(self.push(y))
    }

    fn max_pool(&mut self, x: Value, k: i64, s: i64, p: i64) -> Result<Value, EmitError> {
        let y = self.values[x.0].max_pool2d([k, k], [s, s], [p, p], [1, 1], false);
        Ok(self.push(y))
    }

    fn avg_pool_2x2_ceil(&mut self, x: Value) -> Result<Value, EmitError> {
        let y = self.values[x.0].avg_pool2d([2, 2], [2, 2], [0, 0], true, false, None::<i64>);
        Ok(self.push(y))
    }

    fn global_avg_pool(&mut self, x: Value) -> Result<Value, EmitError> {
        let y = self.values[x.0].adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        Ok(self.push(y))
    }

    fn shift(&mut self, point: &ShiftPoint, x: Value) -> Result<Value, EmitError> {
        if point.shift.direction == ShiftDirection::Bi {
            return Err(EmitError::Unsupported(
                "a bidirectional shift needs the next frame: it has no stream step".into(),
            ));
        }
        if point.fold == 0 {
            return Ok(x);
        }
        let k = self.new_states.len();
        let x = self.values[x.0].shallow_clone();
        let (c, fold) = (x.size()[1], point.fold);
        let kept = x.narrow(1, 0, fold); // [N, fold, H, W]: the next frame's past
        let past = match self.states {
            Some(states) => states.get(k).map(Tensor::shallow_clone).ok_or_else(|| {
                EmitError::Unsupported(format!("only {} states given", states.len()))
            })?,
            None => kept.zeros_like(),
        };
        let y = Tensor::cat(&[past, x.narrow(1, fold, c - fold)], 1);
        self.new_states.push(kept);
        Ok(self.push(y))
    }

    fn temporal_pool(&mut self, _x: Value) -> Result<Value, EmitError> {
        Err(EmitError::Unsupported(
            "the temporal pool halves whole clips: it has no stream step".into(),
        ))
    }

    fn linear(
        &mut self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        x: Value,
    ) -> Result<Value, EmitError> {
        // Detached copies made on the first (untraced) run: constants of the trace.
        let (w, b) = self.folded.entry("<classifier>".into()).or_insert_with(|| {
            let float = |t: &Tensor| t.detach().to_kind(tch::Kind::Float);
            let b = bias.map_or_else(
                || Tensor::zeros([weight.size()[0]], (tch::Kind::Float, weight.device())),
                float,
            );
            (float(weight), b)
        });
        let y = self.values[x.0].linear(&*w, Some(&*b));
        Ok(self.push(y))
    }
}
