//! ECO in the recogniser: each stream's working memory ([`EcoMemory`]) over the shared network,
//! on libtorch. A step pushes each stream's frame into its memory; every N frames a memory
//! answers. The logits a step gives for a stream are the log of its running average of class
//! probabilities (so a softmax gives the average back), or zeros (uniform) before its first
//! answer; [`Recognizer::memory_status`] says which, and whether this frame brought an answer.

use tch::{Kind, Tensor};

use super::{OnlineError, Recognizer};
use crate::model::{ModelConfig, ModelError};
use crate::online::eco::{EcoMemory, EcoOptions, MemoryStatus, memory_size};

/// One memory per stream when `config` is an ECO network, else none.
pub(super) fn memories(config: &ModelConfig, streams: usize) -> Option<Vec<EcoMemory>> {
    memory_size(config).ok()?;
    (0..streams)
        .map(|_| EcoMemory::new(config, EcoOptions::default()).ok())
        .collect()
}

impl Recognizer {
    /// ECO's working memory of `stream` after the last step (an answer every N frames); `None`
    /// for a frame-by-frame network, which answers every frame.
    pub fn memory_status(&self, stream: usize) -> Option<MemoryStatus> {
        match &self.engine {
            super::engine::Engine::Memory(memories) => memories.get(stream).map(EcoMemory::status),
            _ => None,
        }
    }

    /// Pushes row i of `x` (`[k, 3, side, side]` on the model's device) into the memory of
    /// `streams[i]`; each stream's logits (log of its average, zeros before the first answer)
    /// land in `self.logits`, `[k * classes]`.
    pub(super) fn forward_memory(
        &mut self,
        x: &Tensor,
        streams: &[usize],
    ) -> Result<(), OnlineError> {
        let super::engine::Engine::Memory(memories) = &mut self.engine else {
            return Err(OnlineError::Model(ModelError::Input {
                model: self.config.name.clone(),
                expected: "an ECO network".into(),
                got: "a frame-by-frame network".into(),
            }));
        };
        let classes = self.config.num_classes as usize;
        self.logits.clear();
        self.logits.reserve(streams.len() * classes);
        let prepared = self.net.lock();
        for (row, &stream) in streams.iter().enumerate() {
            let memory = &mut memories[stream];
            memory.push(&prepared.net, &x.narrow(0, row as i64, 1))?;
            let start = self.logits.len();
            self.logits.resize(start + classes, 0.0);
            if let Some(average) = memory.average() {
                // Probabilities exactly 0 would give -inf; the smallest normal fp32 stands in.
                let log = average
                    .to_kind(Kind::Float)
                    .clamp_min(f64::from(f32::MIN_POSITIVE))
                    .log()
                    .to_device(tch::Device::Cpu)
                    .contiguous();
                log.f_copy_data(&mut self.logits[start..], classes)
                    .map_err(ModelError::from)?;
            }
        }
        Ok(())
    }
}
