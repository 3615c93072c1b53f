//! Where frames come from, and the GStreamer pipeline each kind of source is read with:
//!
//! ```text
//! file:    filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink
//! uri:     uridecodebin ! videoconvert ! video/x-raw,format=RGB ! appsink
//! camera:  v4l2src ! videoconvert ! video/x-raw,format=RGB ! appsink
//! pattern: videotestsrc is-live=true ! video/x-raw,WxH@fps ! videoconvert ! RGB ! appsink
//! frames:  multifilesrc caps=image/jpeg|png ! jpegdec|pngdec ! videoconvert ! RGB ! appsink
//! ```
//!
//! What can be checked before GStreamer starts (a file that is missing or empty, a URI scheme
//! GStreamer cannot read, a frame directory with gaps) is checked here, with a clear error.

use std::path::PathBuf;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::{CaptureError, frame_sequence};

/// Where frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A V4L2 device path, or `auto` for the first one.
    Camera(String),
    File(PathBuf),
    Uri(String),
    TestPattern {
        pattern: String,
        width: u32,
        height: u32,
        fps: u32,
        /// End after this many frames, as a camera that is unplugged (the pipeline reopens it).
        frames: Option<u32>,
    },
    /// A directory of numbered frames (`img_00001.jpg`, ... as in the rawframes layout; JPEG or
    /// PNG), played in name order at `fps`.
    Frames {
        dir: PathBuf,
        fps: u32,
    },
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Camera(d) => format!("camera {d}"),
            Source::File(p) => format!("file {}", p.display()),
            Source::Uri(u) => format!("uri {u}"),
            Source::TestPattern {
                pattern,
                width,
                height,
                fps,
                ..
            } => {
                format!("test pattern '{pattern}' {width}x{height}@{fps}")
            }
            Source::Frames { dir, fps } => format!("frames {} at {fps} fps", dir.display()),
        }
    }

    /// Checks what can be checked before GStreamer starts.
    pub(super) fn check(&self) -> Result<(), CaptureError> {
        let name = self.describe();
        match self {
            Source::File(path) => {
                let meta = std::fs::metadata(path).map_err(|source| CaptureError::Open {
                    name: name.clone(),
                    source,
                })?;
                if meta.is_dir() {
                    return Err(CaptureError::Directory { name });
                }
                if meta.len() == 0 {
                    return Err(CaptureError::EmptyFile { name });
                }
                Ok(())
            }
            Source::Uri(uri) => {
                let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                match scheme.as_deref() {
                    Some("rtsp" | "rtsps" | "rtspt" | "http" | "https" | "file") => Ok(()),
                    Some(other) => Err(CaptureError::UriScheme {
                        name,
                        scheme: other.to_string(),
                    }),
                    None => Err(CaptureError::NotUri { name }),
                }
            }
            Source::Frames { dir, fps } => {
                if *fps == 0 {
                    return Err(CaptureError::ZeroFps { name });
                }
                frame_sequence(dir)
                    .map(|_| ())
                    .map_err(|source| CaptureError::Frames { name, source })
            }
            Source::Camera(_) | Source::TestPattern { .. } => Ok(()),
        }
    }

    /// The `gst-launch` line: the source element is called `src`, the appsink `sink`.
    pub(super) fn launch_line(&self) -> String {
        let tail = "videoconvert ! video/x-raw,format=RGB ! appsink name=sink";
        match self {
            Source::File(_) => format!("filesrc name=src ! decodebin ! {tail}"),
            Source::Uri(_) => format!("uridecodebin name=src ! {tail}"),
            Source::Camera(_) => format!("v4l2src name=src ! {tail}"),
            Source::TestPattern {
                width,
                height,
                fps,
                frames,
                ..
            } => {
                let limit = frames.map_or(String::new(), |n| format!(" num-buffers={n}"));
                format!(
                    "videotestsrc name=src is-live=true{limit} ! \
                     video/x-raw,width={width},height={height},framerate={fps}/1 ! {tail}"
                )
            }
            Source::Frames { dir, fps } => {
                // check() ran first; an error here is only a race with the directory changing,
                // and configure() reports it.
                let png = frame_sequence(dir).is_ok_and(|s| s.png);
                let (caps, decoder) = if png {
                    ("image/png", "pngdec")
                } else {
                    ("image/jpeg", "jpegdec")
                };
                format!("multifilesrc name=src caps={caps},framerate={fps}/1 ! {decoder} ! {tail}")
            }
        }
    }

    /// Points the source element at this source: the file, URI, device, pattern or frames.
    pub(super) fn configure(&self, src: &gst::Element) -> Result<(), CaptureError> {
        match self {
            Source::File(path) => src.set_property("location", path.to_string_lossy().as_ref()),
            Source::Uri(uri) => src.set_property("uri", uri.as_str()),
            Source::Camera(device) => {
                let device = super::resolve_camera(device)?;
                src.set_property("device", device.to_string_lossy().as_ref());
            }
            Source::TestPattern { pattern, .. } => src.set_property_from_str("pattern", pattern),
            Source::Frames { dir, .. } => {
                let seq = frame_sequence(dir).map_err(|source| CaptureError::Frames {
                    name: self.describe(),
                    source,
                })?;
                src.set_property("location", seq.pattern.as_str());
                src.set_property("start-index", seq.first as i32);
                src.set_property("stop-index", (seq.first + seq.count - 1) as i32);
            }
        }
        Ok(())
    }
}
