//! The capture path end to end on clips these tests encode with GStreamer: every frame of a file
//! processed once in fast mode, results equal to feeding the decoded frames to the recogniser
//! directly, the live test pattern, drop counting under a slow model, and clear errors for bad input.
#![cfg(feature = "capture")]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gstreamer as gst;
use shiftlive::capture::{Capture, CaptureEvent, Frame, Source};
use shiftlive::model::{ActionNet, ModelConfig, checkpoint};
use shiftlive::online::{Recognizer, Smoother, SmoothingOptions};
use shiftlive::pipeline::{Control, Event, FrameResult, Pipeline, PipelineOptions, Summary};
use tch::{Device, nn};

/// Encodes `frames` frames of a moving test pattern.
fn encode(path: &Path, frames: u32, width: u32, height: u32, fps: u32, encoder: &str) {
    gst::init().unwrap();
    let line = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 \
         ! {encoder} ! filesink location={}",
        path.display()
    );
    if let Err(e) = common::gst_run(&line) {
        panic!("encoding {} with '{encoder}' failed: {e}", path.display());
    }
}

fn model(dir: &Path) -> PathBuf {
    tch::manual_seed(5);
    let config = ModelConfig {
        input_size: 64,
        ..ModelConfig::tsm_r18_tiny_online()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = ActionNet::new(&vs.root(), &config).unwrap();
    let path = dir.join("model.safetensors");
    checkpoint::save(&vs, &config, &[], &path).unwrap();
    path
}

fn options(source: Source) -> PipelineOptions {
    PipelineOptions {
        emit_logits: true,
        max_retries: Some(0),
        ..PipelineOptions::new(source)
    }
}

/// Runs a pipeline to its end with a deadline (a hang fails the test instead of blocking CI).
fn run(model: &Path, options: PipelineOptions) -> (Vec<FrameResult>, Summary) {
    let recognizer = Recognizer::from_checkpoint(model, Default::default()).unwrap();
    common::pipelines::run_alone(recognizer, options)
}

fn decode_all(path: &Path) -> Vec<Frame> {
    let mut capture = Capture::open(&Source::File(path.to_path_buf()), false).unwrap();
    let mut frames = Vec::new();
    loop {
        match capture.next(Duration::from_secs(10)).unwrap() {
            CaptureEvent::Frame(f) => frames.push(f),
            CaptureEvent::Pending => {}
            CaptureEvent::Eos => return frames,
        }
    }
}

#[test]
fn every_frame_of_a_file_is_processed_once_and_equals_direct_feeding() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let clips = [
        ("h264.mp4", 40, 322, 242, 25, "x264enc ! mp4mux"),
        ("xvid.avi", 30, 320, 240, 25, "avenc_mpeg4 ! avimux"),
        ("vp8.webm", 33, 160, 120, 30, "vp8enc ! webmmux"),
        ("vp9.mkv", 25, 176, 144, 30, "vp9enc ! matroskamux"),
    ];
    for (name, frames, width, height, fps, encoder) in clips {
        let path = dir.path().join(name);
        encode(&path, frames, width, height, fps, encoder);
        let (results, summary) = run(&model, options(Source::File(path.clone())));
        assert_eq!(summary.error, None, "{name}");
        assert_eq!(
            results.len() as u32,
            frames,
            "{name}: every frame processed"
        );
        assert_eq!(summary.frames_processed, frames as u64);
        assert_eq!(
            summary.frames_dropped, 0,
            "{name}: nothing dropped in fast mode"
        );
        let indices: Vec<u64> = results.iter().map(|r| r.frame).collect();
        assert_eq!(
            indices,
            (0..frames as u64).collect::<Vec<_>>(),
            "{name}: each frame once, in order"
        );

        // The same decoded frames fed to a recogniser by hand give the same logits and labels.
        let decoded = decode_all(&path);
        assert_eq!(decoded.len() as u32, frames);
        assert_eq!(
            (decoded[0].width, decoded[0].height),
            (width as usize, height as usize)
        );
        let mut recognizer = Recognizer::from_checkpoint(&model, Default::default()).unwrap();
        let mut smoother = Smoother::new(SmoothingOptions::default());
        for (frame, result) in decoded.iter().zip(&results) {
            let logits = recognizer.step(&frame.as_frame_ref()).unwrap().0.to_vec();
            let prediction = smoother.push(&logits);
            assert_eq!(
                result.logits.as_deref(),
                Some(&logits[..]),
                "{name} frame {}",
                frame.index
            );
            assert_eq!(result.label, prediction.label.map(|c| format!("class_{c}")));
        }
        eprintln!(
            "{name}: {frames} frames {width}x{height}@{fps}, {:.0} fps end to end",
            summary.fps
        );
    }
}

