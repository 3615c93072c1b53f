//! Many streams, one model: the batched step advances only the streams that have a frame and
//! equals each stream run alone; four sources of different lengths and frame rates in one batched
//! run give, per stream, the logits that source gives alone; a failing source (at start, or a live
//! one lost mid-run and reopened) touches only its own stream; `live --streams 8` ends on SIGINT
//! with a summary per stream.
#![cfg(feature = "capture")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pipelines::{encode_pattern as encode, max_diff, noise, run_alone, run_batched};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shiftlive::capture::Source;
use shiftlive::model::{ActionNet, ModelConfig, checkpoint};
use shiftlive::online::{Recognizer, RecognizerOptions};
use shiftlive::pipeline::{
    BatchPipeline, Event, FrameResult, PipelineOptions, StreamSource, StreamsEvent, StreamsSummary,
    Summary,
};
use shiftlive::preprocess::FrameRef;
use tch::{Device, nn};

/// A small online network with lively weights, saved as a checkpoint.
fn model(dir: &Path) -> PathBuf {
    tch::manual_seed(17);
    let config = ModelConfig {
        input_size: 64,
        ..ModelConfig::tsm_r18_tiny_online()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    common::lively(&vs, &net, 64);
    let path = dir.join("model.safetensors");
    checkpoint::save(&vs, &config, &[], &path).unwrap();
    path
}

fn recognizer(model: &Path, streams: usize) -> Recognizer {
    let options = RecognizerOptions {
        streams,
        ..Default::default()
    };
    Recognizer::from_checkpoint(model, options).unwrap()
}

fn options(source: Source) -> PipelineOptions {
    PipelineOptions {
        emit_logits: true,
        max_retries: Some(0),
        ..PipelineOptions::new(source)
    }
}

/// One source alone through the single-stream pipeline.
fn alone(model: &Path, source: Source) -> (Vec<FrameResult>, Summary) {
    run_alone(recognizer(model, 1), options(source))
}

/// A batched run to its end: each stream's results, and the summary.
fn batched(
    model: &Path,
    base: PipelineOptions,
    sources: Vec<Source>,
) -> (Vec<Vec<FrameResult>>, StreamsSummary) {
    let n = sources.len();
    let sources = sources.into_iter().map(StreamSource::unnamed).collect();
    run_batched(recognizer(model, n), &base, sources)
}

#[test]
fn a_batched_step_advances_only_the_streams_with_a_frame_and_equals_each_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let streams = 4;
    let mut batch = recognizer(&model, streams);
    let mut singles: Vec<Recognizer> = (0..streams).map(|_| recognizer(&model, 1)).collect();
    // Each stream has frames of its own size; each tick a different set of streams has a frame.
    let sizes = [(96, 72), (64, 64), (120, 90), (80, 60)];
    let ticks: [&[usize]; 8] = [
        &[0, 1, 2, 3],
        &[0, 2],
        &[3],
        &[1, 2, 3],
        &[0, 1, 2, 3],
        &[2],
        &[0, 3],
        &[0, 1, 2, 3],
    ];
    let mut worst = 0f32;
    let mut spread = 0f32;
    for (tick, active) in ticks.iter().enumerate() {
        if tick == 5 {
            // Stream 1 alone forgets its past; the others keep theirs.
            batch.reset_streams(&[1]);
            singles[1].reset();
        }
        let data: Vec<Vec<u8>> = active
            .iter()
            .map(|&s| noise(sizes[s].0, sizes[s].1))
            .collect();
        let frames: Vec<FrameRef> = active
            .iter()
            .zip(&data)
            .map(|(&s, d)| FrameRef::rgb(d, sizes[s].0, sizes[s].1))
            .collect();
        let (logits, _) = batch.step_streams(&frames, active).unwrap();
        let logits = logits.to_vec();
        let classes = logits.len() / active.len();
        for ((&s, frame), row) in active.iter().zip(&frames).zip(logits.chunks(classes)) {
            let (own, _) = singles[s].step(frame).unwrap();
            worst = worst.max(max_diff(row, own));
            spread = spread.max(max_diff(row, &vec![0.0; classes]));
        }
    }
    eprintln!("batched vs alone over 8 ticks: max abs diff {worst:.3e} (logits up to {spread:.2})");
    assert!(spread > 0.1, "logits of order one: {spread}");
    assert!(worst <= 1e-5, "max abs diff {worst}");
}

