//! The online step on ONNX Runtime, in-process: the network's ONNX step graph (`frame` and one
//! `state_in_K` per shifted block in, `logits` and `state_out_K` out; see `export::onnx`) built in
//! memory and handed to a session, no file written.
//!
//! The state is kept in ONNX Runtime's own tensors: each frame's `state_out_K` values are taken
//! out of the run's outputs and passed, as they are, as the next frame's `state_in_K` (no copy).
//! The input frame lives in one tensor allocated once and overwritten per frame. IoBinding would
//! do the same with fewer allocations, but `ort`'s binding is not `Send`, and the recogniser moves
//! to its inference thread; ONNX Runtime's arena makes the per-run output allocations cheap.
//!
//! One ONNX Runtime environment per process (the runtime's rule), made on first use from the
//! library named by [`super::OrtOptions::library`].

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::memory::Allocator;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor};

use super::{Backend, BackendError, HostStep, OrtOptions, check_rows, zero_rows};
use crate::export::StateSpec;
use crate::model::ActionNet;

/// The process's environment and the library it was loaded from, once loaded.
static ENVIRONMENT: Mutex<Option<(Environment, PathBuf)>> = Mutex::new(None);

fn runtime(what: impl Into<String>) -> impl FnOnce(ort::Error) -> BackendError {
    let what = what.into();
    move |source| BackendError::Runtime { what, source }
}

/// Loads the library (once per process: a second, different library is refused) and returns the
/// environment.
fn environment(options: &OrtOptions) -> Result<Environment, BackendError> {
    let path = &options.library;
    if !path.is_file() {
        return Err(BackendError::Missing {
            backend: Backend::Onnxruntime,
            path: path.clone(),
        });
    }
    let mut env = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((env, loaded)) = env.as_ref() {
        if !super::same_file(loaded, path) {
            return Err(BackendError::Unsupported {
                backend: Backend::Onnxruntime,
                why: format!(
                    "ONNX Runtime is already loaded from {} in this process; cannot load {} too",
                    loaded.display(),
                    path.display()
                ),
            });
        }
        return Ok(env.clone());
    }
    let built = ort::init_from(path)
        .map_err(|source| BackendError::Load {
            path: path.clone(),
            source,
        })?
        .with_name("shiftlive")
        .build()
        .map_err(runtime("creating the environment"))?;
    *env = Some((built.clone(), path.clone()));
    Ok(built)
}

/// The exported online step in an ONNX Runtime session, with its state.
pub struct OrtStep {
    session: Session,
    input_name: String,
    /// `[S, 3, side, side]`, overwritten per frame.
    frame: Tensor<f32>,
    specs: Vec<StateSpec>,
    /// The state fed to the next run (the previous run's `state_out_K`), or zeros.
    states: Vec<DynValue>,
    /// The next run starts from zero states (a new stream or a reset).
    fresh: bool,
    streams: usize,
    /// The frame's side, pixels.
    side: usize,
    classes: usize,
}

impl std::fmt::Debug for OrtStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtStep")
            .field("input", &self.input_name)
            .field("states", &self.specs.len())
            .field("streams", &self.streams)
            .field("classes", &self.classes)
            .finish_non_exhaustive()
    }
}

impl OrtStep {
    /// The step of `net` (its weights as they are now; BatchNorm folded by the export) for
    /// `streams` streams advanced together.
    pub fn new(
        net: &ActionNet,
        streams: usize,
        options: &OrtOptions,
    ) -> Result<Self, BackendError> {
        let config = net.config();
        let env = environment(options)?;
        let graph = super::stream_graph(net, Backend::Onnxruntime)?;
        let setting = |e: ort::Error<_>| runtime("setting the session options")(e.into());
        let session = Session::builder(&env)
            .map_err(runtime("creating a session builder"))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(setting)?
            .with_intra_threads(options.threads)
            .map_err(setting)?
            .with_inter_threads(1)
            .map_err(setting)?
            // The pool's threads spin between the ops of a step (a parked thread woken for each of
            // the step's ~100 parallel ops costs more than the op on a VM's idle vCPU) and stop
            // at the end of each run: between frames the cores go to capture (see OrtOptions).
            .with_intra_op_spinning(true)
            .map_err(setting)?
            .with_config_entry(
                "session.force_spinning_stop",
                if options.spin { "0" } else { "1" },
            )
            .map_err(setting)?
            .commit_from_memory(&graph.to_bytes())
            .map_err(runtime(format!(
                "loading the online step of '{}'",
                config.name
            )))?;
        let streams = streams.max(1);
        let side = config.input_size as usize;
        let frame = Tensor::<f32>::new(&Allocator::default(), [streams, 3, side, side])
            .map_err(runtime("allocating the input frame"))?;
        let mut step = Self {
            session,
            input_name: graph.input.0.clone(),
            frame,
            specs: graph.states.clone(),
            states: Vec::new(),
            fresh: true,
            streams,
            side,
            classes: graph.classes as usize,
        };
        step.zero_states()?;
        Ok(step)
    }

