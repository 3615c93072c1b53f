//! Which engine runs a recogniser's steps: libtorch (its own network and shift cache) or a
//! runtime in-process, ONNX Runtime or OpenVINO (the same network exported as the online step, its
//! state in the runtime's tensors, driven through [`HostStep`]). Everything around the step (frame
//! checks, preprocessing, the logits on the host, timing) is the recogniser's and the same for all.

use tch::{Device, Kind, Tensor};

use super::{OnlineError, Precision, Recognizer, cpu_has_native_bf16};
use crate::backend::{Backend, BackendError, BackendOptions, HostStep};
use crate::model::ModelError;

/// The engine a recogniser steps with.
#[derive(Debug, Default)]
pub(super) enum Engine {
    #[default]
    Libtorch,
    /// A runtime's step, on the host.
    Host {
        backend: Backend,
        step: Box<dyn HostStep>,
    },
    /// ECO: each stream's working memory, on libtorch (see `memory`).
    Memory(Vec<crate::online::eco::EcoMemory>),
}

impl Engine {
    fn backend(&self) -> Backend {
        match self {
            Self::Libtorch | Self::Memory(_) => Backend::Libtorch,
            Self::Host { backend, .. } => *backend,
        }
    }

    pub(super) fn reset(&mut self) {
        match self {
            Self::Host { step, .. } => step.reset(),
            Self::Memory(memories) => memories.iter_mut().for_each(|m| m.reset()),
            Self::Libtorch => {}
        }
    }

    /// Forgets the past of some streams (the libtorch cache's rows are the recogniser's).
    pub(super) fn reset_rows(&mut self, streams: &[usize]) {
        match self {
            Self::Host { step, .. } => step.reset_rows(streams),
            Self::Memory(memories) => {
                for &s in streams {
                    if let Some(m) = memories.get_mut(s) {
                        m.reset();
                    }
                }
            }
            Self::Libtorch => {}
        }
    }
}

/// How a recogniser's step is prepared: what `bench` and the live pipeline both report, so a
/// figure can be matched to the set-up that made it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepSetup {
    pub model: String,
    pub backend: String,
    pub device: String,
    pub precision: String,
    pub fold_bn: bool,
    pub channels_last: bool,
    /// Intra-op threads (libtorch's count; the runtimes are given the same).
    pub threads: i32,
    pub streams: usize,
}

impl Recognizer {
    /// The prepared step: model, backend, device, precision, layout, threads, streams.
    pub fn setup(&self) -> StepSetup {
        let o = &self.options;
        StepSetup {
            model: self.config.name.clone(),
            backend: self.backend().name().to_string(),
            device: crate::device::device_name(o.device),
            precision: format!("{:?}", o.precision).to_lowercase(),
            fold_bn: o.fold_bn,
            channels_last: o.channels_last,
            threads: tch::get_num_threads(),
            streams: o.streams,
        }
    }

    /// The backend that runs this recogniser's steps.
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// Runs the steps on `backend` from now on, every stream starting afresh; returns the backend
    /// chosen. `auto` tries [`Backend::AUTO_CPU_FP32`] in order on a CPU in fp32,
    /// [`Backend::AUTO_CPU_BF16`] in bf16 on a CPU that computes it natively, libtorch elsewhere,
    /// and falls back to libtorch with a warning when one cannot start; an explicit runtime that
    /// cannot start is an error and leaves the recogniser on libtorch.
    pub fn set_backend(
        &mut self,
        backend: Backend,
        options: &BackendOptions,
    ) -> Result<Backend, BackendError> {
        let cpu = self.options.device == Device::Cpu;
        let memory = matches!(self.engine, Engine::Memory(_));
        let order: &[Backend] = match (backend, cpu, self.options.precision) {
            // ECO's working memory runs on libtorch only.
            (Backend::Auto, _, _) if memory => &[Backend::Libtorch],
            (Backend::Auto, true, Precision::F32) => Backend::AUTO_CPU_FP32,
            (Backend::Auto, true, Precision::Bf16) if cpu_has_native_bf16() => {
                Backend::AUTO_CPU_BF16
            }
            (Backend::Auto, _, _) => &[Backend::Libtorch],
            (Backend::Libtorch | Backend::Onnxruntime | Backend::Openvino, _, _) => {
                std::slice::from_ref(&backend)
            }
        };
        self.set_first_available(order, backend == Backend::Auto, options)
    }

