//! The window of a run of several sources without a display (egui_kittest): four streams give four
//! tiles with their own labels, figures and textures; a click on a tile shows it alone with its
//! top-k, a click again or Esc goes back; R in the enlarged view resets that stream only; a failed
//! stream's tile is red with its error while the others show their results. Also the session of a
//! batch driven without a window: two test patterns and a file that is not there, per-stream
//! results, a reset of one stream's rows, a pause of all, and the summary at the close.
#![cfg(feature = "ui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::ui::{harness, model_info, options, result};

use std::path::Path;
use std::time::{Duration, Instant};

use egui::Key;
use egui_kittest::kittest::Queryable;
use shiftlive::capture::Source;
use shiftlive::model::ModelConfig;
use shiftlive::online::{LabelState, Recognizer, RecognizerOptions};
use shiftlive::pipeline::{
    Control, FrameResult, LatencySummary, PipelineOptions, StreamSource, StreamSummary,
    StreamsSummary, StreamsTotals, Summary,
};
use shiftlive::ui::{AppState, Command, LoadedModel, Message, Session, SessionConfig, Shown};

const LABELS: [&str; 4] = ["waving", "clapping", "running", "jumping"];

fn names() -> Vec<String> {
    ["door", "yard", "hall", "gate"].map(String::from).to_vec()
}

/// A result of stream `stream`: its own label first in the top-k, `stream` frames dropped.
fn stream_result(stream: usize, index: u64, captured: Instant) -> FrameResult {
    let mut r = result(index, 10.0, captured);
    let label = LABELS[stream];
    r.label = Some(label.into());
    r.top[0].label = label.into();
    r.top.retain(|s| s.label != label || s.score > 0.5);
    r.dropped = stream as u64;
    r
}

/// Four streams, three results each 40 ms apart (25 results a second per stream).
fn four_streams() -> AppState {
    let mut state = AppState::with_streams(&options(Source::File("a.mp4".into())), names());
    state.apply_message(Message::ModelLoaded(model_info(true)));
    state.apply_message(Message::StreamsStarted);
    let start = Instant::now();
    for i in 0..3u64 {
        let at = start + Duration::from_millis(40 * i);
        for stream in 0..4 {
            state.apply_stream_frame(stream, stream_result(stream, i, at), at);
        }
    }
    state
}

#[test]
fn four_streams_show_four_tiles_with_their_labels_and_figures() {
    let mut harness = harness(four_streams());
    harness.run();
    for (stream, label) in LABELS.iter().enumerate() {
        harness.get_by_label(label);
        harness.get_by_label(&format!("25.0 fps, {stream} dropped"));
        let name = &names()[stream];
        harness.get_by_label(&format!("tile {stream} ({name}): enlarge"));
        let texture = harness
            .state()
            .tile_texture(stream)
            .expect("a texture per tile");
        assert_eq!(texture.size(), [320, 240]);
    }
    let state = harness.state().state();
    assert_eq!(state.tiles.len(), 4);
    for tile in &state.tiles {
        assert_eq!(tile.frames_received, 3);
        assert_eq!(tile.frames_shown, 1, "only the newest picture is drawn");
        assert!((tile.fps - 25.0).abs() < 1e-6, "{}", tile.fps);
    }
    // The window's figures count every stream: 12 results, 4 uploads, 0+1+2+3 drops, and 11
    // intervals over the 80 ms the results span (137.5 results a second).
    assert_eq!(state.frames_received, 12);
    assert_eq!(state.frames_shown, 4);
    assert_eq!(state.dropped, 6);
    assert!((state.fps - 137.5).abs() < 1e-6, "{}", state.fps);
    harness.get_by_label("4 shown / 12 received");
    // No single video in a grid, and no top-k bars until a tile is shown alone.
    assert!(harness.state().texture().is_none());
    assert!(harness.query_by_label("waving  87.3%").is_none());
}

