//! The command line: one file per subcommand, and the arguments they share (`args.rs`).

mod args;
mod bench;
mod bench_backend;
#[cfg(feature = "capture")]
mod bench_live;
mod bench_peers;
mod bench_streams;
mod bench_train;
mod dist;
mod eval;
pub mod exit;
mod export;
mod import;
#[cfg(feature = "capture")]
mod interrupt;
#[cfg(feature = "capture")]
mod live;
pub mod out;
mod predict;
mod presets;
mod profile;
// Used by live/play (feature `capture`) and synth; train's flags can use it too.
#[cfg_attr(not(feature = "capture"), allow(dead_code))]
pub mod ranges;
#[cfg(feature = "capture")]
mod run;
#[cfg(feature = "capture")]
mod sources;
#[cfg(feature = "capture")]
mod streams;
mod synth;
mod train;
#[cfg(feature = "ui")]
mod window;

use clap::{Parser, Subcommand};

/// Names human actions in live video, frame by frame, with an online Temporal Shift Module network.
#[derive(Debug, Parser)]
#[command(name = "shiftlive", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Count parameters and FLOPs (multiply-adds) of a model, per stage and in total
    Profile(profile::Args),
    /// List the model presets with their settings
    Presets(presets::Args),
    /// Recognise actions live: a camera, a stream URI or a test pattern
    #[cfg(feature = "capture")]
    Live(live::LiveArgs),
    /// Recognise actions in a video file, frame by frame as the live mode does
    #[cfg(feature = "capture")]
    Play(live::PlayArgs),
    /// Time one training step and compare it with PyTorch eager (same model, weights and batch)
    BenchTrain(bench_train::Args),
    /// Train TSN, TSM (bi- or uni-directional) or MVF on UCF-101 or a list of labelled videos
    Train(Box<train::TrainArgs>),
    /// Evaluate trained models: top-1, top-5, mean class accuracy; centre, three or ten crops
    Eval(eval::Args),
    /// Classify whole videos (or frame folders) with a model's own test protocol: top-k classes
    Predict(predict::Args),
    /// Time the online step per frame and compare it with plain 2D, an 8-frame window and PyTorch
    Bench(bench::Args),
    /// Convert a PyTorch checkpoint (TSM authors, mmaction2, torchvision) into a shiftlive checkpoint
    Import(import::Args),
    /// Export a model: ONNX, TorchScript or a Triton model repository (online step with state)
    Export(export::Args),
    /// Write the synthetic motion data set (UCF-101 layout, nine classes that differ only by motion)
    Synth(synth::Args),
}

impl Cli {
    pub fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Profile(args) => profile::run(args),
            Command::Presets(args) => presets::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Synth(args) => synth::run(args),
            Command::Import(args) => import::run(args),
            Command::Export(args) => export::run(args),
            Command::Train(args) => train::run(*args),
            Command::BenchTrain(args) => bench_train::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Predict(args) => predict::run(args),
            #[cfg(feature = "capture")]
            Command::Live(args) => live::live(args),
            #[cfg(feature = "capture")]
            Command::Play(args) => live::play(args),
        }
    }
}