    /// The first of `order` that starts; with `fallback`, an engine that cannot start is a warning
    /// and libtorch the last resort.
    pub fn set_first_available(
        &mut self,
        order: &[Backend],
        fallback: bool,
        options: &BackendOptions,
    ) -> Result<Backend, BackendError> {
        for &backend in order {
            match self.start(backend, options) {
                Ok(engine) => {
                    self.engine = engine;
                    self.reset();
                    return Ok(backend);
                }
                Err(e) if fallback => tracing::warn!(
                    "backend {} unavailable, trying the next: {}",
                    backend.name(),
                    crate::errors::chain(&e)
                ),
                Err(e) => return Err(e),
            }
        }
        self.engine = self.libtorch_engine();
        self.reset();
        Ok(Backend::Libtorch)
    }

    /// libtorch's engine for this network: the shift cache, or ECO's memories.
    pub(super) fn libtorch_engine(&self) -> Engine {
        match super::memory::memories(&self.config, self.options.streams) {
            Some(memories) => Engine::Memory(memories),
            None => Engine::Libtorch,
        }
    }

    /// Why a runtime cannot run this recogniser, if it cannot: both run on the CPU, ONNX Runtime
    /// in fp32, OpenVINO in fp32 or, where the CPU computes it natively, bf16.
    fn runtime_supported(&self, backend: Backend) -> Result<(), BackendError> {
        let unsupported = |why: &str| {
            Err(BackendError::Unsupported {
                backend,
                why: why.into(),
            })
        };
        if matches!(self.engine, Engine::Memory(_)) {
            return unsupported(
                "does not run ECO (its working memory of 3D clips runs on libtorch: use --backend libtorch)",
            );
        }
        if self.options.device != Device::Cpu {
            return unsupported("runs on the CPU only (use --device cpu)");
        }
        match (backend, self.options.precision) {
            (_, Precision::F32) => Ok(()),
            (Backend::Openvino, Precision::Bf16) if cpu_has_native_bf16() => Ok(()),
            (Backend::Openvino, Precision::Bf16) => unsupported(
                "bf16 needs a CPU with AVX512-BF16 or AMX, and this one has neither (use --precision f32)",
            ),
            (Backend::Openvino, _) => {
                unsupported("runs fp32, or bf16 where the CPU has it (use --precision f32)")
            }
            _ => unsupported("runs fp32 only (use --precision f32)"),
        }
    }

    fn start(&self, backend: Backend, options: &BackendOptions) -> Result<Engine, BackendError> {
        match backend {
            Backend::Auto | Backend::Libtorch => Ok(self.libtorch_engine()),
            Backend::Onnxruntime | Backend::Openvino => {
                self.runtime_supported(backend)?;
                Ok(Engine::Host {
                    backend,
                    step: self.start_host(backend, options)?,
                })
            }
        }
    }

