//! The backend tests' scenarios, each run on a runtime named by its [`Backend`] against the
//! libtorch reference (tests/backend.rs for ONNX Runtime, tests/backend_openvino.rs for OpenVINO).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use shiftlive::backend::{Backend, BackendOptions};
use shiftlive::model::{ActionNet, Preset, checkpoint};
use shiftlive::online::{Recognizer, RecognizerOptions};
use shiftlive::preprocess::FrameRef;
use tch::{Device, Kind, Tensor, nn};

pub const FRAMES: usize = 64;
/// fp32 logits of a runtime against libtorch's.
pub const TOLERANCE: f32 = 1e-4;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_model() -> PathBuf {
    root().join("assets/models/motion-tsm-r18-tiny.safetensors")
}

/// Every runtime's default options; the libraries must be there (scripts/setup.sh).
pub fn runtimes() -> BackendOptions {
    let options = BackendOptions::from_env();
    for library in [&options.onnxruntime.library, &options.openvino.library()] {
        assert!(
            library.is_file(),
            "{} missing: run scripts/setup.sh",
            library.display()
        );
    }
    options
}

/// `n` RGB frames of `w`x`h` from a smooth random walk (consecutive frames related as in video).
pub fn rgb_clip(n: usize, w: usize, h: usize) -> Vec<Vec<u8>> {
    tch::manual_seed(5);
    let steps = Tensor::randn(
        [n as i64, h as i64, w as i64, 3],
        (Kind::Float, Device::Cpu),
    ) * 12.0;
    let walk = steps.cumsum(0, Kind::Float) + 128.0;
    let walk = walk.clamp(0.0, 255.0).to_kind(Kind::Uint8);
    (0..n as i64)
        .map(|t| {
            let frame = walk.get(t).contiguous();
            let mut bytes = vec![0u8; w * h * 3];
            frame.copy_data(&mut bytes, w * h * 3);
            bytes
        })
        .collect()
}

pub fn logits_of(rec: &mut Recognizer, clip: &[Vec<u8>], w: usize, h: usize) -> Vec<Vec<f32>> {
    clip.iter()
        .map(|bytes| rec.step(&FrameRef::rgb(bytes, w, h)).unwrap().0.to_vec())
        .collect()
}

pub fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

/// The libtorch recogniser and one on `backend` on the same weights, 64 frames; returns the
/// largest logit difference.
pub fn equals_libtorch(reference: &mut Recognizer, name: &str, backend: Backend) -> f32 {
    let mut ort = Recognizer::from_shared(reference.shared());
    assert_eq!(ort.set_backend(backend, &runtimes()).unwrap(), backend);
    assert_eq!(ort.backend(), backend);
    assert_eq!(reference.backend(), Backend::Libtorch);
    let (w, h) = (160, 120);
    let clip = rgb_clip(FRAMES, w, h);
    let expected = logits_of(reference, &clip, w, h);
    let got = logits_of(&mut ort, &clip, w, h);
    let diff = max_abs_diff(&expected, &got);
    let scale = expected.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    println!(
        "{name}: max |logit| {scale:.3}, {} vs libtorch over {FRAMES} frames: max abs diff {diff:.3e}",
        backend.name()
    );
    assert!(
        scale > 1e-3,
        "{name}: logits all near zero, the comparison would prove nothing"
    );
    assert!(
        diff <= TOLERANCE,
        "{name}: max abs diff {diff:e} > {TOLERANCE:e}"
    );
    diff
}

/// A MobileNetV2-TSM (online preset) with random weights made lively, saved in `dir`.
pub fn mobilenet_v2_tsm(dir: &Path) -> PathBuf {
    let config = Preset::TsmMobilenetV2Online.model();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    // Realistic BatchNorm statistics, so the folded weights are not the identity's.
    super::lively(&vs, &net, 64);
    let path = dir.join("mnv2.safetensors");
    checkpoint::save(&vs, &config, &[], &path).unwrap();
    path
}

