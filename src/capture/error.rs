//! The capture errors. Each names the source (as `Source::describe` does) and says what is
//! wrong; GStreamer's own error, an I/O error or the frame-name problem is kept as the source, so
//! `{:#}` (and the pipeline's summary) prints the whole chain.

use std::path::PathBuf;

use crate::media::MediaError;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{name}: cannot open")]
    Open {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: is a directory, not a video file")]
    Directory { name: String },
    #[error("{name}: is empty (0 bytes)")]
    EmptyFile { name: String },
    #[error("{name}: is {what}, not a regular file (a stream is read with --uri)")]
    NotRegular { name: String, what: &'static str },
    #[error("{name}: no video stream in it (audio only?)")]
    NoVideo { name: String },
    #[error("{name}: not a media file GStreamer can read (its format is not recognised)")]
    NotMedia { name: String },
    #[error(
        "{name}: no decoder for its video format on this machine (GStreamer's libav or \
         plugins-bad/ugly packages decode most formats)"
    )]
    NoDecoder { name: String },
    #[error("{name}: unknown test pattern '{pattern}' (known: {known})")]
    Pattern {
        name: String,
        pattern: String,
        known: String,
    },
    /// A decode error after frames had come: those frames were processed.
    #[error("{name}: damaged: decoding failed after {frames} frames")]
    Damaged {
        name: String,
        frames: u64,
        /// Boxed: it keeps the error type (and the capture thread's result) small.
        #[source]
        source: Box<MediaError>,
    },
    /// The source ended well before the duration its container states.
    #[error(
        "{name}: damaged or truncated: ended after {frames} of the {expected} frames it states"
    )]
    Truncated {
        name: String,
        frames: u64,
        expected: u64,
    },
    #[error(
        "{name}: unsupported URI scheme '{scheme}' (supported: rtsp, rtsps, http, https, file)"
    )]
    UriScheme { name: String, scheme: String },
    #[error("{name}: not a URI (expected scheme://...)")]
    NotUri { name: String },
    #[error("{name}: --fps must be at least 1")]
    ZeroFps { name: String },
    /// A directory of frames that cannot be played in order.
    #[error("{name}")]
    Frames {
        name: String,
        #[source]
        source: crate::data::FrameFolderError,
    },
    #[error("{name}: mixed frame sizes: frame {frame} is {width}x{height}, the first was {}x{}", .first.0, .first.1)]
    MixedSizes {
        name: String,
        /// 1-based, as the file names count.
        frame: u64,
        width: usize,
        height: usize,
        first: (usize, usize),
    },
    #[error("{name}: ended without a single decodable video frame")]
    NoFrames { name: String },
    /// GStreamer failed: building, starting or reading the pipeline.
    #[error("{name}")]
    Media {
        name: String,
        #[source]
        source: MediaError,
    },
    #[error("camera {device}: {}", listing(.present))]
    NoCamera {
        device: String,
        present: Vec<PathBuf>,
    },
    #[error("camera {device}: not found; {}", listing(.present))]
    CameraNotFound {
        device: String,
        present: Vec<PathBuf>,
    },
    #[error("cannot list the camera devices in /dev")]
    Devices(#[source] std::io::Error),
}

impl CaptureError {
    /// Damaged input: frames came, then a decode error or an early end.
    pub fn is_damage(&self) -> bool {
        matches!(self, Self::Damaged { .. } | Self::Truncated { .. })
    }
}

/// The devices there are, for an error message.
fn listing(devices: &[PathBuf]) -> String {
    if devices.is_empty() {
        return "no /dev/video* devices exist on this machine".to_string();
    }
    let names: Vec<String> = devices.iter().map(|d| d.display().to_string()).collect();
    format!("devices present: {}", names.join(", "))
}
