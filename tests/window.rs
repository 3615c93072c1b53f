//! The real window end to end under Xvfb: `shiftlive play` on a clip this test encodes, in a
//! window for a few seconds with each renderer (glow, wgpu), a screenshot of the screen taken with
//! ImageMagick's `import`, then Ctrl-C. The test asserts that the window drew: the screenshot
//! differs from the empty screen taken before the window opened, the video area holds the clip's
//! colours, and the app reports frames shown, a label and its own latency. Needs `xvfb-run` and
//! `import` (scripts/setup.sh installs both); without them the test says so and skips.
//! `SHIFTLIVE_WINDOW_SHOT=path.png` keeps the glow screenshot (the README's docs/window.png).
#![cfg(feature = "ui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use gstreamer as gst;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// 10 s of the moving-ball test pattern (a yellow ball on blue), 640x480 at 30 fps, H.264 in MP4.
fn encode(path: &Path) {
    gst::init().unwrap();
    let line = format!(
        "videotestsrc num-buffers=300 pattern=ball foreground-color=0xffffd000 background-color=0xff2060a0 ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 \
         ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location={}",
        path.display()
    );
    if let Err(e) = common::gst_run(&line) {
        panic!("encoding failed: {e}");
    }
}

/// What a run left: the window's report, its stderr, the screen before and during.
struct Run {
    window: serde_json::Value,
    stderr: String,
    empty: image::RgbImage,
    shot: image::RgbImage,
}

/// Runs `shiftlive ARGS` on Xvfb for `seconds`, screenshots before and during, then Ctrl-C; the
/// window must close cleanly (exit 0) and report.
fn run_window(dir: &Path, renderer: &str, args: &[&str], seconds: u32) -> Run {
    let runtime = dir.join(format!("xdg-{renderer}"));
    std::fs::create_dir(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (empty, shot) = (
        dir.join(format!("empty-{renderer}.png")),
        dir.join(format!("shot-{renderer}.png")),
    );
    let script = format!(
        r#"import -window root "{empty}" || exit 3
"{bin}" {args} >"{dir}/out-{renderer}.jsonl" 2>"{dir}/err-{renderer}.log" &
pid=$!
sleep {seconds}
import -window root "{shot}" || exit 4
kill -INT $pid
wait $pid"#,
        empty = empty.display(),
        shot = shot.display(),
        bin = env!("CARGO_BIN_EXE_shiftlive"),
        args = args
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" "),
        dir = dir.display(),
    );
    let status = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x720x24", "sh", "-c", &script])
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("SHIFTLIVE_LOG", "info")
        .status()
        .unwrap();
    let stderr =
        std::fs::read_to_string(dir.join(format!("err-{renderer}.log"))).unwrap_or_default();
    assert!(status.success(), "{renderer}: {status}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = std::fs::read_to_string(dir.join(format!("out-{renderer}.jsonl"))).unwrap();
    let window = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v.get("window").cloned())
        .unwrap_or_else(|| panic!("{renderer}: no window report\n{stdout}\n{stderr}"));
    let load = |p: &Path| image::open(p).unwrap().to_rgb8();
    Run {
        window,
        stderr,
        empty: load(&empty),
        shot: load(&shot),
    }
}

/// Pixels of `image` in the rectangle within 40 of `want` on every channel.
fn count_near(
    image: &image::RgbImage,
    x: std::ops::Range<u32>,
    y: std::ops::Range<u32>,
    want: [u8; 3],
) -> usize {
    let mut n = 0;
    for y in y {
        for x in x.clone() {
            let p = image.get_pixel(x, y).0;
            n += p.iter().zip(want).all(|(&a, b)| a.abs_diff(b) < 40) as usize;
        }
    }
    n
}

#[test]
fn play_draws_frames_and_labels_in_a_real_window() {
    if !have("xvfb-run") || !have("import") {
        eprintln!(
            "SKIPPED: xvfb-run or ImageMagick's import is missing (scripts/setup.sh installs them)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("ball.mp4");
    encode(&clip);
    for renderer in ["glow", "wgpu"] {
        let clip = clip.to_string_lossy();
        let args = [
            "play",
            &clip,
            "--realtime",
            "--preset",
            "tsm_mobilenet_v2_tiny_online",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--renderer",
            renderer,
        ];
        let Run {
            window,
            empty,
            shot,
            ..
        } = run_window(dir.path(), renderer, &args, 5);
        eprintln!("{renderer}: {window}");
        if renderer == "glow"
            && let Ok(keep) = std::env::var("SHIFTLIVE_WINDOW_SHOT")
        {
            shot.save(&keep).unwrap();
        }
        let shown = window["frames_shown"].as_u64().unwrap();
        let received = window["frames_received"].as_u64().unwrap();
        // A few seconds of a 30 fps clip in real time, the model warming up at the start.
        assert!(shown >= 20, "{renderer}: {shown} frames shown");
        assert!(received >= shown);
        assert!(
            window["last_label"]
                .as_str()
                .is_some_and(|l| l.starts_with("class_")),
            "{renderer}: no label shown: {window}"
        );
        let p50 = window["latency_ms"]["p50"].as_f64().unwrap();
        assert!(p50.is_finite() && p50 > 0.0, "{renderer}: latency {p50}");

        // The window drew: the screen changed from the empty (black) root window, well beyond
        // the panels' area (the clip's black background matches the empty screen)...
        assert_eq!(shot.dimensions(), (1280, 720));
        let changed = shot
            .pixels()
            .zip(empty.pixels())
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            changed > 1280 * 720 / 4,
            "{renderer}: only {changed} pixels changed"
        );
        // ...and the video area holds the clip: its blue background and its yellow ball, colours
        // the window's own widgets never use.
        let blue = count_near(&shot, 0..790, 40..680, [0x20, 0x60, 0xa0]);
        let yellow = count_near(&shot, 0..790, 40..680, [0xff, 0xd0, 0x00]);
        assert!(
            blue > 200_000 && yellow > 300,
            "{renderer}: no video in the window ({blue} blue, {yellow} yellow pixels)"
        );
    }
}

#[test]
fn a_model_that_fails_to_load_opens_the_window_with_an_error_banner() {
    if !have("xvfb-run") || !have("import") {
        eprintln!(
            "SKIPPED: xvfb-run or ImageMagick's import is missing (scripts/setup.sh installs them)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("ball.mp4");
    encode(&clip);
    let clip = clip.to_string_lossy();
    let args = ["play", &clip, "--model", "/nonexistent/bad.safetensors"];
    // The window stays up until Ctrl-C and closes cleanly (run_window asserts exit 0).
    let Run {
        window,
        stderr,
        shot,
        ..
    } = run_window(dir.path(), "badmodel", &args, 3);
    assert!(
        stderr.contains("/nonexistent/bad.safetensors") && stderr.contains("failed to load"),
        "{stderr}"
    );
    assert_eq!(window["frames_shown"].as_u64(), Some(0), "{window}");
    // The red error banner is on the screen.
    let red = count_near(&shot, 0..790, 20..200, [140, 28, 28]);
    assert!(red > 5000, "no error banner: {red} red pixels");
}
