//! `shiftlive eval`: trained models on UCF-101 splits or a list of labelled videos, tested with
//! each model's own protocol (clips, crops, frames) unless flags say otherwise: top-1, top-5,
//! mean class accuracy, optionally the confusion matrices and the online (frame by frame) run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::json;
use shiftlive::data::{Dataset, Layout, Subset};
use shiftlive::model::{ActionNet, TensorFile};
use shiftlive::online::{Recognizer, RecognizerOptions};
use shiftlive::train::{
    ConfusionTitle, EvalOptions, ProtocolOverrides, Scores, TestProtocol, evaluate,
    evaluate_online, mirror_map_of, write_eval_files,
};

use super::args::{ComputeArgs, CropArg, DataArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trained model(s); with several --split, one per split in the same order
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// UCF-101 split(s): 1, 2, 3 or a list such as 1,2,3 (the mean over them is printed too)
    #[arg(long, value_delimiter = ',', default_value = "1")]
    split: Vec<u8>,
    /// Evaluate a list file (`relative/path label` lines, labels 0-based) instead of a UCF-101
    /// split
    #[arg(long)]
    list: Option<PathBuf>,
    /// Crops per clip (default: the model's test protocol, else centre)
    #[arg(long, value_enum)]
    crop: Option<CropArg>,
    /// Clips per video, 1..=100 (default: the model's test protocol, else 1)
    #[arg(long, value_parser = super::ranges::count(1..=100))]
    clips: Option<usize>,
    /// Frames per clip, at least 1 (default: the model's)
    #[arg(long, value_parser = super::ranges::positive())]
    segments: Option<usize>,
    /// Dense clips with this frame interval, 0 for TSN segments (default: as the model was
    /// trained; for models that do not say, 4 for MVF and TSN segments otherwise)
    #[arg(long)]
    interval: Option<usize>,
    /// Videos per forward pass, at least 1
    #[arg(long, default_value_t = 8, value_parser = super::ranges::positive())]
    batch_size: usize,
    /// Decoding threads, at least 1
    #[arg(long, default_value_t = 2, value_parser = super::ranges::positive())]
    workers: usize,
    /// Also run uni-directional models frame by frame through the online recogniser
    #[arg(long)]
    online: bool,
    /// Write each set's per-video predictions (CSV, JSONL: true label, top-5 with scores) and
    /// confusion matrix (CSV, JSON, PNG) here (default: RUN/eval/ when the model is in a training
    /// run's folder RUN, else not written)
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop at the first unreadable video instead of leaving it out
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    compute: ComputeArgs,
    /// No progress bars
    #[arg(long)]
    quiet: bool,
}

/// Where `eval` writes its files: `--out`, else `eval/` in the model's folder when that folder
/// is a training run's (it holds `config.json`), else nowhere.
fn out_dir(out: Option<&Path>, model: &Path) -> Option<PathBuf> {
    if let Some(out) = out {
        return Some(out.to_path_buf());
    }
    let run = model.parent()?;
    if run.join("config.json").is_file() {
        return Some(run.join("eval"));
    }
    tracing::info!(
        "no --out and {} is not in a training run's folder: predictions and confusion files \
         not written",
        model.display()
    );
    None
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned())
}

