//! `shiftlive predict`: whole-video prediction with a model's own test protocol.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::json;
use shiftlive::model::{ActionNet, TensorFile, checkpoint, limit};
use shiftlive::train::{EvalOptions, ProtocolOverrides, TestProtocol, mirror_map_of, predict};

use super::args::{ComputeArgs, CropArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Videos, or folders of frames (img_00001.jpg or .png, ...)
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Trained or imported model (safetensors)
    #[arg(long)]
    model: PathBuf,
    /// Classes to print per video
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// One JSON object per video (and a summary line) instead of the table
    #[arg(long)]
    json: bool,
    /// Clips per video (default: the model's test protocol)
    #[arg(long)]
    clips: Option<usize>,
    /// Crops per clip (default: the model's test protocol)
    #[arg(long, value_enum)]
    crop: Option<CropArg>,
    /// Frames per clip (default: the model's)
    #[arg(long)]
    segments: Option<usize>,
    /// Dense clips with this frame interval; 0 for TSN segments (default: the model's)
    #[arg(long)]
    interval: Option<usize>,
    /// Videos per forward pass
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Decoding threads
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[command(flatten)]
    compute: ComputeArgs,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
}

/// The most clips a video may give (the published protocols take 1 to 10).
const MAX_CLIPS: usize = 100;

pub fn run(args: Args) -> anyhow::Result<()> {
    // Flags checked before the model loads: views are allocated per clip and frame.
    if let Some(clips) = args.clips {
        anyhow::ensure!(
            (1..=MAX_CLIPS).contains(&clips),
            "--clips must be in 1..={MAX_CLIPS}, got {clips}"
        );
    }
    if let Some(segments) = args.segments {
        let max = limit("num_segments") as usize;
        anyhow::ensure!(
            (1..=max).contains(&segments),
            "--segments must be in 1..={max}, got {segments}"
        );
    }
    let device = args.compute.init()?;
    let path = &args.model;
    let (_vs, net) = ActionNet::load(path, device)
        .with_context(|| format!("loading model {}", path.display()))?;
    let metadata = TensorFile::read_metadata(path)?;
    let config = net.config().clone();
    let labels = checkpoint::labels_of(&metadata, path)?.unwrap_or_else(|| {
        (0..config.num_classes)
            .map(|i| format!("class_{i}"))
            .collect()
    });
    if labels.len() as i64 != config.num_classes {
        bail!(
            "{}: its metadata 'labels' lists {} names for a model of {} classes",
            path.display(),
            labels.len(),
            config.num_classes
        );
    }
    let protocol = TestProtocol::of_checkpoint(&metadata, &config, path)?.with(ProtocolOverrides {
        frames: args.segments,
        interval: args.interval,
        clips: args.clips,
        crop: args.crop.map(CropArg::test_crop),
    });
    tracing::info!("{}: {}", config.name, protocol.describe());
    let options = EvalOptions {
        progress: !args.quiet && !args.json,
        mirror_map: mirror_map_of(&metadata, labels.len(), protocol.crop, path)?,
        ..protocol.eval_options(args.batch_size, args.workers)
    };
    let results = predict(&net, &args.inputs, &options, device)?;
    let mut failed = 0;
    for result in &results {
        let name = result.path.display().to_string();
        match result.top_k(args.top_k.max(1)) {
            Some(top) => {
                if args.json {
                    let ranked: Vec<_> = top
                        .iter()
                        .map(|&(class, score)| {
                            json!({"class": class, "label": labels[class], "score": score})
                        })
                        .collect();
                    let logits = result.logits.as_ref().ok();
                    super::out::outln!(
                        "{}",
                        json!({"input": name, "label": labels[top[0].0], "top": ranked,
                               "logits": logits})
                    );
                } else {
                    super::out::outln!("{name}");
                    for (rank, &(class, score)) in top.iter().enumerate() {
                        super::out::outln!("  {:>2}. {:<32} {score:.4}", rank + 1, labels[class]);
                    }
                }
            }
            None => {
                failed += 1;
                let why = result
                    .logits
                    .as_ref()
                    .err()
                    .map_or("no scores", String::as_str);
                if args.json {
                    super::out::outln!("{}", json!({"input": name, "error": why}));
                }
                // The reason names the input already when it comes from the loader.
                if why.contains(&name) {
                    eprintln!("error: {why}");
                } else {
                    eprintln!("error: {name}: {why}");
                }
            }
        }
    }
    let summary = json!({"summary": {
        "model": path.display().to_string(),
        "arch": config.name,
        "protocol": protocol,
        "videos": results.len(),
        "failed": failed,
    }});
    if args.json {
        super::out::outln!("{summary}");
    }
    if failed > 0 {
        bail!(
            "{failed} of {} inputs could not be predicted",
            results.len()
        );
    }
    Ok(())
}
