//! Whole-video prediction: each video (or frame folder) tested as `eval` tests it (the same
//! loader, clips, crops and score averaging), without labels. A video that cannot be read gets
//! its reason instead of scores; the others are still predicted.

use std::path::PathBuf;
use std::sync::Arc;

use tch::Device;

use super::TrainError;
use super::eval::{EvalOptions, bar, loader_options, video_logits};
use crate::data::{Dataset, Item, Layout, Loader};
use crate::model::ActionNet;

/// One input's outcome.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub path: PathBuf,
    /// The view-averaged logits, or why the input could not be read.
    pub logits: Result<Vec<f32>, String>,
}

impl Prediction {
    /// Softmax probabilities of the logits, the `k` highest first, as (class, probability).
    pub fn top_k(&self, k: usize) -> Option<Vec<(usize, f32)>> {
        let logits = self.logits.as_ref().ok()?;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        let mut ranked: Vec<(usize, f32)> =
            exp.iter().enumerate().map(|(i, e)| (i, e / sum)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        Some(ranked)
    }
}

/// Predicts every input (a video file, or a folder of `img_*.jpg`/`.png` frames), in order.
/// `options.strict` is ignored: an unreadable input is reported in its [`Prediction`].
pub fn predict(
    net: &ActionNet,
    inputs: &[PathBuf],
    options: &EvalOptions,
    device: Device,
) -> Result<Vec<Prediction>, TrainError> {
    let classes = net.config().num_classes.max(1) as usize;
    let items = inputs
        .iter()
        .map(|path| Item {
            path: path.clone(),
            label: 0,
            layout: if path.is_dir() {
                Layout::Frames
            } else {
                Layout::Video
            },
        })
        .collect();
    let dataset = Arc::new(Dataset {
        classes: (0..classes).map(|i| format!("class_{i}")).collect(),
        items,
        source: "the videos to predict".into(),
    });
    let mut opts = options.clone();
    opts.strict = false;
    let mut loader = Loader::new(
        dataset,
        loader_options(&opts, net.config().input_size as usize),
        0,
    )?;
    let bar = bar(options.progress, loader.len() as u64, "predict");
    let mut logits: Vec<Option<Vec<f32>>> = vec![None; inputs.len()];
    for batch in loader.by_ref() {
        let batch = batch?;
        let out = video_logits(net, &batch, &opts, device)?;
        for (row, &item) in batch.items.iter().enumerate() {
            let values: Vec<f32> =
                Vec::try_from(out.get(row as i64)).map_err(|source| TrainError::Logits {
                    path: inputs[item].clone(),
                    source,
                })?;
            logits[item] = Some(values);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let skipped = loader.skipped();
    Ok(inputs
        .iter()
        .zip(logits)
        .map(|(path, logits)| Prediction {
            path: path.clone(),
            logits: logits.ok_or_else(|| {
                skipped
                    .iter()
                    .find(|s| &s.path == path)
                    .map_or_else(|| "not read".to_string(), |s| s.reason.clone())
            }),
        })
        .collect())
}
