//! `shiftlive live` and `shiftlive play`: a source through the pipeline, shown in a window (when
//! built with `ui` and a display is there) or, with `--headless`, as one JSON line per processed
//! frame on stdout, then `{"summary": {...}, "setup": {...}}` (the step's set-up: backend,
//! threads, layout); logs on stderr.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use shiftlive::backend::{Backend, BackendOptions};
use shiftlive::capture::Source;
use shiftlive::device::{DeviceArg, device_name};
use shiftlive::fsio::read_text_file;
use shiftlive::model::{ModelConfig, TensorFile, checkpoint};
use shiftlive::online::{Precision, Recognizer, RecognizerOptions, SmoothingOptions};
use shiftlive::pipeline::{Event, Pipeline, PipelineOptions, StreamSource, Summary};

use super::exit::Damaged;
use super::interrupt::install_interrupt;
pub(super) use super::interrupt::{InterruptHook, set_hook};
use super::out::OutputError;

/// Which model runs, and where.
#[derive(Debug, Clone, clap::Args)]
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
    /// Compute type (fp32 gives reference-exact numbers)
    #[arg(long, alias = "dtype", value_enum, default_value_t = Precision::F32)]
    pub precision: Precision,
    /// Intra-op threads of the model (default: all cores)
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub threads: Option<i32>,
    /// Engine of the online step: libtorch, onnxruntime (CPU, fp32), openvino (CPU; fp32, or
    /// bf16 where the CPU has it) (both: the step exported to ONNX and run in-process) or auto
    /// (the fastest available; libtorch when the others cannot start)
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
}

/// What is done with the frames and how results come out.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Feed every k-th frame to the model (match the frame spacing it was trained with; default:
    /// the checkpoint's `stride`, written by `train --live-stride`, else 1)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub stride: Option<u32>,
    /// Sum the logits of the last K processed frames (1: no smoothing); default: --smooth-ms
    #[arg(long, conflicts_with = "smooth_ms", value_parser = super::ranges::positive())]
    pub smooth: Option<usize>,
    /// Sum the logits of the processed frames of the last MS milliseconds (turned into frames at
    /// the source's frame rate and the stride) [default: 500]
    #[arg(long, value_parser = super::ranges::finite(1.0..=600_000.0))]
    pub smooth_ms: Option<f32>,
    /// Show a new label only once it led two processed frames in a row (adds one processed
    /// frame of lag; the smoothing over --smooth-ms already damps flicker)
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub hysteresis: bool,
    /// Minimum score for a label (below it the label is null)
    #[arg(long, default_value_t = 0.0, value_parser = super::ranges::finite(0.0..=1.0))]
    pub threshold: f32,
    /// Classes listed per frame
    #[arg(long, default_value_t = 5, value_parser = super::ranges::positive())]
    pub top_k: usize,
    /// Stop after N processed frames
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_frames: Option<u64>,
    /// Report damaged input (a decode error, a file shorter than its container states) as a
    /// warning with exit 0 instead of exit 3
    #[arg(long)]
    pub allow_damaged: bool,
    /// Add each frame's raw logits (before smoothing) to its JSON line
    #[arg(long)]
    pub emit_logits: bool,
    /// Print JSON lines instead of opening a window
    #[arg(long)]
    pub headless: bool,
    /// The window's renderer: glow (OpenGL, works on more machines) or wgpu
    #[cfg(feature = "ui")]
    #[arg(long, value_enum, default_value_t = shiftlive::ui::Renderer::Glow)]
    pub renderer: shiftlive::ui::Renderer,
    /// Add this many milliseconds to every model step (to study drops and latency)
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub throttle_ms: Option<u64>,
    /// Measure the window's latency up to the end of the buffer swap (one extra pass per frame)
    #[cfg(feature = "ui")]
    #[arg(long, hide = true)]
    pub measure_window: bool,
    /// Also print each result the window receives as a JSON line (what the window was told)
    #[cfg(feature = "ui")]
    #[arg(long, hide = true)]
    pub echo_results: bool,
}

/// The most a labels file may hold (ImageNet-21k's names take about 400 KiB).
const MAX_LABELS_BYTES: u64 = 16 << 20;

