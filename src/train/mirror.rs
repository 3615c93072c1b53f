//! Mirrored test views (the flipped half of ten crops) and the flip rule a model was trained with.
//!
//! A mirror image of a MoveLeft clip is a MoveRight clip. Training with `--flip mirror` teaches a
//! model exactly that (a flipped clip gets the mirrored label), so a mirrored test view scores the
//! mirrored class: its logits must be put back through the label map before the views are
//! averaged, or the pairs swap in the confusion matrix. The rule, per the recorded flip:
//!
//! | trained with | mirrored test views |
//! |---|---|
//! | `mirror` (label map) | logits swapped by the recorded map, then averaged |
//! | `on` (labels kept) | averaged as they are: the model learnt that a flip keeps the label |
//! | `off`, classes with mirrored pairs | refused: the model never saw a mirror image, and a mirrored pair's label is unknown to it |
//! | `off`, no mirrored pairs | averaged as they are (the TSN test protocol) |
//! | not recorded (older checkpoints) | averaged as they are, with a warning |
//!
//! Training records the rule in the checkpoint metadata [`FLIP_KEY`] as `{"rule", "map"}`, with
//! the label map of its classes (the identity where no class has a mirror).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::TrainError;
use super::config::{FlipSpec, mirror_label_map};
use crate::data::TestCrop;

/// The checkpoint metadata key of the training flip rule (JSON).
pub const FLIP_KEY: &str = "flip";

/// The flip rule a model was trained with, as its checkpoint records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlipRecord {
    pub rule: FlipSpec,
    /// `map[c]` is the class a mirror image of class `c` shows (the identity for classes without
    /// a direction), whatever the rule.
    pub map: Vec<usize>,
}

impl FlipRecord {
    pub fn new(rule: FlipSpec, classes: &[String]) -> Self {
        Self {
            rule,
            map: mirror_label_map(classes),
        }
    }

    /// The metadata entry.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The record of a checkpoint's metadata; None for checkpoints written before the rule was
    /// recorded. A record whose map is not a mirror pairing of `classes` classes is refused.
    pub fn of_checkpoint(
        metadata: &BTreeMap<String, String>,
        classes: usize,
        path: &Path,
    ) -> Result<Option<Self>, TrainError> {
        let Some(text) = metadata.get(FLIP_KEY) else {
            return Ok(None);
        };
        let bad = |why: String| TrainError::FlipRule {
            path: path.to_path_buf(),
            text: text.clone(),
            why,
        };
        let record: Self =
            serde_json::from_str(text).map_err(|e| bad(format!("is not a flip rule ({e})")))?;
        let pairs = record.map.len() == classes
            && record
                .map
                .iter()
                .enumerate()
                .all(|(c, &m)| m < classes && record.map[m] == c);
        if !pairs {
            return Err(bad(format!(
                "does not pair {classes} classes (each class with itself or one mirror)"
            )));
        }
        Ok(Some(record))
    }

    fn has_pairs(&self) -> bool {
        self.map.iter().enumerate().any(|(c, &m)| c != m)
    }
}

/// How the mirrored test views of `crop` join the average for a model trained with `record`:
/// None to average them as they are, Some(map) to swap their logits by `map` first. Refuses
/// mirrored views for a model trained without flips whose classes have mirrored pairs.
pub fn mirrored_view_map(
    record: Option<&FlipRecord>,
    crop: TestCrop,
    path: &Path,
) -> Result<Option<Vec<usize>>, TrainError> {
    if !(0..crop.count()).any(|c| crop.mirrored(c)) {
        return Ok(None);
    }
    let Some(record) = record else {
        tracing::warn!(
            "{} does not record its training flip rule (older checkpoint): mirrored test views \
             are averaged as they are, which swaps mirrored classes (Left/Right) if it was trained \
             with --flip mirror; test it with --crop centre or three to be sure",
            path.display()
        );
        return Ok(None);
    };
    match record.rule {
        FlipSpec::Mirror if record.has_pairs() => Ok(Some(record.map.clone())),
        FlipSpec::Off if record.has_pairs() => {
            let (a, b) = record
                .map
                .iter()
                .enumerate()
                .find(|(c, m)| c != *m)
                .unwrap_or((0, &0));
            Err(TrainError::MirroredViews {
                path: path.to_path_buf(),
                pair: format!("classes {a} and {b}"),
            })
        }
        _ => Ok(None),
    }
}

/// [`mirrored_view_map`] for the model of checkpoint `path` (its metadata, its number of
/// classes): what `eval` and `predict` set [`super::EvalOptions::mirror_map`] to.
pub fn mirror_map_of(
    metadata: &BTreeMap<String, String>,
    classes: usize,
    crop: TestCrop,
    path: &Path,
) -> Result<Option<Vec<usize>>, TrainError> {
    let record = FlipRecord::of_checkpoint(metadata, classes, path)?;
    mirrored_view_map(record.as_ref(), crop, path)
}

