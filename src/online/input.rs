//! The model's input buffer: host memory that the preprocessor writes into and that a tensor
//! views without copying, so a new frame costs no allocation. On CUDA the host side is pinned
//! memory-friendly: the view is copied to the device with one `copy_`.
#![allow(unsafe_code)]

use tch::{Device, Kind, Tensor};

/// `[S, 3, side, side]` floats owned here, seen by `host` as a tensor.
#[derive(Debug)]
pub struct InputBuffer {
    // Declared before `data`: dropped first, so the view never outlives the memory it points to.
    host: Tensor,
    /// On CUDA: (pinned host staging, device tensor).
    device_copy: Option<(Tensor, Tensor)>,
    data: Box<[f32]>,
    side: usize,
}

impl InputBuffer {
    pub fn new(streams: usize, side: usize, device: Device) -> Self {
        let mut data = vec![0f32; streams * 3 * side * side].into_boxed_slice();
        let (s, c, h, w) = (streams as i64, 3, side as i64, side as i64);
        // SAFETY: `data` is a heap allocation of exactly S*3*H*W f32 that is never resized or
        // moved (a boxed slice) and lives as long as `host` (field order above). Writes to it
        // happen only through `frame_mut`, which takes `&mut self`, so never during a forward
        // pass that reads `host`.
        let host = unsafe {
            Tensor::from_blob(
                data.as_mut_ptr().cast::<u8>(),
                &[s, c, h, w],
                &[c * h * w, h * w, w, 1],
                Kind::Float,
                Device::Cpu,
            )
        };
        let device_copy = device.is_cuda().then(|| {
            let pinned = Tensor::zeros([s, c, h, w], (Kind::Float, Device::Cpu)).pin_memory(device);
            (pinned, Tensor::zeros([s, c, h, w], (Kind::Float, device)))
        });
        Self {
            host,
            device_copy,
            data,
            side,
        }
    }

    /// The `[3, side, side]` slice of stream `s`, to be filled by the preprocessor.
    pub fn frame_mut(&mut self, s: usize) -> &mut [f32] {
        let n = 3 * self.side * self.side;
        &mut self.data[s * n..(s + 1) * n]
    }

    /// The batch as a tensor on the model's device.
    pub fn tensor(&mut self) -> &Tensor {
        match &mut self.device_copy {
            Some((pinned, dev)) => {
                pinned.copy_(&self.host);
                dev.copy_(pinned);
                dev
            }
            None => &self.host,
        }
    }
}