#[test]
fn a_click_enlarges_a_tile_and_a_click_or_esc_goes_back() {
    let mut harness = harness(four_streams());
    harness.run();
    harness.state_mut().state_mut().take_commands();
    harness.get_by_label("tile 2 (hall): enlarge").click();
    harness.run();
    assert_eq!(harness.state().state().enlarged, Some(2));
    // Alone: its label and top-k bars, the others' tiles gone.
    harness.get_by_label("running");
    harness.get_by_label("running  87.3%");
    assert!(harness.query_by_label("waving").is_none());
    assert!(harness.query_by_label("tile 0 (door): enlarge").is_none());
    harness.get_by_label("Reset stream (R)");

    // R resets this stream's rows only.
    harness.key_press(Key::R);
    harness.run();
    let commands = harness.state_mut().state_mut().take_commands();
    assert!(
        matches!(
            commands.as_slice(),
            [Command::StreamControl(2, Control::Reset)]
        ),
        "{commands:?}"
    );
    // A click on the enlarged tile goes back to the grid.
    harness
        .get_by_label("tile 2 (hall): back to the grid")
        .click();
    harness.run();
    assert_eq!(harness.state().state().enlarged, None);
    harness.get_by_label("waving");
    harness.get_by_label("Reset cache (R)");
    // In the grid R resets every stream.
    harness.key_press(Key::R);
    harness.run();
    let commands = harness.state_mut().state_mut().take_commands();
    assert!(
        matches!(commands.as_slice(), [Command::Control(Control::Reset)]),
        "{commands:?}"
    );
    // Esc goes back too, and the button does.
    harness.get_by_label("tile 3 (gate): enlarge").click();
    harness.run();
    assert_eq!(harness.state().state().enlarged, Some(3));
    harness.key_press(Key::Escape);
    harness.run();
    assert_eq!(harness.state().state().enlarged, None);
    harness.get_by_label("tile 1 (yard): enlarge").click();
    harness.run();
    harness.get_by_label("Back to the grid (Esc)").click();
    harness.run();
    assert_eq!(harness.state().state().enlarged, None);
}

fn failed(source: &str, error: &str) -> Summary {
    let none = shiftlive::bench::Stats::of(&[]);
    Summary {
        source: source.into(),
        frames_processed: 0,
        frames_captured: 0,
        frames_dropped: 0,
        frames_strided: 0,
        frames_paused: 0,
        fps: 0.0,
        latency_ms: LatencySummary {
            total: none,
            capture_to_ring: none,
            preprocess: none,
            model: none,
        },
        error: Some(error.into()),
        damaged: false,
    }
}

/// Pixels of `image` in `rect` (points = pixels here) within 30 of `want` on every channel.
fn count_near(image: &image::RgbaImage, rect: egui::Rect, want: [u8; 3]) -> usize {
    let (x0, y0) = (rect.left() as u32, rect.top() as u32);
    let (x1, y1) = (rect.right() as u32, rect.bottom() as u32);
    (y0..y1.min(image.height()))
        .flat_map(|y| (x0..x1.min(image.width())).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = image.get_pixel(x, y).0;
            p.iter().zip(want).all(|(&a, b)| a.abs_diff(b) < 30)
        })
        .count()
}

#[test]
fn a_failed_stream_shows_its_error_in_a_red_tile_and_the_others_run() {
    let mut state = four_streams();
    let error = "cannot open /cams/gate.mp4: No such file or directory";
    state.apply_message(Message::StreamEnded(3, Box::new(failed("gate", error))));
    let mut harness = harness(state);
    harness.run();
    harness.get_by_label(&format!("failed: {error}"));
    for label in &LABELS[..3] {
        harness.get_by_label(label);
    }
    assert!(harness.query_by_label("jumping").is_none());
    let tiles = &harness.state().state().tiles;
    assert_eq!(tiles[3].error.as_deref(), Some(error));
    assert!(tiles[3].ended);
    assert!(tiles[..3].iter().all(|t| t.error.is_none() && !t.ended));
    // The failed tile is red, the others are not.
    let image = harness.render().expect("a rendered window");
    let red = shiftlive::ui::FAILED.to_array();
    let rect = |stream: usize| {
        let name = &names()[stream];
        harness
            .get_by_label(&format!("tile {stream} ({name}): enlarge"))
            .rect()
    };
    let (gate, door) = (rect(3), rect(0));
    let reds = count_near(&image, gate, [red[0], red[1], red[2]]);
    let area = (gate.width() * gate.height()) as usize;
    assert!(reds > area / 3, "{reds} red pixels of {area}");
    assert_eq!(count_near(&image, door, [red[0], red[1], red[2]]), 0);
}

