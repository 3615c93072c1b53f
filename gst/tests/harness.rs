//! The element in-process, driven by gstreamer-check's Harness: passthrough, the resets that follow
//! the stream (flush, DISCONT), independence of two elements, the three pixel formats, refused
//! caps and frame sizes, and a bad model failing the state change with a message on the bus.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Message, decode, demo_clip, demo_model, drain, init, max_abs_diff};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_check::Harness;

/// A started tsmclassify on the demo model with its own bus, wrapped in a Harness.
fn harness(caps: &gst::Caps) -> (Harness, gst::Bus) {
    init();
    let element = gst::ElementFactory::make("tsmclassify")
        .property("model", demo_model().to_str().expect("utf-8 path"))
        .property("emit-logits", true)
        .build()
        .expect("tsmclassify");
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = Harness::with_element(&element, Some("sink"), Some("src"));
    h.play();
    h.set_src_caps(caps.clone());
    (h, bus)
}

/// Pushes the buffers, checks each comes out unchanged, returns the messages.
fn run(h: &mut Harness, bus: &gst::Bus, buffers: &[gst::Buffer]) -> Vec<Message> {
    for buffer in buffers {
        h.push(buffer.clone()).expect("push");
        let out = h.pull().expect("a buffer out");
        assert_eq!(out.pts(), buffer.pts());
        assert_eq!(out.duration(), buffer.duration());
        let (a, b) = (out.map_readable().unwrap(), buffer.map_readable().unwrap());
        assert!(
            a.as_slice() == b.as_slice(),
            "buffer changed on its way through"
        );
    }
    drain(bus)
}

fn assert_same(a: &[Message], b: &[Message], what: &str) {
    let diff = max_abs_diff(a, b);
    assert!(diff <= 1e-5, "{what}: logits differ by {diff}");
    let labels = |m: &[Message]| m.iter().map(|m| m.label.clone()).collect::<Vec<_>>();
    assert_eq!(labels(a), labels(b), "{what}: labels differ");
}

#[test]
fn buffers_pass_bit_identical_and_every_frame_is_reported() {
    let (caps, frames) = decode(&demo_clip(), "RGB");
    let (mut h, bus) = harness(&caps);
    let messages = run(&mut h, &bus, &frames);
    // The demo model was trained with stride 4 (its metadata): frames 0, 4, 8, ... are processed.
    let stride = h.element().unwrap().property::<u32>("stride");
    assert_eq!(stride, 0, "the property keeps 'the checkpoint's'");
    assert_eq!(
        messages.len(),
        frames.len().div_ceil(4),
        "one message per 4th frame"
    );
    let frames: Vec<_> = frames.iter().step_by(4).collect();
    let classes = messages[0].logits.len();
    assert!(classes > 1, "logits emitted");
    for (m, f) in messages.iter().zip(&frames) {
        assert_eq!(m.pts, f.pts().map(|t| t.nseconds()));
        assert_eq!(m.top_labels.len(), classes.min(5));
        assert!(m.logits.iter().all(|v| v.is_finite()));
    }
    // The element's own time per frame is the recogniser's step (preprocess + model) plus little:
    // the buffer is read in place, no copy before the one into the model's input.
    let mean = |f: fn(&Message) -> f64| messages.iter().map(f).sum::<f64>() / messages.len() as f64;
    let (element, step) = (mean(|m| m.latency_ms), mean(|m| m.step_ms));
    eprintln!("per frame: element {element:.3} ms, recogniser step {step:.3} ms");
    assert!(
        element >= step && element <= step * 1.05,
        "element {element} ms, step {step} ms"
    );
}