#[test]
fn the_live_test_pattern_runs_for_n_frames_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let source = Source::TestPattern {
        pattern: "ball".into(),
        width: 320,
        height: 240,
        fps: 30,
        frames: None,
    };
    let (results, summary) = run(
        &model,
        PipelineOptions {
            max_frames: Some(12),
            ..options(source)
        },
    );
    assert_eq!(results.len(), 12);
    assert_eq!(summary.frames_processed, 12);
    assert!(results.windows(2).all(|w| w[0].frame < w[1].frame));
    assert!(summary.latency_ms.total.p50 > 0.0 && summary.latency_ms.total.p50 < 1000.0);
}

#[test]
fn a_slow_model_on_a_live_source_drops_frames_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let source = Source::TestPattern {
        pattern: "snow".into(),
        width: 160,
        height: 120,
        fps: 30,
        frames: None,
    };
    let throttled = PipelineOptions {
        max_frames: Some(6),
        throttle: Some(Duration::from_millis(150)),
        ..options(source)
    };
    let (results, summary) = run(&model, throttled);
    eprintln!(
        "captured {}, processed {}, dropped {}",
        summary.frames_captured, summary.frames_processed, summary.frames_dropped
    );
    assert_eq!(results.len(), 6);
    // 150 ms per frame against a 33 ms source: most frames must be dropped, and every one counted.
    assert!(
        summary.frames_dropped >= 10,
        "dropped {}",
        summary.frames_dropped
    );
    // The frame indices jump over what was dropped: the newest frame is always the one taken.
    let gaps: u64 = results
        .windows(2)
        .map(|w| w[1].frame - w[0].frame - 1)
        .sum();
    assert!(gaps >= 10, "gaps {gaps}");
    assert!(summary.frames_captured >= summary.frames_processed + summary.frames_dropped);
    // The results' latencies stay bounded: the ring never queues old frames.
    assert!(results.iter().all(|r| r.latency_ms.capture_to_ring < 100.0));
}

fn expect_error(model: &Path, source: Source, needle: &str) {
    let recognizer = Recognizer::from_checkpoint(model, Default::default()).unwrap();
    let error = match Pipeline::start(recognizer, options(source.clone())) {
        // The error with its causes, as the command line prints it.
        Err(e) => shiftlive::errors::chain(&e),
        Ok(pipeline) => {
            let mut error = None;
            for event in pipeline.events().iter() {
                match event {
                    Event::Frame(_) | Event::Picture(_) => {
                        panic!("{source:?}: a frame from a bad source")
                    }
                    Event::Summary(s) => error = s.error,
                    Event::Warning(_) => {}
                }
            }
            error.unwrap_or_else(|| panic!("{source:?}: no error reported"))
        }
    };
    eprintln!("{source:?}: {error}");
    assert!(
        error.contains(needle),
        "{source:?}: '{error}' lacks '{needle}'"
    );
}

#[test]
fn bad_sources_fail_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    expect_error(
        &model,
        Source::File(dir.path().join("absent.mp4")),
        "absent.mp4: cannot open",
    );
    expect_error(
        &model,
        Source::File(dir.path().to_path_buf()),
        "is a directory",
    );
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    expect_error(&model, Source::File(empty), "is empty");
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "these are not video frames\n".repeat(100)).unwrap();
    expect_error(&model, Source::File(text), "notes.mp4");
    expect_error(&model, Source::Camera("/dev/video7".into()), "/dev/video7");
    expect_error(
        &model,
        Source::Uri("gopher://example/clip".into()),
        "unsupported URI scheme 'gopher'",
    );
}

#[test]
fn damaged_clips_give_results_for_what_decodes_and_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let good = dir.path().join("good.mp4");
    encode(&good, 50, 160, 120, 25, "x264enc key-int-max=10 ! mp4mux");
    let bytes = std::fs::read(&good).unwrap();

    // Truncated: mp4's index sits at the end, so a cut file has no playable index.
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    expect_error(&model, Source::File(cut), "cut.mp4");

    // Random bytes in the middle of an AVI: the frames before the damage are all processed.
    let avi = dir.path().join("clip.avi");
    encode(&avi, 50, 160, 120, 25, "avenc_mpeg4 ! avimux");
    let mut bytes = std::fs::read(&avi).unwrap();
    let mid = bytes.len() / 2;
    let mut state = 12345u32;
    for b in &mut bytes[mid..mid + 256] {
        state = state.wrapping_mul(1664525).wrapping_add(1013904223);
        *b = (state >> 24) as u8;
    }
    let damaged = dir.path().join("damaged.avi");
    std::fs::write(&damaged, &bytes).unwrap();
    let (results, summary) = run(&model, options(Source::File(damaged)));
    eprintln!(
        "damaged: {} frames, error {:?}",
        summary.frames_processed, summary.error
    );
    assert!(
        results.len() >= 20,
        "frames before the damage are processed: {}",
        results.len()
    );
}

