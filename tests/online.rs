//! The online engine: frame-by-frame logits equal the offline causal model's, reset and multi-stream
//! behave like fresh single streams, bad frames leave the cache untouched.

mod common;

use std::path::Path;

use shiftlive::model::{ActionNet, InferenceLayout, ModelConfig, checkpoint};
use shiftlive::online::{Precision, Recognizer, RecognizerOptions};
use shiftlive::preprocess::FrameRef;
use tch::{Device, Kind, Tensor, nn};

const FRAMES: i64 = 64;

/// A network with realistic BatchNorm statistics (train-mode passes over random clips), saved.
fn saved_model(config: &ModelConfig, dir: &Path) -> std::path::PathBuf {
    tch::manual_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ActionNet::new(&vs.root(), config).unwrap();
    common::lively(&vs, &net, 64);
    let path = dir.join(format!("{}.safetensors", config.name));
    checkpoint::save(&vs, config, &[], &path).unwrap();
    path
}

/// A smooth random walk of frames, so consecutive frames are related as in video.
fn clip(frames: i64, side: i64) -> Tensor {
    let steps = Tensor::randn([frames, 3, side, side], (Kind::Float, Device::Cpu)) * 0.3;
    steps.cumsum(0, Kind::Float) / (frames as f64).sqrt()
        + Tensor::randn([1, 3, side, side], (Kind::Float, Device::Cpu))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn online_logits(rec: &mut Recognizer, x: &Tensor) -> Tensor {
    let frames: Vec<Tensor> = (0..x.size()[0])
        .map(|t| rec.step_tensor(&x.narrow(0, t, 1)).unwrap())
        .collect();
    Tensor::cat(&frames, 0)
}

fn check_equivalence(config: ModelConfig) {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_model(&config, dir.path());
    let x = clip(FRAMES, 64);
    let mut reference = None;
    for (fold_bn, channels_last) in [(false, false), (true, false), (true, true)] {
        // The offline causal model over the whole 64-frame clip, in the same layout.
        let (_vs, mut offline_net) = ActionNet::load(&path, Device::Cpu).unwrap();
        if fold_bn {
            offline_net.prepare_inference(InferenceLayout {
                kind: Kind::Float,
                channels_last,
            });
        }
        let offline = tch::no_grad(|| offline_net.forward_clip_t(&x, FRAMES, false))
            .unwrap()
            .frame_logits;
        let spread = offline
            .std_dim(&[0i64][..], true, false)
            .mean(None)
            .double_value(&[]);
        assert!(
            spread > 1e-2,
            "{}: logits barely change over time ({spread}); the test would be vacuous",
            config.name
        );

        let options = RecognizerOptions {
            fold_bn,
            channels_last,
            ..Default::default()
        };
        let mut rec = Recognizer::from_checkpoint(&path, options).unwrap();
        let online = online_logits(&mut rec, &x);
        let diff = max_abs_diff(&online, &offline);
        let scale = offline.abs().max().double_value(&[]);
        eprintln!(
            "{} fold_bn={fold_bn} channels_last={channels_last}: online vs offline max abs diff {diff:.2e} \
             (max |logit| {scale:.2}, spread over time {spread:.3})",
            config.name
        );
        assert!(
            diff <= 1e-5,
            "{}: online differs from offline by {diff}",
            config.name
        );
        // Folding BatchNorm and channels-last only reorder float operations.
        let plain = reference.get_or_insert_with(|| offline.shallow_clone());
        let layout_diff = max_abs_diff(&offline, plain);
        assert!(
            layout_diff <= 1e-5 * scale.max(1.0) * 4.0,
            "layout changed logits by {layout_diff}"
        );
    }
}

#[test]
fn online_resnet_equals_the_offline_causal_model() {
    check_equivalence(ModelConfig::tsm_r18_tiny_online());
}

#[test]
fn online_mobilenet_v2_equals_the_offline_causal_model() {
    check_equivalence(ModelConfig::tsm_mobilenet_v2_tiny_online());
}

#[test]
fn reset_gives_a_fresh_stream_and_streams_batch_independently() {
    let dir = tempfile::tempdir().unwrap();
    let config = ModelConfig::tsm_r18_tiny_online();
    let path = saved_model(&config, dir.path());
    let a = clip(10, 64);
    let b = clip(10, 64);

    let mut fresh = Recognizer::from_checkpoint(&path, Default::default()).unwrap();
    let b_fresh = online_logits(&mut fresh, &b);

    let mut reused = Recognizer::from_checkpoint(&path, Default::default()).unwrap();
    let a_first = online_logits(&mut reused, &a);
    let b_without_reset = online_logits(&mut reused, &b);
    assert!(
        max_abs_diff(&b_without_reset, &b_fresh) > 1e-4,
        "the cache must carry the past"
    );
    reused.reset();
    let b_after_reset = online_logits(&mut reused, &b);
    assert_eq!(max_abs_diff(&b_after_reset, &b_fresh), 0.0);

    // Two streams in one batch: row s of every cache slot belongs to stream s.
    let options = RecognizerOptions {
        streams: 2,
        ..Default::default()
    };
    let mut pair = Recognizer::from_checkpoint(&path, options).unwrap();
    let mut rows = Vec::new();
    for t in 0..10 {
        let batch = Tensor::cat(&[a.narrow(0, t, 1), b.narrow(0, t, 1)], 0);
        rows.push(pair.step_tensor(&batch).unwrap());
    }
    let both = Tensor::stack(&rows, 0); // [T, 2, classes]
    let diff_a = max_abs_diff(&both.select(1, 0), &a_first);
    let diff_b = max_abs_diff(&both.select(1, 1), &b_fresh);
    eprintln!("2-stream batch vs single streams: {diff_a:.2e}, {diff_b:.2e}");
    assert!(diff_a <= 1e-5 && diff_b <= 1e-5);
}

/// Frames as packed RGB bytes with padded rows, as GStreamer hands them.
fn rgb_frame(width: usize, height: usize, stride: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; stride * height];
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for y in 0..height {
        for x in 0..width * 3 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            data[y * stride + x] = ((x + y) as u64 * 3 + (state >> 60)) as u8;
        }
    }
    data
}

