//! The plugin as users load it: the built libgstshiftlive.so through GST_PLUGIN_PATH, in real
//! `gst-launch-1.0 -m` and `gst-inspect-1.0` processes. Its per-frame labels and logits on the demo
//! clip equal `shiftlive play --headless --emit-logits`; two elements in one pipeline are
//! independent; a bad model ends gst-launch with an error naming the file, not a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::str::FromStr;

use common::{Message, demo_clip, demo_model, init, max_abs_diff, profile_dir};
use gstreamer as gst;
use gstreamer::prelude::*;

/// A directory holding only the plugin (target/debug also holds proc-macro .so files GStreamer
/// would try to load), and a private registry file.
struct PluginEnv {
    dir: tempfile::TempDir,
}

impl PluginEnv {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // `cargo test` rebuilds deps/libgstshiftlive.so; only `cargo build` copies it up a level.
        let so = ["deps/libgstshiftlive.so", "libgstshiftlive.so"]
            .map(|p| profile_dir().join(p))
            .into_iter()
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .max()
            .map(|(_, p)| p)
            .expect("libgstshiftlive.so built");
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        std::fs::copy(&so, dir.path().join("plugins/libgstshiftlive.so")).unwrap();
        Self { dir }
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("GST_PLUGIN_PATH", self.dir.path().join("plugins"))
            .env("GST_REGISTRY", self.dir.path().join("registry.bin"));
        cmd
    }

    fn launch(&self, pipeline: &str) -> Output {
        let mut cmd = self.command("gst-launch-1.0");
        cmd.arg("-m").args(pipeline.split_whitespace());
        cmd.output().expect("gst-launch-1.0 runs")
    }
}

/// The element messages gst-launch-1.0 -m printed.
fn messages(out: &Output) -> Vec<Message> {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Got message #")?;
            let (_, rest) = rest.split_once(" from element \"")?;
            let (element, rest) = rest.split_once('"')?;
            let body = rest.strip_prefix(" (element): ")?;
            let s = gst::Structure::from_str(body.trim_end_matches(';')).ok()?;
            Message::from_structure(element.to_string(), &s)
        })
        .collect()
}

fn decode_chain(clip: &Path) -> String {
    format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB",
        clip.display()
    )
}