/// `[B, K]` video logits from `[B, V, K]` view logits (views ordered clip by clip, `crop.count()`
/// per clip): each mirrored view's logits swapped by `map` (`out[k] = in[map[k]]`: the mirror
/// image of a class-k clip scores `map[k]`), then the mean over the views.
pub fn combine_views(
    logits: &Tensor,
    crop: TestCrop,
    map: Option<&[usize]>,
) -> Result<Tensor, TrainError> {
    let Some(map) = map else {
        return Ok(logits.f_mean_dim(1, false, None)?);
    };
    let views = logits.size()[1];
    let mirrored = mirrored_flags(crop, views as usize / crop.count());
    let index: Vec<i64> = map.iter().map(|&m| m as i64).collect();
    let index = Tensor::from_slice(&index).to_device(logits.device());
    let swapped = logits.f_index_select(2, &index)?;
    let mask = Tensor::from_slice(&mirrored)
        .to_device(logits.device())
        .view([1, views, 1]);
    Ok(swapped
        .f_where_self(&mask, logits)?
        .f_mean_dim(1, false, Kind::Float)?)
}

/// Which of the `clips x crop.count()` views of a video are mirror images.
fn mirrored_flags(crop: TestCrop, clips: usize) -> Vec<bool> {
    (0..clips * crop.count())
        .map(|v| crop.mirrored(v % crop.count()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::data::test_views;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mirrored_agrees_with_the_views() {
        for crop in [TestCrop::Centre, TestCrop::Three, TestCrop::Ten] {
            let views = test_views(320, 240, 224, crop);
            let flags: Vec<bool> = views.iter().map(|v| v.flip).collect();
            assert_eq!(flags, mirrored_flags(crop, 1), "{crop:?}");
        }
    }

    #[test]
    fn mirrored_views_are_swapped_before_the_mean() {
        // 1 video, 2 clips x 10 crops, 3 classes: Left, Right, Still.
        let map = [1usize, 0, 2];
        let mut values = Vec::new();
        for v in 0..20 {
            let mirrored = v % 10 >= 5;
            // The unmirrored views score Left 3, Right 1, Still v; a mirrored view sees the
            // mirror image, so it scores Right 3, Left 1.
            let (l, r) = if mirrored { (1.0, 3.0) } else { (3.0, 1.0) };
            values.extend([l, r, v as f32]);
        }
        let logits = Tensor::from_slice(&values).view([1, 20, 3]);
        let out: Vec<f32> = Vec::try_from(
            combine_views(&logits, TestCrop::Ten, Some(&map))
                .unwrap()
                .view([-1]),
        )
        .unwrap();
        assert_eq!(out, [3.0, 1.0, 9.5]);
        let plain: Vec<f32> = Vec::try_from(
            combine_views(&logits, TestCrop::Ten, None)
                .unwrap()
                .view([-1]),
        )
        .unwrap();
        assert_eq!(plain, [2.0, 2.0, 9.5]);
    }

    fn meta(record: &FlipRecord) -> BTreeMap<String, String> {
        BTreeMap::from([(FLIP_KEY.to_string(), record.to_json())])
    }

    #[test]
    fn the_rule_per_training_flip() {
        let path = Path::new("m.safetensors");
        let classes = names(&["MoveLeft", "MoveRight", "Still"]);
        let read = |rule| {
            FlipRecord::of_checkpoint(&meta(&FlipRecord::new(rule, &classes)), 3, path)
                .unwrap()
                .unwrap()
        };
        let mirror = read(FlipSpec::Mirror);
        assert_eq!(mirror.map, [1, 0, 2]);
        let map = |r: &FlipRecord, crop| mirrored_view_map(Some(r), crop, path);
        assert_eq!(map(&mirror, TestCrop::Ten).unwrap(), Some(vec![1, 0, 2]));
        assert_eq!(map(&mirror, TestCrop::Three).unwrap(), None);
        assert_eq!(map(&read(FlipSpec::On), TestCrop::Ten).unwrap(), None);
        let err = map(&read(FlipSpec::Off), TestCrop::Ten).unwrap_err();
        assert!(err.to_string().contains("--flip off"), "{err}");
        assert_eq!(map(&read(FlipSpec::Off), TestCrop::Centre).unwrap(), None);
        // Flip off without mirrored pairs: the views are averaged as they are.
        let plain = FlipRecord::new(FlipSpec::Off, &names(&["Run", "Jump"]));
        assert_eq!(map(&plain, TestCrop::Ten).unwrap(), None);
        // Older checkpoints: as before.
        assert_eq!(mirrored_view_map(None, TestCrop::Ten, path).unwrap(), None);
        assert!(
            FlipRecord::of_checkpoint(&BTreeMap::new(), 3, path)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_record_that_does_not_pair_the_classes_is_refused() {
        let path = Path::new("m.safetensors");
        for map in [vec![1, 1, 2], vec![1, 0], vec![1, 2, 0], vec![0, 1, 7]] {
            let record = FlipRecord {
                rule: FlipSpec::Mirror,
                map,
            };
            let err = FlipRecord::of_checkpoint(&meta(&record), 3, path).unwrap_err();
            assert!(err.to_string().contains("does not pair 3 classes"), "{err}");
        }
    }
}
