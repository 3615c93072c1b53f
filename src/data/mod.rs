//! Training and evaluation data: UCF-101 (videos or pre-extracted frames) and generic list files,
//! TSN segment and dense-clip sampling, train augmentation and test crops, a threaded loader that
//! delivers deterministic batches in order, and the synthetic motion data set (`shiftlive synth`).
//!
//! Nothing here imports the window or `capture`; decoding uses GStreamer (`gst.rs`, `stream.rs`) and, without
//! the `capture` feature, returns [`DataError::NoCapture`], so the rest builds and tests without it.

mod augment;
mod clip;
mod dataset;
mod decode;
mod error;
mod frames;
#[cfg(feature = "capture")]
mod gst;
mod loader;
mod options;
mod sampling;
#[cfg(feature = "capture")]
mod stream;
pub mod synth;

pub use augment::{Axis, Flip, Mode, TestCrop, TrainChoice, View, render, test_views};
pub use dataset::{Dataset, Item, Layout, Subset, read_class_index};
pub use decode::{
    DecodeCache, FrameSampler, Image, Sampled, decode_image, decode_sampled, decode_video,
    list_frames,
};
pub use error::{DataError, Skipped, write_atomic, write_skipped};
pub use frames::{FrameFolder, FrameFolderError};
pub use loader::{Batch, Loader};
pub use options::LoaderOptions;
pub use sampling::Sampling;