#[test]
fn a_flush_or_a_discont_buffer_resets_the_cache_and_smoothing() {
    let (caps, frames) = decode(&demo_clip(), "RGB");
    let cut = 20;
    let tail = &frames[cut..cut + 25];

    let (mut fresh, fresh_bus) = harness(&caps);
    let expected = run(&mut fresh, &fresh_bus, tail);

    // Flush: FLUSH_START, FLUSH_STOP, a new segment, then the tail.
    let (mut h, bus) = harness(&caps);
    let before = run(&mut h, &bus, &frames[..cut]);
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    assert!(
        h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<
            gst::ClockTime,
        >::new()))
    );
    let after = run(&mut h, &bus, tail);
    assert_same(&after, &expected, "after a flush");

    // Without the flush the cache carries the past: the same frames give other logits.
    let (mut carry, carry_bus) = harness(&caps);
    let carried = run(&mut carry, &carry_bus, &frames[..cut + 25]);
    let n = before.len();
    assert_same(&carried[..n], &before, "the same first frames");
    let diff = max_abs_diff(&carried[n..], &expected);
    assert!(diff > 1e-3, "the cache must matter ({diff})");

    // A DISCONT buffer resets as a flush does.
    let (mut d, d_bus) = harness(&caps);
    run(&mut d, &d_bus, &frames[..cut]);
    let mut first = tail[0].copy();
    first.make_mut().set_flags(gst::BufferFlags::DISCONT);
    let mut marked = vec![first];
    marked.extend_from_slice(&tail[1..]);
    let after_discont = run(&mut d, &d_bus, &marked);
    assert_same(&after_discont, &expected, "after a DISCONT buffer");
}

#[test]
fn two_elements_on_two_streams_are_independent() {
    let (caps, frames) = decode(&demo_clip(), "RGB");
    let a: Vec<_> = frames[..30].to_vec();
    let b: Vec<_> = frames[..30].iter().rev().cloned().collect();
    let (mut ha, bus_a) = harness(&caps);
    let (mut hb, bus_b) = harness(&caps);
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for (fa, fb) in a.iter().zip(&b) {
        got_a.extend(run(&mut ha, &bus_a, std::slice::from_ref(fa)));
        got_b.extend(run(&mut hb, &bus_b, std::slice::from_ref(fb)));
    }
    let (mut alone_a, bus) = harness(&caps);
    assert_same(&got_a, &run(&mut alone_a, &bus, &a), "stream A");
    let (mut alone_b, bus) = harness(&caps);
    assert_same(&got_b, &run(&mut alone_b, &bus, &b), "stream B");
}

#[test]
fn rgbx_and_bgrx_give_the_numbers_of_rgb() {
    let (caps, frames) = decode(&demo_clip(), "RGB");
    let (mut h, bus) = harness(&caps);
    let expected = run(&mut h, &bus, &frames[..15]);
    for format in ["RGBx", "BGRx"] {
        let (caps, frames) = decode(&demo_clip(), format);
        let (mut h, bus) = harness(&caps);
        assert_same(&run(&mut h, &bus, &frames[..15]), &expected, format);
    }
}

fn bus_errors(bus: &gst::Bus) -> Vec<String> {
    std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn unsupported_formats_and_absurd_sizes_are_refused() {
    let (mut h, bus) = harness(&gst::Caps::new_empty_simple("video/x-raw"));
    h.set_src_caps_str("video/x-raw,format=I420,width=64,height=48,framerate=25/1");
    let err = h.push(gst::Buffer::with_size(64 * 48 * 3 / 2).unwrap());
    assert_eq!(
        err,
        Err(gst::FlowError::NotNegotiated),
        "I420 must be refused"
    );

    let (mut h, bus2) = harness(&gst::Caps::new_empty_simple("video/x-raw"));
    h.set_src_caps_str("video/x-raw,format=RGB,width=100000,height=100000,framerate=25/1");
    let err = h.push(gst::Buffer::with_size(16).unwrap());
    assert_eq!(err, Err(gst::FlowError::NotNegotiated));
    let errors = bus_errors(&bus2);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("100000x100000 are out of range")),
        "{errors:?}"
    );
    drop(bus);
}

#[test]
fn a_bad_model_fails_the_state_change_with_the_file_named_on_the_bus() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a safetensors file at all").unwrap();
    let missing = dir.path().join("missing.safetensors");
    for (model, expected) in [
        (Some(missing.as_path()), "missing.safetensors"),
        (Some(garbage.as_path()), "garbage.safetensors"),
        (None, "no model: set the 'model' property"),
    ] {
        let mut builder = gst::ElementFactory::make("tsmclassify");
        if let Some(path) = model {
            builder = builder.property("model", path.to_str().unwrap());
        }
        let element = builder.build().unwrap();
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        assert!(element.set_state(gst::State::Ready).is_ok());
        assert!(
            element.set_state(gst::State::Paused).is_err(),
            "{model:?}: PAUSED must fail"
        );
        let errors = bus_errors(&bus);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{model:?}: {errors:?}"
        );
        element.set_state(gst::State::Null).unwrap();
    }
}
