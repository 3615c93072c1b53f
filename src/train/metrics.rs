//! Classification metrics: top-1, top-5, mean class accuracy and the confusion matrix.

use serde::Serialize;
use tch::Tensor;

/// Accumulates predictions of a data set.
#[derive(Debug, Clone)]
pub struct Accuracy {
    classes: usize,
    /// `confusion[true][predicted]`.
    confusion: Vec<Vec<u64>>,
    top5_hits: u64,
    count: u64,
}

/// The metrics of one evaluation, fractions in [0, 1].
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Scores {
    pub top1: f64,
    pub top5: f64,
    pub mean_class_acc: f64,
    pub count: u64,
}

impl Accuracy {
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            confusion: vec![vec![0; classes]; classes],
            top5_hits: 0,
            count: 0,
        }
    }

    /// Adds the scores `[N, classes]` of N samples with labels `[N]`.
    pub fn add(&mut self, scores: &Tensor, labels: &Tensor) {
        let scores = scores
            .detach()
            .to_kind(tch::Kind::Float)
            .to_device(tch::Device::Cpu);
        let labels: Vec<i64> =
            Vec::try_from(labels.to_device(tch::Device::Cpu)).unwrap_or_default();
        let k = 5.min(self.classes as i64);
        let (_, top) = scores.topk(k, 1, true, true);
        let top: Vec<Vec<i64>> = Vec::try_from(top).unwrap_or_default();
        for (label, ranked) in labels.iter().zip(&top) {
            self.push(*label as usize, ranked);
        }
    }

    /// Adds one sample: its label and the classes ranked best first.
    pub fn push(&mut self, label: usize, ranked: &[i64]) {
        let Some(&best) = ranked.first() else { return };
        if label < self.classes && (best as usize) < self.classes {
            self.confusion[label][best as usize] += 1;
        }
        if ranked.iter().take(5).any(|&c| c as usize == label) {
            self.top5_hits += 1;
        }
        self.count += 1;
    }

    /// The accumulator of the counts of several (a data-parallel evaluation's ranks summed).
    pub fn from_counts(confusion: Vec<Vec<u64>>, top5_hits: u64, count: u64) -> Self {
        Self {
            classes: confusion.len(),
            confusion,
            top5_hits,
            count,
        }
    }

    pub fn confusion(&self) -> &[Vec<u64>] {
        &self.confusion
    }

    pub fn scores(&self) -> Scores {
        let n = self.count.max(1) as f64;
        let correct: u64 = (0..self.classes).map(|c| self.confusion[c][c]).sum();
        let per_class: Vec<f64> = (0..self.classes)
            .filter_map(|c| {
                let total: u64 = self.confusion[c].iter().sum();
                (total > 0).then(|| self.confusion[c][c] as f64 / total as f64)
            })
            .collect();
        Scores {
            top1: correct as f64 / n,
            top5: self.top5_hits as f64 / n,
            mean_class_acc: if per_class.is_empty() {
                0.0
            } else {
                per_class.iter().sum::<f64>() / per_class.len() as f64
            },
            count: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_top1_top5_and_mean_class() {
        let mut acc = Accuracy::new(6);
        // Class 0: 3 samples, 2 right, the wrong one has 0 second. Class 1: wrong, its score
        // the lowest (outside the top 5). Class 2: right.
        let scores = Tensor::from_slice(&[
            9f32, 1., 0.5, 0.4, 0.3, 0.2, //
            9., 1., 0.5, 0.4, 0.3, 0.2, //
            2., 9., 1., 0.5, 0.4, 0.3, //
            0.1, 0., 0.2, 0.3, 0.4, 9., //
            1., 0.2, 9., 0.3, 0.4, 0.5, //
        ])
        .view([5, 6]);
        let labels = Tensor::from_slice(&[0i64, 0, 0, 1, 2]);
        acc.add(&scores, &labels);
        let s = acc.scores();
        assert_eq!(s.count, 5);
        assert!((s.top1 - 3.0 / 5.0).abs() < 1e-12);
        assert!((s.top5 - 4.0 / 5.0).abs() < 1e-12);
        assert!((s.mean_class_acc - (2.0 / 3.0 + 0.0 + 1.0) / 3.0).abs() < 1e-12);
        assert_eq!(acc.confusion()[0][1], 1);
        assert_eq!(acc.confusion()[1][5], 1);
    }
}
