//! `shiftlive export`: the written graphs run in other engines and give shiftlive's numbers.
//! ONNX Runtime (and Triton's config protobuf) come from the test venv that
//! `scripts/setup.sh --export` creates; tests/export/ort.py drives them.
//!
//! - ONNX Runtime feeding its own state back over 32 frames equals the Recognizer frame by frame
//!   (random weights and BatchNorm statistics; the shipped default model; the TSM authors' online
//!   MobileNetV2 against their own logits), and so does the TorchScript module loaded with tch;
//! - 3 streams at different points in one call equal 3 single calls;
//! - the Triton repository parses with Triton's protobuf, its states exist in the graph, and an
//!   emulated sequence batcher equals isolated streams;
//! - clip models (bidirectional TSM, TSN) equal `forward_clip`;
//! - bad inputs are refused with one line and write nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use shiftlive::export::{ExportFormat, ExportOptions, GraphChoice, export};
use shiftlive::model::import::{ImportFormat, ImportOptions, import};
use shiftlive::model::{ActionNet, Preset, TensorFile, checkpoint};
use shiftlive::online::{Recognizer, RecognizerOptions};
use tch::{Device, Kind, Tensor, nn};

const TOLERANCE: f64 = 1e-4;
const FRAMES: i64 = 32;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs a command of tests/export/ort.py in the export venv; returns its JSON line.
fn ort(args: &[&Path]) -> serde_json::Value {
    let python = repo(".venv-export/bin/python");
    assert!(
        python.exists(),
        "{} missing: run scripts/setup.sh --export",
        python.display()
    );
    let out = Command::new(python)
        .arg(repo("tests/export/ort.py"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ort.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// A preset with random weights and random BatchNorm statistics and affine, saved as a checkpoint.
fn random_checkpoint(preset: Preset, dir: &Path, seed: i64) -> PathBuf {
    tch::manual_seed(seed);
    let config = preset.model();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    common::lively(&vs, &net, config.input_size);
    tch::no_grad(|| {
        for (name, var) in vs.variables() {
            let mut var = var.shallow_clone();
            let changed = if name.ends_with("running_mean") {
                &var + var.randn_like() * 0.1
            } else if name.ends_with("running_var") {
                &var * (var.rand_like() + 0.5)
            } else if var.dim() == 1 && name.ends_with(".weight") {
                &var * (var.rand_like() * 0.5 + 0.75)
            } else if var.dim() == 1 && name.ends_with(".bias") {
                &var + var.randn_like() * 0.1
            } else {
                continue;
            };
            var.copy_(&changed);
        }
    });
    let path = dir.join(format!("{}.safetensors", config.name));
    checkpoint::save(&vs, &config, &[], &path).unwrap();
    path
}

fn write_tensors(path: &Path, tensors: &[(&str, Tensor)]) {
    let mut file = TensorFile::default();
    for (name, t) in tensors {
        file.tensors.insert(name.to_string(), t.shallow_clone());
    }
    file.write(path).unwrap();
}

fn read_tensor(path: &Path, name: &str) -> Tensor {
    TensorFile::read(path).unwrap().tensors[name].shallow_clone()
}

/// The Recognizer's logits for `frames` `[T, 3, S, S]`, one frame at a time: `[T, C]`.
fn recognizer_logits(model: &Path, frames: &Tensor) -> Tensor {
    let mut rec = Recognizer::from_checkpoint(model, RecognizerOptions::default()).unwrap();
    let steps: Vec<Tensor> = (0..frames.size()[0])
        .map(|t| rec.step_tensor(&frames.narrow(0, t, 1)).unwrap())
        .collect();
    Tensor::cat(&steps, 0)
}

/// ONNX Runtime's logits for streams `[T, B, 3, S, S]` (states fed back, zeroed where `starts`).
fn ort_stream(onnx: &Path, frames: &Tensor, starts: Option<&Tensor>) -> Tensor {
    let dir = onnx.parent().unwrap();
    let (input, output) = (
        dir.join("frames.safetensors"),
        dir.join("logits.safetensors"),
    );
    let mut tensors = vec![("frames", frames.shallow_clone())];
    if let Some(starts) = starts {
        tensors.push(("starts", starts.shallow_clone()));
    }
    write_tensors(&input, &tensors);
    ort(&[Path::new("stream"), onnx, &input, &output]);
    read_tensor(&output, "logits")
}

/// The largest per-frame max abs difference of two `[T, C]` tensors.
fn worst_frame(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let per_frame = (a - b).abs().amax([1].as_slice(), false);
    per_frame.max().double_value(&[])
}

fn frames(t: i64, b: i64, side: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn([t, b, 3, side, side], (Kind::Float, Device::Cpu))
}

/// Exports `model` to ONNX, checks it with onnx.checker and compares ORT with the Recognizer:
/// the worst per-frame max abs difference, and the largest |logit|.
fn onnx_matches_recognizer(model: &Path, dir: &Path) -> (f64, f64) {
    let onnx = dir.join("model.onnx");
    let manifest = export(model, &onnx, &ExportOptions::new(ExportFormat::Onnx)).unwrap();
    let check = ort(&[Path::new("check"), &onnx]);
    assert_eq!(check["checked"], true);
    assert!(check["opset"].as_i64().unwrap() >= 17);
    assert_eq!(check["inputs"]["frame"][0], "N");
    for state in &manifest.states {
        let mut want = vec![serde_json::json!("N")];
        want.extend(state.shape.iter().map(|&d| serde_json::json!(d)));
        assert_eq!(check["inputs"][&state.input], serde_json::json!(want));
        assert_eq!(check["outputs"][&state.output], serde_json::json!(want));
    }
    let side = manifest.input_size;
    let x = frames(FRAMES, 1, side, 3);
    let got = ort_stream(&onnx, &x, None).squeeze_dim(1); // [T, C]
    let want = recognizer_logits(model, &x.squeeze_dim(1));
    let worst = worst_frame(&got, &want);
    let scale = want.abs().max().double_value(&[]);
    println!(
        "{}: {} states, ORT vs Recognizer over {FRAMES} frames: max abs diff {worst:.2e} \
         (logits up to {scale:.1})",
        manifest.model,
        manifest.states.len()
    );
    (worst, scale)
}

#[test]
fn onnx_runtime_reproduces_the_recognizer_on_random_presets() {
    for (preset, seed) in [
        (Preset::TsmR18TinyOnline, 1),
        (Preset::TsmMobilenetV2TinyOnline, 2),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let model = random_checkpoint(preset, dir.path(), seed);
        let (worst, _) = onnx_matches_recognizer(&model, dir.path());
        assert!(worst <= TOLERANCE, "{preset:?}: {worst}");
    }
}

/// ResNet-D (deep stem, pooled shortcut) at depth 50: random BatchNorm statistics through 16
/// blocks give logits in the hundreds, so the bar is relative (fp32 rounding of two runtimes).
#[test]
fn onnx_runtime_reproduces_the_recognizer_on_a_random_resnet50_d() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(Preset::TsmR50VdTinyOnline, dir.path(), 4);
    let (worst, scale) = onnx_matches_recognizer(&model, dir.path());
    assert!(
        worst <= 1e-5 * scale.max(1.0),
        "{worst} for logits up to {scale}"
    );
}

#[test]
fn onnx_runtime_reproduces_the_shipped_default_model() {
    let dir = tempfile::tempdir().unwrap();
    let (worst, _) = onnx_matches_recognizer(
        &repo("assets/models/motion-tsm-r18-tiny.safetensors"),
        dir.path(),
    );
    assert!(worst <= TOLERANCE, "{worst}");
}

#[test]
fn three_streams_at_different_points_in_one_call_equal_three_single_calls() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(Preset::TsmMobilenetV2TinyOnline, dir.path(), 5);
    let onnx = dir.path().join("model.onnx");
    export(&model, &onnx, &ExportOptions::new(ExportFormat::Onnx)).unwrap();
    let x = frames(20, 3, 64, 6);
    // Stream 1 starts a new video at frame 5, stream 2 at frame 11: the three are at different
    // points of their videos in every call.
    let starts = Tensor::zeros([20, 3], (Kind::Float, Device::Cpu));
    for (t, b) in [(0, 0), (0, 1), (0, 2), (5, 1), (11, 2)] {
        let _ = starts.get(t).get(b).fill_(1.0);
    }
    let batched = ort_stream(&onnx, &x, Some(&starts)); // [T, 3, C]
    let mut worst = 0.0f64;
    for b in 0..3 {
        let single = ort_stream(&onnx, &x.narrow(1, b, 1), Some(&starts.narrow(1, b, 1)));
        worst = worst.max(worst_frame(&batched.select(1, b), &single.squeeze_dim(1)));
    }
    // A state that did not reset would differ by far more than rounding.
    let reset_matters = worst_frame(
        &ort_stream(&onnx, &x, None).select(1, 2),
        &batched.select(1, 2),
    );
    println!("batch of 3 vs single calls: {worst:.2e} (without the resets: {reset_matters:.2e})");
    assert!(worst <= TOLERANCE && reset_matters > 1e-3);
}

#[test]
fn the_tsm_authors_online_mobilenet_v2_in_onnx_runtime_gives_their_logits() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("online.safetensors");
    let options = ImportOptions {
        labels: Some(repo("assets/labels/jester.txt")),
        input_size: Some(64),
        ..Default::default()
    };
    let input = repo("tests/golden/import/mobilenetv2_jester_online.pth.tar");
    import(ImportFormat::MitOnline, &input, &model, &options).unwrap();
    let onnx = dir.path().join("online.onnx");
    let manifest = export(&model, &onnx, &ExportOptions::new(ExportFormat::Onnx)).unwrap();
    assert_eq!(manifest.states.len(), 10);
    assert_eq!(manifest.labels.as_ref().unwrap().len(), 27);
    let reference =
        TensorFile::read(&repo("tests/golden/import/mit_online_ref.safetensors")).unwrap();
    let (x, want) = (&reference.tensors["x"], &reference.tensors["frame_logits"]);
    let got = ort_stream(&onnx, &x.unsqueeze(1), None).squeeze_dim(1);
    let worst = worst_frame(&got, want);
    println!("TSM authors' online MobileNetV2, ORT vs their logits: {worst:.2e}");
    assert!(worst <= TOLERANCE, "{worst}");
}

