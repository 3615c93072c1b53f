//! Video sources through GStreamer: a camera (v4l2src), a file or URI (decodebin / uridecodebin),
//! or a test pattern (videotestsrc), each ending in an appsink that hands RGB frames, copied row by
//! row honouring the stride, to the capture thread.

mod devices;
mod source;

pub use devices::{camera_devices, resolve_camera};
pub use source::{
    Capture, CaptureError, CaptureEvent, Frame, FrameSequence, Source, frame_sequence, packed_rgb,
};
