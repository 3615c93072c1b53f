//! Encoding rendered frames: MJPEG in AVI, and optionally the same JPEGs as rawframes.
//!
//! ```text
//! appsrc (RGB, stride-padded rows) ! jpegenc quality=Q ! avimux ! filesink
//!                                              \-> tee ! multifilesink img_%05d.jpg (index 1)
//! ```
//!
//! The end of the stream is awaited with `crate::media`'s bus reader and stall timeout. The video
//! is written to an `AtomicFile`'s temporary file and committed once the stream has ended: a
//! failure (a full disk, a missing folder, checked before GStreamer starts) leaves nothing behind.

use std::path::Path;

use super::SynthOptions;
use crate::data::DataError;
#[cfg(feature = "capture")]
use crate::media::{self, MediaError};

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

    let fail = |source: MediaError| DataError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::fsio::AtomicFile::create(path, &[])?;
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
    let pipeline = media::launch(&line).map_err(fail)?;
    let result = push_frames(&pipeline, options, frames, file.temp_path(), rawframes);
    let _ = pipeline.set_state(gst::State::Null);
    result.map_err(fail)?;
    Ok(file.commit()?)
}

/// Points the sinks at their files, pushes every frame and waits for the end of the stream.
#[cfg(feature = "capture")]
fn push_frames(
    pipeline: &gstreamer::Pipeline,
    options: &SynthOptions,
    frames: &[Vec<u8>],
    path: &Path,
    rawframes: Option<&Path>,
) -> Result<(), MediaError> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use gstreamer_app as gst_app;
    use gstreamer_video as gst_video;

    media::element(pipeline, "sink")?.set_property("location", path.to_string_lossy().as_ref());
    if let Some(dir) = rawframes {
        media::element(pipeline, "frames")?.set_property(
            "location",
            dir.join("img_%05d.jpg").to_string_lossy().as_ref(),
        );
    }
    let src = media::element(pipeline, "src")?
        .downcast::<gst_app::AppSrc>()
        .map_err(|_| MediaError::NoElement("src"))?;
    let info = gst_video::VideoInfo::builder(
        gst_video::VideoFormat::Rgb,
        options.width as u32,
        options.height as u32,
    )
    .fps(gst::Fraction::new(options.fps as i32, 1))
    .build()
    .map_err(MediaError::Caps)?;
    src.set_caps(Some(&info.to_caps().map_err(MediaError::Caps)?));
    media::set_state(pipeline, gst::State::Playing)?;
    let stride = info.stride()[0] as usize;
    let row = options.width * 3;
    let frame_ns = 1_000_000_000u64 / options.fps as u64;
    for (i, frame) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::with_size(info.size()).map_err(MediaError::Buffer)?;
        {
            // A buffer just made has no other owner, so it is writable.
            let Some(buffer) = buffer.get_mut() else {
                return Err(MediaError::NotWritable);
            };
            buffer.set_pts(gst::ClockTime::from_nseconds(i as u64 * frame_ns));
            buffer.set_duration(gst::ClockTime::from_nseconds(frame_ns));
            let mut map = buffer.map_writable().map_err(MediaError::Buffer)?;
            let data = map.as_mut_slice();
            for (y, src_row) in frame.chunks_exact(row).enumerate() {
                data[y * stride..y * stride + row].copy_from_slice(src_row);
            }
        }
        src.push_buffer(buffer)
            .map_err(|source| MediaError::Push { frame: i, source })?;
    }
    src.end_of_stream().map_err(|source| MediaError::Push {
        frame: frames.len(),
        source,
    })?;
    let bus = pipeline.bus().ok_or(MediaError::NoElement("bus"))?;
    // The encoder keeps up with the pushes (`block=true`): only the last few frames are left.
    if media::wait_for_eos(&bus, media::STALL)? {
        Ok(())
    } else {
        Err(MediaError::NoEnd)
    }
}
