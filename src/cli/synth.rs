//! `shiftlive synth`: writes the synthetic motion data set in UCF-101's layout (videos, split
//! files, optionally rawframes, and synth.json with the parameters).

use std::path::PathBuf;

use anyhow::{Context, bail};
use shiftlive::data::synth::{DemoTruth, SynthClass, SynthOptions, demo_clip, generate};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder to write (UCF-101 layout: <Class>/v_<Class>_gGG_cCC.avi, ucfTrainTestlist/)
    #[arg(long, required_unless_present = "demo")]
    out: Option<PathBuf>,
    /// Instead of a data set, write one demo clip (AVI) showing the --classes in turn (all nine
    /// by default), with CLIP.json beside it saying which frames show which class
    #[arg(long, conflicts_with = "out")]
    demo: Option<PathBuf>,
    /// Frames of each class in a --demo clip
    #[arg(long, default_value_t = 80, value_parser = super::ranges::positive())]
    segment_frames: usize,
    /// Videos per class
    #[arg(long, default_value_t = 40, value_parser = super::ranges::positive())]
    per_class: usize,
    /// Frames per video
    #[arg(long, default_value_t = 32, value_parser = super::ranges::positive())]
    frames: usize,
    /// Frame size: a side (64) or WIDTHxHEIGHT (80x60)
    #[arg(long, default_value = "64", value_parser = parse_size)]
    size: (usize, usize),
    /// Frames per second written in the container
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
    fps: u32,
    /// Seed: the same seed gives the same frames
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write rawframes/<Class>/<video>/img_%05d.jpg
    #[arg(long)]
    rawframes: bool,
    /// Comma-separated subset of the classes (default: all nine)
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// JPEG quality of the MJPEG frames (1-100)
    #[arg(long, default_value_t = 95, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Threads (0: one per core)
    #[arg(long, default_value_t = 0, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=1024))]
    threads: usize,
    /// Write into a folder that is not empty, replacing files of the same names
    #[arg(long)]
    force: bool,
}

/// The sides a synthetic frame may have (as `SynthOptions` checks for a data set).
const SIDES: std::ops::RangeInclusive<usize> = 8..=4096;

/// A `--size` that is not a side or WIDTHxHEIGHT within [`SIDES`].
#[derive(Debug, thiserror::Error)]
enum SizeError {
    #[error("'{0}': expected a side (64) or WIDTHxHEIGHT (80x60)")]
    Format(String),
    #[error("{text}: each side must be in {}..={}", SIDES.start(), SIDES.end())]
    Range { text: String },
}

/// Parses `--size`: a side (64) or WIDTHxHEIGHT (80x60), each side in [`SIDES`].
fn parse_size(text: &str) -> Result<(usize, usize), SizeError> {
    let parse = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| SizeError::Format(text.to_string()))
    };
    let (width, height) = match text.split_once(['x', 'X']) {
        Some((w, h)) => (parse(w)?, parse(h)?),
        None => {
            let side = parse(text)?;
            (side, side)
        }
    };
    if SIDES.contains(&width) && SIDES.contains(&height) {
        Ok((width, height))
    } else {
        Err(SizeError::Range {
            text: text.to_string(),
        })
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (width, height) = args.size;
    let classes = if args.classes.is_empty() {
        SynthClass::ALL.to_vec()
    } else {
        let mut classes = Vec::new();
        for name in &args.classes {
            let Some(class) = SynthClass::from_name(name) else {
                let known: Vec<&str> = SynthClass::ALL.iter().map(|c| c.name()).collect();
                bail!(
                    "--classes: unknown class '{name}' (known: {})",
                    known.join(", ")
                );
            };
            classes.push(class);
        }
        classes
    };
    let options = SynthOptions {
        per_class: args.per_class,
        frames: args.frames,
        width,
        height,
        fps: args.fps,
        seed: args.seed,
        classes,
        rawframes: args.rawframes,
        quality: args.quality,
        threads: args.threads,
        overwrite: args.force,
        ..SynthOptions::new(args.out.clone().unwrap_or_default())
    };
    if let Some(clip) = &args.demo {
        // Its errors name the clip.
        let truth = demo_clip(clip, &options.classes, args.segment_frames, &options)?;
        super::out::outln!(
            "wrote {} ({} frames of {width}x{height} at {} fps: {}) and {}",
            clip.display(),
            truth.frames,
            truth.fps,
            truth
                .segments
                .iter()
                .map(|s| s.class.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            DemoTruth::path_for(clip).display()
        );
        return Ok(());
    }
    let out = args.out.clone().unwrap_or_default();
    let report = generate(&options).with_context(|| format!("synth into {}", out.display()))?;
    super::out::outln!(
        "wrote {} videos ({} classes x {} frames of {width}x{height}) to {} in {:.1} s",
        report.videos,
        report.classes.len(),
        report.frames_per_video,
        report.out.display(),
        report.seconds
    );
    for (k, (train, test)) in report.splits.iter().enumerate() {
        super::out::outln!("split {}: {train} train, {test} test", k + 1);
    }
    Ok(())
}
