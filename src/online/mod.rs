//! The online engine: a causal (uni-directional TSM) network run frame by frame through its shift
//! cache, with temporal smoothing of the predictions.

mod input;
mod recognizer;
mod smooth;

pub use recognizer::{
    OnlineError, Precision, Recognizer, RecognizerOptions, StepTiming, cpu_has_native_bf16,
};
pub use smooth::{FrameStride, Prediction, Smoother, SmoothingOptions};
