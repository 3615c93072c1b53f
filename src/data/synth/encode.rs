//! Encoding rendered frames: MJPEG in AVI, and optionally the same JPEGs as rawframes.
//!
//! ```text
//! appsrc (RGB, stride-padded rows) ! jpegenc quality=Q ! avimux ! filesink
//!                                              \-> tee ! multifilesink img_%05d.jpg (index 1)
//! ```

use std::path::Path;

use super::SynthOptions;
use crate::data::DataError;

#[cfg(not(feature = "capture"))]
pub(super) fn encode(
    _: &SynthOptions,
    _: &[Vec<u8>],
    path: &Path,
    _: Option<&Path>,
) -> Result<(), DataError> {
    Err(DataError::NoCapture {
        path: path.to_path_buf(),
    })
}

#[cfg(feature = "capture")]
pub(super) fn encode(
    options: &SynthOptions,
    frames: &[Vec<u8>],
    path: &Path,
    rawframes: Option<&Path>,
) -> Result<(), DataError> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use gstreamer_app as gst_app;
    use gstreamer_video as gst_video;

    let fail = |why: String| DataError::Io {
        path: path.to_path_buf(),
        why: format!("encoding failed: {why}"),
    };
    gst::init().map_err(|e| fail(e.to_string()))?;
    let head = format!(
        "appsrc name=src format=time block=true ! jpegenc quality={}",
        options.quality
    );
    let line = if rawframes.is_some() {
        format!(
            "{head} ! tee name=t ! queue ! avimux ! filesink name=sink t. ! queue ! multifilesink name=frames index=1"
        )
    } else {
        format!("{head} ! avimux ! filesink name=sink")
    };
    let pipeline = gst::parse::launch(&line)
        .map_err(|e| fail(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| fail("not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .ok_or_else(|| fail("no filesink".into()))?;
    sink.set_property("location", path.to_string_lossy().as_ref());
    if let Some(dir) = rawframes {
        let frames_sink = pipeline
            .by_name("frames")
            .ok_or_else(|| fail("no multifilesink".into()))?;
        frames_sink.set_property(
            "location",
            dir.join("img_%05d.jpg").to_string_lossy().as_ref(),
        );
    }
    let src = pipeline
        .by_name("src")
        .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| fail("no appsrc".into()))?;
    let info = gst_video::VideoInfo::builder(
        gst_video::VideoFormat::Rgb,
        options.width as u32,
        options.height as u32,
    )
    .fps(gst::Fraction::new(options.fps as i32, 1))
    .build()
    .map_err(|e| fail(e.to_string()))?;
    let caps = info.to_caps().map_err(|e| fail(e.to_string()))?;
    src.set_caps(Some(&caps));
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(e.to_string()))?;
        let stride = info.stride()[0] as usize;
        let row = options.width * 3;
        let frame_ns = 1_000_000_000u64 / options.fps as u64;
        for (i, frame) in frames.iter().enumerate() {
            let mut buffer =
                gst::Buffer::with_size(info.size()).map_err(|e| fail(e.to_string()))?;
            {
                let buffer = buffer
                    .get_mut()
                    .ok_or_else(|| fail("buffer not writable".into()))?;
                buffer.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
                buffer.set_duration(gst::ClockTime::from_nseconds(frame_ns));
                let mut map = buffer.map_writable().map_err(|e| fail(e.to_string()))?;
                let data = map.as_mut_slice();
                for (y, src_row) in frame.chunks_exact(row).enumerate() {
                    data[y * stride..y * stride + row].copy_from_slice(src_row);
                }
            }
            src.push_buffer(buffer)
                .map_err(|e| fail(format!("pushing frame {i}: {e:?}")))?;
        }
        src.end_of_stream().map_err(|e| fail(format!("{e:?}")))?;
        let bus = pipeline.bus().ok_or_else(|| fail("no bus".into()))?;
        let msg = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(120),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(err)) => Err(fail(err.error().to_string())),
            _ => Err(fail("no end of stream within 120 s".into())),
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}
