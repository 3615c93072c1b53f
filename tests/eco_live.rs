//! ECO in `live` and `play`: the recogniser runs each stream's working memory (an answer every N
//! frames) and equals `EcoRunner` on the same preprocessed frames, stream by stream, whatever
//! streams a tick carries; the pipeline reports the memory (warming up until the first answer,
//! `fresh` on the frames that bring one), a batched run equals each source alone, and the
//! runtimes that cannot run ECO are refused with the reason.
#![cfg(feature = "capture")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pipelines::{encode_pattern, max_diff, noise, run_alone, run_batched};

use std::path::{Path, PathBuf};

use shiftlive::backend::{Backend, BackendOptions};
use shiftlive::capture::Source;
use shiftlive::model::{ActionNet, ModelConfig, checkpoint};
use shiftlive::online::{EcoOptions, EcoRunner, LabelState, Recognizer, RecognizerOptions};
use shiftlive::pipeline::{FrameResult, PipelineOptions, StreamSource};
use shiftlive::preprocess::{FrameRef, Preprocessor, Transform};
use tch::{Device, Kind, Tensor, nn};

/// N, the memory of eco_lite_tiny.
const N: usize = 8;

/// A small ECO network with lively weights, saved as a checkpoint.
fn model(dir: &Path) -> PathBuf {
    tch::manual_seed(23);
    let config = ModelConfig::eco_lite_tiny();
    assert_eq!(config.num_segments as usize, N);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    common::lively(&vs, &net, config.input_size);
    let path = dir.join("eco.safetensors");
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

fn softmax(logits: &[f32]) -> Vec<f32> {
    let t = Tensor::from_slice(logits).softmax(-1, Kind::Float);
    Vec::<f32>::try_from(&t).unwrap()
}

#[test]
fn the_recognizer_runs_each_streams_memory_as_the_runner_does() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let streams = 3;
    let mut batch = recognizer(&model, streams);
    assert_eq!(batch.backend(), Backend::Libtorch);
    let side = batch.config().input_size as usize;
    // The reference: one runner per stream, fed the frames the recogniser preprocesses.
    let mut runners: Vec<EcoRunner> = (0..streams)
        .map(|_| {
            let (vs, net) = ActionNet::load(&model, Device::Cpu).unwrap();
            EcoRunner::new(vs, net, RecognizerOptions::default(), EcoOptions::default()).unwrap()
        })
        .collect();
    let mut preprocessors: Vec<Preprocessor> = (0..streams)
        .map(|_| Preprocessor::new(Transform::imagenet(side)))
        .collect();
    let mut averages: Vec<Option<Vec<f32>>> = vec![None; streams];
    let mut pushed = vec![0usize; streams];
    let sizes = [(96, 72), (64, 64), (80, 60)];
    let (mut worst, mut answers, mut spread) = (0f32, 0, 0f32);
    let classes = batch.config().num_classes as f32;
    for tick in 0..5 * N {
        // Stream 0 every tick, stream 1 every other tick, stream 2 two ticks of three.
        let active: Vec<usize> = (0..streams)
            .filter(|&s| match s {
                0 => true,
                1 => tick % 2 == 0,
                _ => tick % 3 != 1,
            })
            .collect();
        if tick == 3 * N + 1 {
            // Stream 2 alone starts afresh; the others keep their memories.
            batch.reset_streams(&[2]);
            runners[2].reset();
            averages[2] = None;
            pushed[2] = 0;
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
        let (logits, _) = batch.step_streams(&frames, &active).unwrap();
        let logits = logits.to_vec();
        let width = logits.len() / active.len();
        for ((&s, frame), row) in active.iter().zip(&frames).zip(logits.chunks(width)) {
            let x = Tensor::from_slice(preprocessors[s].run(frame).unwrap()).view([
                1,
                3,
                side as i64,
                side as i64,
            ]);
            let update = runners[s].push(&x).unwrap();
            pushed[s] += 1;
            let status = batch.memory_status(s).unwrap();
            assert_eq!(status.every, N);
            assert_eq!(status.fresh, update.is_some(), "stream {s}, tick {tick}");
            assert_eq!(status.fresh, pushed[s] % N == 0, "stream {s}, tick {tick}");
            assert_eq!(status.position, pushed[s] % N);
            if let Some(update) = update {
                answers += 1;
                averages[s] = Some(Vec::<f32>::try_from(&update.average).unwrap());
            }
            match &averages[s] {
                // Before the first answer: zeros (uniform), and no update counted.
                None => {
                    assert_eq!(status.updates, 0);
                    assert!(row.iter().all(|&v| v == 0.0), "stream {s}: {row:?}");
                }
                // After: the log of the running average, so a softmax gives it back.
                Some(average) => {
                    worst = worst.max(max_diff(&softmax(row), average));
                    // How far the answer is from uniform: the comparison must be able to fail.
                    let uniform = 1.0 / classes;
                    spread = average
                        .iter()
                        .fold(spread, |m, &p| m.max((p - uniform).abs()));
                }
            }
        }
    }
    eprintln!(
        "ECO in the recogniser vs EcoRunner: {answers} answers, max abs diff {worst:.2e} \
         (averages up to {spread:.3} from uniform)"
    );
    assert!(answers >= 6, "{answers}");
    // 100 times the bar: a stream's memory mixed up with another's would show.
    assert!(spread > 1e-3, "averages all but uniform: {spread}");
    assert!(worst <= 1e-5, "max abs diff {worst}");
}

#[test]
fn runtimes_refuse_eco_and_auto_keeps_libtorch() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let mut rec = recognizer(&model, 1);
    let runtimes = BackendOptions::from_env();
    for backend in [Backend::Onnxruntime, Backend::Openvino] {
        let e = rec.set_backend(backend, &runtimes).unwrap_err().to_string();
        assert!(e.contains("ECO"), "{e}");
        assert_eq!(rec.backend(), Backend::Libtorch);
        assert!(rec.memory_status(0).is_some(), "still ECO's memory");
    }
    assert_eq!(
        rec.set_backend(Backend::Auto, &runtimes).unwrap(),
        Backend::Libtorch
    );
    assert!(rec.memory_status(0).is_some());
    // A frame-by-frame model has no memory.
    let tsm = Recognizer::random(&ModelConfig::tsm_r18_tiny_online(), Default::default()).unwrap();
    assert!(tsm.memory_status(0).is_none());
}

