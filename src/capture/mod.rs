//! Video sources through GStreamer: a camera (v4l2src), a file or URI (decodebin / uridecodebin),
//! a test pattern (videotestsrc) or a directory of numbered frames, each ending in an appsink
//! that hands RGB frames, copied row by row honouring the stride, to the capture thread.
//!
//! `source` describes each kind of source and its pipeline; `running` is a started capture and
//! its pulls; `stated` reads the length an AVI header states; `devices` finds cameras.

mod devices;
mod error;
pub mod priority;
mod running;
mod source;
mod stated;

pub use devices::{camera_devices, resolve_camera};
pub use error::CaptureError;
pub use running::{Capture, CaptureEvent, Frame};
pub use source::Source;

/// Copies rows honouring the stride into a packed buffer (see [`crate::media::packed_rgb`]).
pub use crate::media::packed_rgb;
