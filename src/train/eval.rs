//! Evaluation: every video of a set, in N clips x 1, 3 or 10 crops, the views' logits averaged
//! (as the TSN/TSM test scripts do); top-1, top-5, mean class accuracy and the confusion matrix.
//! The online form feeds the same clips frame by frame through the recogniser's shift cache.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::TrainError;
use super::metrics::{Accuracy, Scores};
use super::mirror::combine_views;
use crate::data::{Batch, Dataset, DecodeCache, Loader, LoaderOptions, Mode, Sampling, TestCrop};
use crate::model::ActionNet;
use crate::online::Recognizer;
use crate::preprocess::Transform;

/// How a set is evaluated.
#[derive(Clone)]
pub struct EvalOptions {
    pub crop: TestCrop,
    /// Clips per video, spread evenly over it.
    pub clips: usize,
    pub batch_size: usize,
    pub workers: usize,
    pub sampling: Sampling,
    pub strict: bool,
    pub cache: Option<Arc<DecodeCache>>,
    pub progress: bool,
    /// The label map the mirrored views' logits are swapped by before the mean (see
    /// [`super::mirror`]); None averages them as they are.
    pub mirror_map: Option<Vec<usize>>,
}

/// One video's outcome in an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct VideoResult {
    /// The video's index in the data set's items.
    pub item: usize,
    pub label: usize,
    /// The [`TOP_K`] most likely classes with their softmax probabilities, best first.
    pub top: Vec<(usize, f32)>,
}

/// Classes kept per video in [`VideoResult::top`].
pub const TOP_K: i64 = 5;

/// The result of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub scores: Scores,
    /// Mean cross-entropy of the videos' view-averaged logits.
    pub loss: f64,
    /// Every video read, in the order evaluated.
    pub videos: Vec<VideoResult>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
    /// Unreadable videos left out, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    pub seconds: f64,
    pub views: usize,
}

pub(crate) fn loader_options(o: &EvalOptions, input_size: usize) -> LoaderOptions {
    let imagenet = Transform::imagenet(input_size);
    LoaderOptions {
        batch_size: o.batch_size.max(1),
        workers: o.workers.max(1),
        queue: 2 * o.workers.max(1),
        seed: 0,
        input_size,
        sampling: o.sampling.clone(),
        mode: Mode::Eval {
            crop: o.crop,
            clips: o.clips.max(1),
        },
        shuffle: false,
        drop_last: false,
        strict: o.strict,
        mean: imagenet.mean,
        std: imagenet.std,
        cache: o.cache.clone(),
    }
}

/// A progress bar (hidden when `on` is false), as training and evaluation draw them.
pub(crate) fn bar(on: bool, len: u64, prefix: &str) -> ProgressBar {
    if !on {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix.to_string());
    bar
}

/// The `[B, K]` logits of a test batch's videos: each view's clip logits, averaged over the
/// views (clips x crops), as the TSN and TSM test scripts average scores; mirrored views first
/// swapped by `options.mirror_map`.
pub(crate) fn video_logits(
    net: &ActionNet,
    batch: &Batch,
    options: &EvalOptions,
    device: Device,
) -> Result<Tensor, TrainError> {
    let b = batch.labels.size()[0];
    let x = batch.input.to_device(device);
    let views = tch::no_grad(|| net.forward_clip_t(&x, batch.frames as i64, false))?
        .logits
        .to_kind(Kind::Float)
        .to_device(Device::Cpu)
        .view([b, batch.views as i64, -1]);
    combine_views(&views, options.crop, options.mirror_map.as_deref())
}

/// Each video of `batch` with its label and its [`TOP_K`] classes (softmax of `logits`).
fn video_results(logits: &Tensor, batch: &Batch) -> Result<Vec<VideoResult>, TrainError> {
    let k = TOP_K.min(logits.size()[1]);
    let (values, indices) = logits
        .f_softmax(-1, Kind::Float)?
        .f_topk(k, -1, true, true)?;
    let values = Vec::<f32>::try_from(values.f_reshape([-1])?)?;
    let indices = Vec::<i64>::try_from(indices.f_reshape([-1])?)?;
    let labels = Vec::<i64>::try_from(&batch.labels)?;
    let k = k as usize;
    Ok(batch
        .items
        .iter()
        .enumerate()
        .map(|(row, &item)| VideoResult {
            item,
            label: labels[row] as usize,
            top: (row * k..(row + 1) * k)
                .map(|j| (indices[j] as usize, values[j]))
                .collect(),
        })
        .collect())
}

