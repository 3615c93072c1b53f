//! `shiftlive profile`: parameters and FLOPs of a preset or a checkpoint's model.

use std::path::PathBuf;

use anyhow::Context;

use shiftlive::model::{Preset, TensorFile, checkpoint, limit};
use shiftlive::profile::Profile;

use super::args;

/// The default online model until a trained one ships in assets/.
pub const DEFAULT_PRESET: &str = "tsm_mobilenet_v2_online";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Preset to profile (see `shiftlive presets`)
    #[arg(long, default_value = DEFAULT_PRESET, conflicts_with = "model", value_parser = args::preset)]
    preset: Preset,
    /// Profile the model of this checkpoint instead of a preset
    #[arg(long)]
    model: Option<PathBuf>,
    /// Frames per clip (default: the model's segments)
    #[arg(long)]
    frames: Option<i64>,
    /// Number of classes (default: the model's)
    #[arg(long)]
    classes: Option<i64>,
    /// Input side in pixels (default: the model's)
    #[arg(long)]
    size: Option<i64>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut config = match &args.model {
        Some(path) => {
            let file = TensorFile::read(path)?;
            checkpoint::config_of(&file, path)?
        }
        None => args.preset.model(),
    };
    if let Some(classes) = args.classes {
        config.num_classes = classes;
    }
    if let Some(size) = args.size {
        config.input_size = size;
    }
    // The flags go through the config's own bounds, before anything is allocated.
    config.validate()?;
    let frames = args.frames.unwrap_or(config.num_segments);
    let max = limit("num_segments");
    anyhow::ensure!(
        (1..=max).contains(&frames),
        "--frames must be in 1..={max}, got {frames}"
    );
    let profile =
        Profile::of(&config, frames).with_context(|| format!("profiling '{}'", config.name))?;
    if args.json {
        super::out::outln!("{}", serde_json::to_string(&profile)?);
    } else {
        print!("{}", profile.table());
    }
    Ok(())
}
