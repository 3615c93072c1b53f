//! The element's properties: their names, ranges and defaults in one table, and the values an
//! element holds. The model, labels, device and threads are read when the element starts (READY ->
//! PAUSED); stride, smoothing, threshold, top-k and emit-logits also take effect while playing.

use std::path::PathBuf;

use gstreamer::glib;
use gstreamer::prelude::*;
use shiftlive::online::SmoothingOptions;

/// The defaults of `shiftlive live/play` on the shipped model: its 500 ms of smoothing are 3
/// processed frames at 25 fps and stride 4 (the element counts frames; `live` turns a time span
/// into frames), and no hysteresis.
const DEFAULT_SMOOTHING: u32 = 3;
const DEFAULT_TOP_K: u32 = 5;
/// A bound on per-frame work and message size, not a property of any model.
const MAX_TOP_K: u32 = 1000;
const MAX_SMOOTHING: u32 = 1000;
const MAX_STRIDE: u32 = 1000;
const MAX_THREADS: i32 = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub model: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    /// Every k-th frame goes to the model; 0: the checkpoint's `stride`, else 1.
    pub stride: u32,
    pub smoothing: u32,
    pub hysteresis: bool,
    pub threshold: f32,
    pub top_k: u32,
    pub device: String,
    /// libtorch's intra-op threads (process-wide); 0 leaves libtorch's default.
    pub threads: i32,
    /// The engine of the online step: auto, libtorch, onnxruntime or openvino.
    pub backend: String,
    pub emit_logits: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: None,
            labels: None,
            stride: 0,
            smoothing: DEFAULT_SMOOTHING,
            hysteresis: false,
            threshold: 0.0,
            top_k: DEFAULT_TOP_K,
            device: "auto".into(),
            threads: 0,
            backend: "auto".into(),
            emit_logits: false,
        }
    }
}

impl Settings {
    pub fn smoothing_options(&self) -> SmoothingOptions {
        SmoothingOptions {
            window: self.smoothing as usize,
            window_ms: None,
            hysteresis: self.hysteresis,
            threshold: self.threshold,
            top_k: self.top_k as usize,
        }
    }

    /// Sets a property from its GValue (types and ranges already checked by GObject).
    pub fn set(&mut self, name: &str, value: &glib::Value) {
        let path = |v: &glib::Value| {
            v.get::<Option<String>>()
                .ok()
                .flatten()
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        };
        match name {
            "model" => self.model = path(value),
            "labels" => self.labels = path(value),
            "stride" => self.stride = value.get().unwrap_or(self.stride),
            "smoothing" => self.smoothing = value.get().unwrap_or(self.smoothing),
            "hysteresis" => self.hysteresis = value.get().unwrap_or(self.hysteresis),
            "threshold" => self.threshold = value.get().unwrap_or(self.threshold),
            "top-k" => self.top_k = value.get().unwrap_or(self.top_k),
            "device" => {
                self.device = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "auto".into())
            }
            "threads" => self.threads = value.get().unwrap_or(self.threads),
            "backend" => {
                self.backend = value
                    .get::<Option<String>>()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "auto".into())
            }
            "emit-logits" => self.emit_logits = value.get().unwrap_or(self.emit_logits),
            _ => {}
        }
    }

    pub fn get(&self, name: &str) -> glib::Value {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        match name {
            "model" => path(&self.model).to_value(),
            "labels" => path(&self.labels).to_value(),
            "stride" => self.stride.to_value(),
            "smoothing" => self.smoothing.to_value(),
            "hysteresis" => self.hysteresis.to_value(),
            "threshold" => self.threshold.to_value(),
            "top-k" => self.top_k.to_value(),
            "device" => self.device.to_value(),
            "threads" => self.threads.to_value(),
            "backend" => self.backend.to_value(),
            "emit-logits" => self.emit_logits.to_value(),
            _ => None::<String>.to_value(),
        }
    }
}

/// The property specifications, as gst-inspect-1.0 lists them.
pub fn specs() -> Vec<glib::ParamSpec> {
    let d = Settings::default();
    let at_start = glib::ParamFlags::READWRITE | gstreamer::PARAM_FLAG_MUTABLE_READY;
    let live = glib::ParamFlags::READWRITE | gstreamer::PARAM_FLAG_MUTABLE_PLAYING;
    vec![
        glib::ParamSpecString::builder("model")
            .nick("Model")
            .blurb("shiftlive checkpoint (.safetensors) of an online (uni-directional) model; read at READY->PAUSED")
            .flags(at_start)
            .build(),
        glib::ParamSpecString::builder("labels")
            .nick("Labels")
            .blurb("Class names, one per line (default: the checkpoint's, else class_N)")
            .flags(at_start)
            .build(),
        glib::ParamSpecUInt::builder("stride")
            .nick("Stride")
            .blurb("Feed every k-th frame to the model (0: the checkpoint's stride, else 1)")
            .maximum(MAX_STRIDE)
            .default_value(d.stride)
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("smoothing")
            .nick("Smoothing")
            .blurb("Sum the logits of the last K processed frames (1: no smoothing)")
            .minimum(1)
            .maximum(MAX_SMOOTHING)
            .default_value(d.smoothing)
            .flags(live)
            .build(),
        glib::ParamSpecBoolean::builder("hysteresis")
            .nick("Hysteresis")
            .blurb("Change the label only when two consecutive decisions agree")
            .default_value(d.hysteresis)
            .flags(live)
            .build(),
        glib::ParamSpecFloat::builder("threshold")
            .nick("Threshold")
            .blurb("Minimum smoothed score for a label (below it the label is empty)")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(d.threshold)
            .flags(live)
            .build(),
        glib::ParamSpecUInt::builder("top-k")
            .nick("Top K")
            .blurb("Classes listed in each message")
            .minimum(1)
            .maximum(MAX_TOP_K)
            .default_value(d.top_k)
            .flags(live)
            .build(),
        glib::ParamSpecString::builder("device")
            .nick("Device")
            .blurb("auto, cpu, cuda or cuda:N")
            .default_value(Some(d.device.as_str()))
            .flags(at_start)
            .build(),
        glib::ParamSpecInt::builder("threads")
            .nick("Threads")
            .blurb("libtorch intra-op threads, process-wide (0: libtorch's default, all cores)")
            .minimum(0)
            .maximum(MAX_THREADS)
            .default_value(d.threads)
            .flags(at_start)
            .build(),
        glib::ParamSpecString::builder("backend")
            .nick("Backend")
            .blurb("Engine of the online step: auto (the fastest available: ONNX Runtime, OpenVINO, then libtorch on a CPU in fp32), libtorch, onnxruntime or openvino")
            .default_value(Some(d.backend.as_str()))
            .flags(at_start)
            .build(),
        glib::ParamSpecBoolean::builder("emit-logits")
            .nick("Emit logits")
            .blurb("Add each frame's raw logits (before smoothing) to its message")
            .default_value(d.emit_logits)
            .flags(live)
            .build(),
    ]
}