#[test]
fn four_sources_of_different_lengths_and_rates_give_each_the_logits_it_gives_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let clips = [
        (12, 10, 160, 120, "ball"),
        (25, 25, 128, 96, "smpte"),
        (7, 30, 96, 96, "snow"),
        (18, 15, 176, 144, "ball"),
    ];
    let sources: Vec<Source> = clips
        .iter()
        .enumerate()
        .map(|(i, &(frames, fps, w, h, pattern))| {
            let path = dir.path().join(format!("clip{i}.avi"));
            encode(&path, frames, w, h, fps, pattern);
            Source::File(path)
        })
        .collect();
    let (results, summary) = batched(&model, options(sources[0].clone()), sources.clone());
    assert_eq!(summary.streams.len(), 4);
    assert_eq!(summary.totals.failed, 0);
    assert!(
        summary.totals.mean_batch > 1.0,
        "streams share steps: {}",
        summary.totals.mean_batch
    );
    let mut worst = 0f32;
    for (stream, source) in sources.into_iter().enumerate() {
        let frames = u64::from(clips[stream].0);
        let entry = &summary.streams[stream];
        assert_eq!(entry.stream, stream);
        assert_eq!(entry.summary.frames_processed, frames, "stream {stream}");
        assert_eq!(entry.summary.frames_dropped, 0);
        let (own, own_summary) = alone(&model, source);
        assert_eq!(own_summary.frames_processed, frames);
        assert_eq!(results[stream].len(), own.len(), "stream {stream}");
        for (a, b) in results[stream].iter().zip(&own) {
            assert_eq!(a.frame, b.frame);
            let diff = max_diff(a.logits.as_ref().unwrap(), b.logits.as_ref().unwrap());
            worst = worst.max(diff);
        }
    }
    eprintln!(
        "4 streams ({} frames in {} batches) vs each alone: max abs diff {worst:.3e}",
        summary.totals.frames_processed, summary.totals.batches
    );
    assert!(worst <= 1e-5, "max abs diff {worst}");
}

#[test]
fn a_failing_source_touches_only_its_own_stream() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let clip = dir.path().join("clip.avi");
    encode(&clip, 40, 160, 120, 25, "ball");
    // Stream 1 cannot start; stream 2 is a live source unplugged after 8 frames every time, reopened
    // twice; the file (fast, nothing lost) runs on undisturbed.
    let vanishing = Source::TestPattern {
        pattern: "ball".into(),
        width: 160,
        height: 120,
        fps: 30,
        frames: Some(8),
    };
    let sources = vec![
        Source::File(clip.clone()),
        Source::File(dir.path().join("missing.avi")),
        vanishing,
    ];
    let base = PipelineOptions {
        max_retries: Some(2),
        ..options(sources[0].clone())
    };
    let (results, summary) = batched(&model, base, sources);
    let [file, missing, live] = &summary.streams[..] else {
        panic!("three entries: {:?}", summary.streams.len());
    };
    let error = missing
        .summary
        .error
        .as_deref()
        .expect("the missing file fails");
    assert!(error.contains("missing.avi"), "{error}");
    assert_eq!(missing.summary.frames_processed, 0);
    assert!(results[1].is_empty());
    let error = live
        .summary
        .error
        .as_deref()
        .expect("giving up is reported");
    assert!(error.contains("gave up after 2 retries"), "{error}");
    assert_eq!(
        live.summary.frames_captured, 24,
        "three openings of 8 frames"
    );
    assert_eq!(file.summary.error, None);
    assert_eq!(file.summary.frames_processed, 40);
    assert_eq!(summary.totals.failed, 2);

    // The file's logits are what it gives alone.
    let (own, _) = alone(&model, Source::File(clip));
    let worst = results[0]
        .iter()
        .zip(&own)
        .map(|(a, b)| max_diff(a.logits.as_ref().unwrap(), b.logits.as_ref().unwrap()))
        .fold(0.0, f32::max);
    eprintln!(
        "file beside a failing and a reopened stream: max abs diff {worst:.3e}; live stream {} results",
        results[2].len()
    );
    assert_eq!(results[0].len(), 40);
    assert!(worst <= 1e-5, "max abs diff {worst}");
    // The live stream's rows reset at its reopening: the first frame after it (the same test
    // pattern image) gives the logits of the run's first frame.
    let first = results[2][0].logits.clone().unwrap();
    if let Some(after) = results[2].iter().find(|r| r.frame == 8) {
        let diff = max_diff(after.logits.as_ref().unwrap(), &first);
        eprintln!("live stream, frame 8 (after the reopening) vs frame 0: {diff:.3e}");
        assert!(diff <= 1e-5, "frame 8 starts a new stream: {diff}");
    }
}