/// Evaluates `net` (in evaluation mode, no gradients) on every video of `dataset`.
pub fn evaluate(
    net: &ActionNet,
    dataset: Arc<Dataset>,
    options: &EvalOptions,
    device: Device,
) -> Result<EvalReport, TrainError> {
    let started = Instant::now();
    let classes = dataset.classes.len();
    if dataset.items.is_empty() {
        return Err(TrainError::Config(format!(
            "the evaluation set {} is empty",
            dataset.source
        )));
    }
    let mut loader = Loader::new(
        dataset.clone(),
        loader_options(options, net.config().input_size as usize),
        0,
    )?;
    let bar = bar(options.progress, loader.len() as u64, "eval");
    let mut acc = Accuracy::new(classes);
    let mut views = 1;
    let (mut loss_sum, mut videos) = (0f64, Vec::with_capacity(dataset.items.len()));
    for batch in loader.by_ref() {
        let batch = batch?;
        views = batch.views;
        let logits = video_logits(net, &batch, options, device)?;
        acc.add(&logits, &batch.labels);
        let b = batch.items.len() as f64;
        loss_sum += logits
            .f_cross_entropy_loss::<Tensor>(&batch.labels, None, tch::Reduction::Mean, -100, 0.0)?
            .f_double_value(&[])?
            * b;
        videos.extend(video_results(&logits, &batch)?);
        bar.inc(1);
        let s = acc.scores();
        bar.set_message(format!("top-1 {:.3}", s.top1));
    }
    bar.finish_and_clear();
    let skipped = loader
        .skipped()
        .iter()
        .map(|s| (s.path.clone(), s.reason.clone()))
        .collect();
    Ok(EvalReport {
        loss: loss_sum / videos.len().max(1) as f64,
        videos,
        scores: acc.scores(),
        confusion: acc.confusion().to_vec(),
        skipped,
        seconds: started.elapsed().as_secs_f64(),
        views,
    })
}

/// The online recogniser on the evaluation clips, frame by frame.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineReport {
    /// Each clip classified by the mean of its frames' online logits (what offline evaluation
    /// of the causal model computes in one pass).
    pub clip: Scores,
    /// Each frame classified by the mean of the online logits so far in its clip, frames after
    /// the first `warmup` of each clip.
    pub frame: Scores,
    pub warmup: usize,
    /// Largest difference between online per-frame logits and the offline causal model's.
    pub max_abs_diff_vs_offline: f64,
    pub frames: u64,
    pub seconds: f64,
}

/// Runs the centre-crop, one-clip evaluation set through `recognizer` one frame at a time (its
/// shift cache reset at each clip) and, for comparison, through `offline` in one pass.
pub fn evaluate_online(
    recognizer: &mut Recognizer,
    offline: &ActionNet,
    dataset: Arc<Dataset>,
    options: &EvalOptions,
    warmup: usize,
) -> Result<OnlineReport, TrainError> {
    let started = Instant::now();
    let classes = dataset.classes.len();
    let mut opts = options.clone();
    opts.crop = TestCrop::Centre;
    opts.clips = 1;
    let mut loader = Loader::new(
        dataset.clone(),
        loader_options(&opts, offline.config().input_size as usize),
        0,
    )?;
    let bar = bar(options.progress, loader.len() as u64, "online eval");
    let mut clip_acc = Accuracy::new(classes);
    let mut frame_acc = Accuracy::new(classes);
    let mut max_diff = 0f64;
    let mut frames = 0u64;
    let device = offline.device();
    for batch in loader.by_ref() {
        let batch = batch?;
        let t = batch.frames as i64;
        let b = batch.labels.size()[0];
        let labels: Vec<i64> = Vec::try_from(&batch.labels).unwrap_or_default();
        let offline_frames =
            tch::no_grad(|| offline.forward_clip_t(&batch.input.to_device(device), t, false))?
                .frame_logits
                .to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .view([b, t, -1]);
        for (i, &label) in labels.iter().enumerate() {
            recognizer.reset();
            let mut sum = Tensor::zeros([classes as i64], (Kind::Float, Device::Cpu));
            for f in 0..t {
                let frame = batch.input.get(i as i64 * t + f).unsqueeze(0);
                let logits = recognizer
                    .step_tensor(&frame)?
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu)
                    .view([-1]);
                let diff = (&logits - offline_frames.get(i as i64).get(f))
                    .abs()
                    .max()
                    .double_value(&[]);
                max_diff = max_diff.max(diff);
                sum += &logits;
                frames += 1;
                if f as usize >= warmup {
                    let ranked: Vec<i64> = Vec::try_from(sum.argsort(0, true)).unwrap_or_default();
                    frame_acc.push(label as usize, &ranked);
                }
            }
            let ranked: Vec<i64> = Vec::try_from(sum.argsort(0, true)).unwrap_or_default();
            clip_acc.push(label as usize, &ranked);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(OnlineReport {
        clip: clip_acc.scores(),
        frame: frame_acc.scores(),
        warmup,
        max_abs_diff_vs_offline: max_diff,
        frames,
        seconds: started.elapsed().as_secs_f64(),
    })
}
