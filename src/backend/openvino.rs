//! The online step on OpenVINO, in-process: the network's ONNX step graph (`frame` and one
//! `state_in_K` per shifted block in, `logits` and `state_out_K` out; see `export::onnx`) built in
//! memory, read by OpenVINO's ONNX frontend from that buffer (weights in the initialisers, no file
//! written), reshaped from its symbolic batch to the S streams, compiled for the CPU and run by
//! one infer request reused for every frame.
//!
//! The CPU plugin is told everything that matters, not left to its defaults:
//! `INFERENCE_PRECISION_HINT` f32 (on CPUs with AVX512-BF16 or AMX its default is bf16!) or bf16
//! when asked, `INFERENCE_NUM_THREADS` libtorch's count, `PERFORMANCE_HINT` LATENCY.
//!
//! The state stays in OpenVINO tensors, two sets of `[S, fold, H, W]` used in turn: one frame
//! reads set A as its `state_in_K` and writes set B as its `state_out_K`, the next reads B and
//! writes A. The request is only told which tensor is which, no state is copied, and an input is
//! never the buffer the same run writes. A step of some streams only (the batched pipeline's
//! subsets) runs a second request, compiled on first use with a dynamic batch of 1 to S (one more
//! copy of the weights, not one per subset size): the streams' rows are gathered into its inputs
//! and its outputs put back into the current set.

use std::path::PathBuf;
use std::sync::Mutex;

use openvino::{
    CompiledModel, Core, DeviceType, Dimension, ElementType, InferRequest, InferenceError, Model,
    PartialShape, RwPropertyKey, Shape, Tensor,
};

use super::{Backend, BackendError, HostStep, LoadMessage, OpenvinoOptions, check_rows, zero_rows};
use crate::export::StateSpec;
use crate::model::ActionNet;

/// The library loaded in this process (the crate keeps one per process), once loaded.
static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);

fn ov(what: impl Into<String>) -> impl FnOnce(InferenceError) -> BackendError {
    let what = what.into();
    move |source| BackendError::Openvino { what, source }
}

fn unsupported(why: String) -> BackendError {
    BackendError::Unsupported {
        backend: Backend::Openvino,
        why,
    }
}

/// Loads `libopenvino_c.so` from the options' directory (once per process: a second, different
/// library is refused) and makes a core.
fn core(options: &OpenvinoOptions) -> Result<Core, BackendError> {
    let path = options.library();
    if !path.is_file() {
        return Err(BackendError::Missing {
            backend: Backend::Openvino,
            path,
        });
    }
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    match loaded.as_ref() {
        Some(first) if !super::same_file(first, &path) => {
            return Err(unsupported(format!(
                "OpenVINO is already loaded from {} in this process; cannot load {} too",
                first.display(),
                path.display()
            )));
        }
        Some(_) => {}
        None => {
            openvino_sys::library::load_from(path.clone()).map_err(|message| {
                BackendError::OpenvinoLoad {
                    path: path.clone(),
                    source: LoadMessage(message),
                }
            })?;
            *loaded = Some(path.clone());
        }
    }
    Core::new().map_err(|e| BackendError::OpenvinoLoad {
        path,
        source: LoadMessage(e.to_string()),
    })
}

/// A request compiled for a batch (fixed, or a range), with the model it runs.
struct Batch {
    request: InferRequest,
    // The request runs this compiled model; kept alive beside it, dropped after it.
    _compiled: CompiledModel,
}

/// The exported online step compiled by OpenVINO, with its state.
pub struct OvStep {
    /// Batch S: every stream at once.
    full: Batch,
    /// `[S, 3, side, side]`, bound to `full`'s input and filled in place.
    frame: Tensor,
    /// Batch 1 to S, compiled on first use by [`HostStep::run_rows`] (all S streams too when
    /// they come in another order than 0..S).
    rows: Option<Batch>,
    /// The two sets of state tensors `[S, fold, H, W]`; `states[current]` is the state now.
    states: [Vec<Tensor>; 2],
    current: usize,
    /// The next run starts from zero states (a new stream or a reset).
    fresh: bool,
    specs: Vec<StateSpec>,
    input_name: String,
    streams: usize,
    side: usize,
    classes: usize,
    /// Kept to compile the subset batches (reshaped each time).
    model: Model,
    // Dropped last: everything above was made by it.
    core: Core,
}

