//! One GStreamer pipeline per source, ending in an appsink:
//!
//! ```text
//! file:    filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink
//! uri:     uridecodebin ! videoconvert ! video/x-raw,format=RGB ! appsink
//! camera:  v4l2src ! videoconvert ! video/x-raw,format=RGB ! appsink
//! pattern: videotestsrc is-live=true ! video/x-raw,WxH@fps ! videoconvert ! RGB ! appsink
//! ```
//!
//! The appsink never drops (`drop=false`, two buffers): the capture thread pulls promptly and the
//! frame ring decides what is dropped, so every drop is counted. `sync=true` only when a file is
//! replayed in real time. Frames keep their native size: scaling happens in `preprocess`, which
//! measured 0.4 ms for 640x480 -> 224x224, and the window wants the full frame anyway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use crate::preprocess::FrameRef;

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

/// A directory of numbered frames, as GStreamer's multifilesrc reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSequence {
    /// printf pattern of the paths, e.g. `/data/v1/img_%05d.jpg`.
    pub pattern: String,
    pub first: u64,
    pub count: u64,
    pub png: bool,
}

/// Finds the numbered frames of `dir`: one prefix, one extension, numbers without gaps.
pub fn frame_sequence(dir: &Path) -> Result<FrameSequence, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read the directory: {e}"))?;
    let mut frames: Vec<(String, u64, usize, String)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some((stem, ext)) = name.rsplit_once('.') else {
            continue;
        };
        let ext_lower = ext.to_ascii_lowercase();
        if !matches!(ext_lower.as_str(), "jpg" | "jpeg" | "png") {
            continue;
        }
        let digits = stem.len() - stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(format!(
                "{name}: a frame name must end in its number (img_00001.jpg)"
            ));
        }
        let (prefix, number) = stem.split_at(stem.len() - digits);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("{name}: frame number out of range"))?;
        frames.push((prefix.to_string(), number, digits, ext.to_string()));
    }
    let Some(first) = frames.first().cloned() else {
        return Err("no frames (.jpg, .jpeg or .png files) in it".into());
    };
    if let Some(other) = frames
        .iter()
        .find(|f| f.0 != first.0 || f.2 != first.2 || f.3 != first.3)
    {
        return Err(format!(
            "mixed frame names: {}{:0w$}.{} and {}{:0v$}.{} (one prefix, width and extension expected)",
            first.0,
            first.1,
            first.3,
            other.0,
            other.1,
            other.3,
            w = first.2,
            v = other.2
        ));
    }
    frames.sort_by_key(|f| f.1);
    for pair in frames.windows(2) {
        if pair[1].1 != pair[0].1 + 1 {
            return Err(format!(
                "a gap in the frames: {p}{a:0w$}.{e} is followed by {p}{b:0w$}.{e}",
                p = pair[0].0,
                a = pair[0].1,
                b = pair[1].1,
                e = pair[0].3,
                w = pair[0].2
            ));
        }
    }
    let (prefix, start, width, ext) = &frames[0];
    Ok(FrameSequence {
        pattern: dir
            .join(format!("{prefix}%0{width}d.{ext}"))
            .to_string_lossy()
            .to_string(),
        first: *start,
        count: frames.len() as u64,
        png: ext.eq_ignore_ascii_case("png"),
    })
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CaptureError {
    #[error("camera {device}: {why}")]
    Camera { device: String, why: String },
    #[error("{name}: {why}")]
    Source { name: String, why: String },
    #[error("GStreamer: {0}")]
    Gst(String),
}

/// An owned RGB frame, rows packed (`stride == width * 3`).
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
    /// Index among the frames the source delivered, from 0.
    pub index: u64,
    pub pts_ms: Option<f64>,
    /// When the appsink handed it over.
    pub captured: Instant,
    /// First frame after a restart of the source: the past no longer applies.
    pub discontinuity: bool,
}

impl Frame {
    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        FrameRef::rgb(&self.data, self.width, self.height)
    }
}

/// Copies `height` rows of `width` RGB pixels, `stride` bytes apart, into a packed buffer.
pub fn packed_rgb(plane: &[u8], stride: usize, width: usize, height: usize) -> Vec<u8> {
    let row = width * 3;
    let mut data = Vec::with_capacity(row * height);
    for y in 0..height {
        data.extend_from_slice(&plane[y * stride..y * stride + row]);
    }
    data
}

