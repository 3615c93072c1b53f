//! Which engine runs a recogniser's steps: libtorch (its own network and shift cache) or ONNX
//! Runtime (the same network exported as the online step, its state in the runtime's tensors).
//! Everything around the step (frame checks, preprocessing, the logits on the host, timing) is the
//! recogniser's and the same for both.

use tch::{Device, Tensor};

use super::{OnlineError, Precision, Recognizer};
use crate::backend::{Backend, BackendError, OrtOptions};
use crate::model::ModelError;

/// The engine a recogniser steps with.
#[derive(Debug, Default)]
pub(super) enum Engine {
    #[default]
    Libtorch,
    #[cfg(feature = "onnxruntime")]
    Onnxruntime(Box<crate::backend::OrtStep>),
}

impl Engine {
    fn backend(&self) -> Backend {
        match self {
            Self::Libtorch => Backend::Libtorch,
            #[cfg(feature = "onnxruntime")]
            Self::Onnxruntime(_) => Backend::Onnxruntime,
        }
    }

    pub(super) fn reset(&mut self) {
        match self {
            Self::Libtorch => {}
            #[cfg(feature = "onnxruntime")]
            Self::Onnxruntime(step) => step.reset(),
        }
    }

    /// Forgets the past of some streams (the libtorch cache's rows are the recogniser's).
    pub(super) fn reset_rows(&mut self, streams: &[usize]) {
        match self {
            Self::Libtorch => {}
            #[cfg(feature = "onnxruntime")]
            Self::Onnxruntime(step) => step.reset_rows(streams),
        }
        #[cfg(not(feature = "onnxruntime"))]
        let _ = streams;
    }
}

impl Recognizer {
    /// The backend that runs this recogniser's steps.
    pub fn backend(&self) -> Backend {
        self.engine.backend()
    }

    /// Runs the steps on `backend` from now on, every stream starting afresh; returns the backend
    /// chosen. `auto` tries [`Backend::AUTO_CPU_FP32`] in order on a CPU in fp32 (libtorch
    /// elsewhere) and falls back to libtorch with a warning when one cannot start; an explicit
    /// `onnxruntime` that cannot start is an error and leaves the recogniser on libtorch.
    pub fn set_backend(
        &mut self,
        backend: Backend,
        ort: &OrtOptions,
    ) -> Result<Backend, BackendError> {
        let order: &[Backend] = match backend {
            Backend::Auto if self.ort_supported().is_ok() => Backend::AUTO_CPU_FP32,
            Backend::Auto => &[Backend::Libtorch],
            Backend::Libtorch | Backend::Onnxruntime => std::slice::from_ref(&backend),
        };
        self.set_first_available(order, backend == Backend::Auto, ort)
    }

    /// The first of `order` that starts; with `fallback`, an engine that cannot start is a warning
    /// and libtorch the last resort.
    pub fn set_first_available(
        &mut self,
        order: &[Backend],
        fallback: bool,
        ort: &OrtOptions,
    ) -> Result<Backend, BackendError> {
        for &backend in order {
            match self.start(backend, ort) {
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
        self.engine = Engine::Libtorch;
        self.reset();
        Ok(Backend::Libtorch)
    }

    /// Why ONNX Runtime cannot run this recogniser, if it cannot.
    fn ort_supported(&self) -> Result<(), BackendError> {
        if self.options.device != Device::Cpu {
            return Err(BackendError::Unsupported(
                "runs on the CPU only (use --device cpu)".into(),
            ));
        }
        if self.options.precision != Precision::F32 {
            return Err(BackendError::Unsupported(
                "runs fp32 only (use --precision f32)".into(),
            ));
        }
        Ok(())
    }

    fn start(&self, backend: Backend, ort: &OrtOptions) -> Result<Engine, BackendError> {
        match backend {
            Backend::Auto | Backend::Libtorch => Ok(Engine::Libtorch),
            Backend::Onnxruntime => {
                self.ort_supported()?;
                self.start_ort(ort)
            }
        }
    }

    #[cfg(feature = "onnxruntime")]
    fn start_ort(&self, ort: &OrtOptions) -> Result<Engine, BackendError> {
        let prepared = self.net.lock();
        let step = crate::backend::OrtStep::new(&prepared.net, self.options.streams, ort)?;
        Ok(Engine::Onnxruntime(Box::new(step)))
    }

    #[cfg(not(feature = "onnxruntime"))]
    fn start_ort(&self, _ort: &OrtOptions) -> Result<Engine, BackendError> {
        Err(BackendError::NotBuilt)
    }

    /// One step of the engine on the batch in `self.input` (its host side for ONNX Runtime,
    /// `x` its tensor for libtorch); the logits land in `self.logits`, `[S * classes]`.
    pub(super) fn forward_host(&mut self, x: &Tensor) -> Result<(), OnlineError> {
        match &mut self.engine {
            Engine::Libtorch => {
                let logits = self.forward_libtorch(x)?;
                self.logits_to_host(&logits)
            }
            #[cfg(feature = "onnxruntime")]
            Engine::Onnxruntime(step) => {
                let n = x.numel();
                let frame = step.frame_mut();
                if frame.len() != n {
                    return Err(OnlineError::InputShape {
                        got: x.size(),
                        streams: self.options.streams,
                        side: self.config.input_size as usize,
                    });
                }
                x.to_device(Device::Cpu)
                    .contiguous()
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
            #[cfg(feature = "onnxruntime")]
            Engine::Onnxruntime(step) => {
                let n = x.numel();
                let mut frame = vec![0f32; n];
                x.to_device(Device::Cpu)
                    .contiguous()
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
            #[cfg(feature = "onnxruntime")]
            Engine::Onnxruntime(_) => {
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
