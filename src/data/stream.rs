//! Decoding only the frames a clip samples, in memory bounded by the frames in flight:
//!
//! ```text
//! filesrc ! decodebin ! [gate] videoconvert ! video/x-raw,format=RGB ! appsink max-buffers=2
//! ```
//!
//! The gate, a probe on the converter's input, numbers every decoded frame and drops the ones
//! the plan does not take before they are converted; the frames it lets through go to the
//! [`FrameSampler`] as they come and are dropped once it has them (the loader renders each into
//! its views at once: the test transform's own resize, so the scores are those of the frames
//! decoded whole). A 60-second 1080p clip, which decoded whole took about 9 GB, so stays near the
//! baseline of the process.
//!
//! The plan needs the frame count, known for sure only at the end. At the first frame the count
//! the container states (its duration times the frame rate) is taken as the count and the frames
//! of that plan are taken as they come. When the video ends with another count (a duration
//! rounded off or wrong, a damaged file) or states none (no duration, a variable rate: that first
//! pass then only counts), a second pass takes the frames planned for the count now known.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::DataError;
use super::decode::{FrameSampler, Image, Sampled, slots_by_frame};
use super::gst::failed;
use crate::media::{self, MediaError};

/// What the probe shares with the puller.
#[derive(Default)]
struct Gate {
    /// Frames decoded so far.
    seen: usize,
    /// The frames to let through; None until the plan is made (every frame passes until then).
    wanted: Option<BTreeSet<usize>>,
    /// The numbers of the frames let through and not yet pulled, in order.
    passed: VecDeque<usize>,
}

type Shared = Arc<Mutex<Gate>>;

fn lock(gate: &Shared) -> MutexGuard<'_, Gate> {
    // The probe only counts and pushes numbers: a panic elsewhere leaves the gate usable.
    gate.lock().unwrap_or_else(|e| e.into_inner())
}

/// One pass over the video: how many frames it held, and the count its plan was made for.
struct Pass {
    frames: usize,
    planned: Option<usize>,
}

/// See the module doc.
pub(crate) fn decode_sampled(
    path: &Path,
    sampler: &mut dyn FrameSampler,
) -> Result<Sampled, DataError> {
    let first = pass(path, None, sampler)?;
    if first.planned == Some(first.frames) {
        return Ok(Sampled {
            frames: first.frames,
            passes: 1,
        });
    }
    tracing::debug!(
        "{}: {} frames where {:?} were stated: a second pass",
        path.display(),
        first.frames,
        first.planned
    );
    let second = pass(path, Some(first.frames), sampler)?;
    if second.frames != first.frames {
        return Err(DataError::decode(
            path,
            format!(
                "decoded to {} frames, then to {} (an unstable file?)",
                first.frames, second.frames
            ),
        ));
    }
    Ok(Sampled {
        frames: second.frames,
        passes: 2,
    })
}

