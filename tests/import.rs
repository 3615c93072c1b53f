//! `shiftlive import`: each layout imported from the checkpoints tests/golden/make_import.py
//! writes (plain torch, the module names of the TSM authors, mmaction2 and torchvision, random
//! weights and BatchNorm statistics) reproduces that script's logits; bad inputs fail with the
//! file and the mismatch named, and write nothing.

use std::path::{Path, PathBuf};

use shiftlive::model::import::{ImportFormat, ImportOptions, import};
use shiftlive::model::{ActionNet, Backbone, ShiftDirection, ShiftPlacement, Temporal, TensorFile};
use shiftlive::online::{Recognizer, RecognizerOptions};
use tch::{Device, Tensor};

const TOLERANCE: f64 = 1e-4;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/import")
        .join(name)
}

fn labels(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/labels")
        .join(name)
}

fn reference(name: &str) -> TensorFile {
    TensorFile::read(&golden(name)).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

fn small(options: ImportOptions) -> ImportOptions {
    ImportOptions {
        input_size: Some(64),
        ..options
    }
}

/// Imports `file`, loads the result and compares clip and frame logits with the reference.
fn check_offline(format: ImportFormat, file: &str, refs: &str, t: i64, options: ImportOptions) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let config = import(format, &golden(file), &out, &small(options)).unwrap();
    let (_vs, net) = ActionNet::load(&out, Device::Cpu).unwrap();
    assert_eq!(net.config(), &config);
    let r = reference(refs);
    let out = tch::no_grad(|| net.forward_clip_t(&r.tensors["x"], t, false)).unwrap();
    let frame = max_diff(&out.frame_logits, &r.tensors["frame_logits"]);
    let mut worst = frame;
    if let Some(logits) = r.tensors.get("logits") {
        worst = worst.max(max_diff(&out.logits, logits));
    }
    println!("{file}: max abs diff {worst:.2e}");
    assert!(worst <= TOLERANCE, "{file}: max abs diff {worst}");
}

#[test]
fn mit_online_mobilenet_v2_runs_frame_by_frame() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("online.safetensors");
    let options = small(ImportOptions {
        labels: Some(labels("jester.txt")),
        ..Default::default()
    });
    let input = golden("mobilenetv2_jester_online.pth.tar");
    let config = import(ImportFormat::MitOnline, &input, &out, &options).unwrap();
    assert_eq!(config.backbone, Backbone::MobileNetV2 { width_mult: 1.0 });
    assert_eq!(config.num_classes, 27);
    assert!(matches!(
        config.temporal,
        Temporal::Shift {
            direction: ShiftDirection::Uni,
            shift_div: 8,
            ..
        }
    ));
    let file = TensorFile::read(&out).unwrap();
    let names: Vec<String> = serde_json::from_str(&file.metadata["labels"]).unwrap();
    assert_eq!(names[26], "Zooming Out With Two Fingers");
    assert!(file.metadata["preprocess"].contains("0.485"));

    let r = reference("mit_online_ref.safetensors");
    let (x, want) = (&r.tensors["x"], &r.tensors["frame_logits"]);
    // Offline, the causal network over the whole stream gives the same per-frame logits.
    let (_vs, net) = ActionNet::load(&out, Device::Cpu).unwrap();
    let clip = tch::no_grad(|| net.forward_clip_t(x, x.size()[0], false)).unwrap();
    let offline = max_diff(&clip.frame_logits, want);
    // Online, one frame at a time from zero-initialised caches (BatchNorm folded, channels-last).
    let mut rec = Recognizer::from_checkpoint(&out, RecognizerOptions::default()).unwrap();
    rec.reset();
    let steps: Vec<Tensor> = (0..x.size()[0])
        .map(|i| rec.step_tensor(&x.narrow(0, i, 1)).unwrap())
        .collect();
    let online = max_diff(&Tensor::cat(&steps, 0), want);
    println!("mit-online: offline {offline:.2e}, frame by frame {online:.2e}");
    assert!(offline <= TOLERANCE && online <= TOLERANCE);
}