    /// Streams advanced together.
    pub fn streams(&self) -> usize {
        self.streams
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    fn zero_states(&mut self) -> Result<(), BackendError> {
        let mut states = Vec::with_capacity(self.specs.len());
        for spec in &self.specs {
            let mut shape = vec![self.streams as i64];
            shape.extend(&spec.shape);
            let n = shape.iter().product::<i64>() as usize;
            let zeros = Tensor::from_array((shape, vec![0f32; n].into_boxed_slice()))
                .map_err(runtime(format!("allocating {}", spec.input)))?;
            states.push(zeros.into_dyn());
        }
        self.states = states;
        self.fresh = false;
        Ok(())
    }
}

fn output(name: &str) -> BackendError {
    BackendError::Output {
        backend: Backend::Onnxruntime,
        name: name.to_string(),
    }
}

impl HostStep for OrtStep {
    fn reset(&mut self) {
        self.fresh = true;
    }

    /// Their rows of every state become zeros.
    fn reset_rows(&mut self, streams: &[usize]) {
        if self.fresh {
            return;
        }
        for state in &mut self.states {
            if let Ok((_, data)) = state.try_extract_tensor_mut::<f32>() {
                zero_rows(data, self.streams, streams);
            }
        }
    }

    fn frame_mut(&mut self) -> Result<&mut [f32], BackendError> {
        Ok(self.frame.extract_tensor_mut().1)
    }

    /// Their rows of the state are gathered into a batch of k, advanced, and put back; the other
    /// streams' state is untouched.
    fn run_rows(
        &mut self,
        streams: &[usize],
        frame: Vec<f32>,
        logits: &mut Vec<f32>,
    ) -> Result<(), BackendError> {
        if self.fresh {
            self.zero_states()?;
        }
        let k = streams.len();
        let side = self.side as i64;
        let frame_row = 3 * self.side * self.side;
        check_rows(
            Backend::Onnxruntime,
            streams,
            self.streams,
            frame.len(),
            frame_row,
        )?;
        let frame = Tensor::from_array(([k as i64, 3, side, side], frame.into_boxed_slice()))
            .map_err(runtime("allocating the input frame"))?;
        let mut parts = Vec::with_capacity(self.specs.len());
        for (spec, state) in self.specs.iter().zip(&self.states) {
            let (_, data) = state
                .try_extract_tensor::<f32>()
                .map_err(runtime(format!("reading {}", spec.input)))?;
            let row = data.len() / self.streams;
            let mut part = Vec::with_capacity(k * row);
            for &s in streams {
                part.extend_from_slice(&data[s * row..(s + 1) * row]);
            }
            let mut shape = vec![k as i64];
            shape.extend(&spec.shape);
            let part = Tensor::from_array((shape, part.into_boxed_slice()))
                .map_err(runtime(format!("allocating {}", spec.input)))?;
            parts.push(part.into_dyn());
        }
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(1 + parts.len());
        inputs.push((Cow::Borrowed(&self.input_name), (&frame).into()));
        for (spec, part) in self.specs.iter().zip(&parts) {
            inputs.push((Cow::Borrowed(&spec.input), part.into()));
        }
        let outputs = self
            .session
            .run(inputs)
            .map_err(runtime("running the online step"))?;
        let (_, data) = outputs
            .get("logits")
            .ok_or_else(|| output("logits"))?
            .try_extract_tensor::<f32>()
            .map_err(runtime("reading the logits"))?;
        logits.clear();
        logits.extend_from_slice(data);
        for (spec, state) in self.specs.iter().zip(&mut self.states) {
            let (_, out) = outputs
                .get(&spec.output)
                .ok_or_else(|| output(&spec.output))?
                .try_extract_tensor::<f32>()
                .map_err(runtime(format!("reading {}", spec.output)))?;
            let (_, data) = state
                .try_extract_tensor_mut::<f32>()
                .map_err(runtime(format!("writing {}", spec.input)))?;
            let row = data.len() / self.streams;
            for (i, &s) in streams.iter().enumerate() {
                data[s * row..(s + 1) * row].copy_from_slice(&out[i * row..(i + 1) * row]);
            }
        }
        Ok(())
    }

    fn run(&mut self, logits: &mut Vec<f32>) -> Result<(), BackendError> {
        if self.fresh {
            self.zero_states()?;
        }
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(1 + self.states.len());
        inputs.push((Cow::Borrowed(&self.input_name), (&self.frame).into()));
        for (spec, state) in self.specs.iter().zip(&self.states) {
            inputs.push((Cow::Borrowed(&spec.input), state.into()));
        }
        let mut outputs = self
            .session
            .run(inputs)
            .map_err(runtime("running the online step"))?;
        let (_, data) = outputs
            .get("logits")
            .ok_or_else(|| output("logits"))?
            .try_extract_tensor::<f32>()
            .map_err(runtime("reading the logits"))?;
        logits.clear();
        logits.extend_from_slice(data);
        for (spec, state) in self.specs.iter().zip(&mut self.states) {
            // The state stays in ONNX Runtime's tensor: moved from this output to the next input.
            *state = outputs
                .remove(&spec.output)
                .ok_or_else(|| output(&spec.output))?;
        }
        Ok(())
    }
}
