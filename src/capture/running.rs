//! A running capture: the source's GStreamer pipeline, started, and the pulls from its appsink.
//!
//! The appsink never drops (`drop=false`, two buffers): the capture thread pulls promptly and the
//! frame ring decides what is dropped, so every drop is counted. `sync=true` only when a file is
//! replayed in real time. Frames keep their native size: scaling happens in `preprocess`, which
//! measured 0.4 ms for 640x480 -> 224x224, and the window wants the full frame anyway.
//!
//! At the appsink's end the bus is read until the pipeline's EOS: a demuxer that fails may send
//! EOS downstream before its error reaches the bus, and an error before the EOS fails the source.
//!
//! Damage is reported, never taken for the end: an error after frames came from a file is
//! `CaptureError::Damaged`, and a file that ends before 90% of the frames its container states
//! (duration x frame rate; a frame directory's numbering) is `CaptureError::Truncated`.

use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{CaptureError, Source};
use crate::media::{self, MediaError};
use crate::preprocess::FrameRef;

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
    /// This frame replaced `dropped`, which never reached the model: a discontinuity it marked
    /// now marks this one (the past no longer applies to it either).
    pub fn inherit_mark(&mut self, dropped: &Frame) {
        self.discontinuity |= dropped.discontinuity;
    }

    pub fn as_frame_ref(&self) -> FrameRef<'_> {
        FrameRef::rgb(&self.data, self.width, self.height)
    }
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

/// A running pipeline. Dropping it stops GStreamer.
pub struct Capture {
    source: Source,
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    next_index: u64,
    live: bool,
    /// When the last frame (or the start) happened: a non-live source quiet for longer than
    /// `media::STALL` has stalled.
    last_progress: Instant,
    /// The first frame's size: a frame directory must not change it.
    first_size: Option<(usize, usize)>,
    /// The pipeline's EOS message has been read from the bus.
    bus_eos: bool,
    /// Frames per second of the decoded stream, from the first frame's caps.
    fps: Option<f64>,
    /// The duration the container stated at the first frame (a demuxer may shorten it to what it
    /// found by the end).
    stated: Option<gst::ClockTime>,
    /// Held in PAUSED by `set_paused` (no stall is declared meanwhile).
    paused: bool,
}

/// A file that delivers fewer than this share of the frames its container states is damaged.
const COMPLETE_SHARE: f64 = 0.9;

impl Capture {
    /// Builds the pipeline and starts it. `realtime` paces a file to its clock.
    pub fn open(source: &Source, realtime: bool) -> Result<Self, CaptureError> {
        source.check()?;
        let fail = |err: MediaError| CaptureError::Media {
            name: source.describe(),
            source: err,
        };
        let pipeline = media::launch(&source.launch_line()).map_err(fail)?;
        source.configure(&media::element(&pipeline, "src").map_err(fail)?)?;
        let sink = media::appsink(&pipeline, "sink").map_err(fail)?;
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
            bus_eos: false,
            fps: None,
            stated: None,
            paused: false,
        };
        super::priority::lower_streaming_threads(&capture.pipeline);
        // A live pipeline (camera, test pattern, RTSP) cannot preroll: PAUSED answers NoPreroll.
        let paused = media::set_state(&capture.pipeline, gst::State::Paused).map_err(fail)?;
        capture.live = paused == gst::StateChangeSuccess::NoPreroll;
        if capture.live {
            capture.sink.set_property("sync", false);
        }
        media::set_state(&capture.pipeline, gst::State::Playing).map_err(fail)?;
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

    /// Holds the pipeline in PAUSED (true) or lets it play again. A file replayed in real time
    /// then waits where it is: its running time stops with it, so nothing is skipped on resume.
    pub fn set_paused(&mut self, paused: bool) -> Result<(), CaptureError> {
        if paused == self.paused {
            return Ok(());
        }
        let state = if paused {
            gst::State::Paused
        } else {
            gst::State::Playing
        };
        media::set_state(&self.pipeline, state).map_err(|e| self.fail(e))?;
        self.paused = paused;
        self.last_progress = Instant::now();
        Ok(())
    }

    /// The error of a failed pipeline: damage after frames came from a file, a missing video
    /// stream or an unknown format before any frame, else GStreamer's error.
    fn fail(&self, err: impl Into<MediaError>) -> CaptureError {
        let name = self.source.describe();
        let source = err.into();
        if !self.live && self.next_index > 0 {
            return CaptureError::Damaged {
                name,
                frames: self.next_index,
                source: Box::new(source),
            };
        }
        if self.next_index == 0 && self.video_unlinked(&source) {
            return CaptureError::NoVideo { name };
        }
        if let MediaError::Bus(bus) = &source {
            // "Could not determine type of stream", "This appears to be a text file".
            if bus.error.matches(gst::StreamError::TypeNotFound)
                || bus.error.matches(gst::StreamError::WrongType)
            {
                return CaptureError::NotMedia { name };
            }
            if bus.error.matches(gst::StreamError::CodecNotFound) {
                return CaptureError::NoDecoder { name };
            }
        }
        CaptureError::Media { name, source }
    }

