//! `shiftlive presets`: the named model configurations.

use shiftlive::model::{ModelConfig, PRESET_NAMES};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each preset's full config as JSON lines
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for name in PRESET_NAMES {
        let config = ModelConfig::from_preset(name)?;
        if args.json {
            super::out::outln!("{}", serde_json::to_string(&config)?);
        } else {
            let online = if config.is_causal() {
                "online"
            } else {
                "offline"
            };
            super::out::outln!(
                "{:<30} {:<8} {:>3} frames {:>4} px {:>4} classes  {:?} / {:?}",
                name,
                online,
                config.num_segments,
                config.input_size,
                config.num_classes,
                config.backbone,
                config.temporal
            );
        }
    }
    Ok(())
}