/// The imported online MobileNetV2 run by `shiftlive play` on a directory of PNG frames, headless,
/// fp32, every frame: each frame's raw logits (`--emit-logits`) are the reference script's own
/// frame-by-frame logits of the same frames (read, cropped and normalised as the script does),
/// the shift buffers starting at zero.
#[cfg(feature = "capture")]
#[test]
fn mit_online_import_plays_a_frame_directory_like_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("jester.safetensors");
    let options = small(ImportOptions {
        labels: Some(labels("jester.txt")),
        ..Default::default()
    });
    let input = golden("mobilenetv2_jester_online.pth.tar");
    import(ImportFormat::MitOnline, &input, &out, &options).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .args(["play", "--headless", "--emit-logits", "--dtype", "f32"])
        .args([
            "--device",
            "cpu",
            "--threads",
            "2",
            "--stride",
            "1",
            "--fps",
            "12",
        ])
        .arg("--model")
        .arg(&out)
        .arg(golden("mit_online_frames"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v.get("logits").is_some())
        .collect();
    let want = &reference("mit_online_frames_ref.safetensors").tensors["frame_logits"];
    assert_eq!(lines.len() as i64, want.size()[0], "one result per frame");
    let mut worst = 0f64;
    for (t, line) in lines.iter().enumerate() {
        assert_eq!(line["frame"].as_u64(), Some(t as u64));
        let got: Vec<f32> = serde_json::from_value(line["logits"].clone()).unwrap();
        let got = Tensor::from_slice(&got);
        worst = worst.max(max_diff(&got, &want.get(t as i64)));
    }
    println!("mit-online through play on PNG frames: max abs diff {worst:.2e}");
    assert!(worst <= TOLERANCE, "max abs diff {worst}");
}

#[test]
fn mit_tsm_resnet50_legacy_pth_with_settings_from_its_name() {
    let file = "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tsm.safetensors");
    let kinetics = ImportOptions {
        labels: Some(labels("kinetics400.txt")),
        ..Default::default()
    };
    let config = import(ImportFormat::MitTsm, &golden(file), &out, &small(kinetics)).unwrap();
    let names: Vec<String> =
        serde_json::from_str(&TensorFile::read(&out).unwrap().metadata["labels"]).unwrap();
    assert_eq!(names.len(), 400);
    assert_eq!(
        (names[0].as_str(), names[399].as_str()),
        ("abseiling", "zumba")
    );
    assert_eq!(config.num_segments, 8);
    assert_eq!(
        config.temporal,
        Temporal::Shift {
            direction: ShiftDirection::Bi,
            shift_div: 8,
            placement: ShiftPlacement::Blockres,
            temporal_pool: false
        }
    );
    assert_eq!(config.num_classes, 400);
    check_offline(
        ImportFormat::MitTsm,
        file,
        "mit_tsm_ref.safetensors",
        8,
        Default::default(),
    );
}

#[test]
fn mmaction2_tsm_resnet50_with_ucf101_labels() {
    let options = ImportOptions {
        labels: Some(labels("ucf101.txt")),
        ..Default::default()
    };
    check_offline(
        ImportFormat::Mmaction2,
        "mmaction2_tsm_r50.pth",
        "mmaction2_tsm_r50_ref.safetensors",
        8,
        options,
    );
}