impl std::fmt::Debug for OvStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OvStep")
            .field("input", &self.input_name)
            .field("states", &self.specs.len())
            .field("streams", &self.streams)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

fn f32_tensor(shape: &[i64], what: &str) -> Result<Tensor, BackendError> {
    let shape = Shape::new(shape).map_err(ov(format!("the shape of {what}")))?;
    Tensor::new(ElementType::F32, &shape).map_err(ov(format!("allocating {what}")))
}

/// The step for a batch of `min..=max`: the model reshaped to it and compiled, one request.
fn compile(
    core: &mut Core,
    model: &mut Model,
    input_name: &str,
    side: usize,
    specs: &[StateSpec],
    (min, max): (usize, usize),
) -> Result<Batch, BackendError> {
    let n = format!("{min}..={max}");
    let shape = |rest: &[i64], what: &str| {
        let mut dims = vec![Dimension::new(min as i64, max as i64)];
        dims.extend(rest.iter().map(|&d| Dimension::new(d, d)));
        PartialShape::new(dims.len() as i64, &dims).map_err(ov(format!("the shape of {what}")))
    };
    let side = side as i64;
    let mut shapes = vec![(input_name.to_string(), shape(&[3, side, side], input_name)?)];
    for spec in specs {
        shapes.push((spec.input.clone(), shape(&spec.shape, &spec.input)?));
    }
    let named: Vec<(&str, &PartialShape)> =
        shapes.iter().map(|(name, s)| (name.as_str(), s)).collect();
    model
        .reshape(&named)
        .map_err(ov(format!("reshaping the step to a batch of {n}")))?;
    let mut compiled = core
        .compile_model(model, DeviceType::CPU)
        .map_err(ov(format!("compiling the step for a batch of {n}")))?;
    let request = compiled
        .create_infer_request()
        .map_err(ov("creating an infer request"))?;
    Ok(Batch {
        request,
        _compiled: compiled,
    })
}

impl OvStep {
    /// The step of `net` (its weights as they are now; BatchNorm folded by the export) for
    /// `streams` streams advanced together, in fp32 or (`bf16`) OpenVINO's bf16.
    pub fn new(
        net: &ActionNet,
        streams: usize,
        bf16: bool,
        options: &OpenvinoOptions,
    ) -> Result<Self, BackendError> {
        let mut core = core(options)?;
        let graph = super::stream_graph(net, Backend::Openvino)?;
        let precision = if bf16 { "bf16" } else { "f32" };
        let threads = options.threads.max(1).to_string();
        core.set_properties(
            &DeviceType::CPU,
            [
                (RwPropertyKey::HintInferencePrecision, precision),
                (RwPropertyKey::InferenceNumThreads, threads.as_str()),
                (RwPropertyKey::HintPerformanceMode, "LATENCY"),
            ],
        )
        .map_err(ov("setting the CPU properties"))?;
        let mut model = core
            .read_model_from_buffer(&graph.to_bytes(), None)
            .map_err(ov(format!(
                "reading the online step of '{}'",
                net.config().name
            )))?;
        let streams = streams.max(1);
        let side = graph.input.1[1] as usize;
        let (input_name, specs) = (graph.input.0.clone(), graph.states.clone());
        let full = compile(
            &mut core,
            &mut model,
            &input_name,
            side,
            &specs,
            (streams, streams),
        )?;
        let mut step = Self {
            full,
            frame: f32_tensor(&[streams as i64, 3, side as i64, side as i64], "the frame")?,
            rows: None,
            states: [Vec::new(), Vec::new()],
            current: 0,
            fresh: true,
            specs,
            input_name,
            streams,
            side,
            classes: graph.classes as usize,
            model,
            core,
        };
        for set in &mut step.states {
            for spec in &step.specs {
                let mut shape = vec![streams as i64];
                shape.extend(&spec.shape);
                set.push(f32_tensor(&shape, &spec.input)?);
            }
        }
        step.full
            .request
            .set_tensor(&step.input_name, &step.frame)
            .map_err(ov("binding the frame"))?;
        Ok(step)
    }