/// A loopback HTTP server for one directory, killed on drop.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn serve(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stream_uri_is_read_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let served = tempfile::tempdir().unwrap();
    encode(
        &served.path().join("clip.webm"),
        30,
        160,
        120,
        30,
        "vp8enc ! webmmux",
    );
    let server = HttpServer::serve(served.path());
    let uri = format!("http://127.0.0.1:{}/clip.webm", server.port);
    let (results, summary) = run(
        &model,
        PipelineOptions {
            max_frames: Some(10),
            ..options(Source::Uri(uri))
        },
    );
    assert_eq!(summary.error, None);
    assert_eq!(results.len(), 10);
    // Nothing listens on the port any more: the stream cannot start, and says so.
    let port = server.port;
    drop(server);
    expect_error(
        &model,
        Source::Uri(format!("http://127.0.0.1:{port}/clip.webm")),
        &format!("127.0.0.1:{port}"),
    );
}

#[test]
fn a_live_source_that_vanishes_is_reopened_with_a_fresh_cache() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    // A live source that ends after 8 frames, every time it is opened: a camera unplugged again and
    // again. The pipeline reopens it twice (250 ms, then 500 ms later) and then gives up.
    let source = Source::TestPattern {
        pattern: "ball".into(),
        width: 160,
        height: 120,
        fps: 30,
        frames: Some(8),
    };
    let start = Instant::now();
    let (results, summary) = run(
        &model,
        PipelineOptions {
            max_retries: Some(2),
            ..options(source)
        },
    );
    let elapsed = start.elapsed();
    eprintln!(
        "{} results in {elapsed:?}, error {:?}",
        results.len(),
        summary.error
    );
    let error = summary.error.expect("giving up is reported");
    assert!(
        error.contains("ended") && error.contains("gave up after 2 retries"),
        "{error}"
    );
    assert_eq!(summary.frames_captured, 24, "three openings of 8 frames");
    assert!(
        results.len() >= 12,
        "frames of every opening are processed: {}",
        results.len()
    );
    assert!(
        elapsed >= Duration::from_millis(750),
        "the backoff waits 250 ms then 500 ms"
    );
    // Frame indices keep counting across the reopenings.
    assert!(results.windows(2).all(|w| w[0].frame < w[1].frame));
    assert!(
        results.iter().any(|r| r.frame >= 16),
        "frames of the third opening arrive"
    );
    // The cache is reset at each discontinuity: the first frame after a reopening gives the same
    // logits as the very first frame of the run (same test-pattern image, fresh cache).
    let first = results[0].logits.clone().unwrap();
    let after_reopen = results
        .iter()
        .find(|r| r.frame == 8)
        .map(|r| r.logits.clone().unwrap());
    if let Some(after_reopen) = after_reopen {
        assert_eq!(after_reopen, first, "frame 8 starts a new stream");
    }
}

#[test]
fn controls_pause_stride_and_smoothing_change_a_running_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let path = dir.path().join("clip.webm");
    encode(&path, 60, 160, 120, 30, "vp8enc ! webmmux");
    let recognizer = Recognizer::from_checkpoint(&model, Default::default()).unwrap();
    let pipeline = Pipeline::start(recognizer, options(Source::File(path))).unwrap();
    let next = || match pipeline.events().recv_timeout(Duration::from_secs(30)) {
        Ok(Event::Frame(r)) => Some(*r),
        Ok(Event::Summary(s)) => {
            assert_eq!(s.error, None);
            None
        }
        Ok(Event::Warning(w)) => panic!("warning from a file: {w}"),
        Ok(Event::Picture(_)) => panic!("a picture without keep_frames"),
        Err(e) => panic!("no event: {e}"),
    };
    for i in 0..5 {
        assert_eq!(next().unwrap().frame, i);
    }
    // Paused: what was already processed arrives, then nothing.
    assert!(pipeline.control(Control::Pause(true)));
    std::thread::sleep(Duration::from_millis(300));
    let mut last = 4;
    while let Ok(event) = pipeline.events().try_recv() {
        if let Event::Frame(r) = event {
            last = r.frame;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        pipeline.events().try_recv().is_err(),
        "a result while paused"
    );
    assert!(last < 59, "the file ended before the pause took effect");

    // Changes made while paused apply from the next frame: every third frame, top-2.
    assert!(pipeline.control(Control::Stride(3)));
    assert!(pipeline.control(Control::Smoothing(SmoothingOptions {
        top_k: 2,
        ..SmoothingOptions::default()
    })));
    assert!(pipeline.control(Control::Pause(false)));
    let mut after = Vec::new();
    while let Some(result) = next() {
        assert_eq!(result.top.len(), 2);
        after.push(result.frame);
    }
    let expected: Vec<u64> = (last + 1..60).step_by(3).collect();
    assert_eq!(after, expected, "stride 3 from the frame after the pause");
    // The recogniser comes back for the next source.
    assert!(pipeline.finish().is_some());
}

