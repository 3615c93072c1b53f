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

use super::CaptureError;
use crate::data::FrameFolder;
use crate::media::MediaError;

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
    /// PNG), played in the order of their numbers at `fps` (the rules: [`FrameFolder`]).
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
                if !meta.is_file() {
                    // A fifo or a device has no length to check and may never end.
                    return Err(CaptureError::NotRegular {
                        name,
                        what: crate::fsio::kind_of(&meta),
                    });
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
                FrameFolder::read(dir)
                    .and_then(|frames| frames.pattern())
                    .map(|_| ())
                    .map_err(|source| CaptureError::Frames { name, source })
            }
            Source::TestPattern { pattern, .. } => check_pattern(pattern, name),
            Source::Camera(_) => Ok(()),
        }
    }

    /// The `gst-launch` line: the source element is called `src`, the appsink `sink`.
    pub(super) fn launch_line(&self) -> String {
        let tail = "videoconvert name=convert ! video/x-raw,format=RGB ! appsink name=sink";
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
                let png = FrameFolder::read(dir).is_ok_and(|f| f.is_png());
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
            Source::File(path) => set_file(src, path).map_err(|err| CaptureError::Media {
                name: self.describe(),
                source: err,
            })?,
            Source::Uri(uri) => src.set_property("uri", uri.as_str()),
            Source::Camera(device) => {
                let device = super::resolve_camera(device)?;
                src.set_property("device", device.to_string_lossy().as_ref());
            }
            Source::TestPattern { pattern, .. } => {
                // check() refused unknown names: set_property_from_str panics on them.
                check_pattern(pattern, self.describe())?;
                src.set_property_from_str("pattern", pattern);
            }
            Source::Frames { dir, .. } => {
                let fail = |source| CaptureError::Frames {
                    name: self.describe(),
                    source,
                };
                let frames = FrameFolder::read(dir).map_err(fail)?;
                let first = frames.first();
                src.set_property("location", frames.pattern().map_err(fail)?.as_str());
                src.set_property("start-index", first as i32);
                src.set_property("stop-index", (first + frames.len() as u64 - 1) as i32);
            }
        }
        Ok(())
    }
}

/// Points a filesrc at `path` through a file URI built from the path's bytes, so a name that is
/// not UTF-8 is read as it is (the `location` property takes UTF-8 text only).
fn set_file(src: &gst::Element, path: &std::path::Path) -> Result<(), MediaError> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let uri = gst::glib::filename_to_uri(&absolute, None).map_err(MediaError::Uri)?;
    let handler = src
        .dynamic_cast_ref::<gst::URIHandler>()
        .ok_or(MediaError::NoElement("src"))?;
    handler.set_uri(&uri).map_err(MediaError::Uri)
}

/// The names videotestsrc knows for its `pattern` property.
fn pattern_names() -> Vec<String> {
    let Some(factory) = gst::ElementFactory::find("videotestsrc") else {
        return Vec::new();
    };
    let Ok(element) = factory.create().build() else {
        return Vec::new();
    };
    let Some(pspec) = element.find_property("pattern") else {
        return Vec::new();
    };
    let Some(class) = gst::glib::EnumClass::with_type(pspec.value_type()) else {
        return Vec::new();
    };
    class
        .values()
        .iter()
        .map(|v| v.nick().to_string())
        .collect()
}

/// Checks a test pattern's name (or number) against videotestsrc's list.
fn check_pattern(pattern: &str, name: String) -> Result<(), CaptureError> {
    gst::init().map_err(|e| CaptureError::Media {
        name: name.clone(),
        source: MediaError::Init(e),
    })?;
    let known = pattern_names();
    let by_number = pattern.parse::<usize>().is_ok_and(|n| n < known.len());
    if known.iter().any(|k| k == pattern) || by_number {
        return Ok(());
    }
    Err(CaptureError::Pattern {
        name,
        pattern: pattern.to_string(),
        known: known.join(", "),
    })
}
