//! A confusion matrix as files a researcher reads at 101 classes: CSV (class names on both
//! axes, each row's videos and accuracy), JSON (the same with per-class accuracy), and the PNG
//! heat map ([`super::heatmap`]). `eval` writes one per evaluated set, training one for the best
//! model of a run.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::TrainError;
use super::report::write_atomic;

/// One class's row of a confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub index: usize,
    pub class: String,
    /// Videos of this class evaluated.
    pub videos: u64,
    pub correct: u64,
    /// `correct / videos`; None when the set holds no video of this class.
    pub accuracy: Option<f64>,
    /// The class this one is most often taken for (None when never mistaken).
    pub most_confused_with: Option<String>,
}

/// A confusion matrix (`matrix[true][predicted]`) with its class names.
#[derive(Debug, Clone, Copy)]
pub struct Confusion<'a> {
    pub matrix: &'a [Vec<u64>],
    pub classes: &'a [String],
}

/// What a confusion matrix shows, for its title and JSON: the model, the split, the epoch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfusionTitle {
    pub model: String,
    pub set: String,
    /// The epoch the model was saved at, if known.
    pub epoch: Option<u32>,
    /// "best model", "checkpoint" or a file name.
    pub what: String,
}

impl ConfusionTitle {
    /// `tsm_r50, best model (epoch 12), on split 1`.
    pub fn line(&self) -> String {
        let epoch = self
            .epoch
            .map_or(String::new(), |e| format!(" (epoch {e})"));
        format!("{}, {}{epoch}, on {}", self.model, self.what, self.set)
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub(super) fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl Confusion<'_> {
    fn name(&self, i: usize) -> String {
        self.classes
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("class_{i}"))
    }

    /// Each class's videos, hits and accuracy (the diagonal over the row), in class order.
    pub fn per_class(&self) -> Vec<ClassScore> {
        self.matrix
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let videos: u64 = row.iter().sum();
                let correct = row.get(i).copied().unwrap_or(0);
                let confused = row
                    .iter()
                    .enumerate()
                    .filter(|&(j, &n)| j != i && n > 0)
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
                    .map(|(j, _)| self.name(j));
                ClassScore {
                    index: i,
                    class: self.name(i),
                    videos,
                    correct,
                    accuracy: (videos > 0).then(|| correct as f64 / videos as f64),
                    most_confused_with: confused,
                }
            })
            .collect()
    }

    /// `true \ predicted,<class>...,videos,accuracy`, one row per true class.
    pub fn csv(&self) -> String {
        let mut out = String::from("true \\ predicted");
        for i in 0..self.matrix.len() {
            out.push(',');
            out.push_str(&field(&self.name(i)));
        }
        out.push_str(",videos,accuracy\n");
        for (row, score) in self.matrix.iter().zip(self.per_class()) {
            out.push_str(&field(&score.class));
            for n in row {
                out.push_str(&format!(",{n}"));
            }
            let acc = score.accuracy.map_or(String::new(), |a| format!("{a:.6}"));
            out.push_str(&format!(",{},{acc}\n", score.videos));
        }
        out
    }

    /// The matrix, the class names and the per-class scores, with what it shows.
    pub fn json(&self, title: &ConfusionTitle) -> serde_json::Value {
        serde_json::json!({
            "model": title.model,
            "set": title.set,
            "epoch": title.epoch,
            "what": title.what,
            "rows": "true class",
            "columns": "predicted class",
            "classes": self.classes,
            "matrix": self.matrix,
            "per_class": self.per_class(),
        })
    }

    /// Writes `<stem>.csv`, `<stem>.json` and `<stem>.png`; returns the three paths.
    pub fn write(&self, stem: &Path, title: &ConfusionTitle) -> Result<[PathBuf; 3], TrainError> {
        let with = |ext: &str| {
            let mut name = stem.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".{ext}"));
            stem.with_file_name(name)
        };
        let [csv, json, png] = [with("csv"), with("json"), with("png")];
        write_atomic(&csv, &self.csv())?;
        let text =
            serde_json::to_string_pretty(&self.json(title)).map_err(|source| TrainError::Json {
                what: "the confusion matrix",
                source,
            })?;
        write_atomic(&json, &text)?;
        super::heatmap::draw(&png, self, &title.line())?;
        Ok([csv, json, png])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_per_class_scores_name_the_classes() {
        let matrix = vec![vec![3, 1, 0], vec![0, 0, 0], vec![2, 0, 2]];
        let classes: Vec<String> = ["Left", "Right, fast", "Still"].map(String::from).to_vec();
        let c = Confusion {
            matrix: &matrix,
            classes: &classes,
        };
        assert_eq!(
            c.csv(),
            "true \\ predicted,Left,\"Right, fast\",Still,videos,accuracy\n\
             Left,3,1,0,4,0.750000\n\
             \"Right, fast\",0,0,0,0,\n\
             Still,2,0,2,4,0.500000\n"
        );
        let scores = c.per_class();
        assert_eq!(scores[0].accuracy, Some(0.75));
        assert_eq!(scores[0].most_confused_with.as_deref(), Some("Right, fast"));
        assert_eq!(scores[1].accuracy, None);
        assert_eq!(scores[2].most_confused_with.as_deref(), Some("Left"));
        let title = ConfusionTitle {
            model: "m".into(),
            set: "split 1".into(),
            epoch: Some(3),
            what: "best model".into(),
        };
        let json = c.json(&title);
        assert_eq!(json["per_class"][2]["correct"], 2);
        assert_eq!(json["matrix"][0][1], 1);
        assert_eq!(json["classes"][1], "Right, fast");
        assert_eq!(title.line(), "m, best model (epoch 3), on split 1");
    }
}
