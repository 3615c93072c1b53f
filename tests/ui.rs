//! The window's logic without a display (egui_kittest): the widgets show what the state says
//! (label, scores, counters, latency figures), keys and drops become the right commands, errors
//! show a banner and the window stays usable, the video texture is created once and updated, and a
//! snapshot of the overlay (tests/snapshots/overlay.png, `UPDATE_SNAPSHOTS=1` rewrites it). Also
//! the session thread driven without a window: a model that fails to load, a file that is not a
//! video, pause, and a clean stop. The end-to-end window under Xvfb is in tests/window.rs.
#![cfg(feature = "ui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ui::{harness, options, result, state_with_results};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use shiftlive::capture::Source;
use shiftlive::model::ModelConfig;
use shiftlive::online::{Recognizer, SmoothingOptions};
use shiftlive::pipeline::{Control, PipelineOptions};
use shiftlive::ui::{
    BannerKind, Command, LoadedModel, Message, Origin, Session, SessionConfig, Shown, save_png,
};

#[test]
fn the_overlay_shows_the_label_scores_and_counters() {
    let mut harness = harness(state_with_results());
    harness.run();
    // The label large over the video, its score, the top-5 as bars with their scores.
    harness.get_by_label("waving");
    harness.get_by_label("score 87.3%");
    harness.get_by_label("waving  87.3%");
    harness.get_by_label("clapping  8.0%");
    harness.get_by_label("jumping  0.5%");
    // The panel: model, counters, fps, latency per stage (nearest-rank p50 / p99 of 8, 10, 12).
    harness.get_by_label("tsm_mobilenet_v2_tiny_online");
    harness.get_by_label("1 shown / 3 received");
    harness.get_by_label("2 dropped");
    harness.get_by_label("25.0");
    harness.get_by_label("10.0 / 12.0");
    harness.get_by_label("#2");
    // Only the newest of the three frames was drawn, into a texture of its size.
    let state = harness.state().state();
    assert_eq!(state.frames_shown, 1);
    let texture = harness
        .state()
        .texture()
        .expect("a texture after the first frame");
    assert_eq!(texture.size(), [320, 240]);
    assert!(state.latency_pending.is_some());
    harness.snapshot("overlay");
}

#[test]
fn an_eco_model_says_when_its_answer_comes() {
    use shiftlive::online::{LabelState, MemoryStatus};
    let mut state = state_with_results();
    let now = Instant::now();
    // The first memory filling: no answer, warming up, the first one 5 frames away.
    let mut filling = result(3, 10.0, now);
    filling.label = None;
    filling.top.clear();
    filling.label_state = LabelState::WarmingUp { frames: 3, of: 8 };
    filling.memory = Some(MemoryStatus {
        every: 8,
        position: 3,
        updates: 0,
        fresh: false,
    });
    state.apply_frame(filling, now);
    let mut harness = harness(state);
    harness.run();
    harness.get_by_label("warming up (3 of 8 frames)");
    harness.get_by_label("ECO memory: first answer in 5 frames");
    // Later: an answer stands between two updates.
    let mut answered = result(13, 10.0, now);
    answered.memory = Some(MemoryStatus {
        every: 8,
        position: 5,
        updates: 1,
        fresh: false,
    });
    harness.state_mut().state_mut().apply_frame(answered, now);
    harness.run();
    harness.get_by_label("waving");
    harness.get_by_label("ECO memory: answer every 8 frames, next in 3");
}

#[test]
fn the_texture_is_created_once_and_updated() {
    let mut harness = harness(state_with_results());
    harness.run();
    let first = harness.state().texture().map(|t| t.id());
    let now = Instant::now();
    harness
        .state_mut()
        .state_mut()
        .apply_frame(result(3, 9.0, now), now);
    harness.run();
    assert_eq!(harness.state().texture().map(|t| t.id()), first);
    let state = harness.state().state();
    assert_eq!(state.frames_shown, 2);
    harness.get_by_label("2 shown / 4 received");
    harness.get_by_label("#3");
}

