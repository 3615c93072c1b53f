//! The command line as a user meets it: exit codes, error messages, JSON output.

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
