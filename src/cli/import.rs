//! `shiftlive import`: PyTorch checkpoints of the TSM authors, mmaction2 and torchvision ->
//! shiftlive safetensors (weights, config, preprocessing and labels in one file).

use std::path::PathBuf;

use anyhow::Context;
use shiftlive::model::ShiftDirection;
use shiftlive::model::import::{ImportFormat, ImportOptions, import};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// The TSM authors' online demo MobileNetV2 (plain state_dict, 27 Jester classes)
    MitOnline,
    /// The TSM authors' offline TSN/TSM (`module.base_model.*`; settings from the file name)
    MitTsm,
    /// mmaction2 TSM/TSN ResNets (`backbone.*`, `cls_head.fc_cls.*`)
    Mmaction2,
    /// torchvision ImageNet ResNet-18/34/50/101 or MobileNetV2 (initialisation for training)
    Torchvision,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shift {
    /// No shift (TSN)
    None,
    /// Bidirectional (offline TSM)
    Bi,
    /// Uni-directional (online TSM)
    Uni,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Layout of the input checkpoint
    #[arg(long, value_enum)]
    format: Format,
    /// PyTorch checkpoint (.pth / .pth.tar: a state_dict or a dict holding one)
    input: PathBuf,
    /// Output checkpoint (.safetensors); written only if the whole import succeeds
    output: PathBuf,
    /// Class names, one a line (e.g. assets/labels/jester.txt); must match the class count
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Frames per clip (default: from the file name for mit-tsm, else 8)
    #[arg(long)]
    segments: Option<i64>,
    /// Shift 1/shift_div of the channels each way (default: from the file name, else 8)
    #[arg(long)]
    shift_div: Option<i64>,
    /// Shift direction (default: uni for mit-online, bi where the weights show a shift, none
    /// otherwise; bi for torchvision)
    #[arg(long, value_enum)]
    shift: Option<Shift>,
    /// Temporal pooling after layer1 (default: `_tpool` in a mit-tsm file name)
    #[arg(long)]
    temporal_pool: Option<bool>,
    /// Side of the square input crop (default 224)
    #[arg(long)]
    input_size: Option<i64>,
    /// Model name in the config (default: the input file name)
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let format = match args.format {
        Format::MitOnline => ImportFormat::MitOnline,
        Format::MitTsm => ImportFormat::MitTsm,
        Format::Mmaction2 => ImportFormat::Mmaction2,
        Format::Torchvision => ImportFormat::Torchvision,
    };
    let options = ImportOptions {
        labels: args.labels,
        num_segments: args.segments,
        shift_div: args.shift_div,
        shift: args.shift.map(|s| match s {
            Shift::None => None,
            Shift::Bi => Some(ShiftDirection::Bi),
            Shift::Uni => Some(ShiftDirection::Uni),
        }),
        temporal_pool: args.temporal_pool,
        input_size: args.input_size,
        name: args.name,
    };
    let config = import(format, &args.input, &args.output, &options)
        // The error names the input file; say that the output was left alone.
        .with_context(|| format!("import failed, {} not written", args.output.display()))?;
    super::out::outln!(
        "{} -> {}: {:?}, {:?}, {} classes, {} segments",
        args.input.display(),
        args.output.display(),
        config.backbone,
        config.temporal,
        config.num_classes,
        config.num_segments
    );
    Ok(())
}