/// Class names: --labels, else the checkpoint's `labels` metadata, else none (class_N).
fn labels(model: &ModelArgs, classes: i64) -> anyhow::Result<Vec<String>> {
    let labels: Vec<String> = if let Some(path) = &model.labels {
        let text = read_text_file(path, MAX_LABELS_BYTES).context("reading labels")?;
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else if let Some(path) = &model.model {
        match checkpoint::labels_of(&TensorFile::read_metadata(path)?, path)? {
            Some(labels) => labels,
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

pub fn recognizer(model: &ModelArgs, paced: bool) -> anyhow::Result<(Recognizer, Vec<String>)> {
    let (recognizer, labels, _) = load_streams(model, 1, paced)?;
    Ok((recognizer, labels))
}

/// Whether `source`'s frames come at its own pace (live, or replayed in real time) rather than
/// as fast as they decode: the inference backend keeps its threads warm between frames then
/// (see `BackendOptions::paced`).
pub(super) fn is_paced(source: &Source, realtime: bool) -> bool {
    realtime || !matches!(source, Source::File(_) | Source::Frames { .. })
}

/// The recogniser of `streams` streams advanced together, its labels and its device's name;
/// `paced`: its frames come at a source's pace.
pub(super) fn load_streams(
    model: &ModelArgs,
    streams: usize,
    paced: bool,
) -> anyhow::Result<(Recognizer, Vec<String>, String)> {
    if let Some(threads) = model.threads {
        tch::set_num_threads(threads);
    }
    let device = model.device.resolve()?;
    let options = RecognizerOptions {
        device,
        precision: model.precision,
        streams,
        ..Default::default()
    };
    let mut recognizer = match &model.model {
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
    let backend =
        recognizer.set_backend(model.backend, &BackendOptions::from_env().paced(paced))?;
    let labels = labels(model, recognizer.config().num_classes)?;
    let runs = match recognizer.memory_status(0) {
        Some(memory) => format!(
            "ECO's working memory: an answer every {} processed frames, its running average \
             in place of the smoothing",
            memory.every
        ),
        None => format!("{} shifted blocks", recognizer.cache().len()),
    };
    tracing::info!(
        "model '{}' on {} ({:?}, {}), {runs}",
        recognizer.config().name,
        device_name(device),
        model.precision,
        backend.name(),
    );
    Ok((recognizer, labels, device_name(device)))
}

/// The smoothing span when neither --smooth nor --smooth-ms is given: the shipped model at stride 4
/// (6.25 processed frames a second at 25 fps) sums 3 frames, and its label follows a change of
/// action on the demo clip 460 ms later on average (README, "Smoothing and lag").
pub const DEFAULT_SMOOTH_MS: f64 = 500.0;

/// The frame stride: --stride, else the checkpoint's `stride` metadata, else 1.
pub(super) fn stride_of(model: &ModelArgs, args: &RunArgs) -> anyhow::Result<u32> {
    if let Some(stride) = args.stride {
        return Ok(stride.max(1));
    }
    match &model.model {
        Some(path) => Ok(checkpoint_stride(path)?.unwrap_or(1)),
        None => Ok(1),
    }
}

/// The `stride` a checkpoint was trained at (its metadata), if it records one.
pub(super) fn checkpoint_stride(path: &std::path::Path) -> anyhow::Result<Option<u32>> {
    let metadata = TensorFile::read_metadata(path)?;
    let Some(text) = metadata.get("stride") else {
        return Ok(None);
    };
    let stride: u32 = text
        .trim()
        .parse()
        .with_context(|| format!("{}: metadata 'stride' is '{text}'", path.display()))?;
    tracing::info!("stride {stride}, as {} was trained", path.display());
    Ok(Some(stride.max(1)))
}

/// --smooth K frames, else --smooth-ms (default 500 ms) with K its value at 25 fps until the
/// source's frame rate is known.
fn smoothing_of(args: &RunArgs, stride: u32) -> SmoothingOptions {
    let window_ms = match args.smooth {
        Some(_) => None,
        None => Some(args.smooth_ms.map_or(DEFAULT_SMOOTH_MS, f64::from)),
    };
    let mut smoothing = SmoothingOptions {
        window: args.smooth.unwrap_or(1),
        window_ms,
        hysteresis: args.hysteresis,
        threshold: args.threshold,
        top_k: args.top_k,
    };
    smoothing.window = smoothing.frames_at(Some(40.0 * f64::from(stride.max(1))));
    smoothing
}

impl Plan<'_> {
    /// The pipeline's options for this run at `stride`, naming classes by `labels`.
    pub(super) fn pipeline_options(self, stride: u32, labels: Vec<String>) -> PipelineOptions {
        let args = self.args;
        PipelineOptions {
            source: self.source,
            realtime: self.realtime,
            max_frames: args.max_frames,
            stride,
            smoothing: smoothing_of(args, stride),
            labels,
            emit_logits: args.emit_logits,
            keep_frames: false,
            throttle: args.throttle_ms.map(Duration::from_millis),
            max_retries: self.max_retries,
        }
    }
}

/// Runs `source` to the end (or --max-frames, or Ctrl-C): in a window unless `--headless`, there
/// is no display, or the window cannot open (a one-line notice says which).
/// `pace`: Some(true) replays a file at its own pace, Some(false) as fast as possible, None as
/// the mode does by default (a window paces a file, `--headless` does not).
pub fn run(
    sources: Vec<StreamSource>,
    pace: Option<bool>,
    model: &ModelArgs,
    args: &RunArgs,
    max_retries: Option<u32>,
) -> anyhow::Result<()> {
    let hook = install_interrupt();
    let Some(first) = sources.first().map(|s| s.source.clone()) else {
        bail!("no source given");
    };
    // Several sources run as one batch: in a grid of tiles in the window, else as JSON lines.
    let many = sources.len() > 1;
    let plan = |realtime: bool| Plan {
        source: first.clone(),
        realtime,
        model,
        args,
        max_retries,
        hook: &hook,
    };
    #[cfg(feature = "ui")]
    if !args.headless {
        if shiftlive::ui::display_available() {
            let streams = if many { sources.clone() } else { Vec::new() };
            match super::window::window(plan(pace.unwrap_or(true)), streams) {
                Ok((_, Some(streams))) => return super::streams::outcome_of(&streams),
                Ok((summary, None)) => return summary.map_or(Ok(()), |s| outcome_of(&s, args)),
                Err(e) if e.downcast_ref::<OutputError>().is_some() => return Err(e),
                // The window was up and failed: its run is over, there is nothing to fall back on.
                Err(e)
                    if matches!(
                        e.downcast_ref::<shiftlive::ui::WindowError>(),
                        Some(shiftlive::ui::WindowError::Failed { .. })
                    ) =>
                {
                    return Err(e);
                }
                Err(e) => tracing::warn!(
                    "{}: printing JSON lines instead (as --headless)",
                    super::exit::one_line(&e)
                ),
            }
        } else {
            tracing::info!(
                "no display (DISPLAY and WAYLAND_DISPLAY unset): printing JSON lines (as --headless)"
            );
        }
    }
    #[cfg(not(feature = "ui"))]
    if !args.headless {
        tracing::info!(
            "built without the window (feature `ui`): printing JSON lines (as --headless)"
        );
    }
    if many {
        return super::streams::headless(plan(pace.unwrap_or(false)), sources);
    }
    headless(plan(pace.unwrap_or(false)))
}

/// One run as `run` decided it: what plays, at which pace, with which model and flags, and the
/// Ctrl-C hook its pipeline installs its stop into.
pub(super) struct Plan<'a> {
    pub source: Source,
    pub realtime: bool,
    pub model: &'a ModelArgs,
    pub args: &'a RunArgs,
    pub max_retries: Option<u32>,
    pub hook: &'a InterruptHook,
}

/// How a run whose summary is `summary` ends: damaged input is exit 3 (a warning with
/// `--allow-damaged`), another failure of the source an error.
fn outcome_of(summary: &Summary, args: &RunArgs) -> anyhow::Result<()> {
    let Some(message) = &summary.error else {
        return Ok(());
    };
    if !summary.damaged {
        bail!("{message}");
    }
    if args.allow_damaged {
        tracing::warn!(
            "{message} ({} frames processed; accepted by --allow-damaged)",
            summary.frames_processed
        );
        return Ok(());
    }
    Err(Damaged {
        message: format!("{message} ({} frames processed)", summary.frames_processed),
    }
    .into())
}

/// JSON lines on stdout.
fn headless(plan: Plan<'_>) -> anyhow::Result<()> {
    let (args, hook) = (plan.args, plan.hook);
    let (recognizer, labels) = recognizer(plan.model, is_paced(&plan.source, plan.realtime))?;
    let setup = recognizer.setup();
    let stride = stride_of(plan.model, args)?;
    let options = plan.pipeline_options(stride, labels);
    let pipeline = Pipeline::start(recognizer, options).context("starting the pipeline threads")?;
    let stop = pipeline.stop_handle();
    set_hook(hook, Box::new(move || stop.store(true, Ordering::Relaxed)));
    let mut last = None;
    for event in pipeline.events().iter() {
        let line = match event {
            Event::Frame(result) => serde_json::to_string(&result)?,
            Event::Warning(message) => {
                tracing::warn!("{message}");
                continue;
            }
            // Only a window keeps frames.
            Event::Picture(_) => continue,
            Event::Summary(summary) => {
                // "summary" first, as before the set-up was added (readers match the line's start).
                let line = format!(
                    "{{\"summary\":{},\"setup\":{}}}",
                    serde_json::to_string(&summary)?,
                    serde_json::to_string(&setup)?
                );
                last = Some(summary);
                line
            }
        };
        if let Err(err) = super::out::line(format_args!("{line}")) {
            // A closed stdout (a pipe to `head`) ends the run quietly (`main` exits 0); any other
            // write error is the run's error.
            pipeline.stop();
            return Err(err.into());
        }
    }
    drop(pipeline);
    match last {
        Some(summary) => outcome_of(&summary, args),
        None => Ok(()),
    }
}
