//! The window of four sources end to end under Xvfb: `shiftlive live --sources FILE` with four
//! named test patterns (SMPTE bars, a ball, a pinwheel, rings) and the shipped model, a screenshot
//! of the screen after a few seconds, then Ctrl-C. The test asserts that every stream ran (the
//! summary has four streams with results, none failed), that the window drew all four (the
//! report's frames shown), and that the grid holds the pictures where their tiles are: the bars'
//! yellow in the top-left tile only, the pinwheel's black and white in the bottom-left one.
//! Needs `xvfb-run` and `import`; without them it says so and skips.
//! `SHIFTLIVE_STREAMS_SHOT=path.png` keeps the screenshot (the README's docs/window-streams.png).
#![cfg(feature = "ui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Pixels of `image` in the rectangle for which `test` holds.
fn count(
    image: &image::RgbImage,
    x: std::ops::Range<u32>,
    y: std::ops::Range<u32>,
    test: impl Fn([u8; 3]) -> bool,
) -> usize {
    y.flat_map(|y| x.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| test(image.get_pixel(x, y).0))
        .count()
}

fn yellow(p: [u8; 3]) -> bool {
    p[0] > 170 && p[1] > 170 && p[2] < 60
}

fn black_or_white(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c > 235) || p.iter().all(|&c| c < 10)
}

#[test]
fn four_sources_draw_four_tiles_in_a_real_window() {
    if !have("xvfb-run") || !have("import") {
        eprintln!("SKIPPED: xvfb-run or ImageMagick's import is missing (scripts/setup.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sources = d.join("sources.txt");
    std::fs::write(
        &sources,
        "bars = pattern:smpte\nball = pattern:ball\nwheel = pattern:pinwheel\nrings = pattern:circular\n",
    )
    .unwrap();
    let runtime = d.join("xdg");
    std::fs::create_dir(&runtime).unwrap();
    // A private XDG_RUNTIME_DIR (0700), which silences wgpu's warning.
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
    std::fs::set_permissions(&runtime, private).unwrap();
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/motion-tsm-r18-tiny.safetensors");
    let script = format!(
        r#""{bin}" live --sources "{sources}" --fps 15 --width 320 --height 240 --model "{model}" --device cpu --threads 1 >"{d}/out.jsonl" 2>"{d}/err.log" &
pid=$!
sleep 8
import -window root "{d}/shot.png" || exit 4
kill -INT $pid
wait $pid"#,
        bin = env!("CARGO_BIN_EXE_shiftlive"),
        sources = sources.display(),
        model = model.display(),
        d = d.display(),
    );
    let status = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x720x24", "sh", "-c", &script])
        .env("XDG_RUNTIME_DIR", &runtime)
        .status()
        .unwrap();
    let stderr = std::fs::read_to_string(d.join("err.log")).unwrap_or_default();
    assert!(status.success(), "{status}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = std::fs::read_to_string(d.join("out.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summary = lines
        .iter()
        .find_map(|v| v.get("summary"))
        .unwrap_or_else(|| panic!("no summary\n{stdout}\n{stderr}"));
    let window = lines
        .iter()
        .find_map(|v| v.get("window"))
        .unwrap_or_else(|| panic!("no window report\n{stdout}\n{stderr}"));
    eprintln!("{summary}\n{window}");
    assert_eq!(summary["totals"]["streams"], 4, "{summary}");
    assert_eq!(summary["totals"]["failed"], 0, "{summary}");
    let streams = summary["streams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bars", "ball", "wheel", "rings"]);
    for stream in streams {
        // A few seconds at 15 fps, the model warming up at the start, a debug build.
        let processed = stream["frames_processed"].as_u64().unwrap();
        assert!(processed >= 15, "{stream}");
    }
    let shown = window["frames_shown"].as_u64().unwrap();
    assert!(shown >= 4 * 15, "{window}");

    let shot = image::open(d.join("shot.png")).unwrap().to_rgb8();
    if let Ok(keep) = std::env::var("SHIFTLIVE_STREAMS_SHOT") {
        shot.save(&keep).unwrap();
    }
    assert_eq!(shot.dimensions(), (1280, 720));
    // The grid fills the central area (x 0..~790, y ~30..680): 2 x 2 tiles, the cards at the
    // top left of each; the pictures are measured in the tiles' lower halves, clear of them.
    let (left, right) = (0..390, 400..785);
    let (top, bottom) = (200..350, 520..670);
    let bars = count(&shot, left.clone(), top.clone(), yellow);
    assert!(bars > 1500, "no SMPTE yellow in the top-left tile ({bars})");
    for (x, y) in [
        (right.clone(), top),
        (left.clone(), bottom.clone()),
        (right, bottom.clone()),
    ] {
        let n = count(&shot, x.clone(), y.clone(), yellow);
        assert!(
            n < 50,
            "yellow outside the bars' tile ({n} at {x:?}, {y:?})"
        );
    }
    let wheel = count(&shot, left, bottom, black_or_white);
    assert!(
        wheel > 20_000,
        "no pinwheel in the bottom-left tile ({wheel})"
    );
}
