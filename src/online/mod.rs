//! The online engine: a causal (uni-directional TSM) network run frame by frame through its shift
//! cache, with temporal smoothing of the predictions; and ECO's online mode (a working memory of
//! frames refreshed every N frames).

mod eco;
mod input;
mod recognizer;
mod smooth;

pub use eco::{
    Averaging, EcoMemory, EcoOptions, EcoRunner, EcoUpdate, MemorySampling, MemoryStatus,
    memory_size,
};
pub use recognizer::{
    OnlineError, Precision, Recognizer, RecognizerOptions, SharedNet, StepSetup, StepTiming,
    WeakNet, cpu_has_native_bf16,
};
pub use smooth::{FrameStride, LabelState, Prediction, Smoother, SmoothingOptions};
