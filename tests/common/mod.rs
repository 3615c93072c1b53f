//! Test fixtures shared by the integration tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod backends;
#[cfg(feature = "capture")]
pub mod pipelines;
#[cfg(feature = "ui")]
pub mod ui;

use shiftlive::model::ActionNet;
use tch::{Device, Kind, Tensor, nn};

/// Makes an untrained network behave like a trained one numerically: conv weights re-drawn with a
/// fan-in Kaiming scale (torchvision's fan-out init makes an untrained MobileNetV2 map every input
/// to nearly the same features, which would make equality tests vacuous), a classifier wide enough
/// for logits of order one, then BatchNorm statistics from a few train-mode passes.
pub fn lively(vs: &nn::VarStore, net: &ActionNet, side: i64) {
    tch::no_grad(|| {
        for (name, var) in vs.variables() {
            let shape = var.size();
            if shape.len() >= 4 {
                let fan_in: i64 = shape[1..].iter().product();
                var.shallow_clone()
                    .copy_(&(var.randn_like() * (2.0 / fan_in as f64).sqrt()));
            } else if name.ends_with("fc.weight") || name.ends_with("classifier.1.weight") {
                var.shallow_clone().copy_(&(var.randn_like() * 0.1));
            }
        }
    });
    let t = net.config().num_segments.max(2) & !1;
    let x = Tensor::randn([4 * t, 3, side, side], (Kind::Float, Device::Cpu));
    for _ in 0..30 {
        let _ = tch::no_grad(|| net.forward_clip_t(&x, t, true)).unwrap();
    }
}

/// Runs a `gst-launch`-style pipeline to its end; `Err` carries what the bus said instead of the
/// end of stream (or that nothing came within a minute).
#[cfg(feature = "capture")]
pub fn gst_run(line: &str) -> Result<(), String> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().map_err(|e| e.to_string())?;
    let pipeline = gst::parse::launch(line)
        .map_err(|e| format!("{line}: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| format!("{line}: not a pipeline"))?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("{line}: {e}"))?;
    let msg = pipeline.bus().and_then(|bus| {
        bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
    });
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(()),
        Some(gst::MessageView::Error(e)) => Err(format!("{line}: {}", e.error())),
        _ => Err(format!("{line}: no end of stream within 60 s")),
    }
}
