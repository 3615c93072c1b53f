//! The command line as a user meets it: exit codes, error messages, JSON output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn shiftlive(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .args(args)
        .output()
        .expect("run shiftlive");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn help_lists_the_subcommands() {
    let (ok, stdout, _) = shiftlive(&["--help"]);
    assert!(ok);
    for sub in ["profile", "presets", "bench"] {
        assert!(stdout.contains(sub), "{sub} missing from --help:\n{stdout}");
    }
}

#[test]
fn profile_json_has_params_and_flops() {
    let (ok, stdout, stderr) = shiftlive(&[
        "profile",
        "--preset",
        "tsm_r50",
        "--frames",
        "8",
        "--classes",
        "400",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let params = v["params"].as_f64().unwrap();
    let flops = v["flops"].as_f64().unwrap();
    assert!((params - 24.33e6).abs() / 24.33e6 < 0.01, "{params}");
    assert!((flops - 32.88e9).abs() / 32.88e9 < 0.01, "{flops}");
    assert_eq!(v["stages"].as_array().unwrap().len(), 6);
}

#[test]
fn an_unknown_preset_fails_with_the_known_ones() {
    let (ok, _, stderr) = shiftlive(&["profile", "--preset", "tsm_r77"]);
    assert!(!ok);
    assert!(
        stderr.contains("unknown preset 'tsm_r77'") && stderr.contains("tsm_mobilenet_v2_online"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_missing_checkpoint_is_named() {
    let (ok, _, stderr) = shiftlive(&["profile", "--model", "/nonexistent/m.safetensors"]);
    assert!(!ok);
    assert!(
        stderr.contains("/nonexistent/m.safetensors") && stderr.contains("cannot read"),
        "{stderr}"
    );
}

#[test]
fn asking_for_cuda_without_a_gpu_is_a_clear_error() {
    if tch::Cuda::is_available() {
        return;
    }
    let (ok, _, stderr) = shiftlive(&["bench", "--device", "cuda", "--iters", "1"]);
    assert!(!ok);
    assert!(stderr.contains("no CUDA device"), "{stderr}");
}

/// `live` and `play` without `--headless` and without a display: one notice, then JSON lines.
#[cfg(feature = "ui")]
#[test]
fn without_a_display_the_window_falls_back_to_json_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .args([
            "live",
            "--test-pattern",
            "--width",
            "160",
            "--height",
            "120",
            "--max-frames",
            "3",
            "--preset",
            "tsm_mobilenet_v2_tiny_online",
            "--device",
            "cpu",
        ])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run shiftlive");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no display"))
        .collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    // A live source drops frames while the model is busy (the `Latest` policy): on a loaded
    // machine the third result can be frame 3 or later, never an earlier or repeated one.
    let frames: Vec<u64> = lines[..3]
        .iter()
        .map(|l| l["frame"].as_u64().unwrap())
        .collect();
    assert!(frames.windows(2).all(|w| w[0] < w[1]), "{frames:?}");
    assert!(frames[2] >= 2, "{frames:?}");
    assert_eq!(lines[3]["summary"]["frames_processed"].as_u64(), Some(3));
}

#[cfg(feature = "capture")]
#[test]
fn a_model_that_fails_to_load_ends_a_headless_run_with_an_error() {
    let (ok, stdout, stderr) = shiftlive(&[
        "live",
        "--test-pattern",
        "--max-frames",
        "3",
        "--headless",
        "--model",
        "/nonexistent/bad.safetensors",
    ]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("/nonexistent/bad.safetensors"), "{stderr}");
}

/// Each option block of a subcommand's `--help`: (flag, text under it).
fn help_blocks(sub: &str) -> Vec<(String, String)> {
    let (ok, stdout, stderr) = shiftlive(&[sub, "--help"]);
    assert!(ok, "{stderr}");
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        let t = line.trim_start();
        if t.starts_with("--") || (t.starts_with('-') && t.contains(", --")) {
            // Short help puts the text on the flag's line, after two spaces.
            let (flag, text) = t.split_once("  ").unwrap_or((t, ""));
            blocks.push((flag.to_string(), format!("{} ", text.trim())));
        } else if let Some((_, text)) = blocks.last_mut() {
            text.push_str(t);
            text.push(' ');
        }
    }
    blocks
}

/// Every `train` and `eval` flag that takes a value says what it is and its default; input
/// paths that have no default say what they are.
#[test]
fn train_and_eval_flags_have_a_description_and_a_default() {
    // Inputs and outputs the user names; no default makes sense for them.
    let named = [
        "--config",
        "--data",
        "--root",
        "--classes",
        "--train-list",
        "--val-list",
        "--out",
        "--init",
        "--teacher",
        "--model",
        "--list",
        "--threads",
    ];
    let mut checked = 0;
    for sub in ["train", "eval"] {
        for (flag, text) in help_blocks(sub) {
            let name = flag.split([' ', '=']).next().unwrap_or_default();
            if name == "-h," || name == "--help" {
                continue;
            }
            assert!(
                text.trim().len() > 10,
                "{sub} {name} has no description: {text:?}"
            );
            let takes_value = flag.contains('<');
            if takes_value && !named.contains(&name) {
                assert!(
                    text.to_lowercase().contains("default"),
                    "{sub} {name} does not give its default: {text}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} flags found");
}

#[test]
fn training_flags_out_of_range_are_usage_errors_stating_the_range() {
    let train = ["train", "--out", "unused", "--data", "unused"];
    for (extra, needle) in [
        (
            &["--lr", "0"][..],
            "0 is not in 0..=1000000000000 (it must be above 0)",
        ),
        (&["--lr", "inf"][..], "inf is not in 0..=1000000000000"),
        (&["--momentum", "1"][..], "1 is not in 0..=0.999"),
        (&["--batch-size", "0"][..], "0 is not in 1..="),
        (&["--dropout", "nan"][..], "nan is not in 0..=0.99"),
        (&["--weight-decay=-1e-4"][..], "-1e-4 is not in 0..=0.1"),
        (&["--gamma", "2"][..], "2 is not in 0..=1"),
        (&["--epochs", "0"][..], "0 is not in 1.."),
    ] {
        let args: Vec<&str> = train.iter().chain(extra).copied().collect();
        let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let (ok, _, stderr) = shiftlive(&["eval", "--model", "m", "--clips", "0"]);
    assert!(!ok && stderr.contains("0 is not in 1..=100"), "{stderr}");
}

/// `--dry-run` prints the resolved config (the preset's recipe with the flags applied) and
/// exits without touching OUT; a fine-tune recipe without --init and --amp on a CPU are warned.
#[test]
fn train_dry_run_prints_the_resolved_config_and_warns() {
    let dir = std::env::temp_dir().join(format!("shiftlive-dry-run-{}", std::process::id()));
    let out = dir.join("run");
    let (ok, stdout, stderr) = shiftlive(&[
        "train",
        "--preset",
        "tsm",
        "--data",
        "ucf",
        "--out",
        out.to_str().unwrap(),
        "--lr",
        "0.01",
        "--device",
        "cpu",
        "--dry-run",
    ]);
    assert!(ok, "{stderr}");
    let config: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(config["schedule"]["base_lr"], 0.01);
    assert_eq!(config["epochs"], 25);
    assert_eq!(config["batch_size"], 64);
    assert_eq!(config["model"]["name"], "tsm_r50");
    assert_eq!(config["model"]["dropout"], 0.8);
    assert!(stderr.contains("no --init"), "{stderr}");
    assert!(
        stderr.contains("--amp (mixed precision) is on, but the device is Cpu"),
        "{stderr}"
    );
    assert!(!out.exists(), "a dry run wrote {}", out.display());
    // The tiny recipe trains from scratch: no warning.
    let (ok, _, stderr) = shiftlive(&[
        "train",
        "--data",
        "ucf",
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
        "--dry-run",
    ]);
    assert!(ok && !stderr.contains("WARN"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `shiftlive presets` shows each preset's model and whole recipe.
#[test]
fn presets_show_model_and_recipe() {
    let (ok, stdout, stderr) = shiftlive(&["presets"]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("tsm_r50 "))
        .unwrap();
    assert!(lines[at].contains("Shift { direction: Bi"), "{}", lines[at]);
    let recipe = lines[at + 1];
    for part in [
        "lr 0.001 x0.1 at epochs [10, 20]",
        "25 epochs",
        "batch 64",
        "8 segments",
        "clip 20",
        "dropout 0.8",
        "partial BN on",
        "flip On",
        "from --init weights",
    ] {
        assert!(recipe.contains(part), "{part} missing: {recipe}");
    }
}
