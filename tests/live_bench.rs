//! `bench --live` times the step the live path runs: its set-up (model, backend, device,
//! precision, folding, layout, threads) equals the one `play --headless` reports for the same
//! model and threads, and its figures are real (a loop, a paced and a fast pipeline run that
//! processed their frames).
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
