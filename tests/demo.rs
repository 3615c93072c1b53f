//! The shipped default model on the shipped demo clip, as `make demo` runs it with no display:
//! headless JSON lines whose labels match the classes the clip shows (>= 90% of the frames after
//! each segment's warm-up), and the summary at the end.
#![cfg(feature = "capture")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use shiftlive::data::synth::DemoTruth;

#[test]
fn default_model_names_the_demo_clip_right() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = root.join("assets/demo/motion-demo.avi");
    let model = root.join("assets/models/motion-tsm-r18-tiny.safetensors");
    let truth = DemoTruth::read(&DemoTruth::path_for(&clip)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .args([
            "play",
            "--headless",
            "--device",
            "cpu",
            "--threads",
            "2",
            "--model",
        ])
        .arg(&model)
        .arg(&clip)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.last().unwrap();
    assert!(summary.get("summary").is_some(), "no summary: {summary}");
    // The model runs at the stride it was trained with (4, from its metadata): 12 processed
    // frames of smoothing are 48 source frames, the warm-up skipped after each class change.
    let warmup = 48;
    let (mut checked, mut right) = (0usize, 0usize);
    let mut frames = 0;
    for line in &lines[..lines.len() - 1] {
        let frame = line["frame"].as_u64().unwrap() as usize;
        frames += 1;
        let Some(seg) = truth
            .segments
            .iter()
            .find(|s| (s.start..s.end).contains(&frame))
        else {
            continue;
        };
        if frame < seg.start + warmup {
            continue;
        }
        checked += 1;
        if line["label"].as_str() == Some(seg.class.as_str()) {
            right += 1;
        }
    }
    let share = right as f64 / checked.max(1) as f64;
    eprintln!(
        "{frames} results, {checked} after warm-up, {right} right ({:.1}%)",
        100.0 * share
    );
    assert_eq!(
        frames,
        truth.frames.div_ceil(4),
        "stride 4 from the model's metadata"
    );
    assert!(checked >= truth.segments.len() * 10);
    assert!(
        share >= 0.9,
        "only {:.1}% of the labels are right",
        100.0 * share
    );
}