    /// Streams advanced together.
    pub fn streams(&self) -> usize {
        self.streams
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    fn start_fresh(&mut self) -> Result<(), BackendError> {
        if self.fresh {
            for state in &mut self.states[self.current] {
                state
                    .get_data_mut::<f32>()
                    .map_err(ov("zeroing the state"))?
                    .fill(0.0);
            }
            self.fresh = false;
        }
        Ok(())
    }

    fn logits(request: &InferRequest, logits: &mut Vec<f32>) -> Result<(), BackendError> {
        let out = request
            .get_tensor("logits")
            .map_err(|_| BackendError::Output {
                backend: Backend::Openvino,
                name: "logits".into(),
            })?;
        let out = out.get_data::<f32>().map_err(ov("reading the logits"))?;
        logits.clear();
        logits.extend_from_slice(out);
        Ok(())
    }
}

impl HostStep for OvStep {
    fn frame_mut(&mut self) -> Result<&mut [f32], BackendError> {
        self.frame
            .get_data_mut::<f32>()
            .map_err(ov("writing the frame"))
    }

    fn run(&mut self, logits: &mut Vec<f32>) -> Result<(), BackendError> {
        self.start_fresh()?;
        let [a, b] = &self.states;
        let (now, next) = if self.current == 0 { (a, b) } else { (b, a) };
        let request = &mut self.full.request;
        for ((spec, input), output) in self.specs.iter().zip(now).zip(next) {
            request
                .set_tensor(&spec.input, input)
                .map_err(ov(format!("binding {}", spec.input)))?;
            request
                .set_tensor(&spec.output, output)
                .map_err(ov(format!("binding {}", spec.output)))?;
        }
        request.infer().map_err(ov("running the online step"))?;
        Self::logits(request, logits)?;
        self.current = 1 - self.current;
        Ok(())
    }

    fn run_rows(
        &mut self,
        streams: &[usize],
        frame: Vec<f32>,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        let frame_row = 3 * self.side * self.side;
        check_rows(
            Backend::Openvino,
            streams,
            self.streams,
            frame.len(),
            frame_row,
        )?;
        if streams.iter().copied().eq(0..self.streams) {
            self.frame_mut()?.copy_from_slice(&frame);
            return self.run(logits);
        }
        self.start_fresh()?;
        let k = streams.len() as i64;
        let batch = match &mut self.rows {
            Some(batch) => batch,
            slot @ None => slot.insert(compile(
                &mut self.core,
                &mut self.model,
                &self.input_name,
                self.side,
                &self.specs,
                (1, self.streams),
            )?),
        };
        let request = &mut batch.request;
        let side = self.side as i64;
        let mut input = f32_tensor(&[k, 3, side, side], "the subset's frame")?;
        input
            .get_data_mut::<f32>()
            .map_err(ov("writing the subset's frame"))?
            .copy_from_slice(&frame);
        request
            .set_tensor(&self.input_name, &input)
            .map_err(ov("binding the subset's frame"))?;
        for (spec, state) in self.specs.iter().zip(&self.states[self.current]) {
            let all = state.get_data::<f32>().map_err(ov("reading the state"))?;
            let row = all.len() / self.streams;
            let mut shape = vec![k];
            shape.extend(&spec.shape);
            let mut part = f32_tensor(&shape, &spec.input)?;
            let rows = part
                .get_data_mut::<f32>()
                .map_err(ov(format!("writing {}", spec.input)))?;
            for (i, &s) in streams.iter().enumerate() {
                rows[i * row..(i + 1) * row].copy_from_slice(&all[s * row..(s + 1) * row]);
            }
            request
                .set_tensor(&spec.input, &part)
                .map_err(ov(format!("binding the subset's {}", spec.input)))?;
        }
        request.infer().map_err(ov("running the online step"))?;
        Self::logits(request, logits)?;
        for (spec, state) in self.specs.iter().zip(&mut self.states[self.current]) {
            let out = request
                .get_tensor(&spec.output)
                .map_err(ov(format!("the subset's {}", spec.output)))?;
            let out = out
                .get_data::<f32>()
                .map_err(ov(format!("reading {}", spec.output)))?;
            let all = state
                .get_data_mut::<f32>()
                .map_err(ov("writing the state"))?;
            let row = all.len() / self.streams;
            for (i, &s) in streams.iter().enumerate() {
                all[s * row..(s + 1) * row].copy_from_slice(&out[i * row..(i + 1) * row]);
            }
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.fresh = true;
    }

    /// Their rows of the current state become zeros.
    fn reset_rows(&mut self, streams: &[usize]) {
        if self.fresh {
            return;
        }
        for state in &mut self.states[self.current] {
            if let Ok(data) = state.get_data_mut::<f32>() {
                zero_rows(data, self.streams, streams);
            }
        }
    }
}