fn scores_json(s: &Scores) -> serde_json::Value {
    json!({"top1": s.top1, "top5": s.top5, "mean_class_acc": s.mean_class_acc, "videos": s.count})
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.compute.init()?;
    let sets: Vec<(String, Dataset)> = if let Some(list) = &args.list {
        let root = args.data.root.clone().unwrap_or_else(|| PathBuf::from("."));
        vec![(
            list.display().to_string(),
            Dataset::from_list(list, &root, args.data.classes.as_deref())?,
        )]
    } else {
        let Some(root) = &args.data.data else {
            bail!("give --data (UCF-101 layout) or --list");
        };
        let splits_dir = args
            .data
            .splits
            .clone()
            .unwrap_or_else(|| root.join("ucfTrainTestlist"));
        let layout = if args.data.frames {
            Layout::Frames
        } else {
            Layout::Video
        };
        let mut sets = Vec::new();
        for &split in &args.split {
            if !(1..=3).contains(&split) {
                bail!("--split {split}: UCF-101 has splits 1, 2 and 3");
            }
            sets.push((
                format!("split {split}"),
                Dataset::ucf101(root, &splits_dir, split, Subset::Test, layout)?,
            ));
        }
        sets
    };
    if args.model.len() != 1 && args.model.len() != sets.len() {
        bail!(
            "{} models for {} evaluation sets: give one model, or one per split",
            args.model.len(),
            sets.len()
        );
    }
    if args.model.len() == 1 && sets.len() > 1 {
        tracing::warn!(
            "one model evaluated on {} splits: the protocol trains one model per split",
            sets.len()
        );
    }
    let mut all = Vec::new();
    for (i, (name, set)) in sets.into_iter().enumerate() {
        let path = &args.model[i.min(args.model.len() - 1)];
        let (_vs, net) = ActionNet::load(path, device)
            .with_context(|| format!("loading model {}", path.display()))?;
        let config = net.config().clone();
        if set.classes.len() as i64 != config.num_classes {
            bail!(
                "{}: the model has {} classes, {name} has {}",
                path.display(),
                config.num_classes,
                set.classes.len()
            );
        }
        let metadata = TensorFile::read_metadata(path)?;
        let protocol =
            TestProtocol::of_checkpoint(&metadata, &config, path)?.with(ProtocolOverrides {
                frames: args.segments,
                interval: args.interval,
                clips: args.clips,
                crop: args.crop.map(CropArg::test_crop),
            });
        let options = EvalOptions {
            strict: args.strict,
            progress: !args.quiet,
            mirror_map: mirror_map_of(&metadata, set.classes.len(), protocol.crop, path)?,
            ..protocol.eval_options(args.batch_size, args.workers)
        };
        let set = Arc::new(set);
        let report = evaluate(&net, set.clone(), &options, device)?;
        if !report.skipped.is_empty() {
            tracing::warn!(
                "{} unreadable videos left out of {name}: {}",
                report.skipped.len(),
                report
                    .skipped
                    .iter()
                    .map(|(p, why)| format!("{} ({why})", p.display()))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        let mut line = json!({
            "loss": report.loss,
            "set": name,
            "model": path.display().to_string(),
            "arch": config.name,
            "crop": protocol.crop,
            "clips": protocol.clips,
            "frames": protocol.frames,
            "interval": protocol.interval,
            "views": report.views,
            "skipped": report.skipped.len(),
            "seconds": report.seconds,
        });
        if let (Some(obj), serde_json::Value::Object(s)) =
            (line.as_object_mut(), scores_json(&report.scores))
        {
            obj.extend(s);
        }
        if args.online {
            if !config.is_causal() {
                bail!(
                    "--online: {} is not uni-directional ({}), it cannot run frame by frame",
                    path.display(),
                    config.name
                );
            }
            let mut recognizer = Recognizer::from_checkpoint(
                path,
                RecognizerOptions {
                    device,
                    ..RecognizerOptions::default()
                },
            )?;
            let online = evaluate_online(&mut recognizer, &net, set.clone(), &options, 0)?;
            if let Some(obj) = line.as_object_mut() {
                obj.insert("online".into(), serde_json::to_value(&online)?);
            }
        }
        if let Some(dir) = out_dir(args.out.as_deref(), path) {
            let title = ConfusionTitle {
                model: config.name.clone(),
                set: name.clone(),
                epoch: metadata.get("epoch").and_then(|e| e.parse().ok()),
                what: path
                    .file_name()
                    .map_or("model".into(), |f| f.to_string_lossy().into_owned()),
            };
            let stem = format!("{}-{name}", file_stem(path));
            let files = write_eval_files(&dir, &stem, &report, &set, &title)?;
            if let Some(obj) = line.as_object_mut() {
                obj.insert("files".into(), json!(files));
            }
        }
        super::out::outln!("{line}");
        all.push(report.scores);
    }
    if all.len() > 1 {
        let n = all.len() as f64;
        super::out::outln!(
            "{}",
            json!({"mean": {
                "sets": all.len(),
                "top1": all.iter().map(|s| s.top1).sum::<f64>() / n,
                "top5": all.iter().map(|s| s.top5).sum::<f64>() / n,
                "mean_class_acc": all.iter().map(|s| s.mean_class_acc).sum::<f64>() / n,
            }})
        );
    }
    Ok(())
}