    /// The runtime's step on this recogniser's weights as they are now.
    #[cfg_attr(
        not(all(feature = "onnxruntime", feature = "openvino")),
        allow(unused_variables)
    )]
    fn start_host(
        &self,
        backend: Backend,
        options: &BackendOptions,
    ) -> Result<Box<dyn HostStep>, BackendError> {
        let streams = self.options.streams;
        match backend {
            #[cfg(feature = "onnxruntime")]
            Backend::Onnxruntime => {
                let prepared = self.net.lock();
                let step =
                    crate::backend::OrtStep::new(&prepared.net, streams, &options.onnxruntime)?;
                Ok(Box::new(step))
            }
            #[cfg(feature = "openvino")]
            Backend::Openvino => {
                let prepared = self.net.lock();
                let bf16 = self.options.precision == Precision::Bf16;
                let step =
                    crate::backend::OvStep::new(&prepared.net, streams, bf16, &options.openvino)?;
                Ok(Box::new(step))
            }
            _ => Err(BackendError::NotBuilt(backend)),
        }
    }

    /// One step of the engine on the batch in `self.input` (copied into the runtime's frame for a
    /// runtime, `x` its tensor for libtorch); the logits land in `self.logits`, `[S * classes]`.
    pub(super) fn forward_host(&mut self, x: &Tensor) -> Result<(), OnlineError> {
        match &mut self.engine {
            Engine::Libtorch => {
                let logits = self.forward_libtorch(x)?;
                self.logits_to_host(&logits)
            }
            Engine::Memory(_) => {
                let all: Vec<usize> = (0..self.options.streams).collect();
                self.forward_memory(x, &all)
            }
            Engine::Host { step, .. } => {
                let n = x.numel();
                let frame = step.frame_mut()?;
                if frame.len() != n {
                    return Err(OnlineError::InputShape {
                        got: x.size(),
                        streams: self.options.streams,
                        side: self.config.input_size as usize,
                    });
                }
                host_f32(x)
                    .f_copy_data(frame, n)
                    .map_err(ModelError::from)?;
                Ok(step.run(&mut self.logits)?)
            }
        }
    }

    /// One step for some streams only: `x` is `[k, 3, side, side]` on the model's device, row i
    /// the frame of `streams[i]` (distinct, each < S); only those streams' state advances. The
    /// logits, `[k * classes]`, land in `self.logits`.
    pub(super) fn forward_rows(
        &mut self,
        x: &Tensor,
        streams: &[usize],
    ) -> Result<(), OnlineError> {
        match &mut self.engine {
            Engine::Libtorch => {
                let total = self.options.streams as i64;
                let index: Vec<i64> = streams.iter().map(|&s| s as i64).collect();
                let rows = Tensor::from_slice(&index).to_device(self.options.device);
                let mut part = self.cache.select_rows(&rows).map_err(ModelError::from)?;
                let prepared = self.net.lock();
                let logits = tch::no_grad(|| prepared.net.forward_stream(x, &mut part))?;
                drop(prepared);
                self.cache
                    .put_rows(&rows, &part, total)
                    .map_err(ModelError::from)?;
                self.logits_to_host(&logits)
            }
            Engine::Memory(_) => self.forward_memory(x, streams),
            Engine::Host { step, .. } => {
                let n = x.numel();
                let mut frame = vec![0f32; n];
                host_f32(x)
                    .f_copy_data(&mut frame, n)
                    .map_err(ModelError::from)?;
                Ok(step.run_rows(streams, frame, &mut self.logits)?)
            }
        }
    }

    fn logits_to_host(&mut self, logits: &Tensor) -> Result<(), OnlineError> {
        let logits = logits.to_device(Device::Cpu).contiguous();
        let n = logits.numel();
        self.logits.resize(n, 0.0);
        logits
            .f_copy_data(&mut self.logits, n)
            .map_err(ModelError::from)?;
        Ok(())
    }

    /// Logits `[S, classes]` of one batch `x` on the model's device.
    pub(super) fn forward_tensor(&mut self, x: &Tensor) -> Result<Tensor, OnlineError> {
        match self.engine {
            Engine::Libtorch => self.forward_libtorch(x),
            Engine::Host { .. } | Engine::Memory(_) => {
                self.forward_host(x)?;
                let streams = self.options.streams as i64;
                Ok(Tensor::from_slice(&self.logits)
                    .view([streams, -1])
                    .to_device(self.options.device))
            }
        }
    }

    fn forward_libtorch(&mut self, x: &Tensor) -> Result<Tensor, OnlineError> {
        let prepared = self.net.lock();
        Ok(tch::no_grad(|| {
            prepared.net.forward_stream(x, &mut self.cache)
        })?)
    }
}

/// `x` as contiguous fp32 on the host, as the runtimes take their frames (a bf16 recogniser's
/// input too: OpenVINO's bf16 is its own, inside the step).
fn host_f32(x: &Tensor) -> Tensor {
    x.to_device(Device::Cpu).to_kind(Kind::Float).contiguous()
}