#[test]
fn when_every_stream_ended_space_replays_the_batch() {
    let mut state = four_streams();
    let summaries = (0..4)
        .map(|stream| StreamSummary {
            stream,
            summary: Summary {
                error: None,
                frames_processed: 3,
                ..failed(&names()[stream], "")
            },
        })
        .collect();
    let totals = StreamsTotals {
        streams: 4,
        failed: 0,
        frames_processed: 12,
        frames_captured: 12,
        frames_dropped: 0,
        fps: 25.0,
        batches: 3,
        mean_batch: 4.0,
    };
    state.apply_message(Message::StreamsSummary(Box::new(StreamsSummary {
        streams: summaries,
        totals,
    })));
    let mut harness = harness(state);
    harness.run();
    assert!(harness.state().state().ended);
    assert!(harness.state().state().tiles.iter().all(|t| t.ended));
    harness.get_by_label("ALL STREAMS ENDED: Space or Replay plays them again");
    // Stream 0 dropped nothing: its figures say it ended.
    harness.get_by_label("25.0 fps, 0 dropped, ended");
    harness.state_mut().state_mut().take_commands();
    harness.key_press(Key::Space);
    harness.run();
    let commands = harness.state_mut().state_mut().take_commands();
    assert!(
        matches!(commands.as_slice(), [Command::ReplayStreams]),
        "{commands:?}"
    );
    // A new run of the batch starts the tiles afresh.
    harness
        .state_mut()
        .state_mut()
        .apply_message(Message::StreamsStarted);
    harness.run();
    let state = harness.state().state();
    assert!(!state.ended);
    assert!(
        state
            .tiles
            .iter()
            .all(|t| !t.ended && t.frames_received == 0)
    );
    assert_eq!(state.tiles[2].name, "hall");
}

/// A recogniser of `streams` streams with random weights, as the command line loads one.
fn tiny(streams: usize) -> anyhow::Result<LoadedModel> {
    let config = ModelConfig::from_preset("tsm_mobilenet_v2_tiny_online")?;
    let options = RecognizerOptions {
        streams,
        ..Default::default()
    };
    Ok(LoadedModel {
        recognizer: Recognizer::random(&config, options)?,
        labels: Vec::new(),
        device: "cpu".into(),
        stride: None,
        trained: false,
    })
}

/// The results of each of `n` streams taken within `wait` (a message is kept, not dropped).
fn results_within(
    session: &Session,
    n: usize,
    wait: Duration,
    messages: &mut Vec<Message>,
) -> Vec<Vec<FrameResult>> {
    let deadline = Instant::now() + wait;
    let mut results: Vec<Vec<FrameResult>> = vec![Vec::new(); n];
    while Instant::now() < deadline {
        while let Some(shown) = session.try_frame() {
            match shown {
                Shown::StreamResult(stream, result) => {
                    assert!(result.image.is_some(), "the window's results carry frames");
                    results[stream].push(*result);
                }
                Shown::StreamPicture(..) => {}
                other => panic!("a batch gave a single stream's frame: {other:?}"),
            }
        }
        messages.extend(std::iter::from_fn(|| session.try_message()));
        std::thread::sleep(Duration::from_millis(5));
    }
    results
}

fn warming_from_one(result: &FrameResult) -> bool {
    matches!(result.label_state, LabelState::WarmingUp { frames: 1, .. })
}

