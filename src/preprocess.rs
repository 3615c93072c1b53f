//! Frame preprocessing: an RGB u8 frame of any size and row stride becomes the network input in
//! one pass: resize the shorter side (bilinear, half-pixel centres), centre crop, scale to [0, 1]
//! and normalise. The sampling plan is computed once per source size, so after the first frame of a
//! given size nothing is allocated. The same code serves training's test transform.

use serde::{Deserialize, Serialize};

/// A borrowed colour frame: `height` rows of `width` pixels, `channels` bytes each (3: RGB or BGR;
/// 4: RGBx or BGRx, the fourth byte ignored), rows `stride` bytes apart (GStreamer pads RGB rows to
/// 4 bytes).
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    pub stride: usize,
    pub channels: usize,
    /// Blue first (BGR / BGRx), as many capture and display stacks deliver it.
    pub bgr: bool,
}

impl<'a> FrameRef<'a> {
    /// A tightly packed RGB frame.
    pub fn rgb(data: &'a [u8], width: usize, height: usize) -> Self {
        Self {
            data,
            width,
            height,
            stride: width * 3,
            channels: 3,
            bgr: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame ({width}x{height})")]
    Empty { width: usize, height: usize },
    #[error("frame has {0} channels, expected 3 (RGB/BGR) or 4 (RGBx/BGRx)")]
    Channels(usize),
    #[error("row stride {stride} is shorter than a row of {width} pixels of {channels} bytes")]
    Stride {
        stride: usize,
        width: usize,
        channels: usize,
    },
    #[error(
        "frame data has {got} bytes, a {width}x{height} frame with stride {stride} needs {needed}"
    )]
    Length {
        got: usize,
        needed: usize,
        width: usize,
        height: usize,
        stride: usize,
    },
}

/// Resize, crop and normalisation settings; saved with a model so it runs on what it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Target of the shorter side before cropping.
    pub resize: usize,
    /// Side of the square centre crop (the model input).
    pub crop: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Transform {
    /// ImageNet statistics, shorter side to crop * 256 / 224 (256 for a 224 crop), as TSM's demo.
    pub fn imagenet(crop: usize) -> Self {
        Self {
            resize: crop * 256 / 224,
            crop,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}

/// Where one output row or column samples the source: two taps and the weight of the second.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w1: f32,
}

/// Bilinear taps of `out` samples, starting at `offset` in a resized axis of `resized` samples
/// over a source axis of `src` samples (half-pixel centres, as torch's align_corners=False).
fn taps(src: usize, resized: usize, offset: usize, out: usize) -> Vec<Tap> {
    let scale = src as f64 / resized as f64;
    (0..out)
        .map(|o| {
            let pos = ((o + offset) as f64 + 0.5) * scale - 0.5;
            let pos = pos.clamp(0.0, (src - 1) as f64);
            let i0 = pos.floor() as usize;
            let i1 = (i0 + 1).min(src - 1);
            Tap {
                i0,
                i1,
                w1: (pos - i0 as f64) as f32,
            }
        })
        .collect()
}

/// Converts frames into a reusable `[3, crop, crop]` float buffer (CHW, normalised).
#[derive(Debug)]
pub struct Preprocessor {
    transform: Transform,
    plan_for: (usize, usize),
    rows: Vec<Tap>,
    cols: Vec<Tap>,
    out: Vec<f32>,
}

impl Preprocessor {
    pub fn new(transform: Transform) -> Self {
        let n = 3 * transform.crop * transform.crop;
        Self {
            transform,
            plan_for: (0, 0),
            rows: Vec::new(),
            cols: Vec::new(),
            out: vec![0.0; n],
        }
    }

    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Resized size of a `width` x `height` frame: the shorter side becomes `resize`.
    pub fn resized_size(&self, width: usize, height: usize) -> (usize, usize) {
        let r = self.transform.resize.max(self.transform.crop);
        if width <= height {
            (r, (r as f64 * height as f64 / width as f64) as usize)
        } else {
            ((r as f64 * width as f64 / height as f64) as usize, r)
        }
    }

    fn plan(&mut self, width: usize, height: usize) {
        if self.plan_for == (width, height) {
            return;
        }
        let crop = self.transform.crop;
        let (rw, rh) = self.resized_size(width, height);
        // torchvision's CenterCrop rounds half offsets to even.
        let left = ((rw - crop) as f64 / 2.0).round_ties_even() as usize;
        let top = ((rh - crop) as f64 / 2.0).round_ties_even() as usize;
        self.cols = taps(width, rw, left, crop);
        self.rows = taps(height, rh, top, crop);
        self.plan_for = (width, height);
    }

    /// Checks a frame's geometry against its data.
    pub fn check(frame: &FrameRef) -> Result<(), FrameError> {
        if frame.width == 0 || frame.height == 0 {
            return Err(FrameError::Empty {
                width: frame.width,
                height: frame.height,
            });
        }
        if frame.channels != 3 && frame.channels != 4 {
            return Err(FrameError::Channels(frame.channels));
        }
        let row = frame.width * frame.channels;
        if frame.stride < row {
            return Err(FrameError::Stride {
                stride: frame.stride,
                width: frame.width,
                channels: frame.channels,
            });
        }
        let needed = frame.stride * (frame.height - 1) + row;
        if frame.data.len() < needed {
            return Err(FrameError::Length {
                got: frame.data.len(),
                needed,
                width: frame.width,
                height: frame.height,
                stride: frame.stride,
            });
        }
        Ok(())
    }

    /// Preprocesses one frame into the internal buffer and returns it (`[3, crop, crop]`, CHW).
    pub fn run(&mut self, frame: &FrameRef) -> Result<&[f32], FrameError> {
        Self::check(frame)?;
        self.plan(frame.width, frame.height);
        let crop = self.transform.crop;
        let plane = crop * crop;
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.transform.std[c]));
        let shift: [f32; 3] =
            std::array::from_fn(|c| self.transform.mean[c] / self.transform.std[c]);
        let (r_plane, rest) = self.out.split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        let bytes = frame.channels;
        // Byte offset of red, green and blue within a pixel.
        let at: [usize; 3] = if frame.bgr { [2, 1, 0] } else { [0, 1, 2] };
        for (y, row) in self.rows.iter().enumerate() {
            let top = &frame.data[row.i0 * frame.stride..];
            let bottom = &frame.data[row.i1 * frame.stride..];
            let wy = row.w1;
            for (x, col) in self.cols.iter().enumerate() {
                let (a, b) = (col.i0 * bytes, col.i1 * bytes);
                let wx = col.w1;
                let mut px = [0f32; 3];
                for (c, v) in px.iter_mut().enumerate() {
                    let (a, b) = (a + at[c], b + at[c]);
                    let t = top[a] as f32 * (1.0 - wx) + top[b] as f32 * wx;
                    let u = bottom[a] as f32 * (1.0 - wx) + bottom[b] as f32 * wx;
                    *v = (t * (1.0 - wy) + u * wy) * scale[c] - shift[c];
                }
                let i = y * crop + x;
                r_plane[i] = px[0];
                g_plane[i] = px[1];
                b_plane[i] = px[2];
            }
        }
        Ok(&self.out)
    }
}