/// Writes every decoded frame of `clip` as a numbered PNG (lossless): img_00001.png, ...
#[test]
fn a_paused_realtime_file_waits_and_skips_nothing_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let path = dir.path().join("clip.webm");
    encode(&path, 45, 160, 120, 30, "vp8enc ! webmmux");
    let recognizer = Recognizer::from_checkpoint(&model, Default::default()).unwrap();
    let started = Instant::now();
    let pipeline = Pipeline::start(
        recognizer,
        PipelineOptions {
            realtime: true,
            ..options(Source::File(path))
        },
    )
    .unwrap();
    let mut frames = Vec::new();
    let summary = loop {
        match pipeline.events().recv_timeout(Duration::from_secs(30)) {
            Ok(Event::Frame(r)) => {
                frames.push(r.frame);
                // 10 results in (about a third of a second of the clip): pause for 1.5 s.
                if frames.len() == 10 {
                    assert!(pipeline.control(Control::Pause(true)));
                    std::thread::sleep(Duration::from_millis(1500));
                    assert!(pipeline.control(Control::Pause(false)));
                }
            }
            Ok(Event::Summary(s)) => break *s,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => panic!("no event: {e}"),
        }
    };
    // The clip's 1.5 s at 30 fps plus the pause: it waited instead of skipping 45 frames' worth.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2800), "{took:?}");
    assert_eq!(summary.error, None);
    assert_eq!(summary.frames_captured, 45);
    // On resume the file goes on where it stopped: the next result is one of the few frames the
    // ring held (4), not 45 frames (the pause's length) later. Drops elsewhere are the model's
    // (a loaded machine), counted as such.
    let (before, after) = (frames[9], frames[10]);
    assert!(after <= before + 6, "{before} -> {after}: {frames:?}");
    assert!(
        frames.len() >= 25,
        "{} of 45 processed: {frames:?}",
        frames.len()
    );
}

fn write_pngs(clip: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let pattern = dir.join("img_%05d.png");
    let line = format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! pngenc ! multifilesink index=1 location={}",
        clip.display(),
        pattern.display()
    );
    if let Err(e) = common::gst_run(&line) {
        panic!("writing PNGs of {}: {e}", clip.display());
    }
}

/// A directory of numbered frames plays like the video they came from: the same frames, the
/// same logits; a gap in the numbering or a frame of another size is a clear error.
#[test]
fn a_frame_directory_plays_like_its_video() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let clip = dir.path().join("clip.avi");
    encode(&clip, 20, 96, 72, 25, "jpegenc quality=90 ! avimux");
    let frames = dir.path().join("frames");
    write_pngs(&clip, &frames);
    let (from_video, _) = run(&model, options(Source::File(clip.clone())));
    let (from_frames, summary) = run(
        &model,
        options(Source::Frames {
            dir: frames.clone(),
            fps: 25,
        }),
    );
    assert_eq!(summary.frames_processed, 20);
    assert_eq!(from_frames.len(), from_video.len());
    for (a, b) in from_frames.iter().zip(&from_video) {
        assert_eq!(a.frame, b.frame);
        assert_eq!(a.logits, b.logits, "frame {}", a.frame);
    }

    // A gap: frame 7 removed.
    let gap = dir.path().join("gap");
    write_pngs(&clip, &gap);
    std::fs::remove_file(gap.join("img_00007.png")).unwrap();
    expect_error(
        &model,
        Source::Frames { dir: gap, fps: 25 },
        "img_00006.png is followed by img_00008.png",
    );
    // Mixed sizes: frame 5 replaced by a frame of another size.
    let mixed = dir.path().join("mixed");
    write_pngs(&clip, &mixed);
    let other = dir.path().join("other.avi");
    encode(&other, 2, 64, 48, 25, "jpegenc ! avimux");
    let other_frames = dir.path().join("other");
    write_pngs(&other, &other_frames);
    std::fs::copy(
        other_frames.join("img_00001.png"),
        mixed.join("img_00005.png"),
    )
    .unwrap();
    // The frames before it are processed, then the run ends with the error.
    let (before, summary) = run(
        &model,
        options(Source::Frames {
            dir: mixed,
            fps: 25,
        }),
    );
    assert_eq!(before.len(), 4);
    let error = summary.error.unwrap_or_default();
    assert!(
        error.contains("mixed frame sizes: frame 5 is 64x48, the first was 96x72"),
        "{error}"
    );
    // No frames at all.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    expect_error(
        &model,
        Source::Frames {
            dir: empty,
            fps: 25,
        },
        "no frames",
    );
}