#[test]
fn triton_repository_parses_and_its_emulated_sequence_batcher_equals_isolated_streams() {
    let dir = tempfile::tempdir().unwrap();
    let model = random_checkpoint(Preset::TsmMobilenetV2TinyOnline, dir.path(), 7);
    let out = dir.path().join("repo");
    let manifest = export(&model, &out, &ExportOptions::new(ExportFormat::Triton)).unwrap();
    let name = "tsm_mobilenet_v2_tiny_online";
    for file in ["config.pbtxt", "1/model.onnx"] {
        assert!(out.join(name).join(file).is_file(), "{file}");
    }
    assert!(out.join("manifest.json").is_file());
    let report = ort(&[Path::new("triton"), &out, Path::new(name)]);
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["states"], manifest.states.len());
    let worst = report["max_abs_diff"].as_f64().unwrap();
    println!("Triton emulation: {report}");
    assert!(worst <= TOLERANCE, "{worst}");
    // Fewer calls than requests: sequences really were batched together.
    assert!(report["calls"].as_i64() < report["requests"].as_i64());
}

#[test]
fn torchscript_module_loaded_back_reproduces_the_recognizer() {
    let dir = tempfile::tempdir().unwrap();
    for (preset, seed) in [
        (Preset::TsmR18TinyOnline, 8),
        (Preset::TsmMobilenetV2TinyOnline, 9),
    ] {
        let model = random_checkpoint(preset, dir.path(), seed);
        let out = dir.path().join(format!("{seed}.pt"));
        let manifest =
            export(&model, &out, &ExportOptions::new(ExportFormat::Torchscript)).unwrap();
        assert_eq!(manifest.input.torchscript.as_deref(), Some("INPUT__0"));
        assert_eq!(manifest.output.torchscript.as_deref(), Some("OUTPUT__0"));
        for (k, s) in manifest.states.iter().enumerate() {
            let names = s.torchscript.clone().unwrap();
            assert_eq!(names.input, format!("INPUT__{}", k + 1));
            assert_eq!(names.output, format!("OUTPUT__{}", k + 1));
        }
        let module = tch::CModule::load(&out).unwrap();
        let x = frames(FRAMES, 1, 64, seed).squeeze_dim(1);
        let mut states: Vec<Tensor> = manifest
            .states
            .iter()
            .map(|s| {
                let shape: Vec<i64> = std::iter::once(1).chain(s.shape.iter().copied()).collect();
                Tensor::zeros(shape.as_slice(), (Kind::Float, Device::Cpu))
            })
            .collect();
        let mut got = Vec::new();
        for t in 0..FRAMES {
            let mut inputs = vec![tch::IValue::Tensor(x.narrow(0, t, 1))];
            inputs.extend(
                states
                    .iter()
                    .map(|s| tch::IValue::Tensor(s.shallow_clone())),
            );
            // One tuple: OUTPUT__0 the logits, OUTPUT__{K+1} the K-th new state.
            let tch::IValue::Tuple(outputs) = module.forward_is(&inputs).unwrap() else {
                panic!("{preset:?}: the module does not return a tuple");
            };
            assert_eq!(outputs.len(), states.len() + 1, "{preset:?}");
            let mut outputs = outputs.into_iter().map(|v| match v {
                tch::IValue::Tensor(t) => t,
                other => panic!("{preset:?}: an output is not a tensor: {other:?}"),
            });
            got.push(outputs.next().unwrap());
            let new: Vec<Tensor> = outputs.collect();
            for (old, new) in states.iter().zip(&new) {
                assert_eq!(old.size(), new.size(), "{preset:?}: a state changed shape");
            }
            states = new;
        }
        let worst = worst_frame(&Tensor::cat(&got, 0), &recognizer_logits(&model, &x));
        println!("{preset:?}: TorchScript vs Recognizer: {worst:.2e}");
        assert!(worst <= TOLERANCE, "{preset:?}: {worst}");
    }
}

