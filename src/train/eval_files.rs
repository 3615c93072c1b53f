//! What `eval` writes beside the metrics it prints: each video's true label and its top five
//! classes with their scores (CSV and JSON lines), and the confusion matrix (CSV, JSON, PNG).

use std::path::{Path, PathBuf};

use serde_json::json;

use super::TrainError;
use super::confusion::{Confusion, ConfusionTitle, field};
use super::eval::{EvalReport, TOP_K};
use super::report::write_atomic;
use crate::data::Dataset;

/// A file-name part made of `text`: letters, digits, `-`, `_` and `.`, the rest as `_`.
pub fn file_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `video,label,label_name,correct,top1,top1_score,...` then one line per video.
pub fn predictions_csv(report: &EvalReport, set: &Dataset) -> String {
    let name = |c: usize| set.classes.get(c).map_or("?", String::as_str);
    let mut out = String::from("video,label,label_name,correct");
    for k in 1..=TOP_K {
        out.push_str(&format!(",top{k},top{k}_name,top{k}_score"));
    }
    out.push('\n');
    for v in &report.videos {
        let path = set.items.get(v.item).map(|i| i.path.display().to_string());
        let correct = v.top.first().is_some_and(|t| t.0 == v.label);
        out.push_str(&format!(
            "{},{},{},{}",
            field(path.as_deref().unwrap_or("?")),
            v.label,
            field(name(v.label)),
            u8::from(correct)
        ));
        for &(class, score) in &v.top {
            out.push_str(&format!(",{class},{},{score:.6}", field(name(class))));
        }
        out.push('\n');
    }
    out
}

/// One JSON object per video: path, label, its name, and the top classes with scores.
pub fn predictions_jsonl(report: &EvalReport, set: &Dataset) -> String {
    let name = |c: usize| set.classes.get(c).cloned().unwrap_or_else(|| "?".into());
    report
        .videos
        .iter()
        .map(|v| {
            let top: Vec<_> = v
                .top
                .iter()
                .map(
                    |&(class, score)| json!({"class": class, "label": name(class), "score": score}),
                )
                .collect();
            let video = set.items.get(v.item).map(|i| i.path.display().to_string());
            format!(
                "{}\n",
                json!({"video": video, "label": v.label, "label_name": name(v.label), "top": top})
            )
        })
        .collect()
}

/// Writes `<dir>/<stem>-predictions.{csv,jsonl}` and `<dir>/<stem>-confusion.{csv,json,png}`,
/// creating `dir`; returns the files written.
pub fn write_eval_files(
    dir: &Path,
    stem: &str,
    report: &EvalReport,
    set: &Dataset,
    title: &ConfusionTitle,
) -> Result<Vec<PathBuf>, TrainError> {
    std::fs::create_dir_all(dir).map_err(|source| TrainError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let stem = file_part(stem);
    let csv = dir.join(format!("{stem}-predictions.csv"));
    let jsonl = dir.join(format!("{stem}-predictions.jsonl"));
    write_atomic(&csv, &predictions_csv(report, set))?;
    write_atomic(&jsonl, &predictions_jsonl(report, set))?;
    let confusion = Confusion {
        matrix: &report.confusion,
        classes: &set.classes,
    };
    let mut files = vec![csv, jsonl];
    files.extend(confusion.write(&dir.join(format!("{stem}-confusion")), title)?);
    Ok(files)
}
