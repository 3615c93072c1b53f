//! `shiftlive export`: a checkpoint -> ONNX, TorchScript or a Triton model repository, with a
//! manifest beside it (see `shiftlive::export`).

use std::path::PathBuf;

use anyhow::Context;
use shiftlive::export::{ExportFormat, export};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to write: an ONNX file, a TorchScript module, or a Triton model repository (a folder)
    #[arg(long, value_enum, default_value = "onnx")]
    format: ExportFormat,
    /// Replace OUT (and its manifest) if it exists
    #[arg(long)]
    force: bool,
    /// The checkpoint (.safetensors, as `train` or `import` write it)
    model: PathBuf,
    /// Output: a file (onnx, torchscript; OUT.json beside it) or a folder (triton)
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = export(&args.model, &args.out, args.format, args.force)
        .with_context(|| format!("export of {}", args.model.display()))?;
    let states = manifest.states.len();
    super::out::outln!(
        "wrote {} ({} graph, input {} {:?}, {} state tensor{})",
        args.out.display(),
        manifest.graph,
        manifest.input.name,
        manifest.input.shape,
        states,
        if states == 1 { "" } else { "s" }
    );
    Ok(())
}