#[test]
fn a_session_runs_a_batch_resets_one_stream_pauses_all_and_sums_up() {
    let pattern = |name: &str| StreamSource {
        name: name.into(),
        source: Source::TestPattern {
            pattern: "ball".into(),
            width: 160,
            height: 120,
            fps: 30,
            frames: None,
        },
    };
    let missing = StreamSource {
        name: "gone".into(),
        source: Source::File(Path::new("/nonexistent/gone.mp4").into()),
    };
    let streams = vec![pattern("a"), pattern("b"), missing];
    let config = SessionConfig {
        options: PipelineOptions {
            max_retries: None,
            ..options(streams[0].source.clone())
        },
        live_retries: None,
        loader: Box::new(|_| tiny(3)),
        stride_flag: None,
        repaint: Box::new(|| {}),
    };
    let session = Session::start_streams(config, streams).unwrap();
    let mut messages = Vec::new();
    let results = results_within(&session, 3, Duration::from_secs(3), &mut messages);
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, Message::StreamsStarted))
    );
    let ended = messages.iter().find_map(|m| match m {
        Message::StreamEnded(stream, summary) => Some((*stream, summary.error.clone())),
        _ => None,
    });
    let (stream, error) = ended.expect("the missing file's stream ends");
    assert_eq!(stream, 2);
    assert!(error.is_some_and(|e| e.contains("/nonexistent/gone.mp4")));
    // Both patterns run (30 fps each; a debug build on a busy machine drops some).
    for (stream, taken) in results.iter().enumerate().take(2) {
        assert!(taken.len() >= 10, "stream {stream}: {}", taken.len());
        assert!(!taken.iter().skip(12).any(warming_from_one));
    }
    assert!(results[2].is_empty());

    // A reset of stream 1 only: its smoothing warms up again, stream 0 runs on.
    assert!(session.send(Command::StreamControl(1, Control::Reset)));
    let after = results_within(&session, 3, Duration::from_secs(2), &mut messages);
    assert!(
        after[1].iter().any(warming_from_one),
        "stream 1 was not reset"
    );
    assert!(!after[0].iter().any(warming_from_one), "stream 0 was reset");

    // A pause holds every stream; the resume resets both live streams (their time step jumped).
    assert!(session.send(Command::Control(Control::Pause(true))));
    results_within(&session, 3, Duration::from_millis(300), &mut messages);
    let paused = results_within(&session, 3, Duration::from_millis(500), &mut messages);
    assert!(paused.iter().all(Vec::is_empty), "results while paused");
    assert!(session.send(Command::Control(Control::Pause(false))));
    let resumed = results_within(&session, 3, Duration::from_secs(2), &mut messages);
    for (stream, taken) in resumed.iter().enumerate().take(2) {
        let first = taken
            .first()
            .unwrap_or_else(|| panic!("stream {stream} did not resume"));
        assert!(warming_from_one(first), "stream {stream}");
    }

    let closed = session.close_all();
    assert!(closed.summary.is_none());
    let summary = closed.streams.expect("the batch's summary");
    assert_eq!(summary.totals.streams, 3);
    assert_eq!(summary.totals.failed, 1);
    assert!(
        summary
            .streams
            .iter()
            .any(|s| s.stream == 2 && s.summary.error.is_some())
    );
    let processed: u64 = summary
        .streams
        .iter()
        .map(|s| s.summary.frames_processed)
        .sum();
    let taken: usize = [&results, &after, &resumed]
        .iter()
        .flat_map(|r| r.iter().map(Vec::len))
        .sum();
    assert!(
        processed as usize >= taken,
        "{processed} processed, {taken} results taken"
    );
}

#[test]
fn a_session_replays_a_batch_that_ended() {
    let pattern = Source::TestPattern {
        pattern: "smpte".into(),
        width: 96,
        height: 72,
        fps: 30,
        frames: None,
    };
    let streams: Vec<StreamSource> = ["a", "b"]
        .map(|name| StreamSource {
            name: name.into(),
            source: pattern.clone(),
        })
        .to_vec();
    let config = SessionConfig {
        options: PipelineOptions {
            max_frames: Some(5),
            ..options(pattern.clone())
        },
        live_retries: None,
        loader: Box::new(|_| tiny(2)),
        stride_flag: None,
        repaint: Box::new(|| {}),
    };
    let session = Session::start_streams(config, streams).unwrap();
    for run in 0..2 {
        let mut messages = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut results = [0usize; 2];
        let summary = loop {
            assert!(Instant::now() < deadline, "run {run}: no summary");
            let taken = results_within(&session, 2, Duration::from_millis(50), &mut messages);
            for (n, taken) in results.iter_mut().zip(taken) {
                *n += taken.len();
            }
            let found = messages.iter().find_map(|m| match m {
                Message::StreamsSummary(s) => Some(s.clone()),
                _ => None,
            });
            if let Some(summary) = found {
                break summary;
            }
        };
        assert!(
            messages
                .iter()
                .any(|m| matches!(m, Message::StreamsStarted))
        );
        assert_eq!(results, [5, 5], "run {run}");
        assert_eq!(summary.totals.frames_processed, 10);
        assert_eq!(summary.totals.failed, 0);
        assert!(session.send(Command::ReplayStreams));
    }
}
