//! Decoding a whole file to RGB frames with GStreamer, as fast as it decodes:
//!
//! ```text
//! filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink sync=false
//! ```
//!
//! The bus is read with `crate::media` (the one bus reader and stall timeout, shared with the
//! live sources): once the appsink reports its end, an error posted before the pipeline's EOS
//! message makes the file fail; nothing is waited for otherwise (a wait per file would cost that
//! much per video and per JPEG).
//!
//! A file cut short inside its header fails; one cut between frames (an AVI whose index is
//! gone) decodes to the frames that are there, as avidemux recovers them: a shorter video.

use std::path::Path;
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::DataError;
use super::decode::Image;
use crate::media::{self, MediaError};

/// What is checked before a file is handed to GStreamer: it is there, not a folder, not empty.
pub(crate) fn check_file(path: &Path, what: &str) -> Result<(), DataError> {
    if !path.exists() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            what: what.to_string(),
        });
    }
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.is_dir() {
        return Err(DataError::decode(path, "is a directory, not a file"));
    }
    if meta.len() == 0 {
        return Err(DataError::decode(path, "is empty (0 bytes)"));
    }
    Ok(())
}

/// Every frame of the file at `path` (a video, or an image as one frame), packed RGB.
pub(crate) fn decode_file(path: &Path) -> Result<Vec<Image>, DataError> {
    // A JPEG goes straight to jpegdec: through decodebin's type finding a small frame took
    // 5.9 ms, directly 1.8 ms (a whole 12-frame MJPEG video decodes in about 3 ms).
    let is_jpeg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"));
    let decoder = if is_jpeg { "jpegdec" } else { "decodebin" };
    let line = format!(
        "filesrc name=src ! {decoder} ! videoconvert ! video/x-raw,format=RGB ! \
         appsink name=sink sync=false max-buffers=8 enable-last-sample=false"
    );
    let pipeline = media::launch(&line).map_err(|e| failed(path, e))?;
    let result = run(&pipeline, path);
    let _ = pipeline.set_state(gst::State::Null);
    let frames = result.map_err(|e| failed(path, e))?;
    if frames.is_empty() {
        return Err(DataError::decode(
            path,
            "ended without a single decodable frame",
        ));
    }
    Ok(frames)
}

pub(crate) fn failed(path: &Path, source: MediaError) -> DataError {
    DataError::Media {
        path: path.to_path_buf(),
        source,
    }
}

fn run(pipeline: &gst::Pipeline, path: &Path) -> Result<Vec<Image>, MediaError> {
    media::element(pipeline, "src")?.set_property("location", path.to_string_lossy().as_ref());
    let sink = media::appsink(pipeline, "sink")?;
    let bus = pipeline.bus().ok_or(MediaError::NoElement("bus"))?;
    media::set_state(pipeline, gst::State::Playing)?;
    let mut frames = Vec::new();
    let mut eos = false;
    let mut last = Instant::now();
    loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            last = Instant::now();
            let rgb = media::rgb_sample(&sample)?;
            frames.push(Image {
                data: rgb.data,
                width: rgb.width,
                height: rgb.height,
            });
            continue;
        }
        eos |= media::poll_bus(&bus)?;
        if sink.is_eos() {
            break;
        }
        if last.elapsed() > media::STALL {
            return Err(MediaError::Stalled);
        }
    }
    // The appsink has its end; the bus says whether an error came before the pipeline's EOS.
    if !eos {
        media::wait_for_eos(&bus, media::EOS_WAIT)?;
    }
    Ok(frames)
}