#[test]
fn labels_and_logits_on_the_demo_clip_equal_shiftlive_play() {
    init();
    let env = PluginEnv::new();
    let model = demo_model();
    let out = env.launch(&format!(
        "{} ! tsmclassify model={} emit-logits=true ! fakesink",
        decode_chain(&demo_clip()),
        model.display()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = messages(&out);

    let shiftlive = profile_dir().join("shiftlive");
    assert!(
        shiftlive.is_file(),
        "{} not built (cargo build)",
        shiftlive.display()
    );
    let play = Command::new(&shiftlive)
        .args([
            "play",
            "--headless",
            "--emit-logits",
            "--smooth",
            "3",
            "--model",
        ])
        .arg(&model)
        .arg(demo_clip())
        .output()
        .unwrap();
    assert!(
        play.status.success(),
        "{}",
        String::from_utf8_lossy(&play.stderr)
    );
    let theirs: Vec<Message> = String::from_utf8_lossy(&play.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("frame").is_some())
        .map(|v| Message {
            element: "play".into(),
            pts: v["pts_ms"].as_f64().map(|ms| (ms * 1e6).round() as u64),
            label: v["label"].as_str().unwrap_or("").to_string(),
            top_labels: v["top"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["label"].as_str().unwrap().to_string())
                .collect(),
            logits: v["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
            latency_ms: 0.0,
            step_ms: 0.0,
        })
        .collect();
    assert!(theirs.len() > 100, "play gave {} frames", theirs.len());
    let diff = max_abs_diff(&ours, &theirs);
    assert!(diff <= 1e-5, "logits differ by {diff}");
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.pts, b.pts);
        assert_eq!((&a.label, &a.top_labels), (&b.label, &b.top_labels));
    }
}

#[test]
fn two_elements_on_two_sources_in_one_pipeline_are_independent() {
    init();
    let env = PluginEnv::new();
    let branch = |name: &str, pattern: &str| {
        format!(
            "videotestsrc num-buffers=24 pattern={pattern} ! video/x-raw,format=RGB,width=96,height=72 \
             ! tsmclassify name={name} model={} stride=1 emit-logits=true ! fakesink",
            demo_model().display()
        )
    };
    let both = env.launch(&format!("{} {}", branch("a", "ball"), branch("b", "snow")));
    assert!(
        both.status.success(),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
    let both = messages(&both);
    for (name, pattern) in [("a", "ball"), ("b", "snow")] {
        let alone = messages(&env.launch(&branch(name, pattern)));
        let together: Vec<_> = both.iter().filter(|m| m.element == name).cloned().collect();
        assert_eq!(alone.len(), 24);
        let diff = max_abs_diff(&together, &alone);
        assert!(
            diff <= 1e-5,
            "{name}: logits differ by {diff} beside the other stream"
        );
    }
}

#[test]
fn each_backend_gives_libtorch_logits_and_a_bad_name_is_an_error() {
    init();
    let env = PluginEnv::new();
    let line = |backend: &str| {
        format!(
            "videotestsrc num-buffers=16 pattern=ball ! video/x-raw,format=RGB,width=96,height=72 \
             ! tsmclassify model={} stride=1 emit-logits=true backend={backend} ! fakesink",
            demo_model().display()
        )
    };
    let reference = messages(&env.launch(&line("libtorch")));
    assert_eq!(reference.len(), 16);
    for backend in ["onnxruntime", "openvino", "auto"] {
        let out = env.launch(&line(backend));
        assert!(
            out.status.success(),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = messages(&out);
        assert_eq!(got.len(), 16, "{backend}");
        let diff = max_abs_diff(&got, &reference);
        println!("backend {backend}: max abs diff vs libtorch {diff:.2e}");
        assert!(diff <= 1e-4, "{backend}: logits differ by {diff}");
    }
    let out = env.launch(&line("tensorrt"));
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{text}");
    assert!(text.contains("'tensorrt' is not auto, libtorch"), "{text}");
}

#[test]
fn a_bad_model_ends_gst_launch_with_an_error_naming_the_file() {
    let env = PluginEnv::new();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("truncated.safetensors");
    let model = std::fs::read(demo_model()).unwrap();
    std::fs::write(&bad, &model[..model.len() / 2]).unwrap();
    let missing = dir.path().join("nowhere.safetensors");
    // ECO answers every N frames from its working memory: `live`/`play` run it, not the element.
    let eco = dir.path().join("eco.safetensors");
    let config = shiftlive::model::ModelConfig::eco_lite_tiny();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    shiftlive::model::ActionNet::new(&vs.root(), &config).unwrap();
    shiftlive::model::checkpoint::save(&vs, &config, &[], &eco).unwrap();
    for path in [bad, missing, eco.clone()] {
        let out = env.launch(&format!(
            "videotestsrc num-buffers=5 ! video/x-raw,format=RGB ! tsmclassify model={} ! fakesink",
            path.display()
        ));
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        // gst-launch-1.0 exits with -1 (255) on an error; a crash would be a signal (no code).
        assert_eq!(
            out.status.code(),
            Some(255),
            "an exit, not a signal: {text}"
        );
        assert!(text.contains(&*path.to_string_lossy()), "{text}");
        if path == eco {
            assert!(
                text.contains("an ECO model, which answers every 8 frames"),
                "{text}"
            );
        }
    }
}

#[test]
fn gst_inspect_lists_every_property_with_its_range_and_default() {
    init();
    let env = PluginEnv::new();
    let out = env
        .command("gst-inspect-1.0")
        .arg("tsmclassify")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let element = gst::ElementFactory::make("tsmclassify").build().unwrap();
    let ours: Vec<_> = element
        .list_properties()
        .into_iter()
        .filter(|p| p.owner_type() == element.type_())
        .collect();
    assert_eq!(
        ours.len(),
        11,
        "model labels stride smoothing hysteresis threshold top-k device threads backend emit-logits"
    );
    for pspec in ours {
        // gst-inspect prints a property as "  name  : blurb", then flags, then type/range/default.
        let start = text
            .find(&format!("  {:<20}: ", pspec.name()))
            .unwrap_or_else(|| panic!("{} not listed:\n{text}", pspec.name()));
        let block: String = text[start..].lines().take(3).collect::<Vec<_>>().join("\n");
        assert!(block.contains("Default:"), "{block}");
        let integer =
            |lo: i64, hi: i64, default: i64| format!("Range: {lo} - {hi} Default: {default}");
        let range = if let Some(p) = pspec.downcast_ref::<gst::glib::ParamSpecUInt>() {
            Some(integer(
                p.minimum().into(),
                p.maximum().into(),
                p.default_value().into(),
            ))
        } else {
            pspec.downcast_ref::<gst::glib::ParamSpecInt>().map(|p| {
                integer(
                    p.minimum().into(),
                    p.maximum().into(),
                    p.default_value().into(),
                )
            })
        };
        if let Some(range) = range {
            assert!(block.contains(&range), "{block}");
        }
        if pspec.downcast_ref::<gst::glib::ParamSpecFloat>().is_some() {
            assert!(block.contains("Range:"), "{block}");
        }
    }
}
