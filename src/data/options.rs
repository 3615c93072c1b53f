//! What a [`Loader`](super::Loader) does: batch size, workers and queue, seed, input size,
//! sampling, train augmentation or test crops, normalisation, strictness and the decode cache.

use std::sync::Arc;

use super::augment::{Flip, Mode};
use super::decode::DecodeCache;
use super::{DataError, Dataset, Sampling};

#[derive(Debug, Clone)]
pub struct LoaderOptions {
    pub batch_size: usize,
    pub workers: usize,
    /// Batches prepared ahead of the consumer, in total over the workers (at least one each).
    pub queue: usize,
    pub seed: u64,
    /// Side of the square network input (S).
    pub input_size: usize,
    pub sampling: Sampling,
    pub mode: Mode,
    pub shuffle: bool,
    /// Leave out the last batch when it is short.
    pub drop_last: bool,
    /// A bad video is an error instead of a skip.
    pub strict: bool,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Decoded frames kept across epochs (share one between the loaders of successive epochs).
    pub cache: Option<Arc<DecodeCache>>,
}

impl LoaderOptions {
    /// Training defaults: TSN segments, TSM's multi-scale crop with flip, shuffled, last short
    /// batch dropped, ImageNet statistics, 2 workers and 4 batches ahead.
    pub fn train(input_size: usize, sampling: Sampling) -> Self {
        Self {
            batch_size: 8,
            workers: 2,
            queue: 4,
            seed: 0,
            input_size,
            sampling,
            mode: Mode::train_default(),
            shuffle: true,
            drop_last: true,
            strict: false,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            cache: None,
        }
    }

    /// Evaluation defaults: the given crops and clips, in data set order, nothing dropped.
    pub fn eval(
        input_size: usize,
        sampling: Sampling,
        crop: super::TestCrop,
        clips: usize,
    ) -> Self {
        Self {
            mode: Mode::Eval { crop, clips },
            shuffle: false,
            drop_last: false,
            ..Self::train(input_size, sampling)
        }
    }

    pub(crate) fn validate(&self, dataset: &Dataset) -> Result<(), DataError> {
        let bad = |s: String| Err(DataError::Options(s));
        if self.batch_size == 0 || self.workers == 0 {
            return bad(format!(
                "batch_size ({}) and workers ({}) must be at least 1",
                self.batch_size, self.workers
            ));
        }
        if self.input_size == 0 {
            return bad("input_size must be at least 1".into());
        }
        if self.std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return bad(format!("std {:?} must be finite and non-zero", self.std));
        }
        self.sampling.validate().map_err(DataError::Options)?;
        match &self.mode {
            Mode::Train { scales, flip } => {
                if scales.is_empty() || scales.iter().any(|s| !(*s > 0.0 && *s <= 1.0)) {
                    return bad(format!(
                        "crop scales {scales:?} must be in (0, 1], at least one"
                    ));
                }
                if let Flip::Mapped(map) = flip {
                    let k = dataset.classes.len();
                    if map.len() != k || map.iter().any(|l| *l >= k) {
                        return bad(format!(
                            "the flip label map {map:?} must give each of the {k} classes a class"
                        ));
                    }
                }
            }
            Mode::Eval { clips, .. } if *clips == 0 => {
                return bad("eval needs at least one clip per video".into());
            }
            Mode::Eval { .. } => {}
        }
        if dataset.items.is_empty() {
            return bad(format!("{} has no items", dataset.source));
        }
        if let Some((i, item)) = dataset
            .items
            .iter()
            .enumerate()
            .find(|(_, it)| it.label >= dataset.classes.len())
        {
            return bad(format!(
                "{}: item {i} ({}) has label {} but there are {} classes",
                dataset.source,
                item.path.display(),
                item.label,
                dataset.classes.len()
            ));
        }
        Ok(())
    }
}