/// Decodes the video once, handing `sampler` the frames planned for `known` frames (or, when
/// None, for the count stated at the first frame).
fn pass(
    path: &Path,
    known: Option<usize>,
    sampler: &mut dyn FrameSampler,
) -> Result<Pass, DataError> {
    let line = "filesrc name=src ! decodebin ! videoconvert name=convert ! \
                video/x-raw,format=RGB ! appsink name=sink sync=false max-buffers=2 \
                enable-last-sample=false";
    let pipeline = media::launch(line).map_err(|e| failed(path, e))?;
    let result = run(&pipeline, path, known, sampler);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run(
    pipeline: &gst::Pipeline,
    path: &Path,
    known: Option<usize>,
    sampler: &mut dyn FrameSampler,
) -> Result<Pass, DataError> {
    let fail = |e: MediaError| failed(path, e);
    media::element(pipeline, "src")
        .map_err(fail)?
        .set_property("location", path.to_string_lossy().as_ref());
    let sink = media::appsink(pipeline, "sink").map_err(fail)?;
    let bus = pipeline
        .bus()
        .ok_or(MediaError::NoElement("bus"))
        .map_err(fail)?;
    let gate = Shared::default();
    let mut plan: Option<BTreeMap<usize, Vec<usize>>> = None;
    if let Some(n) = known {
        let slots = slots_by_frame(&sampler.plan(n));
        lock(&gate).wanted = Some(slots.keys().copied().collect());
        plan = Some(slots);
    }
    add_gate(pipeline, &gate).map_err(fail)?;
    media::set_state(pipeline, gst::State::Playing).map_err(fail)?;
    let (mut planned, mut eos, mut seen, mut last) = (known, false, 0, Instant::now());
    loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) {
            last = Instant::now();
            let Some(index) = lock(&gate).passed.pop_front() else {
                return Err(DataError::decode(
                    path,
                    "a frame reached the end unnumbered",
                ));
            };
            if plan.is_none() {
                let stated = stated_frames(pipeline, &sample);
                let slots = match stated {
                    Some(n) => slots_by_frame(&sampler.plan(n)),
                    None => BTreeMap::new(),
                };
                lock(&gate).wanted = Some(slots.keys().copied().collect());
                (planned, plan) = (stated, Some(slots));
            }
            if let Some(slots) = plan.as_ref().and_then(|p| p.get(&index)) {
                let rgb = media::rgb_sample(&sample).map_err(|e| fail(e.into()))?;
                let image = Image {
                    data: rgb.data,
                    width: rgb.width,
                    height: rgb.height,
                };
                for &slot in slots {
                    sampler.take(slot, &image)?;
                }
            }
            continue;
        }
        eos |= media::poll_bus(&bus).map_err(|e| fail(e.into()))?;
        if sink.is_eos() {
            break;
        }
        // Frames the gate drops are progress too: a counting pass pulls none.
        let now_seen = lock(&gate).seen;
        if now_seen != seen {
            (seen, last) = (now_seen, Instant::now());
        } else if last.elapsed() > media::STALL {
            return Err(fail(MediaError::Stalled));
        }
    }
    // The appsink has its end; the bus says whether an error came before the pipeline's EOS.
    if !eos {
        media::wait_for_eos(&bus, media::EOS_WAIT).map_err(|e| fail(e.into()))?;
    }
    let frames = lock(&gate).seen;
    if frames == 0 {
        return Err(DataError::decode(
            path,
            "ended without a single decodable frame",
        ));
    }
    Ok(Pass { frames, planned })
}

/// Numbers the frames entering the converter and drops the ones not wanted.
fn add_gate(pipeline: &gst::Pipeline, gate: &Shared) -> Result<(), MediaError> {
    let pad = media::element(pipeline, "convert")?
        .static_pad("sink")
        .ok_or(MediaError::NoElement("convert"))?;
    let gate = gate.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let mut gate = lock(&gate);
            let buffers = match &info.data {
                Some(gst::PadProbeData::BufferList(list)) => list.len(),
                _ => 1,
            };
            let first = gate.seen;
            gate.seen += buffers;
            // A list passes whole (it cannot be split here): the puller drops what it does not take.
            let keep = buffers > 1
                || gate
                    .wanted
                    .as_ref()
                    .is_none_or(|wanted| wanted.contains(&first));
            if keep {
                gate.passed.extend(first..first + buffers);
                gst::PadProbeReturn::Ok
            } else {
                // Handled, not Drop: the binding takes the buffer out of the probe's info and
                // unrefs it; GStreamer 1.22 would then unref the emptied slot again on Drop
                // (a critical warning per frame, fixed in 1.24.8).
                gst::PadProbeReturn::Handled
            }
        },
    )
    .ok_or(MediaError::NoElement("convert"))?;
    Ok(())
}

/// The frames the container states at the first frame: its duration times the frame rate.
fn stated_frames(pipeline: &gst::Pipeline, sample: &gst::Sample) -> Option<usize> {
    let duration = pipeline.query_duration::<gst::ClockTime>()?;
    let fps = media::frame_rate(sample)?;
    let frames = media::frames_in(duration, fps) as usize;
    (frames > 0).then_some(frames)
}
