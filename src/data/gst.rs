//! Decoding a whole file to RGB frames with GStreamer, as fast as it decodes:
//!
//! ```text
//! filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink sync=false
//! ```
//!
//! `capture::Capture` serves live sources; for data loading it is not used because at the end of
//! a file it waits 200 ms for a late demuxer error, which would cost that much per video and per
//! JPEG. Here the bus is read in order once the appsink reports its end instead: an error posted
//! before the pipeline's EOS message makes the file fail; nothing is waited for otherwise.
//!
//! A file cut short inside its header fails; one cut between frames (an AVI whose index is
//! gone) decodes to the frames that are there, as avidemux recovers them: a shorter video.

use std::path::Path;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::DataError;
use super::decode::Image;

/// No frame, end or error for this long: the file is taken as damaged.
const STALL: Duration = Duration::from_secs(10);

fn bus_error(msg: &gst::Message) -> Option<String> {
    let gst::MessageView::Error(err) = msg.view() else {
        return None;
    };
    let mut why = err.error().to_string();
    if let Some(line) = err.debug().as_deref().and_then(|d| d.lines().next()) {
        why.push_str(&format!(" ({})", line.trim()));
    }
    Some(why)
}

/// Every frame of the file at `path` (a video, or an image as one frame), packed RGB.
pub(crate) fn decode_file(path: &Path) -> Result<Vec<Image>, DataError> {
    let fail = |why: String| DataError::decode(path, why);
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, e))?;
    if meta.is_dir() {
        return Err(fail("is a directory, not a file".into()));
    }
    if meta.len() == 0 {
        return Err(fail("is empty (0 bytes)".into()));
    }
    gst::init().map_err(|e| fail(e.to_string()))?;
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
    let pipeline = gst::parse::launch(&line)
        .map_err(|e| fail(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| fail("not a pipeline".into()))?;
    let result = run(&pipeline, path);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run(pipeline: &gst::Pipeline, path: &Path) -> Result<Vec<Image>, DataError> {
    let fail = |why: String| DataError::decode(path, why);
    let src = pipeline
        .by_name("src")
        .ok_or_else(|| fail("no filesrc".into()))?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| fail("no appsink".into()))?;
    let bus = pipeline.bus().ok_or_else(|| fail("no bus".into()))?;
    // Reads the bus in order (popping discards other message types, so EOS is kept track of).
    let mut eos = false;
    let pending_error = |eos: &mut bool| {
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            if let Some(why) = bus_error(&msg) {
                return Some(why);
            }
            *eos = true;
        }
        None
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        return Err(fail(
            pending_error(&mut eos).unwrap_or_else(|| "could not start decoding".into()),
        ));
    }
    let mut frames = Vec::new();
    let mut last = Instant::now();
    loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            last = Instant::now();
            frames.push(image(&sample).map_err(fail)?);
            continue;
        }
        if let Some(why) = pending_error(&mut eos) {
            return Err(fail(why));
        }
        if sink.is_eos() {
            break;
        }
        if last.elapsed() > STALL {
            return Err(fail(format!(
                "decoding stalled: no frame, end or error for {} s (damaged or truncated?)",
                STALL.as_secs()
            )));
        }
    }
    // The appsink has its end; the bus says whether an error came before the pipeline's EOS.
    if !eos {
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(2),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        if let Some(why) = msg.as_ref().and_then(bus_error) {
            return Err(fail(why));
        }
    }
    if frames.is_empty() {
        return Err(fail("ended without a single decodable frame".into()));
    }
    Ok(frames)
}

fn image(sample: &gst::Sample) -> Result<Image, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
    let buffer = sample.buffer().ok_or("sample without buffer")?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|e| format!("cannot map frame: {e}"))?;
    let (width, height) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let plane = frame.plane_data(0).map_err(|e| e.to_string())?;
    let row = width * 3;
    if height == 0 || plane.len() < stride * (height - 1) + row {
        return Err(format!("short frame buffer for {width}x{height}"));
    }
    let mut data = Vec::with_capacity(row * height);
    for y in 0..height {
        data.extend_from_slice(&plane[y * stride..y * stride + row]);
    }
    Ok(Image {
        data,
        width,
        height,
    })
}
