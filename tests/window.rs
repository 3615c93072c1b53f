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

/// A private XDG_RUNTIME_DIR (0700), which silences wgpu's warning.
fn runtime_dir(path: &Path) -> std::path::PathBuf {
    std::fs::create_dir(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path.to_path_buf()
}

/// Runs the shell `script` on a fresh 1280x720 Xvfb screen.
fn xvfb(script: &str, runtime: &Path) -> std::process::ExitStatus {
    Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x720x24", "sh", "-c", script])
        .env("XDG_RUNTIME_DIR", runtime)
        .env("SHIFTLIVE_LOG", "info")
        .status()
        .unwrap()
}

/// What a run left: the window's report, its stderr, the screen before and during.
struct Run {
    window: serde_json::Value,
    /// The `summary` printed before the window's report (null when none was).
    summary: serde_json::Value,
    stderr: String,
    empty: image::RgbImage,
    shot: image::RgbImage,
}

/// Runs `shiftlive ARGS` on Xvfb for `seconds`, screenshots before and during, then Ctrl-C; the
/// window must close cleanly (exit 0) and report.
fn run_window(dir: &Path, renderer: &str, args: &[&str], seconds: u32) -> Run {
    let runtime = runtime_dir(&dir.join(format!("xdg-{renderer}")));
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
    let status = xvfb(&script, &runtime);
    let stderr =
        std::fs::read_to_string(dir.join(format!("err-{renderer}.log"))).unwrap_or_default();
    assert!(status.success(), "{renderer}: {status}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = std::fs::read_to_string(dir.join(format!("out-{renderer}.jsonl"))).unwrap();
    let (window, summary) = reports(&stdout)
        .unwrap_or_else(|| panic!("{renderer}: no window report\n{stdout}\n{stderr}"));
    let load = |p: &Path| image::open(p).unwrap().to_rgb8();
    Run {
        window,
        summary,
        stderr,
        empty: load(&empty),
        shot: load(&shot),
    }
}

/// The window's report and the summary printed before it (null when none was).
fn reports(stdout: &str) -> Option<(serde_json::Value, serde_json::Value)> {
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = lines.iter().position(|v| v.get("window").is_some())?;
    let summary = at
        .checked_sub(1)
        .and_then(|i| lines[i].get("summary").cloned())
        .unwrap_or_default();
    Some((lines[at]["window"].clone(), summary))
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
            summary,
            empty,
            shot,
            ..
        } = run_window(dir.path(), renderer, &args, 5);
        // Ctrl-C while the file played: its summary comes before the window's report.
        let processed = summary["frames_processed"].as_u64().unwrap_or(0);
        assert!(processed >= 20, "{renderer}: {summary}");
        eprintln!("{renderer}: {window}");
        if renderer == "glow"
            && let Ok(keep) = std::env::var("SHIFTLIVE_WINDOW_SHOT")
        {
            shot.save(&keep).unwrap();
        }
        let shown = window["frames_shown"].as_u64().unwrap();
        let received = window["frames_received"].as_u64().unwrap();
        let pictures = window["pictures_received"].as_u64().unwrap();
        // A few seconds of a 30 fps clip in real time, the model warming up at the start.
        assert!(shown >= 20, "{renderer}: {shown} frames shown");
        assert!(received + pictures >= shown);
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

/// The demo clip in a window driven as a user would (openbox as the window manager, keys typed
/// with xdotool): the command line's model fails, the default model is opened from the window by
/// typing its path into the source dialog, and then the labels are right at the model's stride,
/// the window shrinks to 640x400 and goes full screen (screenshots kept with
/// `SHIFTLIVE_WINDOW_SHOTS=dir`), and the window system destroys it: a clean close that prints
/// the summary and the report.
#[test]
fn a_model_opened_from_the_window_after_a_bad_one_names_the_demo_clip_right() {
    if !have("xvfb-run") || !have("import") || !have("xdotool") || !have("openbox") {
        eprintln!("SKIPPED: xvfb-run, import, xdotool or openbox is missing (scripts/setup.sh)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = root.join("assets/demo/motion-demo.avi");
    let model = root.join("assets/models/motion-tsm-r18-tiny.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runtime = runtime_dir(&d.join("xdg"));
    // Every letter of the typed path is also a shortcut (s, t, r, o, p, f, v, i, ...): none may
    // fire while the dialog has the keyboard.
    let script = format!(
        r#"openbox >/dev/null 2>&1 &
sleep 1
"{bin}" play "{clip}" --fast --model /nonexistent/bad.safetensors --device cpu --threads 1 --echo-results >"{d}/out.jsonl" 2>"{d}/err.log" &
pid=$!
wid=$(xdotool search --sync --name '^shiftlive$' | head -1)
sleep 3
xdotool windowactivate --sync $wid
import -window root "{d}/bad.png"
xdotool key --clearmodifiers o
sleep 1
xdotool type --delay 15 "{model}"
xdotool key Return
sleep 8
xdotool windowsize --sync $wid 640 400
sleep 2
import -window $wid "{d}/small.png"
xdotool key --clearmodifiers f
sleep 3
import -window root "{d}/full.png"
xdotool windowclose $wid
wait $pid"#,
        bin = env!("CARGO_BIN_EXE_shiftlive"),
        clip = clip.display(),
        model = model.display(),
        d = d.display(),
    );
    let status = xvfb(&script, &runtime);
    let stderr = std::fs::read_to_string(d.join("err.log")).unwrap_or_default();
    let stdout = std::fs::read_to_string(d.join("out.jsonl")).unwrap();
    if let Ok(keep) = std::env::var("SHIFTLIVE_WINDOW_SHOTS") {
        for shot in ["bad.png", "small.png", "full.png"] {
            let _ = std::fs::copy(d.join(shot), Path::new(&keep).join(shot));
        }
    }
    assert!(status.success(), "{status}\n{stderr}");
    assert!(!stderr.contains("internal error"), "{stderr}");
    assert!(
        stderr.contains("closed by the window system"),
        "windowclose: {stderr}"
    );
    // The results the window took: the model's stride (4, from its checkpoint) although the
    // command line's model failed, and the labels of the clip's segments.
    let truth = shiftlive::data::synth::DemoTruth::read(
        &shiftlive::data::synth::DemoTruth::path_for(&clip),
    )
    .unwrap();
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("frame").is_some())
        .collect();
    assert!(results.len() >= 150, "{} results\n{stderr}", results.len());
    let (mut checked, mut right) = (0, 0);
    for r in &results {
        let frame = r["frame"].as_u64().unwrap() as usize;
        assert_eq!(frame % 4, 0, "stride 4: frame {frame}");
        let seg = truth
            .segments
            .iter()
            .find(|s| (s.start..s.end).contains(&frame))
            .unwrap();
        if frame >= seg.start + 48 {
            checked += 1;
            right += usize::from(r["label"].as_str() == Some(seg.class.as_str()));
        }
    }
    let share = right as f64 / checked as f64;
    eprintln!("window: {checked} results after warm-up, {right} right");
    assert!(checked >= 80 && share >= 0.9, "{right} of {checked} right");
    // The file played to its end; closing printed its summary, then the window's report.
    let (window, summary) = reports(&stdout).expect("a window report");
    assert_eq!(summary["frames_processed"], 225, "{summary}");
    assert!(window["frames_shown"].as_u64().unwrap() > 0, "{window}");
    // 640x400, then full screen on the 1280x720 screen.
    let small = image::open(d.join("small.png")).unwrap().to_rgb8();
    assert_eq!(small.dimensions(), (640, 400));
    let full = image::open(d.join("full.png")).unwrap().to_rgb8();
    let black = full.pixels().filter(|p| p.0 == [0, 0, 0]).count();
    assert!(
        black < 1280 * 720 / 20,
        "not full screen: {black} black pixels"
    );
}