/// What one pull produced.
#[derive(Debug)]
pub enum CaptureEvent {
    Frame(Frame),
    /// Nothing within the timeout (the caller checks its stop flag and pulls again).
    Pending,
    /// The source ended (end of file).
    Eos,
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

    fn fail(&self, why: impl Into<String>) -> CaptureError {
        CaptureError::Source {
            name: self.describe(),
            why: why.into(),
        }
    }

    /// Checks what can be checked before GStreamer starts.
    fn check(&self) -> Result<(), CaptureError> {
        match self {
            Source::File(path) => {
                let meta =
                    std::fs::metadata(path).map_err(|e| self.fail(format!("cannot open: {e}")))?;
                if meta.is_dir() {
                    return Err(self.fail("is a directory, not a video file"));
                }
                if meta.len() == 0 {
                    return Err(self.fail("is empty (0 bytes)"));
                }
                Ok(())
            }
            Source::Uri(uri) => {
                let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
                match scheme.as_deref() {
                    Some("rtsp" | "rtsps" | "rtspt" | "http" | "https" | "file") => {}
                    Some(other) => {
                        return Err(self.fail(format!(
                            "unsupported URI scheme '{other}' (supported: rtsp, rtsps, http, https, file)"
                        )));
                    }
                    None => return Err(self.fail("not a URI (expected scheme://...)")),
                }
                Ok(())
            }
            Source::Frames { dir, fps } => {
                if *fps == 0 {
                    return Err(self.fail("--fps must be at least 1"));
                }
                frame_sequence(dir)
                    .map(|_| ())
                    .map_err(|why| self.fail(why))
            }
            Source::Camera(_) | Source::TestPattern { .. } => Ok(()),
        }
    }

