//! `shiftlive presets`: every preset with its model and the recipe it trains with.

use shiftlive::model::Preset;
use shiftlive::train::Recipe;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print each preset's full config as JSON lines (the model's config, with the preset's
    /// aliases and training recipe)
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for &preset in Preset::all() {
        let (config, recipe) = preset.spec();
        let recipe = Recipe::of(recipe);
        let names = preset.names();
        let aliases = names.get(1..).unwrap_or_default();
        if args.json {
            let mut line = serde_json::to_value(&config)?;
            if let Some(obj) = line.as_object_mut() {
                obj.insert("aliases".into(), serde_json::to_value(aliases)?);
                obj.insert("recipe".into(), serde_json::to_value(&recipe)?);
            }
            super::out::outln!("{line}");
            continue;
        }
        let online = if config.is_causal() {
            "online"
        } else if shiftlive::online::memory_size(&config).is_ok() {
            "memory" // ECO: live and play run its working memory
        } else {
            "offline"
        };
        super::out::outln!(
            "{:<30} {:<8} {:>3} frames {:>4} px {:>4} classes  {:?} / {:?}",
            preset.name(),
            online,
            config.num_segments,
            config.input_size,
            config.num_classes,
            config.backbone,
            config.temporal
        );
        let also = if aliases.is_empty() {
            String::new()
        } else {
            format!(" (also: {})", aliases.join(", "))
        };
        super::out::outln!("{:<30} trains: {}{also}", "", recipe.describe(&config));
    }
    Ok(())
}