/// Twelve frames, a reset, the same twelve: the replay equals the first run, and without the
/// reset the state makes a difference.
pub fn step_tensor_and_reset(backend: Backend) {
    let mut rec =
        Recognizer::from_checkpoint(&shipped_model(), RecognizerOptions::default()).unwrap();
    rec.set_backend(backend, &runtimes()).unwrap();
    let side = rec.config().input_size;
    tch::manual_seed(9);
    let x = Tensor::randn([12, 3, side, side], (Kind::Float, Device::Cpu));
    let run = |rec: &mut Recognizer| -> Vec<Tensor> {
        (0..12)
            .map(|t| rec.step_tensor(&x.narrow(0, t, 1)).unwrap())
            .collect()
    };
    let first = run(&mut rec);
    // Without a reset the first frame again sees the last frame's state: different logits.
    let carried = rec.step_tensor(&x.narrow(0, 0, 1)).unwrap();
    let carried_diff = (&carried - &first[0]).abs().max().double_value(&[]);
    rec.reset();
    let again = run(&mut rec);
    let reset_diff = first
        .iter()
        .zip(&again)
        .map(|(a, b)| (a - b).abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    println!(
        "reset: replay max abs diff {reset_diff:e}; without reset frame 0 differs by {carried_diff:.3e}"
    );
    assert_eq!(first[0].size(), [1, rec.config().num_classes]);
    assert!(
        reset_diff <= 1e-6,
        "after reset the replay differs by {reset_diff}"
    );
    assert!(
        carried_diff > 1e-3,
        "the state made no difference ({carried_diff})"
    );
}

/// `play` on the demo clip with the shipped model: its per-frame logits (`--emit-logits`).
pub fn play(backend: &str, library: Option<(&str, &Path)>) -> (bool, Vec<Vec<f32>>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shiftlive"));
    cmd.args([
        "play",
        "--headless",
        "--device",
        "cpu",
        "--threads",
        "2",
        "--emit-logits",
    ])
    .args(["--max-frames", "16", "--backend", backend, "--model"])
    .arg(shipped_model())
    .arg(root().join("assets/demo/motion-demo.avi"))
    .env("RUST_LOG", "warn");
    if let Some((var, library)) = library {
        cmd.env(var, library);
    }
    let out = cmd.output().unwrap();
    let logits = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            v["logits"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_f64().unwrap() as f32).collect())
        })
        .collect();
    (
        out.status.success(),
        logits,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `play --backend X` gives libtorch's logits; a broken library (a file that is not one, at
/// `broken_name` in a directory that `var` names, or `var` names the file itself when
/// `var_names_file`) is one error line naming it, and `auto` then runs on libtorch.
pub fn play_matches_libtorch_and_a_broken_library_is_one_line(
    backend: Backend,
    var: &str,
    broken_name: &str,
    var_names_file: bool,
) {
    runtimes();
    let (ok, torch, err) = play("libtorch", None);
    assert!(ok, "{err}");
    let (ok, ort, err) = play(backend.name(), None);
    assert!(ok, "{err}");
    assert!(torch.len() >= 8, "{} frames", torch.len());
    let diff = max_abs_diff(&torch, &ort);
    println!(
        "play: {} frames, {} vs libtorch max abs diff {diff:.3e}",
        torch.len(),
        backend.name()
    );
    assert!(diff <= TOLERANCE, "{diff}");

    // A file that is not a library, asked for explicitly: one error line naming it, no panic.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join(broken_name);
    std::fs::write(&broken, b"not a shared library").unwrap();
    let named = if var_names_file {
        broken.as_path()
    } else {
        dir.path()
    };
    let (ok, _, err) = play(backend.name(), Some((var, named)));
    assert!(!ok);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    println!("broken library: {lines:?}");
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(&*broken.to_string_lossy()), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // With auto the run goes on, on libtorch.
    let (ok, auto, err) = play("auto", Some((var, named)));
    assert!(ok, "{err}");
    assert_eq!(auto.len(), torch.len());
}

/// Two streams advanced together, one seeing the clip forwards, the other backwards.
pub fn several_streams_as_libtorch(backend: Backend) {
    let options = RecognizerOptions {
        streams: 2,
        ..Default::default()
    };
    let mut reference = Recognizer::from_checkpoint(&shipped_model(), options).unwrap();
    let mut ort = Recognizer::from_shared(reference.shared());
    ort.set_backend(backend, &runtimes()).unwrap();
    let (w, h) = (96, 72);
    let clip = rgb_clip(16, w, h);
    let step = |rec: &mut Recognizer| -> Vec<Vec<f32>> {
        (0..8)
            .map(|t| {
                // Stream 0 sees the clip forwards, stream 1 backwards.
                let frames = [
                    FrameRef::rgb(&clip[t], w, h),
                    FrameRef::rgb(&clip[15 - t], w, h),
                ];
                rec.step_frames(&frames).unwrap().0.to_vec()
            })
            .collect()
    };
    let expected = step(&mut reference);
    let got = step(&mut ort);
    let diff = max_abs_diff(&expected, &got);
    let classes = reference.config().num_classes as usize;
    let streams_differ = expected[7][..classes]
        .iter()
        .zip(&expected[7][classes..])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "2 streams x 8 frames: max abs diff {diff:.3e} (the streams differ by {streams_differ:.3})"
    );
    assert_eq!(got[0].len(), 2 * classes);
    assert!(streams_differ > 1e-3);
    assert!(diff <= TOLERANCE, "{diff}");
}

