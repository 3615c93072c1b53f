//! The window as a live tool, without a display (egui_kittest): labels you can trust (warming up,
//! below threshold, changing; a model's stride and where it came from; the random-weights
//! badge), controls that never misfire (the source dialog takes the keyboard, an ended file
//! replays, a failed start shows that nothing plays), a picture that moves with every captured
//! frame, and the layout (banners over the video that fade, hideable cards, 640x400 with nothing
//! overlapping, plot lines broken at gaps). Snapshots: tests/snapshots/small.png.
#![cfg(feature = "ui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::ui::{frame, harness, harness_sized, model_info, options, result, state_with_results};
use egui::Key;
use egui_kittest::kittest::Queryable;
use shiftlive::capture::Source;
use shiftlive::online::LabelState;
use shiftlive::pipeline::{LatencySummary, Summary};
use shiftlive::ui::{AppState, BannerKind, Command, Message, ModelInfo, Origin, plot_segments};

fn clip() -> Source {
    Source::File("clip.mp4".into())
}

#[test]
fn the_label_says_warming_up_and_never_contradicts_the_bars() {
    let mut state = state_with_results();
    let now = Instant::now();
    let mut warming = result(3, 9.0, now);
    warming.label = None;
    warming.score = 0.0;
    warming.label_state = LabelState::WarmingUp { frames: 2, of: 3 };
    state.apply_frame(warming, now);
    let mut harness = harness(state);
    harness.run();
    harness.get_by_label("warming up (2 of 3 frames)");
    harness.get_by_label("score -");
    // The bars stay: they are the scores, the label waits.
    harness.get_by_label("waving  87.3%");

    let mut below = result(4, 9.0, now);
    below.label = None;
    below.score = 0.0;
    below.label_state = LabelState::BelowThreshold;
    harness.state_mut().state_mut().apply_frame(below, now);
    harness.run();
    // The threshold of these options is 0.1.
    harness.get_by_label("(no label: best score below 10%)");
    let mut changing = result(5, 9.0, now);
    changing.label = None;
    changing.label_state = LabelState::Unconfirmed;
    harness.state_mut().state_mut().apply_frame(changing, now);
    harness.run();
    harness.get_by_label("(changing)");
    // A confirmed label is the first bar with its score.
    harness
        .state_mut()
        .state_mut()
        .apply_frame(result(6, 9.0, now), now);
    harness.run();
    harness.get_by_label("waving");
    harness.get_by_label("score 87.3%");
}

#[test]
fn a_model_brings_its_stride_and_random_weights_show_a_badge() {
    let mut state = state_with_results();
    state.apply_message(Message::ModelLoaded(ModelInfo {
        stride: 4,
        stride_from: Origin::Checkpoint,
        ..model_info(true)
    }));
    assert_eq!(state.settings.stride, 4);
    let mut harness = harness(state);
    harness.run();
    harness.get_by_label("4 (checkpoint)");
    harness.get_by_label("trained (checkpoint)");
    let badge = "random weights: labels are meaningless; open a model with O";
    assert!(harness.query_by_label(badge).is_none());
    // S changes it here, and the panel says so.
    harness.key_press(Key::S);
    harness.run();
    harness.get_by_label("5 (set here)");
    // Random weights: a permanent badge over the video.
    harness
        .state_mut()
        .state_mut()
        .apply_message(Message::ModelLoaded(model_info(false)));
    harness.run();
    harness.get_by_label(badge);
    harness.get_by_label("random: labels mean nothing");
    harness.get_by_label("1 (default)");
}

