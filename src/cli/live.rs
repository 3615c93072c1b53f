//! `shiftlive live` (camera, URI, test pattern) and `shiftlive play FILE`.

use std::path::PathBuf;

use shiftlive::capture::Source;

use super::run::{ModelArgs, RunArgs, run};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["camera", "uri", "test_pattern"])))]
pub struct LiveArgs {
    /// V4L2 camera: /dev/videoN, or `auto` for the first one
    #[arg(long)]
    camera: Option<String>,
    /// rtsp://, http(s):// or file:// stream
    #[arg(long)]
    uri: Option<String>,
    /// GStreamer test pattern (smpte, ball, snow, ...), a live source at --fps
    #[arg(long, num_args = 0..=1, default_missing_value = "ball")]
    test_pattern: Option<String>,
    /// Test pattern frame rate
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    fps: u32,
    /// Test pattern size
    #[arg(long, default_value_t = 640, value_parser = clap::value_parser!(u32).range(16..=8192))]
    width: u32,
    #[arg(long, default_value_t = 480, value_parser = clap::value_parser!(u32).range(16..=8192))]
    height: u32,
    /// End the test pattern after N frames, as an unplugged camera (the source is then reopened)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pattern_frames: Option<u32>,
    /// Reopenings of a source that fails, over the run (default: forever)
    #[arg(long)]
    max_retries: Option<u32>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
}

pub fn live(args: LiveArgs) -> anyhow::Result<()> {
    let source = if let Some(camera) = args.camera {
        Source::Camera(camera)
    } else if let Some(uri) = args.uri {
        Source::Uri(uri)
    } else {
        let pattern = args.test_pattern.unwrap_or_else(|| "ball".into());
        Source::TestPattern {
            pattern,
            width: args.width,
            height: args.height,
            fps: args.fps,
            frames: args.pattern_frames,
        }
    };
    run(
        source,
        Some(false),
        &args.model,
        &args.run,
        args.max_retries,
    )
}

#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// Video file (any container and codec GStreamer decodes), or a directory of numbered frames
    /// (img_00001.jpg ... or .png, as in the rawframes layout)
    file: PathBuf,
    /// Replay at the file's own pace (drops counted); the default in a window
    #[arg(long, conflicts_with = "fast")]
    realtime: bool,
    /// Replay as fast as possible (no frame lost); the default with --headless
    #[arg(long)]
    fast: bool,
    /// Frame rate of a frame directory
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
    fps: u32,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    run: RunArgs,
}

pub fn play(args: PlayArgs) -> anyhow::Result<()> {
    let source = if args.file.is_dir() {
        Source::Frames {
            dir: args.file,
            fps: args.fps,
        }
    } else {
        Source::File(args.file)
    };
    let pace = match (args.realtime, args.fast) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    run(source, pace, &args.model, &args.run, Some(0))
}