fn options(source: Source) -> PipelineOptions {
    PipelineOptions {
        emit_logits: true,
        max_retries: Some(0),
        ..PipelineOptions::new(source)
    }
}

fn alone(model: &Path, source: Source) -> Vec<FrameResult> {
    let (results, summary) = run_alone(recognizer(model, 1), options(source));
    assert!(summary.error.is_none(), "{:?}", summary.error);
    results
}

#[test]
fn play_reports_the_memory_and_a_batched_run_equals_each_source_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let clips = [
        (3 * N as u32 + 3, 25, "ball"),
        (2 * N as u32 + 1, 10, "smpte"),
    ];
    let sources: Vec<Source> = clips
        .iter()
        .enumerate()
        .map(|(i, &(frames, fps, pattern))| {
            let path = dir.path().join(format!("clip{i}.avi"));
            encode_pattern(&path, frames, 128, 96, fps, pattern);
            Source::File(path)
        })
        .collect();
    let mut own = Vec::new();
    for (source, &(frames, ..)) in sources.iter().zip(&clips) {
        let results = alone(&model, source.clone());
        assert_eq!(results.len(), frames as usize);
        for (k, r) in results.iter().enumerate() {
            let memory = r.memory.expect("ECO reports its memory");
            assert_eq!(memory.every, N);
            assert_eq!(memory.fresh, (k + 1) % N == 0, "frame {k}");
            assert_eq!(memory.updates as usize, (k + 1) / N, "frame {k}");
            if k + 1 < N {
                // No answer yet: warming up, k + 1 of N frames, nothing scored.
                assert_eq!(
                    r.label_state,
                    LabelState::WarmingUp {
                        frames: k + 1,
                        of: N
                    }
                );
                assert!(r.top.is_empty() && r.label.is_none());
            } else {
                // ECO's running average is the score (no further smoothing, no hysteresis).
                let probs = softmax(r.logits.as_ref().unwrap());
                let best = probs.iter().copied().fold(0.0, f32::max);
                assert!((r.top[0].score - best).abs() <= 1e-6, "frame {k}");
                assert_eq!(r.smooth_frames, 1);
                assert_eq!(r.label_state, LabelState::Confirmed);
                // Between answers the answer stands.
                if !memory.fresh {
                    assert_eq!(r.logits, results[k - 1].logits, "frame {k}");
                }
            }
        }
        own.push(results);
    }
    // Both sources batched in one model: each stream as it was alone.
    let base = options(sources[0].clone());
    let named = sources.iter().cloned().map(StreamSource::unnamed).collect();
    let (batched, summary) = run_batched(recognizer(&model, 2), &base, named);
    assert_eq!(summary.totals.failed, 0);
    let mut worst = 0f32;
    for (stream, (got, want)) in batched.iter().zip(&own).enumerate() {
        assert_eq!(got.len(), want.len(), "stream {stream}");
        for (a, b) in got.iter().zip(want) {
            assert_eq!(a.frame, b.frame);
            assert_eq!(a.memory, b.memory);
            worst = worst.max(max_diff(
                a.logits.as_ref().unwrap(),
                b.logits.as_ref().unwrap(),
            ));
        }
    }
    eprintln!("ECO, 2 streams batched vs each alone: max abs diff {worst:.2e}");
    assert!(worst <= 1e-5, "max abs diff {worst}");
}