#[test]
fn bidirectional_tsn_and_asked_for_models_export_as_clip_models() {
    let dir = tempfile::tempdir().unwrap();
    let (auto, clip) = (GraphChoice::Auto, GraphChoice::Clip);
    for (preset, seed, graph) in [
        (Preset::TsmR18Tiny, 10, auto),
        (Preset::TsnR18Tiny, 11, auto),
        (Preset::TsmR18TinyOnline, 12, clip),
    ] {
        let model = random_checkpoint(preset, dir.path(), seed);
        let onnx = dir.path().join(format!("{seed}.onnx"));
        let options = ExportOptions {
            graph,
            ..ExportOptions::new(ExportFormat::Onnx)
        };
        let manifest = export(&model, &onnx, &options).unwrap();
        assert_eq!(manifest.graph, "clip");
        assert!(manifest.states.is_empty());
        let t = manifest.input.shape[0];
        let x = frames(2, t, 64, seed); // [N, T, 3, S, S]
        let (input, output) = (
            dir.path().join("clip.safetensors"),
            dir.path().join("out.safetensors"),
        );
        write_tensors(&input, &[("frames", x.shallow_clone())]);
        ort(&[Path::new("clip"), &onnx, &input, &output]);
        let got = read_tensor(&output, "logits");
        let (_vs, net) = ActionNet::load(&model, Device::Cpu).unwrap();
        let want = tch::no_grad(|| net.forward_clip_t(&x.flatten(0, 1), t, false))
            .unwrap()
            .logits;
        let worst = worst_frame(&got, &want);
        println!("{preset:?} clip: ORT vs forward_clip {worst:.2e}");
        assert!(worst <= TOLERANCE, "{preset:?}: {worst}");
    }
}