#[test]
fn bad_frames_are_refused_and_leave_the_cache_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_model(&ModelConfig::tsm_r18_tiny_online(), dir.path());
    let (w, h, stride) = (90, 70, 272);
    let f1 = rgb_frame(w, h, stride, 1);
    let f2 = rgb_frame(w, h, stride, 2);
    let frame = |d: &'static [u8]| FrameRef {
        data: d,
        width: w,
        height: h,
        stride,
        channels: 3,
        bgr: false,
    };
    let (f1, f2): (&'static [u8], &'static [u8]) = (f1.leak(), f2.leak());

    let mut reference = Recognizer::from_checkpoint(&path, Default::default()).unwrap();
    reference.step(&frame(f1)).unwrap();
    let expected = reference.step(&frame(f2)).unwrap().0.to_vec();

    let mut rec = Recognizer::from_checkpoint(&path, Default::default()).unwrap();
    rec.step(&frame(f1)).unwrap();
    let gray = FrameRef {
        channels: 1,
        stride: w,
        ..frame(f1)
    };
    let err = rec.step(&gray).unwrap_err().to_string();
    assert!(err.contains("1 channels, expected 3"), "{err}");
    let empty = FrameRef {
        data: &[],
        width: 0,
        height: 0,
        stride: 0,
        channels: 3,
        bgr: false,
    };
    let err = rec.step(&empty).unwrap_err().to_string();
    assert!(err.contains("empty frame"), "{err}");
    let short = FrameRef {
        data: &f1[..1000],
        ..frame(f1)
    };
    let err = rec.step(&short).unwrap_err().to_string();
    assert!(err.contains("needs"), "{err}");
    let got = rec.step(&frame(f2)).unwrap().0.to_vec();
    assert_eq!(
        got, expected,
        "the refused frames must not have advanced the cache"
    );
}

#[test]
fn bidirectional_models_are_refused_for_online_use() {
    let err = Recognizer::random(&ModelConfig::tsm_r18_tiny(), Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot run online") && err.contains("bidirectional"),
        "{err}"
    );
    let err = Recognizer::random(&ModelConfig::mvf_r18_tiny(), Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("MVF"), "{err}");
}

#[test]
fn bf16_stays_close_to_fp32() {
    let dir = tempfile::tempdir().unwrap();
    let path = saved_model(&ModelConfig::tsm_r18_tiny_online(), dir.path());
    let x = clip(16, 64);
    let mut f32_rec = Recognizer::from_checkpoint(&path, Default::default()).unwrap();
    let options = RecognizerOptions {
        precision: Precision::Bf16,
        ..Default::default()
    };
    let mut bf16_rec = Recognizer::from_checkpoint(&path, options).unwrap();
    let a = online_logits(&mut f32_rec, &x);
    let b = online_logits(&mut bf16_rec, &x);
    let diff = max_abs_diff(&a, &b);
    let scale = a.abs().max().double_value(&[]);
    let agree = a
        .argmax(1, false)
        .eq_tensor(&b.argmax(1, false))
        .to_kind(Kind::Float)
        .mean(None)
        .double_value(&[]);
    eprintln!(
        "bf16 vs fp32: max abs diff {diff:.3e} (max |logit| {scale:.2}), top-1 agreement {agree:.3}"
    );
    assert_eq!(b.kind(), Kind::Float, "logits come back as fp32");
    assert!(
        diff <= 0.1 * scale,
        "bf16 drifts by {diff} on logits of scale {scale}"
    );
}
