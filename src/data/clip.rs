//! One item's clips rendered into its views as the frames are decoded: the loader's
//! [`FrameSampler`]. A frame is resized and cropped into every view that takes it the moment it
//! arrives and then dropped, so an item costs its views (`[V, T, 3, S, S]`), whatever the length
//! of the video.
//!
//! Slots are the frames of the plan: in training the clip's T frames; in evaluation clip `c`'s
//! frame `k` is slot `c T + k`, rendered into each of the clip's crops (view `c crops + crop`).

use std::path::Path;

use super::DataError;
use super::augment::{Flip, Mode, TrainChoice, render, test_views};
use super::decode::{FrameSampler, Image};
use super::loader::stream;
use super::options::LoaderOptions;
use crate::preprocess::Preprocessor;

/// The purpose key of an item's random stream (segment offsets, crop, flip).
const ITEM: u64 = 2;

/// Renders item `index` of epoch `epoch` into `out` (`[V, T, 3, S, S]`).
pub(crate) struct ClipViews<'a> {
    options: &'a LoaderOptions,
    path: &'a Path,
    epoch: u64,
    index: usize,
    out: &'a mut [f32],
    /// The frame each slot takes (for messages), and the training crop and flip.
    plan: Vec<usize>,
    choice: Option<TrainChoice>,
}

impl<'a> ClipViews<'a> {
    pub fn new(
        options: &'a LoaderOptions,
        path: &'a Path,
        epoch: u64,
        index: usize,
        out: &'a mut [f32],
    ) -> Self {
        Self {
            options,
            path,
            epoch,
            index,
            out,
            plan: Vec::new(),
            choice: None,
        }
    }

    /// The label of the rendered clip: `label`, or its mirror's when the clip was flipped.
    pub fn label(&self, label: usize) -> usize {
        match (&self.options.mode, self.choice) {
            (
                Mode::Train {
                    flip: Flip::Mapped(map),
                    ..
                },
                Some(choice),
            ) if choice.flip => map[label],
            _ => label,
        }
    }
}

impl FrameSampler for ClipViews<'_> {
    fn plan(&mut self, frames: usize) -> Vec<usize> {
        let o = self.options;
        self.plan = match &o.mode {
            Mode::Train { scales, flip } => {
                // The same draws, in the same order, whenever the plan is made again.
                let mut rng = stream(o.seed, self.epoch, self.index as u64, ITEM);
                let indices = o.sampling.train_indices(frames, &mut rng);
                self.choice = Some(TrainChoice::draw(
                    scales.len(),
                    *flip != Flip::Off,
                    &mut rng,
                ));
                indices
            }
            Mode::Eval { clips, .. } => (0..*clips)
                .flat_map(|clip| o.sampling.test_indices(frames, clip, *clips))
                .collect(),
        };
        self.plan.clone()
    }

    fn take(&mut self, slot: usize, image: &Image) -> Result<(), DataError> {
        let o = self.options;
        let frame = image.as_frame_ref();
        Preprocessor::check(&frame).map_err(|e| {
            let index = self.plan.get(slot).copied().unwrap_or(slot);
            DataError::decode(self.path, format!("frame {index}: {e}"))
        })?;
        let (t, s) = (o.sampling.frames(), o.input_size);
        let chw = 3 * s * s;
        match &o.mode {
            Mode::Train { scales, .. } => {
                let Some(choice) = self.choice else {
                    return Err(DataError::Options(
                        "a training frame before its plan".into(),
                    ));
                };
                let view = choice.view(image.width, image.height, s, scales);
                let at = slot * chw;
                render(&frame, &view, s, o.mean, o.std, &mut self.out[at..at + chw]);
            }
            Mode::Eval { crop, .. } => {
                let (clip, k) = (slot / t, slot % t);
                let views = test_views(image.width, image.height, s, *crop);
                for (c, view) in views.iter().enumerate() {
                    let at = ((clip * crop.count() + c) * t + k) * chw;
                    render(&frame, view, s, o.mean, o.std, &mut self.out[at..at + chw]);
                }
            }
        }
        Ok(())
    }
}