/// Runs `shiftlive export ARGS`; returns (success, stderr).
fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .arg("export")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_inputs_are_refused_with_one_line_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bi = random_checkpoint(Preset::TsmR18Tiny, d, 12);
    let bi = bi.to_str().unwrap();
    // A bidirectional model has no online step: refused for triton and torchscript, saying why.
    for format in ["triton", "torchscript"] {
        let out = d.join(format!("bi-{format}"));
        let (ok, err) = cli(&["--format", format, bi, out.to_str().unwrap()]);
        assert!(
            !ok && err.contains("bidirectional") && err.contains("--format onnx"),
            "{err}"
        );
        assert!(!out.exists());
    }
    // Nor as an ONNX online step when asked for one.
    let out = d.join("bi.onnx");
    let (ok, err) = cli(&["--graph", "stream", bi, out.to_str().unwrap()]);
    assert!(!ok && err.contains("bidirectional"), "{err}");
    assert!(!out.exists());
    // An existing output needs --force.
    let online = random_checkpoint(Preset::TsmR18TinyOnline, d, 13);
    let online = online.to_str().unwrap();
    let out = d.join("m.onnx");
    std::fs::write(&out, b"keep").unwrap();
    let (ok, err) = cli(&[online, out.to_str().unwrap()]);
    assert!(!ok && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
    let (ok, err) = cli(&["--force", online, out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(std::fs::metadata(&out).unwrap().len() > 1000);
    // A repository folder likewise; with --force it is replaced as a whole.
    let repo_dir = d.join("repo");
    std::fs::create_dir(&repo_dir).unwrap();
    std::fs::write(repo_dir.join("old.txt"), b"old").unwrap();
    let (ok, err) = cli(&["--format", "triton", online, repo_dir.to_str().unwrap()]);
    assert!(!ok && err.contains("--force"), "{err}");
    assert!(repo_dir.join("old.txt").exists());
    let (ok, err) = cli(&[
        "--format",
        "triton",
        "--force",
        online,
        repo_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(!repo_dir.join("old.txt").exists());
    assert!(repo_dir.join("tsm_r18_tiny_online/config.pbtxt").is_file());
    // Never through a symlink, never into the input file.
    let link = d.join("link.onnx");
    std::os::unix::fs::symlink(d.join("elsewhere"), &link).unwrap();
    let (ok, err) = cli(&["--force", online, link.to_str().unwrap()]);
    assert!(!ok && err.contains("symbolic link"), "{err}");
    assert!(!d.join("elsewhere").exists());
    let (ok, err) = cli(&["--force", online, online]);
    assert!(!ok && err.contains("input file"), "{err}");
    assert!(TensorFile::read(Path::new(online)).is_ok());
    // Non-finite weights.
    let mut file = TensorFile::read(Path::new(online)).unwrap();
    let (name, t) = file
        .tensors
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.copy()))
        .unwrap();
    let _ = t.flatten(0, -1).get(0).fill_(f64::NAN);
    file.tensors.insert(name, t);
    let nan = d.join("nan.safetensors");
    file.write(&nan).unwrap();
    let (ok, err) = cli(&[nan.to_str().unwrap(), d.join("nan.onnx").to_str().unwrap()]);
    assert!(!ok && err.contains("non-finite"), "{err}");
    assert!(!d.join("nan.onnx").exists());
    // ECO has no per-frame graph.
    let eco = random_eco(d);
    let (ok, err) = cli(&[eco.to_str().unwrap(), d.join("eco.onnx").to_str().unwrap()]);
    assert!(!ok && err.contains("ECO"), "{err}");
}

fn random_eco(dir: &Path) -> PathBuf {
    let config = Preset::EcoLiteTiny.model();
    let vs = nn::VarStore::new(Device::Cpu);
    let _net = ActionNet::new(&vs.root(), &config).unwrap();
    let path = dir.join("eco.safetensors");
    checkpoint::save(&vs, &config, &[], &path).unwrap();
    path
}