/// Waits for a child for up to `limit`; kills it and fails if it does not end.
fn wait(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("shiftlive did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn eight_test_patterns_run_batched_and_end_on_sigint_with_a_summary_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let stdout = dir.path().join("out.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .args(["live", "--test-pattern", "--streams", "8", "--fps", "10"])
        .args(["--width", "96", "--height", "72", "--headless", "--model"])
        .arg(&model)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Ctrl-C once every stream has given results (a slow start on a loaded machine included).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&stdout).unwrap_or_default();
        if (0..8).all(|i| text.contains(&format!("{{\"stream\":{i},"))) {
            break;
        }
        assert!(Instant::now() < deadline, "not every stream gave a result");
        assert!(child.try_wait().unwrap().is_none(), "shiftlive ended early");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit {status:?}");
    let text = std::fs::read_to_string(&stdout).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = &lines.last().unwrap()["summary"];
    let streams = summary["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 8);
    for (i, s) in streams.iter().enumerate() {
        assert_eq!(s["stream"], i);
        assert!(
            s["frames_processed"].as_u64().unwrap() > 0,
            "stream {i}: {s}"
        );
        let frames = lines
            .iter()
            .filter(|l| l["stream"] == i && l.get("frame").is_some())
            .count() as u64;
        assert_eq!(frames, s["frames_processed"].as_u64().unwrap());
    }
    let totals = &summary["totals"];
    eprintln!("8 streams: {totals}");
    assert_eq!(totals["streams"], 8);
    assert_eq!(totals["failed"], 0);
    assert!(
        lines[0]["source"]
            .as_str()
            .unwrap()
            .contains("test pattern")
    );
}

#[test]
fn bad_sources_report_each_stream_and_all_bad_is_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let clip = dir.path().join("clip.avi");
    encode(&clip, 6, 96, 72, 25, "ball");
    let list = dir.path().join("sources.txt");
    std::fs::write(&list, "good = clip.avi\nbad = nope.avi\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
            .args(args)
            .args(["--headless", "--model"])
            .arg(&model)
            .output()
            .unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (
            out.status,
            lines,
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (status, lines, _) = run(&["play", "--sources", list.to_str().unwrap()]);
    assert!(status.success());
    let errors: Vec<_> = lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["stream"], 1);
    assert_eq!(errors[0]["source"], "bad");
    assert!(errors[0]["error"].as_str().unwrap().contains("nope.avi"));
    let good = lines.iter().filter(|l| l["source"] == "good").count();
    assert_eq!(good, 6, "every frame of the good source");

    let (status, lines, stderr) = run(&["play", "a.mp4", "b.mp4", "c.mp4"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let errors: Vec<_> = lines.iter().filter(|l| l.get("error").is_some()).collect();
    assert_eq!(errors.len(), 3, "one error line each: {lines:?}");
    assert!(stderr.contains("all 3 sources failed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn more_live_sources_than_the_model_can_hold_drop_counted_frames_and_stop_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    // 16 cameras at 30 fps and a model step held to 60 ms: far more frames than it can take.
    let sources: Vec<Source> = (0..16)
        .map(|_| Source::TestPattern {
            pattern: "ball".into(),
            width: 96,
            height: 72,
            fps: 30,
            frames: None,
        })
        .collect();
    let base = PipelineOptions {
        throttle: Some(Duration::from_millis(60)),
        ..options(sources[0].clone())
    };
    let n = sources.len();
    let sources = sources.into_iter().map(StreamSource::unnamed).collect();
    let pipeline = BatchPipeline::start(recognizer(&model, n), &base, sources).unwrap();
    let run_for = Duration::from_secs(4);
    let start = Instant::now();
    let mut frames = 0usize;
    while start.elapsed() < run_for {
        if let Ok(StreamsEvent::Stream {
            event: Event::Frame(_),
            ..
        }) = pipeline.events().recv_timeout(Duration::from_millis(100))
        {
            frames += 1;
        }
    }
    let stopping = Instant::now();
    let inferred = pipeline.join().expect("the batched thread ends");
    let stop_time = stopping.elapsed();
    let summary = inferred.summary;
    eprintln!(
        "16 streams at 30 fps, 60 ms steps: {frames} results, totals {:?}, stopped in {stop_time:?}",
        summary.totals
    );
    assert!(stop_time < Duration::from_secs(10), "{stop_time:?}");
    assert_eq!(summary.streams.len(), 16);
    assert_eq!(summary.totals.failed, 0);
    assert!(summary.totals.frames_dropped > 0, "drops are counted");
    for s in &summary.streams {
        let s = &s.summary;
        // Each ring holds at most 4 frames: everything else captured was processed or dropped.
        assert!(
            s.frames_captured <= s.frames_processed + s.frames_dropped + 5,
            "{s:?}"
        );
    }
}
