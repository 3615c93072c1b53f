//! GStreamer plumbing shared by the live sources (`capture`) and the data loader's decoding
//! (`data`): the one reader of a pipeline's bus, the one stall timeout, and the copy of an
//! appsink sample into packed RGB rows.
//!
//! ```text
//! bus message --bus_error()--> BusError (message + first debug line; full debug text logged)
//! appsink sample --rgb_sample()--> RgbSample (rows copied honouring the stride)
//! ```
//!
//! Bus messages are popped with `pop`/`timed_pop`: `timed_pop_filtered` with a zero timeout
//! returns nothing even while an error is pending (its budget is spent before the first pop).

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

/// No frame, end or error for this long: a non-live source has stalled (seen with qtdemux on
/// truncated files: no frame, no EOS, no error), and an encoder that does not finish has too.
pub const STALL: Duration = Duration::from_secs(10);

/// How long the bus is read for the pipeline's EOS (or an error) once the appsink has its end:
/// an error posted before the EOS fails the file (a demuxer may send EOS downstream first).
pub const EOS_WAIT: Duration = Duration::from_secs(2);

/// What went wrong in a GStreamer pipeline.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer could not be initialised")]
    Init(#[source] gst::glib::Error),
    #[error("cannot build the GStreamer pipeline")]
    Launch(#[source] gst::glib::Error),
    #[error("no element '{0}' of the expected type in the pipeline")]
    NoElement(&'static str),
    #[error("could not start the pipeline")]
    Start(#[source] gst::StateChangeError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(
        "decoding stalled: no frame, end or error for {} s (a damaged or truncated file?)",
        STALL.as_secs()
    )]
    Stalled,
    #[error(transparent)]
    Sample(#[from] SampleError),
    #[error("cannot describe the frames as video caps")]
    Caps(#[source] gst::glib::BoolError),
    #[error("cannot allocate or map a frame buffer")]
    Buffer(#[source] gst::glib::BoolError),
    #[error("pushing frame {frame}")]
    Push {
        frame: usize,
        #[source]
        source: gst::FlowError,
    },
    #[error("a new buffer is not writable")]
    NotWritable,
    #[error("no end of stream within {} s", STALL.as_secs())]
    NoEnd,
    #[error("cannot make a file URI of the path")]
    Uri(#[source] gst::glib::Error),
}

/// Initialises GStreamer (once) and builds the pipeline of a `gst-launch` line.
pub fn launch(line: &str) -> Result<gst::Pipeline, MediaError> {
    gst::init().map_err(MediaError::Init)?;
    gst::parse::launch(line)
        .map_err(MediaError::Launch)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| MediaError::NoElement("pipeline"))
}

/// The element called `name` in `pipeline`.
pub fn element(pipeline: &gst::Pipeline, name: &'static str) -> Result<gst::Element, MediaError> {
    pipeline.by_name(name).ok_or(MediaError::NoElement(name))
}

/// The appsink called `name` in `pipeline`.
pub fn appsink(
    pipeline: &gst::Pipeline,
    name: &'static str,
) -> Result<gst_app::AppSink, MediaError> {
    element(pipeline, name)?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| MediaError::NoElement(name))
}

/// Changes the state of `pipeline`. A failure's reason is on the bus (the state change only says it
/// failed), so the bus's error is returned when there is one.
pub fn set_state(
    pipeline: &gst::Pipeline,
    state: gst::State,
) -> Result<gst::StateChangeSuccess, MediaError> {
    pipeline
        .set_state(state)
        .map_err(|err| match pipeline.bus().map(|bus| poll_bus(&bus)) {
            Some(Err(bus)) => MediaError::Bus(bus),
            _ => MediaError::Start(err),
        })
}

/// An error message posted on a pipeline's bus. Shown as GStreamer's message alone (a sentence a
/// user reads); the debug text (the failing element, its source file) is kept here and logged.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{error}")]
pub struct BusError {
    /// GStreamer's error (its domain and code say what failed).
    pub error: gst::glib::Error,
    /// The debug text, as the element posted it.
    pub debug: Option<String>,
}

/// The bus message as a typed error, if it is an error message.
pub fn bus_error(msg: &gst::Message) -> Option<BusError> {
    let gst::MessageView::Error(err) = msg.view() else {
        return None;
    };
    let debug = err.debug().map(|d| d.to_string());
    if let Some(text) = &debug {
        tracing::warn!("GStreamer: {} ({text})", err.error());
    }
    Some(BusError {
        error: err.error(),
        debug,
    })
}

/// Reads what is pending on the bus, in order: the first error message, else whether the
/// pipeline's EOS was among the messages (other messages are discarded: nothing else reads it).
pub fn poll_bus(bus: &gst::Bus) -> Result<bool, BusError> {
    let mut eos = false;
    while let Some(msg) = bus.pop() {
        if let Some(err) = bus_error(&msg) {
            return Err(err);
        }
        eos |= msg.type_() == gst::MessageType::Eos;
    }
    Ok(eos)
}

/// Waits up to `timeout` for the pipeline's EOS (true) or an error message; false when neither
/// came in time.
pub fn wait_for_eos(bus: &gst::Bus, timeout: Duration) -> Result<bool, BusError> {
    let deadline = Instant::now() + timeout;
    loop {
        if poll_bus(bus)? {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let wait =
            gst::ClockTime::from_nseconds(left.min(Duration::from_millis(50)).as_nanos() as u64);
        if let Some(msg) = bus.timed_pop(wait) {
            if let Some(err) = bus_error(&msg) {
                return Err(err);
            }
            if msg.type_() == gst::MessageType::Eos {
                return Ok(true);
            }
        }
    }
}

/// The frame rate in a sample's caps (None for 0/1, a variable rate).
pub fn frame_rate(sample: &gst::Sample) -> Option<f64> {
    let caps = sample.caps()?;
    let rate = caps.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
    (rate.numer() > 0 && rate.denom() > 0)
        .then(|| f64::from(rate.numer()) / f64::from(rate.denom()))
}

/// The frames a stated duration holds at `fps`.
pub fn frames_in(duration: gst::ClockTime, fps: f64) -> u64 {
    (duration.nseconds() as f64 / 1e9 * fps).round() as u64
}

/// A sample that could not be read as RGB.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SampleError {
    #[error("sample without caps")]
    NoCaps,
    #[error("sample without buffer")]
    NoBuffer,
    #[error("caps that are not raw video")]
    Caps(#[source] gst::glib::BoolError),
    #[error("cannot map frame")]
    Map(#[source] gst::glib::BoolError),
    #[error("short frame buffer for {width}x{height}")]
    Short { width: usize, height: usize },
}

/// One frame from an appsink, rows packed (`stride == width * 3`).
#[derive(Debug, Clone)]
pub struct RgbSample {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub pts_ms: Option<f64>,
}

/// Copies an RGB sample (`video/x-raw,format=RGB`) into packed rows.
pub fn rgb_sample(sample: &gst::Sample) -> Result<RgbSample, SampleError> {
    let caps = sample.caps().ok_or(SampleError::NoCaps)?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(SampleError::Caps)?;
    let buffer = sample.buffer().ok_or(SampleError::NoBuffer)?;
    let pts_ms = buffer.pts().map(|t| t.nseconds() as f64 / 1e6);
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(SampleError::Map)?;
    let (width, height) = (info.width() as usize, info.height() as usize);
    let stride = frame.plane_stride()[0] as usize;
    let plane = frame.plane_data(0).map_err(SampleError::Map)?;
    if height == 0 || plane.len() < stride * (height - 1) + width * 3 {
        return Err(SampleError::Short { width, height });
    }
    Ok(RgbSample {
        data: packed_rgb(plane, stride, width, height),
        width,
        height,
        pts_ms,
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn packed_rgb_drops_the_row_padding() {
        // 2x2 RGB, rows 8 bytes apart (2 bytes of padding each).
        let plane = [1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        assert_eq!(
            packed_rgb(&plane, 8, 2, 2),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
        );
    }

    #[test]
    fn an_error_message_becomes_a_bus_error_keeping_its_debug_text() {
        gst::init().unwrap();
        let msg = gst::message::Error::builder(gst::ResourceError::NotFound, "no such file")
            .debug("gstfilesrc.c(557): gst_file_src_start (): /GstPipeline:p/GstFileSrc:src\nmore")
            .build();
        let err = bus_error(&msg).unwrap();
        // The message is the sentence; the element's debug text is kept (and logged), not shown.
        assert_eq!(err.to_string(), "no such file");
        assert!(err.debug.as_deref().unwrap().ends_with("\nmore"));
        assert!(err.error.matches(gst::ResourceError::NotFound));
        assert!(bus_error(&gst::message::Eos::new()).is_none());
    }
}
