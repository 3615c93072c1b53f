//! `shiftlive live` (cameras, URIs, test patterns) and `shiftlive play FILE...`: one source or
//! several, batched through one model (`cli/sources.rs` says in which order).

use std::path::PathBuf;

use shiftlive::capture::Source;
use shiftlive::pipeline::StreamSource;

use super::run::{ModelArgs, RunArgs, run};
use super::sources::{SourceDefaults, read_sources};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).multiple(true)
    .args(["camera", "uri", "test_pattern", "sources"])))]
pub struct LiveArgs {
    /// V4L2 camera: /dev/videoN, or `auto` for the first one (repeatable)
    #[arg(long)]
    camera: Vec<String>,
    /// rtsp://, http(s):// or file:// stream (repeatable)
    #[arg(long)]
    uri: Vec<String>,
    /// GStreamer test pattern (smpte, ball, snow, ...), a live source at --fps (repeatable)
    #[arg(long, num_args = 0..=1, default_missing_value = "ball")]
    test_pattern: Vec<String>,
    /// A file of sources, one a line: `[NAME =] SOURCE` (pattern:P, camera:DEV, a URI, a path)
    #[arg(long)]
    sources: Option<PathBuf>,
    /// Start N test patterns (the --test-pattern ones, in turn), batched through one model
    #[arg(long, requires = "test_pattern", value_parser = clap::value_parser!(u32).range(1..=1024))]
    streams: Option<u32>,
    /// Test pattern (and --sources frame directory) frame rate
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
    let defaults = SourceDefaults {
        fps: args.fps,
        width: args.width,
        height: args.height,
        pattern_frames: args.pattern_frames,
    };
    let mut sources: Vec<Source> = args.camera.into_iter().map(Source::Camera).collect();
    sources.extend(args.uri.into_iter().map(Source::Uri));
    let patterns = match args.streams {
        Some(n) => args.test_pattern.iter().cycle().take(n as usize).collect(),
        None => args.test_pattern.iter().collect::<Vec<_>>(),
    };
    sources.extend(patterns.into_iter().map(|p| defaults.pattern(p)));
    let mut sources: Vec<StreamSource> = sources.into_iter().map(StreamSource::unnamed).collect();
    if let Some(list) = &args.sources {
        sources.extend(read_sources(list, &defaults)?);
    }
    run(
        sources,
        Some(false),
        &args.model,
        &args.run,
        args.max_retries,
    )
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true)
    .args(["file", "sources"])))]
pub struct PlayArgs {
    /// Video files (any container and codec GStreamer decodes), or directories of numbered frames
    /// (img_00001.jpg ... or .png, as in the rawframes layout); several are batched through one model
    file: Vec<PathBuf>,
    /// A file of sources, one a line: `[NAME =] SOURCE` (a path, a URI, pattern:P, camera:DEV)
    #[arg(long)]
    sources: Option<PathBuf>,
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
    let defaults = SourceDefaults {
        fps: args.fps,
        width: 640,
        height: 480,
        pattern_frames: None,
    };
    let mut sources: Vec<StreamSource> = args
        .file
        .into_iter()
        .map(|file| StreamSource::unnamed(defaults.path(file)))
        .collect();
    if let Some(list) = &args.sources {
        sources.extend(read_sources(list, &defaults)?);
    }
    let pace = match (args.realtime, args.fast) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    run(sources, pace, &args.model, &args.run, Some(0))
}
