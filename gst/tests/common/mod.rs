//! Fixtures shared by the element's tests: paths, the statically registered plugin, decoded frames
//! of the demo clip, and the element messages of a run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn demo_clip() -> PathBuf {
    root().join("assets/demo/motion-demo.avi")
}

pub fn demo_model() -> PathBuf {
    root().join("assets/models/motion-tsm-r18-tiny.safetensors")
}

/// The cargo profile directory this test runs from (target/debug), where libgstshiftlive.so and
/// the shiftlive binary are.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/harness-HASH -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// GStreamer initialised and the plugin registered in this process (once).
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().expect("gst::init");
        gstshiftlive::plugin_register_static().expect("registering the plugin");
    });
}

/// The frames of a clip decoded to `format` (RGB, RGBx, BGRx), with their caps.
pub fn decode(clip: &Path, format: &str) -> (gst::Caps, Vec<gst::Buffer>) {
    init();
    let line = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format={format} ! appsink name=sink sync=false",
        clip.display()
    );
    let pipeline = gst::parse::launch(&line)
        .expect("decode pipeline")
        .downcast::<gst::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .and_downcast::<gst_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gst::State::Playing).expect("playing");
    let mut caps = None;
    let mut buffers = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        caps = caps.or_else(|| sample.caps_owned());
        buffers.push(sample.buffer_owned().expect("a buffer"));
    }
    pipeline.set_state(gst::State::Null).expect("null");
    (caps.expect("decoded caps"), buffers)
}

/// One element message of the element, as the tests read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub element: String,
    pub pts: Option<u64>,
    pub label: String,
    pub top_labels: Vec<String>,
    pub logits: Vec<f32>,
    pub latency_ms: f64,
    pub step_ms: f64,
}

impl Message {
    pub fn from_structure(element: String, s: &gst::StructureRef) -> Option<Self> {
        if s.name() != "tsmclassify" {
            return None;
        }
        let floats = |name: &str| -> Vec<f32> {
            s.get::<gst::Array>(name)
                .map(|a| a.iter().filter_map(|v| v.get::<f32>().ok()).collect())
                .unwrap_or_default()
        };
        Some(Self {
            element,
            pts: s.get::<u64>("pts").ok().filter(|&t| t != u64::MAX),
            label: s.get::<String>("label").ok()?,
            top_labels: s
                .get::<gst::Array>("top-labels")
                .ok()?
                .iter()
                .filter_map(|v| v.get::<String>().ok())
                .collect(),
            logits: floats("logits"),
            latency_ms: s.get::<f64>("latency-ms").ok()?,
            step_ms: s.get::<f64>("preprocess-ms").ok()? + s.get::<f64>("model-ms").ok()?,
        })
    }
}

/// Element messages waiting on a bus.
pub fn drain(bus: &gst::Bus) -> Vec<Message> {
    std::iter::from_fn(|| bus.pop())
        .filter_map(|m| match m.view() {
            gst::MessageView::Element(e) => {
                let element = m.src().map(|s| s.name().to_string()).unwrap_or_default();
                e.structure()
                    .and_then(|s| Message::from_structure(element, s))
            }
            _ => None,
        })
        .collect()
}

/// Largest absolute difference between two runs' logits, frame by frame (lengths must agree).
pub fn max_abs_diff(a: &[Message], b: &[Message]) -> f32 {
    assert_eq!(a.len(), b.len(), "frame counts differ");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.logits.len(), y.logits.len(), "logit counts differ");
            x.logits.iter().zip(&y.logits).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}
