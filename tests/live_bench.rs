//! `bench --live` times the step the live path runs: its set-up (model, backend, device,
//! precision, folding, layout, threads) equals the one `play --headless` reports for the same
//! model and threads, and its figures are real (a loop, a paced and a fast pipeline run that
//! processed their frames). And `bench` against its peers (ONNX Runtime, OpenVINO from their
//! wheels): alternating rounds, each ratio the median of its rounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn shiftlive(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bench_live_runs_the_step_play_runs() {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/motion-demo.avi");
    for threads in ["1", "2"] {
        let (ok, out, err) = shiftlive(&[
            "bench",
            "--live",
            "--live-seconds",
            "1",
            "--iters",
            "5",
            "--warmup",
            "1",
            "--threads",
            threads,
            "--json",
        ]);
        assert!(ok, "bench --live failed: {err}");
        let bench: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        let (ok, out, err) = shiftlive(&[
            "play",
            clip.to_str().unwrap(),
            "--preset",
            "tsm_mobilenet_v2_online",
            "--headless",
            "--max-frames",
            "3",
            "--threads",
            threads,
        ]);
        assert!(ok, "play failed: {err}");
        let play: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        println!(
            "threads {threads}: bench {} / play {}",
            bench["live_setup"], play["setup"]
        );
        assert_eq!(
            bench["live_setup"], play["setup"],
            "bench and play prepare different steps"
        );
        assert_eq!(play["setup"]["threads"], threads.parse::<i64>().unwrap());
        assert_eq!(play["summary"]["frames_processed"], 3);
        for run in ["live_paced", "live_fast"] {
            assert_eq!(bench[run]["frames_processed"], 30, "{run}: {}", bench[run]);
            let model = bench[run]["model_ms_p50"].as_f64().unwrap();
            let ratio = bench[run]["live_vs_loop"].as_f64().unwrap();
            // Each run against the mean of the loops timed before and after it.
            let looped = bench[run]["loop_model_ms_p50"].as_f64().unwrap();
            let loops: Vec<f64> = bench["loop_model_ms_p50_runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(loops.len(), 3);
            let around = if run == "live_paced" { 0 } else { 1 };
            assert!((looped - (loops[around] + loops[around + 1]) / 2.0).abs() < 1e-9);
            assert!(
                model > 0.0 && looped > 0.0,
                "{run}: {model} ms, loop {looped} ms"
            );
            assert!(
                (ratio - model / looped).abs() < 1e-9,
                "{run}: live_vs_loop {ratio}"
            );
        }
    }
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[test]
fn bench_times_the_peers_in_alternating_rounds() {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-export/bin/python");
    assert!(
        venv.exists(),
        "{} missing: scripts/setup.sh --export creates it",
        venv.display()
    );
    let (ok, out, err) = shiftlive(&[
        "bench",
        "--preset",
        "tsm_mobilenet_v2_tiny_online",
        "--skip-r50",
        "--skip-eco",
        "--skip-live",
        "--skip-pytorch",
        "--iters",
        "10",
        "--warmup",
        "1",
        "--json",
    ]);
    assert!(ok, "bench failed: {err}");
    let bench: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        bench["peer_versions"]["ort_version"].is_string(),
        "{}",
        bench["peer_versions"]
    );
    let mut compared = vec![
        ("vs_onnxruntime", Some("ort")),
        ("vs_onnxruntime_nospin", Some("ort_nospin")),
        ("vs_onnxruntime_paced", None),
        ("vs_openvino", Some("openvino")),
    ];
    if !bench["vs_openvino_bf16"].is_null() {
        compared.push(("vs_openvino_bf16", Some("openvino_bf16")));
    }
    for (key, peer) in compared {
        let rounds = numbers(&bench[format!("{key}_rounds")]);
        println!("{key}: {} rounds {rounds:?}", bench[key]);
        assert_eq!(rounds.len(), 11, "{key}");
        assert!(rounds.iter().all(|r| r.is_finite() && *r > 0.0), "{key}");
        let ratio = bench[key].as_f64().unwrap();
        assert!((ratio - median(&rounds)).abs() < 1e-12, "{key}: {ratio}");
        // The medians of each side lie where the rounds' ratios put them.
        let ours = bench[format!("{key}_ours_ms_p50")].as_f64().unwrap();
        if let Some(peer) = peer {
            let theirs = bench[format!("{peer}_ms_p50")].as_f64().unwrap();
            let lo = rounds.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rounds.iter().copied().fold(0.0, f64::max);
            assert!(
                ours / theirs >= lo * (1.0 - 1e-9) && ours / theirs <= hi * (1.0 + 1e-9),
                "{key}: {ours} / {theirs} outside [{lo}, {hi}]"
            );
        }
        assert!(ours > 0.0, "{key}");
    }
}