    fn launch_line(&self) -> String {
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
                // check() ran first; an error here is only a race with the directory changing.
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
}

/// A running pipeline. Dropping it stops GStreamer.
pub struct Capture {
    source: Source,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    next_index: u64,
    live: bool,
    /// When the last frame (or the start) happened: a non-live source quiet for longer than
    /// `STALL` has stalled (seen with qtdemux on truncated files: no frame, no EOS, no error).
    last_progress: Instant,
    /// The first frame's size: a frame directory must not change it.
    first_size: Option<(usize, usize)>,
}

const STALL: Duration = Duration::from_secs(5);

fn gst_err(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Gst(e.to_string())
}

impl Capture {
    /// Builds the pipeline and starts it. `realtime` paces a file to its clock.
    pub fn open(source: &Source, realtime: bool) -> Result<Self, CaptureError> {
        source.check()?;
        gst::init().map_err(gst_err)?;
        let element = gst::parse::launch(&source.launch_line()).map_err(gst_err)?;
        let pipeline = element
            .downcast::<gst::Pipeline>()
            .map_err(|_| gst_err("not a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .ok_or_else(|| gst_err("no source element"))?;
        match source {
            Source::File(path) => src.set_property("location", path.to_string_lossy().as_ref()),
            Source::Uri(uri) => src.set_property("uri", uri.as_str()),
            Source::Camera(device) => {
                let device = super::resolve_camera(device)?;
                src.set_property("device", device.to_string_lossy().as_ref());
            }
            Source::TestPattern { pattern, .. } => src.set_property_from_str("pattern", pattern),
            Source::Frames { dir, .. } => {
                let seq = frame_sequence(dir).map_err(|why| source.fail(why))?;
                src.set_property("location", seq.pattern.as_str());
                src.set_property("start-index", seq.first as i32);
                src.set_property("stop-index", (seq.first + seq.count - 1) as i32);
            }
        }
        let sink = pipeline
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| gst_err("no appsink"))?;
        sink.set_property("sync", realtime);
        sink.set_property("max-buffers", 2u32);
        sink.set_property("drop", false);
        sink.set_property("enable-last-sample", false);
        let mut capture = Self {
            source: source.clone(),
            pipeline,
            sink,
            next_index: 0,
            live: false,
            last_progress: Instant::now(),
            first_size: None,
        };
        // A live pipeline (camera, test pattern, RTSP) cannot preroll: PAUSED answers NoPreroll.
        let paused = capture.pipeline.set_state(gst::State::Paused);
        capture.live = matches!(paused, Ok(gst::StateChangeSuccess::NoPreroll));
        if capture.live {
            capture.sink.set_property("sync", false);
        }
        if paused.is_err() || capture.pipeline.set_state(gst::State::Playing).is_err() {
            // The reason is on the bus, not in the state-change error.
            return Err(capture
                .bus_error()
                .unwrap_or_else(|| source.fail("could not start the pipeline")));
        }
        Ok(capture)
    }

    /// True for sources that run on their own clock (as GStreamer reports it): frames are then
    /// dropped when the model falls behind, never waited for.
    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The first error message on the bus, if any, naming the source.
    fn bus_error(&self) -> Option<CaptureError> {
        self.bus_error_within(Duration::ZERO)
    }

    /// Waits up to `timeout` for an error message on the bus. Other messages are discarded
    /// (nothing else reads this bus). `pop()` in a loop: `timed_pop_filtered` with a zero timeout
    /// returned nothing here while an error was pending.
    fn bus_error_within(&self, timeout: Duration) -> Option<CaptureError> {
        let bus = self.pipeline.bus()?;
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(msg) = bus.pop() {
                if let gst::MessageView::Error(err) = msg.view() {
                    let mut why = err.error().to_string();
                    if let Some(debug) = err.debug() {
                        // The first line of the debug text names the failing element.
                        if let Some(line) = debug.lines().next() {
                            why.push_str(&format!(" ({})", line.trim()));
                        }
                    }
                    return Some(self.source.fail(why));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout` for the next frame.
    pub fn next(&mut self, timeout: Duration) -> Result<CaptureEvent, CaptureError> {
        let wait = gst::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        let Some(sample) = self.sink.try_pull_sample(wait) else {
            if let Some(err) = self.bus_error() {
                return Err(err);
            }
            if !self.sink.is_eos() {
                if !self.live && self.last_progress.elapsed() > STALL {
                    return Err(self.source.fail(format!(
                        "decoding stalled: no frame, end or error for {} s (a damaged or truncated file?)",
                        STALL.as_secs()
                    )));
                }
                return Ok(CaptureEvent::Pending);
            }
            // A demuxer that fails may send EOS downstream before its error reaches the bus.
            if let Some(err) = self.bus_error_within(Duration::from_millis(200)) {
                return Err(err);
            }
            if self.next_index == 0 {
                return Err(self
                    .source
                    .fail("ended without a single decodable video frame"));
            }
            return Ok(CaptureEvent::Eos);
        };
        let captured = Instant::now();
        self.last_progress = captured;
        let caps = sample
            .caps()
            .ok_or_else(|| self.source.fail("sample without caps"))?;
        let info =
            gst_video::VideoInfo::from_caps(caps).map_err(|e| self.source.fail(e.to_string()))?;
        let buffer = sample
            .buffer()
            .ok_or_else(|| self.source.fail("sample without buffer"))?;
        let pts_ms = buffer.pts().map(|t| t.nseconds() as f64 / 1e6);
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
            .map_err(|e| self.source.fail(format!("cannot map frame: {e}")))?;
        let (width, height) = (info.width() as usize, info.height() as usize);
        if let Source::Frames { .. } = &self.source {
            match self.first_size {
                None => self.first_size = Some((width, height)),
                Some((w, h)) if (w, h) != (width, height) => {
                    return Err(self.source.fail(format!(
                        "mixed frame sizes: frame {} is {width}x{height}, the first was {w}x{h}",
                        self.next_index + 1
                    )));
                }
                Some(_) => {}
            }
        }
        let stride = frame.plane_stride()[0] as usize;
        let plane = frame
            .plane_data(0)
            .map_err(|e| self.source.fail(e.to_string()))?;
        let data = packed_rgb(plane, stride, width, height);
        let index = self.next_index;
        self.next_index += 1;
        Ok(CaptureEvent::Frame(Frame {
            data,
            width,
            height,
            index,
            pts_ms,
            captured,
            discontinuity: false,
        }))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