/// The batched pipeline's pattern: 3 streams, each tick only some of them have a frame, and one
/// stream is reset mid-run. The runtime gathers those streams' state rows, advances them and puts them
/// back; the logits equal libtorch's, and the streams left out keep their state.
pub fn some_streams_and_a_reset_as_libtorch(backend: Backend) {
    let options = RecognizerOptions {
        streams: 3,
        ..Default::default()
    };
    let mut reference = Recognizer::from_checkpoint(&shipped_model(), options).unwrap();
    let mut ort = Recognizer::from_shared(reference.shared());
    ort.set_backend(backend, &runtimes()).unwrap();
    let (w, h) = (96, 72);
    let clip = rgb_clip(24, w, h);
    // Which streams have a frame at each tick (and which are reset before it).
    let ticks: Vec<(Vec<usize>, Vec<usize>)> = (0..12)
        .map(|t| {
            // All three in another order than 0..3 too (a batch of 3 gathered like a subset).
            let streams = match t % 5 {
                0 => vec![0, 1, 2],
                1 => vec![2],
                2 => vec![0, 2],
                3 => vec![2, 0, 1],
                _ => vec![1],
            };
            let reset = if t == 6 { vec![2] } else { Vec::new() };
            (streams, reset)
        })
        .collect();
    let run = |rec: &mut Recognizer| -> Vec<Vec<f32>> {
        ticks
            .iter()
            .enumerate()
            .map(|(t, (streams, reset))| {
                if !reset.is_empty() {
                    rec.reset_streams(reset);
                }
                let frames: Vec<FrameRef> = streams
                    .iter()
                    .map(|&s| FrameRef::rgb(&clip[(t + 7 * s) % 24], w, h))
                    .collect();
                rec.step_streams(&frames, streams).unwrap().0.to_vec()
            })
            .collect()
    };
    let expected = run(&mut reference);
    let got = run(&mut ort);
    let diff = max_abs_diff(&expected, &got);
    let scale = expected.iter().flatten().fold(0f32, |m, v| m.max(v.abs()));
    println!(
        "3 streams, subsets and a reset, 12 ticks: max abs diff {diff:.3e} (max |logit| {scale:.3})"
    );
    assert!(scale > 1e-3);
    assert!(diff <= TOLERANCE, "{diff}");
}
