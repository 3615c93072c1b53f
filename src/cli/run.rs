//! `shiftlive live` and `shiftlive play`: a source through the pipeline; one JSON line per processed
//! frame on stdout, then `{"summary": {...}}`; logs on stderr.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use shiftlive::capture::Source;
use shiftlive::device::{DeviceArg, device_name};
use shiftlive::model::{ModelConfig, TensorFile};
use shiftlive::online::{Precision, Recognizer, RecognizerOptions, SmoothingOptions};
use shiftlive::pipeline::{Event, Pipeline, PipelineOptions};

/// Which model runs, and where.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// Checkpoint (.safetensors) of an online (uni-directional) model
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Preset with random weights, used when no --model is given
    #[arg(long, default_value = "tsm_mobilenet_v2_online")]
    pub preset: String,
    /// Class names, one per line (default: the checkpoint's, else class_N)
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: DeviceArg,
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Intra-op threads of the model (default: all cores)
    #[arg(long)]
    pub threads: Option<i32>,
}

/// What is done with the frames and how results come out.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Feed every k-th frame to the model (match the frame spacing it was trained with)
    #[arg(long, default_value_t = 1)]
    pub stride: u32,
    /// Sum the logits of the last K processed frames (1: no smoothing)
    #[arg(long, default_value_t = 12)]
    pub smooth: usize,
    /// Change the label only when two consecutive decisions agree
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub hysteresis: bool,
    /// Minimum score for a label (below it the label is null)
    #[arg(long, default_value_t = 0.0)]
    pub threshold: f32,
    /// Classes listed per frame
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Stop after N processed frames
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Add each frame's raw logits (before smoothing) to its JSON line
    #[arg(long)]
    pub emit_logits: bool,
    /// Print JSON lines instead of opening a window
    #[arg(long)]
    pub headless: bool,
    /// Add this many milliseconds to every model step (to study drops and latency)
    #[arg(long, hide = true)]
    pub throttle_ms: Option<u64>,
}

/// Class names: --labels, else the checkpoint's `labels` metadata, else none (class_N).
fn labels(model: &ModelArgs, classes: i64) -> anyhow::Result<Vec<String>> {
    let labels: Vec<String> = if let Some(path) = &model.labels {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading labels {}", path.display()))?;
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else if let Some(path) = &model.model {
        let file = TensorFile::read(path)?;
        match file.metadata.get("labels") {
            Some(json) => serde_json::from_str(json)
                .with_context(|| format!("labels in {}", path.display()))?,
            None => return Ok(Vec::new()),
        }
    } else {
        return Ok(Vec::new());
    };
    if labels.len() as i64 != classes {
        bail!(
            "{} labels given for a model of {classes} classes",
            labels.len()
        );
    }
    Ok(labels)
}

pub fn recognizer(model: &ModelArgs) -> anyhow::Result<(Recognizer, Vec<String>)> {
    if let Some(threads) = model.threads {
        tch::set_num_threads(threads);
    }
    let device = model.device.resolve().map_err(anyhow::Error::msg)?;
    let options = RecognizerOptions {
        device,
        precision: model.precision,
        ..Default::default()
    };
    let recognizer = match &model.model {
        Some(path) => Recognizer::from_checkpoint(path, options)?,
        None => {
            let config = ModelConfig::from_preset(&model.preset)?;
            tracing::warn!(
                "no --model given: running preset '{}' with RANDOM weights (its labels mean nothing)",
                config.name
            );
            Recognizer::random(&config, options)?
        }
    };
    let labels = labels(model, recognizer.config().num_classes)?;
    tracing::info!(
        "model '{}' on {} ({:?}), {} shifted blocks",
        recognizer.config().name,
        device_name(device),
        model.precision,
        recognizer.cache().len()
    );
    Ok((recognizer, labels))
}

/// Runs `source` to the end (or --max-frames, or Ctrl-C), printing JSON lines.
pub fn run(
    source: Source,
    realtime: bool,
    model: &ModelArgs,
    args: &RunArgs,
    max_retries: Option<u32>,
) -> anyhow::Result<()> {
    if !args.headless {
        tracing::info!(
            "the window is not available in this build yet: printing JSON lines (as --headless)"
        );
    }
    let (recognizer, labels) = recognizer(model)?;
    let options = PipelineOptions {
        source,
        realtime,
        max_frames: args.max_frames,
        stride: args.stride,
        smoothing: SmoothingOptions {
            window: args.smooth,
            hysteresis: args.hysteresis,
            threshold: args.threshold,
            top_k: args.top_k,
        },
        labels,
        emit_logits: args.emit_logits,
        keep_frames: false,
        throttle: args.throttle_ms.map(Duration::from_millis),
        max_retries,
    };
    let pipeline = Pipeline::start(recognizer, options).context("starting the pipeline threads")?;
    let stop = pipeline.stop_handle();
    if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
        tracing::warn!("Ctrl-C handler not installed: {e}");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failure = None;
    for event in pipeline.events().iter() {
        let line = match event {
            Event::Frame(result) => serde_json::to_string(&result)?,
            Event::Warning(message) => {
                tracing::warn!("{message}");
                continue;
            }
            Event::Summary(summary) => {
                failure = summary.error.clone();
                serde_json::to_string(&serde_json::json!({ "summary": summary }))?
            }
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            // stdout closed (a pipe to `head`): stop quietly.
            pipeline.stop();
            break;
        }
    }
    drop(pipeline);
    match failure {
        Some(message) => bail!("{message}"),
        None => Ok(()),
    }
}
