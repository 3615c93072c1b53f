//! The window's fixtures for the kittest tests: pipeline options, a frame with a picture in it,
//! a result, a state after three results, a harness around the whole window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::vec2;
use egui_kittest::Harness;
use shiftlive::capture::{Frame, Source};
use shiftlive::online::{LabelState, SmoothingOptions};
use shiftlive::pipeline::{FrameResult, Latency, PipelineOptions, Scored};
use shiftlive::ui::{App, AppState, Message, ModelInfo, Origin, window_ui};

pub fn options(source: Source) -> PipelineOptions {
    PipelineOptions {
        smoothing: SmoothingOptions {
            threshold: 0.1,
            ..SmoothingOptions::default()
        },
        keep_frames: true,
        max_retries: Some(0),
        ..PipelineOptions::new(source)
    }
}

/// A 320x240 frame: a colour gradient with a bright square, so the snapshot shows the video.
pub fn frame(index: u64, captured: Instant) -> Arc<Frame> {
    let (width, height) = (320, 240);
    let mut data = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        for x in 0..width {
            let square = (120..200).contains(&x) && (80..160).contains(&y);
            let (r, g, b) = if square {
                (250, 240, 90)
            } else {
                ((x * 255 / width) as u8, (y * 255 / height) as u8, 120)
            };
            data.extend_from_slice(&[r, g, b]);
        }
    }
    Arc::new(Frame {
        data,
        width,
        height,
        index,
        pts_ms: Some(index as f64 * 40.0),
        captured,
        discontinuity: false,
    })
}

pub fn result(index: u64, model_ms: f64, captured: Instant) -> FrameResult {
    let top = [
        ("waving", 0.873),
        ("clapping", 0.08),
        ("running", 0.03),
        ("sitting", 0.012),
        ("jumping", 0.005),
    ]
    .iter()
    .map(|&(label, score)| Scored {
        label: label.into(),
        score,
    })
    .collect();
    FrameResult {
        frame: index,
        pts_ms: Some(index as f64 * 40.0),
        top,
        label: Some("waving".into()),
        score: 0.873,
        label_state: LabelState::Confirmed,
        smooth_frames: 12,
        latency_ms: Latency {
            capture_to_ring: 0.5,
            preprocess: 1.0,
            model: model_ms,
            // Zero total: the result is produced at its capture instant, so the fps is exact.
            total: 0.0,
        },
        dropped: 2,
        logits: None,
        memory: None,
        image: Some(frame(index, captured)),
    }
}

pub fn model_info(trained: bool) -> ModelInfo {
    ModelInfo {
        name: "tsm_mobilenet_v2_tiny_online".into(),
        device: "cpu".into(),
        classes: 10,
        trained,
        stride: 1,
        stride_from: Origin::Default,
    }
}

/// A state after three results 40 ms apart (25 fps), model latencies 8, 10 and 12 ms.
pub fn state_with_results() -> AppState {
    let mut state = AppState::new(&options(Source::File("clip.mp4".into())));
    state.apply_message(Message::ModelLoaded(model_info(true)));
    let start = Instant::now();
    for (i, model_ms) in [8.0, 10.0, 12.0].into_iter().enumerate() {
        let at = start + Duration::from_millis(40 * i as u64);
        state.apply_frame(result(i as u64, model_ms, at), at);
    }
    state
}

pub fn harness(state: AppState) -> Harness<'static, App> {
    harness_sized(state, 1120.0, 680.0)
}

pub fn harness_sized(state: AppState, width: f32, height: f32) -> Harness<'static, App> {
    Harness::builder()
        .with_size(vec2(width, height))
        .build_ui_state(|ui, app: &mut App| window_ui(ui, app), App::new(state))
}