#[test]
fn the_source_dialog_takes_the_keyboard_at_once() {
    let mut harness = harness(state_with_results());
    harness.run();
    harness.key_press(Key::O);
    harness.run();
    harness.run();
    harness.state_mut().state_mut().take_commands();
    // The path field has the focus without a click, and keys are not shortcuts while it is open.
    assert!(
        harness
            .get_by_role(egui::accesskit::Role::TextInput)
            .is_focused()
    );
    for key in [Key::R, Key::S, Key::T, Key::Space, Key::OpenBracket, Key::K] {
        harness.key_press(key);
    }
    harness.event(egui::Event::Text("/tmp/rs.mp4".into()));
    harness.run();
    let state = harness.state().state();
    assert_eq!(state.path_text, "/tmp/rs.mp4");
    assert_eq!(state.settings.stride, 1);
    assert!(!state.settings.paused);
    assert_eq!(state.settings.smooth_window, 12);
    assert!(harness.state_mut().state_mut().take_commands().is_empty());
    // Esc closes it, and keys are shortcuts again.
    harness.key_press(Key::Escape);
    harness.run();
    assert!(!harness.state().state().show_sources);
    harness.key_press(Key::S);
    harness.run();
    assert_eq!(harness.state().state().settings.stride, 2);
}

fn summary(error: Option<&str>) -> Summary {
    let stats = shiftlive::bench::Stats::of(&[1.0]);
    Summary {
        source: "file clip.mp4".into(),
        frames_processed: 3,
        frames_captured: 3,
        frames_dropped: 0,
        frames_strided: 0,
        frames_paused: 0,
        fps: 25.0,
        latency_ms: LatencySummary {
            total: stats,
            capture_to_ring: stats,
            preprocess: stats,
            model: stats,
        },
        error: error.map(String::from),
        damaged: false,
    }
}

#[test]
fn an_ended_file_says_so_and_space_replays_it() {
    let mut state = state_with_results();
    state.apply_message(Message::Started(clip()));
    state.apply_message(Message::Summary(Box::new(summary(None))));
    assert!(state.ended);
    let mut harness = harness(state);
    harness.run();
    harness.get_by_label("END OF FILE: Space or Replay plays it again");
    harness.get_by_label("Replay (Space)");
    harness.state_mut().state_mut().take_commands();
    harness.key_press(Key::Space);
    harness.run();
    let commands = harness.state_mut().state_mut().take_commands();
    assert!(
        matches!(&commands[..], [Command::OpenSource(s)] if *s == clip()),
        "{commands:?}"
    );
    assert!(
        !harness.state().state().settings.paused,
        "Space did not pause"
    );
    // The new start clears the end.
    harness
        .state_mut()
        .state_mut()
        .apply_message(Message::Started(clip()));
    harness.run();
    assert!(harness.query_by_label("Replay (Space)").is_none());
    harness.get_by_label("Pause (Space)");

    // A source that fails to start after the previous one stopped: nothing plays, and the
    // toolbar does not offer to pause it.
    harness.state_mut().state_mut().apply_message(Message::Idle);
    harness.run();
    harness.get_by_label("nothing playing");
    harness.state_mut().state_mut().take_commands();
    harness.get_by_label("Pause (Space)").click();
    harness.run();
    assert!(harness.state_mut().state_mut().take_commands().is_empty());
    assert!(!harness.state().state().settings.paused);
}

#[test]
fn every_captured_frame_is_shown_and_the_label_keeps_the_latest_result() {
    let mut harness = harness(state_with_results());
    harness.run();
    let now = Instant::now();
    for i in 3..6 {
        harness.state_mut().state_mut().apply_picture(frame(i, now));
        harness.run();
    }
    let state = harness.state().state();
    assert_eq!(state.frames_shown, 4, "one result frame and three pictures");
    assert_eq!(state.pictures_received, 3);
    assert_eq!(state.frame_index, Some(2), "the label is still frame 2's");
    harness.get_by_label("waving");
    harness.get_by_label("4 shown / 6 received");
    // The label's age: from its frame's capture to the capture of the picture on screen.
    let captured = state.label_captured.expect("the result's frame time");
    let behind = now.saturating_duration_since(captured).as_secs_f64() * 1e3;
    assert_eq!(state.label_age_ms(), Some(behind));
    harness.get_by_label(&format!("{behind:.0} ms behind the picture"));
}