#[test]
fn keys_change_the_settings_and_queue_commands() {
    let mut harness = harness(state_with_results());
    harness.run();
    harness.state_mut().state_mut().take_commands();

    harness.key_press(Key::Space);
    harness.run();
    assert!(harness.state().state().settings.paused);
    harness.get_by_label("PAUSED");
    harness.get_by_label("Resume (Space)");

    harness.key_press(Key::CloseBracket);
    harness.key_press_modifiers(Modifiers::SHIFT, Key::T);
    harness.key_press(Key::K);
    harness.key_press(Key::S);
    harness.key_press(Key::R);
    harness.run();
    let settings = harness.state().state().settings.clone();
    assert_eq!(settings.smooth_window, 13);
    assert!(
        (settings.threshold - 0.05).abs() < 1e-6,
        "{}",
        settings.threshold
    );
    assert_eq!(settings.top_k, 6);
    assert_eq!(settings.stride, 2);
    let commands = harness.state_mut().state_mut().take_commands();
    let controls: Vec<Control> = commands
        .into_iter()
        .filter_map(|c| match c {
            Command::Control(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(controls.first(), Some(&Control::Pause(true)));
    assert!(controls.contains(&Control::Stride(2)));
    assert!(controls.contains(&Control::Reset));
    // The last smoothing change carries all three edits.
    let last_smoothing = controls.iter().rev().find_map(|c| match c {
        Control::Smoothing(s) => Some(s.clone()),
        _ => None,
    });
    assert_eq!(
        last_smoothing,
        Some(SmoothingOptions {
            window: 13,
            window_ms: None,
            hysteresis: true,
            threshold: 0.05,
            top_k: 6,
        })
    );

    // Help lists every shortcut; Esc closes it.
    harness.key_press(Key::H);
    harness.run();
    harness.get_by_label("Keyboard shortcuts");
    harness.get_by_label("save a screenshot (PNG)");
    harness.key_press(Key::Escape);
    harness.run();
    assert!(harness.query_by_label("Keyboard shortcuts").is_none());
    // P asks the renderer for a screenshot; F toggles full screen.
    harness.key_press(Key::F);
    harness.run();
    assert!(harness.state().state().fullscreen);
}

#[test]
fn keys_typed_into_the_path_field_are_not_shortcuts() {
    let mut harness = harness(state_with_results());
    harness.key_press(Key::O);
    harness.run();
    harness.get_by_label("Open a source");
    harness.get_by_label("no /dev/video* devices on this machine");
    harness.state_mut().state_mut().take_commands();
    let field = harness.get_by_role(egui::accesskit::Role::TextInput);
    field.focus();
    harness.run();
    harness
        .get_by_role(egui::accesskit::Role::TextInput)
        .type_text("r s");
    harness.run();
    let state = harness.state().state();
    assert_eq!(state.path_text, "r s");
    assert!(!state.settings.paused);
    assert_eq!(state.settings.stride, 1);
}

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn a_dropped_file_and_an_error_show_a_banner_and_the_window_stays_usable() {
    let mut harness = harness(state_with_results());
    harness.run();
    harness.state_mut().state_mut().take_commands();
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped("/tmp/notes.txt".into())));
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped("/tmp/other.safetensors".into())));
    harness.run();
    let commands = harness.state_mut().state_mut().take_commands();
    assert!(matches!(&commands[..], [
        Command::OpenSource(Source::File(video)),
        Command::LoadModel(model),
    ] if video == Path::new("/tmp/notes.txt") && model == Path::new("/tmp/other.safetensors")));

    // What the session answers for a file that is not a video.
    let error = "file /tmp/notes.txt: ended without a single decodable video frame";
    harness
        .state_mut()
        .state_mut()
        .apply_message(Message::Error(error.into()));
    harness.run();
    harness.get_by_label(error);
    assert_eq!(
        harness.state().state().banner.as_ref().map(|b| b.kind),
        Some(BannerKind::Error)
    );
    // A warning (a camera being reopened) replaces it, amber.
    harness
        .state_mut()
        .state_mut()
        .apply_message(Message::Warning(
            "camera /dev/video0 ended; reopening in 250 ms".into(),
        ));
    harness.run();
    harness.get_by_label("camera /dev/video0 ended; reopening in 250 ms");
    assert_eq!(
        harness.state().state().banner.as_ref().map(|b| b.kind),
        Some(BannerKind::Warning)
    );
    harness
        .state_mut()
        .state_mut()
        .apply_message(Message::Error(error.into()));
    harness.run();
    // Still usable: the pause button works, and the last frame and label stay.
    harness.get_by_label("Pause (Space)").click();
    harness.run();
    assert!(harness.state().state().settings.paused);
    harness.get_by_label("waving");
    // The banner goes with its x button.
    harness.get_by_label("x").click();
    harness.run();
    assert!(harness.query_by_label(error).is_none());
    assert!(harness.state().state().banner.is_none());
}

#[test]
fn screenshots_are_written_as_png_in_one_piece() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..4 * 3).flat_map(|i| [i as u8 * 20, 100, 200]).collect();
    let image = egui::ColorImage::from_rgb([4, 3], &pixels);
    let path = dir.path().join("shot.png");
    save_png(&image, &path).unwrap();
    let back = image::open(&path).unwrap().to_rgb8();
    assert_eq!(back.dimensions(), (4, 3));
    assert_eq!(back.into_raw(), pixels);
    // Only the PNG is left: the temporary file was renamed, not copied.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("shot.png")]);
    let error = save_png(&image, &dir.path().join("absent/shot.png")).unwrap_err();
    assert!(error.to_string().contains("absent/shot.png"), "{error}");
}