#[test]
fn mmaction2_tsn_resnet18() {
    let options = ImportOptions {
        num_segments: Some(3),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tsn.safetensors");
    let config = import(
        ImportFormat::Mmaction2,
        &golden("mmaction2_tsn_r18.pth"),
        &out,
        &small(options.clone()),
    )
    .unwrap();
    assert_eq!(config.temporal, Temporal::None);
    check_offline(
        ImportFormat::Mmaction2,
        "mmaction2_tsn_r18.pth",
        "mmaction2_tsn_r18_ref.safetensors",
        3,
        options,
    );
}

#[test]
fn mmaction2_tsm_mobilenet_v2() {
    let options = ImportOptions {
        num_segments: Some(4),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tsm_mbv2.safetensors");
    let config = import(
        ImportFormat::Mmaction2,
        &golden("mmaction2_tsm_mbv2.pth"),
        &out,
        &small(options.clone()),
    )
    .unwrap();
    assert_eq!(config.backbone, Backbone::MobileNetV2 { width_mult: 0.5 });
    assert_eq!(config.num_classes, 10);
    assert!(matches!(
        config.temporal,
        Temporal::Shift {
            direction: ShiftDirection::Bi,
            shift_div: 8,
            ..
        }
    ));
    check_offline(
        ImportFormat::Mmaction2,
        "mmaction2_tsm_mbv2.pth",
        "mmaction2_tsm_mbv2_ref.safetensors",
        4,
        options,
    );
}

#[test]
fn torchvision_resnet18_and_mobilenet_v2() {
    let tsn = || ImportOptions {
        shift: Some(None),
        ..Default::default()
    };
    for name in ["torchvision_resnet18", "torchvision_mobilenet_v2"] {
        check_offline(
            ImportFormat::Torchvision,
            &format!("{name}.pth"),
            &format!("{name}_ref.safetensors"),
            4,
            tsn(),
        );
        // By default an ImageNet trunk becomes an (offline) TSM for `train --init`.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("init.safetensors");
        let config = import(
            ImportFormat::Torchvision,
            &golden(&format!("{name}.pth")),
            &out,
            &Default::default(),
        )
        .unwrap();
        assert_eq!(config.num_classes, 1000);
        assert!(matches!(
            config.temporal,
            Temporal::Shift {
                direction: ShiftDirection::Bi,
                ..
            }
        ));
        ActionNet::load(&out, Device::Cpu).unwrap();
    }
}

/// Runs an import that must fail; checks that nothing was written and returns the message as
/// `main` prints it (`{:#}`: the error and each of its causes).
fn failing(format: ImportFormat, input: &Path, options: ImportOptions) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let err = import(format, input, &out, &options).unwrap_err();
    let err = format!("{:#}", anyhow::Error::new(err));
    assert!(!out.exists(), "{} written after: {err}", out.display());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    assert!(
        err.contains(&input.display().to_string()),
        "the error does not name {}: {err}",
        input.display()
    );
    println!("{err}");
    err
}

#[test]
fn wrong_format_names_the_keys_left_over_or_missing() {
    let err = failing(
        ImportFormat::MitTsm,
        &golden("mmaction2_tsm_r50.pth"),
        Default::default(),
    );
    assert!(err.contains("not a mit-tsm checkpoint"), "{err}");
    assert!(err.contains("backbone.conv1.conv.weight"), "{err}");

    let err = failing(
        ImportFormat::Mmaction2,
        &golden("mobilenetv2_jester_online.pth.tar"),
        Default::default(),
    );
    assert!(err.contains("left over"), "{err}");

    // Same names at the top level, another numbering inside the blocks.
    let err = failing(
        ImportFormat::MitOnline,
        &golden("torchvision_mobilenet_v2.pth"),
        Default::default(),
    );
    assert!(err.contains("features.1.conv.0.0.weight"), "{err}");

    let err = failing(
        ImportFormat::Torchvision,
        &golden("mobilenetv2_jester_online.pth.tar"),
        Default::default(),
    );
    assert!(
        err.contains("missing") && err.contains("unexpected"),
        "{err}"
    );
}

#[test]
fn truncated_and_non_pickle_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for file in [
        "mmaction2_tsn_r18.pth",
        "TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth",
    ] {
        let bytes = std::fs::read(golden(file)).unwrap();
        let cut = dir.path().join(file);
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let format = if file.starts_with("TSM") {
            ImportFormat::MitTsm
        } else {
            ImportFormat::Mmaction2
        };
        let err = failing(format, &cut, Default::default());
        assert!(err.contains("truncated"), "{err}");
    }
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, "these are not weights\n").unwrap();
    let err = failing(ImportFormat::Torchvision, &text, Default::default());
    assert!(err.contains("not a PyTorch checkpoint"), "{err}");
}

#[test]
fn labels_of_another_class_count_are_refused() {
    let err = failing(
        ImportFormat::MitOnline,
        &golden("mobilenetv2_jester_online.pth.tar"),
        ImportOptions {
            labels: Some(labels("ucf101.txt")),
            ..Default::default()
        },
    );
    assert!(err.contains("ucf101.txt"), "{err}");
    assert!(
        err.contains("101 labels") && err.contains("27 classes"),
        "{err}"
    );
}
