//! Settings that would waste a run without failing it, said before it starts: a recipe meant to
//! fine-tune pretrained weights started from scratch, clips longer than most videos of the set,
//! mixed precision asked for on a device that has none.

use std::str::FromStr;

use tch::Device;

use super::config::TrainConfig;
use super::recipe::Recipe;
use crate::data::{Dataset, Layout, Sampling, decode_video, list_frames};
use crate::model::Preset;

/// Training videos opened to estimate the set's video length.
const PROBED: usize = 5;

impl TrainConfig {
    /// Warnings about this run's settings (a resumed run's starting weights are its own, so
    /// `resume` silences the one about `--init`).
    pub fn warnings(&self, device: Device, resume: bool) -> Vec<String> {
        let mut out = Vec::new();
        let recipe = Preset::from_str(&self.model.name)
            .ok()
            .map(|p| Recipe::of(p.recipe()));
        if let Some(recipe) = recipe
            && recipe.wants_init
            && self.init.is_none()
            && !resume
        {
            out.push(format!(
                "{}'s recipe ({:?}: lr {}, {} epochs) fine-tunes pretrained weights, and no --init \
                 is given: from scratch it will stay far below the published accuracy. Give \
                 --init (an ImageNet or Kinetics checkpoint through `shiftlive import`, see the \
                 README) or set --lr and --epochs for training from scratch",
                self.model.name,
                recipe.name,
                recipe.regimen.schedule.base_lr,
                recipe.regimen.epochs
            ));
        }
        if self.regimen.amp && !device.is_cuda() {
            out.push(format!(
                "--amp (mixed precision) is on, but the device is {device:?}: it works on CUDA \
                 only, this run trains in fp32"
            ));
        }
        out
    }
}

/// Frames a clip of `sampling` spans in its video: dense clips `(T - 1) x interval + 1`, TSN
/// segments one frame each.
pub fn clip_span(sampling: &Sampling) -> usize {
    match sampling {
        Sampling::Segments { num_segments } => *num_segments,
        Sampling::Dense { clip_len, interval } => clip_len.saturating_sub(1) * interval + 1,
    }
}

/// A warning when the clips span more frames than the median of `lengths` (frame counts of
/// some of the set's videos): their frames repeat at the end (dense clips) or within (segments),
/// and the model learns less motion than its recipe assumes.
pub fn clip_length_warning(sampling: &Sampling, lengths: &[usize], set: &str) -> Option<String> {
    let span = clip_span(sampling);
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let median = *sorted.get(sorted.len() / 2)?;
    let shorter = sorted.iter().filter(|&&n| n < span).count();
    (median < span).then(|| {
        let clip = match sampling {
            Sampling::Segments { num_segments } => format!("{num_segments} segments"),
            Sampling::Dense { clip_len, interval } => {
                format!("{clip_len} frames x interval {interval}")
            }
        };
        format!(
            "clips of {clip} span {span} frames, but {shorter} of {} videos of {set} looked at \
             have fewer (median {median} frames): their frames repeat; lower --segments or \
             --interval",
            sorted.len()
        )
    })
}

/// The frame counts of up to [`PROBED`] videos of `set`, spread evenly over it (unreadable ones
/// left out: the loader reports those).
pub(super) fn probe_lengths(set: &Dataset) -> Vec<usize> {
    let n = set.items.len();
    let picks = PROBED.min(n);
    (0..picks)
        .filter_map(|k| set.items.get(k * n / picks.max(1)))
        .filter_map(|item| match item.layout {
            Layout::Frames => list_frames(&item.path).ok().map(|f| f.len()),
            Layout::Video => decode_video(&item.path).ok().map(|f| f.len()),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::train::DataSpec;

    fn config(preset: Preset) -> TrainConfig {
        let data = DataSpec::Ucf101 {
            root: "d".into(),
            splits: None,
            split: 1,
            frames: false,
        };
        TrainConfig::preset(preset, data)
    }

    #[test]
    fn fine_tune_recipes_without_init_and_amp_on_cpu_are_warned() {
        let tsm = config(Preset::TsmR50);
        let warnings = tsm.warnings(Device::Cpu, false);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("no --init"), "{}", warnings[0]);
        assert!(warnings[1].contains("--amp"), "{}", warnings[1]);
        assert_eq!(tsm.warnings(Device::Cuda(0), true).len(), 0);
        let mut with_init = tsm;
        with_init.init = Some("r50.safetensors".into());
        with_init.regimen.amp = false;
        assert!(with_init.warnings(Device::Cpu, false).is_empty());
        assert!(
            config(Preset::TsmR18TinyOnline)
                .warnings(Device::Cpu, false)
                .is_empty()
        );
    }

    #[test]
    fn clips_longer_than_most_videos_are_warned() {
        let dense = Sampling::Dense {
            clip_len: 16,
            interval: 4,
        };
        assert_eq!(clip_span(&dense), 61);
        let w = clip_length_warning(&dense, &[32, 40, 100, 28, 50], "split 1").unwrap();
        assert!(w.contains("span 61 frames, but 4 of 5 videos"), "{w}");
        assert!(w.contains("median 40"), "{w}");
        assert!(clip_length_warning(&dense, &[61, 80, 100, 20, 70], "s").is_none());
        assert!(clip_length_warning(&dense, &[], "s").is_none());
        let tsn = Sampling::Segments { num_segments: 8 };
        assert!(clip_length_warning(&tsn, &[5, 6, 9], "s").is_some());
        assert!(clip_length_warning(&tsn, &[8, 6, 9], "s").is_none());
    }
}