#[test]
fn info_banners_fade_and_errors_stay() {
    let mut state = AppState::new(&options(clip()));
    state.set_banner(BannerKind::Info, "saved shot.png");
    let since = state.banner.as_ref().unwrap().since;
    assert_eq!(
        state.banner_opacity(since + Duration::from_secs(1)),
        Some(1.0)
    );
    let fading = state
        .banner_opacity(since + Duration::from_millis(3500))
        .unwrap();
    assert!((fading - 0.5).abs() < 0.01, "{fading}");
    assert_eq!(state.banner_opacity(since + Duration::from_secs(5)), None);
    assert!(state.banner.is_none(), "a notice goes by itself");
    state.set_banner(BannerKind::Error, "cannot open clip.mp4");
    assert_eq!(
        state.banner_opacity(since + Duration::from_secs(600)),
        Some(1.0)
    );
    assert!(state.banner.is_some());
}

#[test]
fn a_banner_overlays_the_video_without_moving_it() {
    let mut harness = harness(state_with_results());
    harness.run();
    let before = harness.get_by_label("waving").rect();
    harness
        .state_mut()
        .state_mut()
        .apply_message(Message::Warning("camera lost; reopening in 250 ms".into()));
    harness.run();
    harness.get_by_label("camera lost; reopening in 250 ms");
    assert_eq!(harness.get_by_label("waving").rect(), before);
}

#[test]
fn at_640x400_nothing_overlaps_and_every_control_is_in_reach() {
    let mut harness = harness_sized(state_with_results(), 640.0, 400.0);
    harness.run();
    harness.run();
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(640.0, 400.0));
    // The panel folded away; its toggle and every other control are on screen.
    assert!(!harness.state().state().panel_shown());
    assert!(harness.query_by_label("p50 / p99 ms").is_none());
    for button in [
        "Pause (Space)",
        "Reset cache (R)",
        "Source… (O)",
        "Screenshot (P)",
        "Full screen (F)",
        "Cards (V)",
        "Panel (I)",
        "Help (H)",
    ] {
        let rect = harness.get_by_label(button).rect();
        assert!(screen.contains_rect(rect), "{button} at {rect:?}");
    }
    // The label card and the top-k card do not overlap, and both are inside the window.
    let label = harness.get_by_label("waving").rect();
    let score = harness.get_by_label("score 87.3%").rect();
    let first_bar = harness.get_by_label("waving  87.3%").rect();
    let last_bar = harness.get_by_label("jumping  0.5%").rect();
    assert!(
        score.bottom() < first_bar.top(),
        "{score:?} vs {first_bar:?}"
    );
    assert!(!label.intersects(first_bar));
    assert!(screen.contains_rect(last_bar), "{last_bar:?}");
    harness.snapshot("small");
    // V hides the cards; I brings the panel back.
    harness.key_press(Key::V);
    harness.key_press(Key::I);
    harness.run();
    harness.run();
    assert!(harness.query_by_label("waving  87.3%").is_none());
    harness.get_by_label("p50 / p99 ms");
}

#[test]
fn plot_lines_break_at_gaps_and_source_changes() {
    let points = [
        [0.0, 5.0],
        [0.1, 6.0],
        [0.2, 5.0],
        [3.0, 7.0],
        [3.1, 8.0],
        [3.2, 6.0],
    ];
    // A pause (0.2 -> 3.0 s) breaks the line; so does a source started at 3.15 s.
    let lines = plot_segments(points.iter().copied(), &[3.15]);
    let sizes: Vec<usize> = lines.iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 2, 1]);
    assert_eq!(lines[1], [[3.0, 7.0], [3.1, 8.0]]);
    assert!(plot_segments(std::iter::empty(), &[]).is_empty());
}