/// Waits for a message matching `want`, collecting frames on the way.
fn wait_for(session: &Session, what: &str, want: impl Fn(&Message) -> bool) -> Message {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        while session.try_frame().is_some() {}
        if let Some(message) = session.try_message() {
            if want(&message) {
                return message;
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("no {what} within 30 s");
}

fn frames_within(session: &Session, wait: Duration) -> usize {
    let deadline = Instant::now() + wait;
    let mut n = 0;
    while Instant::now() < deadline {
        while let Some(shown) = session.try_frame() {
            if let Shown::Result(result) = shown {
                assert!(result.image.is_some(), "the window's results carry frames");
                n += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    n
}

#[test]
fn the_session_survives_a_bad_model_and_a_bad_file_and_pauses() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = Source::TestPattern {
        pattern: "ball".into(),
        width: 160,
        height: 120,
        fps: 30,
        frames: None,
    };
    // The command line's model fails; one opened later loads.
    let loader = Box::new(|path: Option<&Path>| match path {
        None => anyhow::bail!("cannot read /nonexistent/bad.safetensors"),
        Some(_) => {
            let config = ModelConfig::from_preset("tsm_mobilenet_v2_tiny_online")?;
            Ok(LoadedModel {
                recognizer: Recognizer::random(&config, Default::default())?,
                labels: Vec::new(),
                device: "cpu".into(),
                stride: Some(3),
                trained: true,
            })
        }
    });
    let session = Session::start(SessionConfig {
        options: PipelineOptions {
            max_retries: None,
            ..options(pattern.clone())
        },
        live_retries: None,
        loader,
        stride_flag: None,
        repaint: Box::new(|| {}),
    })
    .unwrap();
    let Message::Error(error) =
        wait_for(&session, "model error", |m| matches!(m, Message::Error(_)))
    else {
        unreachable!()
    };
    assert!(error.contains("/nonexistent/bad.safetensors"), "{error}");
    assert_eq!(frames_within(&session, Duration::from_millis(200)), 0);

    assert!(session.send(Command::LoadModel(dir.path().join("good.safetensors"))));
    // The checkpoint's stride applies, as `--model` applies it at start.
    let Message::ModelLoaded(info) =
        wait_for(&session, "model", |m| matches!(m, Message::ModelLoaded(_)))
    else {
        unreachable!()
    };
    assert_eq!((info.stride, info.stride_from), (3, Origin::Checkpoint));
    assert!(info.trained);
    wait_for(&session, "start", |m| matches!(m, Message::Started(_)));
    assert!(frames_within(&session, Duration::from_millis(1500)) > 5);

    // A file that is not a video: an error naming it, and the session goes on.
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "these are not video frames\n".repeat(100)).unwrap();
    assert!(session.send(Command::OpenSource(Source::File(text))));
    let Message::Error(error) =
        wait_for(&session, "file error", |m| matches!(m, Message::Error(_)))
    else {
        unreachable!()
    };
    // A sentence, not GStreamer's debug text (that goes to the log).
    assert!(
        error.contains("notes.mp4: not a media file GStreamer can read"),
        "{error}"
    );
    assert!(!error.contains("../") && !error.contains(".c("), "{error}");
    assert!(session.send(Command::OpenSource(pattern)));
    wait_for(&session, "restart", |m| matches!(m, Message::Started(_)));
    assert!(frames_within(&session, Duration::from_millis(1500)) > 5);

    // A file that is not there: the error says what still plays, and it plays on.
    assert!(session.send(Command::OpenSource(Source::File(
        "/nonexistent/clip.mp4".into()
    ))));
    let Message::Error(error) =
        wait_for(&session, "missing file", |m| matches!(m, Message::Error(_)))
    else {
        unreachable!()
    };
    assert!(
        error.contains("/nonexistent/clip.mp4") && error.contains("still playing test pattern"),
        "{error}"
    );
    assert!(frames_within(&session, Duration::from_millis(1000)) > 3);

    // Paused: nothing comes (after what was in flight); resumed: frames again.
    assert!(session.send(Command::Control(Control::Pause(true))));
    frames_within(&session, Duration::from_millis(300));
    assert_eq!(frames_within(&session, Duration::from_millis(500)), 0);
    assert!(session.send(Command::Control(Control::Pause(false))));
    assert!(frames_within(&session, Duration::from_millis(1500)) > 5);

    // A camera that vanishes (a test pattern that ends after 5 frames): a warning while it is
    // reopened, and frames again after.
    assert!(session.send(Command::OpenSource(Source::TestPattern {
        pattern: "ball".into(),
        width: 160,
        height: 120,
        fps: 30,
        frames: Some(5),
    })));
    let Message::Warning(warning) =
        wait_for(&session, "warning", |m| matches!(m, Message::Warning(_)))
    else {
        unreachable!()
    };
    assert!(warning.contains("reopening"), "{warning}");
    assert!(frames_within(&session, Duration::from_millis(1000)) > 0);
    // Closing the session stops and joins every thread, and gives the running pipeline's summary.
    let stopped = Instant::now();
    let summary = session.close().expect("the summary of the running source");
    assert!(stopped.elapsed() < Duration::from_secs(5));
    assert!(summary.frames_processed > 0, "{summary:?}");
    assert!(
        summary.source.contains("test pattern"),
        "{}",
        summary.source
    );
}
