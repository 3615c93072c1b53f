//! The element: a BaseTransform in place, always in passthrough (buffers leave exactly as they
//! came, timestamps kept), QoS enabled. The model is loaded at READY -> PAUSED (`start`); a
//! failure fails that state change with an error message naming the file. Each processed frame
//! posts an element message (`report`). The cache and the smoothing reset on FLUSH_STOP,
//! STREAM_START, a DISCONT buffer and new caps. Panics inside the hooks are caught by
//! gstreamer-rs's subclass glue and become element errors.

use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_base as gst_base;
use gstreamer_base::prelude::*;
use gstreamer_base::subclass::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use shiftlive::errors::chain;
use shiftlive::preprocess::FrameRef;

use super::engine::Engine;
use super::report::{self, Position};
use super::settings::{self, Settings};

/// Larger frames are refused at negotiation (a 16K x 16K frame is already 1 GiB of RGBx).
pub const MAX_PIXELS: u64 = 16384 * 16384;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "tsmclassify",
        gst::DebugColorFlags::empty(),
        Some("online action recognition"),
    )
});

/// What a started element holds.
struct State {
    engine: Engine,
    info: Option<gst_video::VideoInfo>,
    frames: u64,
}

#[derive(Default)]
pub struct TsmClassify {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

/// A poisoned lock (a panic caught earlier) still holds usable data: the panic already turned
/// into an element error.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for TsmClassify {
    const NAME: &'static str = "GstTsmClassify";
    type Type = super::TsmClassify;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for TsmClassify {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::specs);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        settings.set(pspec.name(), value);
        if let Some(state) = lock(&self.state).as_mut() {
            state.engine.update(&settings);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        lock(&self.settings).get(pspec.name())
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_qos(true);
        obj.set_passthrough(true);
    }
}

impl GstObjectImpl for TsmClassify {}

impl ElementImpl for TsmClassify {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Online action recogniser (TSM)",
                "Filter/Analyzer/Video",
                "Names the action in each frame with an online Temporal Shift Module network \
                 (shiftlive); buffers pass through, results as element messages",
                "shiftlive developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list([
                    gst_video::VideoFormat::Rgb,
                    gst_video::VideoFormat::Rgbx,
                    gst_video::VideoFormat::Bgrx,
                ])
                .build();
            [gst::PadDirection::Src, gst::PadDirection::Sink]
                .into_iter()
                .filter_map(|dir| {
                    let name = if dir == gst::PadDirection::Src {
                        "src"
                    } else {
                        "sink"
                    };
                    gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).ok()
                })
                .collect()
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for TsmClassify {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = true;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = true;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = lock(&self.settings).clone();
        let engine = Engine::load(&settings)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{}", chain(&e))))?;
        gst::info!(CAT, imp = self, "model loaded, stride {}", engine.stride());
        *lock(&self.state) = Some(State {
            engine,
            info: None,
            frames: 0,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = None;
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        // The size is checked before VideoInfo, which refuses sizes whose bytes overflow.
        let size = incaps
            .structure(0)
            .and_then(|s| Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?)));
        if let Some((w, h)) = size {
            let pixels = i64::from(w) * i64::from(h);
            if w < 1 || h < 1 || pixels as u64 > MAX_PIXELS {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ("frames of {w}x{h} are out of range: 1 to {MAX_PIXELS} pixels")
                );
                return Err(gst::loggable_error!(CAT, "frame size {w}x{h} out of range"));
            }
        }
        let info = gst_video::VideoInfo::from_caps(incaps).map_err(|_| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Format,
                ("caps {incaps} are not raw RGB, RGBx or BGRx video of a fixed size")
            );
            gst::loggable_error!(CAT, "caps {incaps} are not raw video")
        })?;
        let mut state = lock(&self.state);
        let Some(state) = state.as_mut() else {
            return Err(gst::loggable_error!(
                CAT,
                "caps set before the element started"
            ));
        };
        if state.info.as_ref() != Some(&info) {
            state.engine.reset();
        }
        state.info = Some(info);
        self.parent_set_caps(incaps, outcaps)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if matches!(
            event.view(),
            gst::EventView::FlushStop(_) | gst::EventView::StreamStart(_)
        ) && let Some(state) = lock(&self.state).as_mut()
        {
            gst::debug!(
                CAT,
                imp = self,
                "{:?}: cache and smoothing reset",
                event.type_()
            );
            state.engine.reset();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip_passthrough(
        &self,
        buffer: &gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let started = Instant::now();
        let emit_logits = lock(&self.settings).emit_logits;
        let mut guard = lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Err(gst::FlowError::Flushing);
        };
        let Some(info) = state.info.as_ref() else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info)
            .map_err(|_| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ("cannot map the buffer"));
                gst::FlowError::Error
            })?;
        let (channels, bgr) = match info.format() {
            gst_video::VideoFormat::Rgb => (3, false),
            gst_video::VideoFormat::Rgbx => (4, false),
            _ => (4, true),
        };
        let data = frame.plane_data(0).map_err(|_| gst::FlowError::Error)?;
        let pixels = FrameRef {
            data,
            width: info.width() as usize,
            height: info.height() as usize,
            stride: frame.plane_stride()[0] as usize,
            channels,
            bgr,
        };
        let discont = buffer.flags().contains(gst::BufferFlags::DISCONT);
        let out = match state.engine.push(&pixels, discont) {
            Ok(Some(out)) => out,
            Ok(None) => return Ok(gst::FlowSuccess::Ok),
            Err(e) => {
                gst::element_imp_error!(self, gst::StreamError::Failed, ("{}", chain(&e)));
                return Err(gst::FlowError::Error);
            }
        };
        let pts = buffer.pts();
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let at = Position {
            pts,
            stream_time: segment.and_then(|s| pts.and_then(|t| s.to_stream_time(t))),
            running_time: segment.and_then(|s| pts.and_then(|t| s.to_running_time(t))),
            frame: state.frames,
        };
        state.frames += 1;
        drop(guard);
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let s = report::structure(&out, at, latency_ms, emit_logits);
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
        Ok(gst::FlowSuccess::Ok)
    }
}