    /// A stream error ("Internal data stream error") while nothing reached the converter: the
    /// demuxer found no video stream to link (an audio-only file).
    fn video_unlinked(&self, err: &MediaError) -> bool {
        let MediaError::Bus(bus) = err else {
            return false;
        };
        let linked = self
            .pipeline
            .by_name("convert")
            .and_then(|c| c.static_pad("sink"))
            .is_some_and(|pad| pad.is_linked());
        bus.error.matches(gst::StreamError::Failed) && !linked
    }

    /// The frames the source states it holds: a frame directory's count, a file's duration times
    /// its frame rate; None when unknown (live sources, streams without a duration).
    fn expected_frames(&self) -> Option<u64> {
        match &self.source {
            Source::Frames { dir, .. } => crate::data::FrameFolder::read(dir)
                .ok()
                .map(|f| f.len() as u64),
            Source::File(path) if !self.live => {
                super::stated::avi_total_frames(path).or_else(|| self.frames_by_duration())
            }
            Source::Uri(_) if !self.live => self.frames_by_duration(),
            _ => None,
        }
    }

    /// The container's duration (as stated at the first frame, or now if longer) times the
    /// frame rate.
    fn frames_by_duration(&self) -> Option<u64> {
        let duration = self
            .stated
            .max(self.pipeline.query_duration::<gst::ClockTime>())?;
        let fps = self.fps.filter(|f| *f > 0.0)?;
        Some(media::frames_in(duration, fps))
    }

    /// At the end: fewer frames than the container states is damage.
    fn check_complete(&self) -> Result<(), CaptureError> {
        match self.expected_frames() {
            Some(expected) if (self.next_index as f64) < COMPLETE_SHARE * expected as f64 => {
                Err(CaptureError::Truncated {
                    name: self.source.describe(),
                    frames: self.next_index,
                    expected,
                })
            }
            _ => Ok(()),
        }
    }

    /// Waits up to `timeout` for the next frame.
    pub fn next(&mut self, timeout: Duration) -> Result<CaptureEvent, CaptureError> {
        let wait = gst::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        let Some(sample) = self.sink.try_pull_sample(wait) else {
            return self.idle();
        };
        let captured = Instant::now();
        self.last_progress = captured;
        let rgb = media::rgb_sample(&sample).map_err(|e| self.fail(e))?;
        if self.next_index == 0 {
            self.fps = media::frame_rate(&sample);
            self.stated = self.pipeline.query_duration::<gst::ClockTime>();
        }
        if let Source::Frames { .. } = &self.source {
            let size = (rgb.width, rgb.height);
            match self.first_size {
                None => self.first_size = Some(size),
                Some(first) if first != size => {
                    return Err(CaptureError::MixedSizes {
                        name: self.source.describe(),
                        frame: self.next_index + 1,
                        width: rgb.width,
                        height: rgb.height,
                        first,
                    });
                }
                Some(_) => {}
            }
        }
        let index = self.next_index;
        self.next_index += 1;
        Ok(CaptureEvent::Frame(Frame {
            data: rgb.data,
            width: rgb.width,
            height: rgb.height,
            index,
            pts_ms: rgb.pts_ms,
            captured,
            discontinuity: false,
        }))
    }

    /// No frame within the pull's timeout: an error, a stall, the end, or just nothing yet.
    fn idle(&mut self) -> Result<CaptureEvent, CaptureError> {
        let bus = self
            .pipeline
            .bus()
            .ok_or_else(|| self.fail(MediaError::NoElement("bus")))?;
        self.bus_eos |= media::poll_bus(&bus).map_err(|e| self.fail(e))?;
        if !self.sink.is_eos() {
            if !self.live && !self.paused && self.last_progress.elapsed() > media::STALL {
                return Err(self.fail(MediaError::Stalled));
            }
            return Ok(CaptureEvent::Pending);
        }
        // A demuxer that fails may send EOS downstream before its error reaches the bus.
        if !self.bus_eos {
            self.bus_eos = media::wait_for_eos(&bus, media::EOS_WAIT).map_err(|e| self.fail(e))?;
        }
        if self.next_index == 0 {
            return Err(CaptureError::NoFrames {
                name: self.source.describe(),
            });
        }
        self.check_complete()?;
        Ok(CaptureEvent::Eos)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
