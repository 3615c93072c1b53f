//! `shiftlive export`: a checkpoint -> ONNX, TorchScript or a Triton model repository, with a
//! manifest beside it (see `shiftlive::export`).

use std::path::PathBuf;

use anyhow::Context;
use shiftlive::export::{ExportOptions, export};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    options: ExportOptions,
    /// The checkpoint (.safetensors, as `train` or `import` write it)
    model: PathBuf,
    /// Output: a file (onnx, torchscript; OUT.json beside it) or a folder (triton)
    out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let manifest = export(&args.model, &args.out, &args.options)
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
