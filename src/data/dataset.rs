//! Data sets as lists of (path, label): UCF-101 with its official split files, and a generic
//! list format for anything else.
//!
//! UCF-101 as released: `UCF-101/<Class>/v_<Class>_gXX_cYY.avi` and `ucfTrainTestlist/` with
//! `classInd.txt` (`1 ApplyEyeMakeup`, 1-based), `trainlist0N.txt` (`Class/v_..avi 1`) and
//! `testlist0N.txt` (`Class/v_..avi`, no label: the label comes from the class folder through
//! classInd). Labels here are 0-based. The released files end lines with CRLF and spell one class
//! two ways (`HandstandPushups` in classInd, `HandStandPushups` in file names): both are accepted.

use std::path::{Path, PathBuf};

use super::DataError;

/// How an item's frames are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One video file, decoded with GStreamer.
    Video,
    /// A folder of pre-extracted frames `img_00001.jpg`, `img_00002.jpg`, ... (mmaction2's rawframes).
    Frames,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    Train,
    Test,
}

/// One video of a data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub path: PathBuf,
    /// 0-based class index into [`Dataset::classes`].
    pub label: usize,
    pub layout: Layout,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub classes: Vec<String>,
    pub items: Vec<Item>,
    /// What this is, for messages: e.g. `UCF-101 split 1 train (/data/ucfTrainTestlist/trainlist01.txt)`.
    pub source: String,
}

fn read_text(path: &Path, what: &str) -> Result<String, DataError> {
    if !path.exists() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            what: what.to_string(),
        });
    }
    Ok(crate::fsio::read_text_file(path, MAX_LIST_BYTES)?)
}

/// The most a list or split file may hold (UCF-101's largest list is about 400 KiB).
const MAX_LIST_BYTES: u64 = 64 << 20;

/// Non-empty, trimmed lines with their 1-based numbers (CRLF and a UTF-8 BOM tolerated).
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// Parses `classInd.txt`: `<id> <Name>` per line, ids 1..=K each once.
pub fn read_class_index(path: &Path) -> Result<Vec<String>, DataError> {
    let text = read_text(path, "class index (classInd.txt)")?;
    let mut entries: Vec<(usize, String, usize)> = Vec::new();
    for (n, line) in lines(&text) {
        let mut parts = line.split_whitespace();
        let (Some(id), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(DataError::line(
                path,
                n,
                format!("expected '<id> <ClassName>', found '{line}'"),
            ));
        };
        let id: usize = id.parse().map_err(|_| {
            DataError::line(
                path,
                n,
                format!("class id '{id}' is not a positive integer"),
            )
        })?;
        if id == 0 {
            return Err(DataError::line(path, n, "class ids start at 1, found 0"));
        }
        if let Some((_, other, line)) = entries.iter().find(|(i, _, _)| *i == id) {
            return Err(DataError::line(
                path,
                n,
                format!("class id {id} already given to '{other}' on line {line}"),
            ));
        }
        if let Some((_, _, line)) = entries.iter().find(|(_, c, _)| c == name) {
            return Err(DataError::line(
                path,
                n,
                format!("class '{name}' already listed on line {line}"),
            ));
        }
        entries.push((id, name.to_string(), n));
    }
    if entries.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            why: "a class index needs at least one '<id> <ClassName>' line".into(),
        });
    }
    entries.sort();
    for (k, (id, name, line)) in entries.iter().enumerate() {
        if *id != k + 1 {
            return Err(DataError::line(
                path,
                *line,
                format!(
                    "class ids must run 1..={} without gaps: '{name}' has id {id}, expected {}",
                    entries.len(),
                    k + 1
                ),
            ));
        }
    }
    Ok(entries.into_iter().map(|(_, name, _)| name).collect())
}

/// The class index of a folder name: exact, else ignoring case (UCF-101's `HandStandPushups`).
fn find_class(classes: &[String], name: &str) -> Option<usize> {
    classes
        .iter()
        .position(|c| c == name)
        .or_else(|| classes.iter().position(|c| c.eq_ignore_ascii_case(name)))
}

/// Where the frames of `Class/v_x.avi` live in the Frames layout: `rawframes/Class/v_x/` under
/// `root` when `root/rawframes` exists, else `Class/v_x/` under `root`.
fn frames_dir(root: &Path, relative: &Path) -> PathBuf {
    let base = if root.join("rawframes").is_dir() {
        root.join("rawframes")
    } else {
        root.to_path_buf()
    };
    base.join(relative.with_extension(""))
}

impl Dataset {
    /// UCF-101: `root` holds `<Class>/<video>.avi` (or `rawframes/<Class>/<video>/img_*.jpg` when
    /// `layout` is Frames); `splits_dir` holds classInd.txt, trainlist0N.txt, testlist0N.txt.
    pub fn ucf101(
        root: &Path,
        splits_dir: &Path,
        split: u8,
        subset: Subset,
        layout: Layout,
    ) -> Result<Dataset, DataError> {
        if !(1..=3).contains(&split) {
            return Err(DataError::Options(format!(
                "UCF-101 has splits 1, 2 and 3, not {split}"
            )));
        }
        if !splits_dir.is_dir() {
            return Err(DataError::Missing {
                path: splits_dir.to_path_buf(),
                what: "split folder (ucfTrainTestlist)".into(),
            });
        }
        let classes = read_class_index(&splits_dir.join("classInd.txt"))?;
        let (name, what) = match subset {
            Subset::Train => (format!("trainlist0{split}.txt"), "train list"),
            Subset::Test => (format!("testlist0{split}.txt"), "test list"),
        };
        let list = splits_dir.join(&name);
        let text = read_text(&list, &format!("split {split} {what} ({name})"))?;
        let mut items = Vec::new();
        for (n, line) in lines(&text) {
            let mut parts = line.split_whitespace();
            let (Some(rel), label, None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(DataError::line(
                    &list,
                    n,
                    format!("expected 'Class/video.avi [label]', found '{line}'"),
                ));
            };
            let relative = PathBuf::from(rel.replace('\\', "/"));
            let Some(class_name) = rel
                .split(['/', '\\'])
                .next()
                .filter(|_| rel.contains(['/', '\\']))
            else {
                return Err(DataError::line(
                    &list,
                    n,
                    format!("'{rel}' does not start with a class folder (Class/video.avi)"),
                ));
            };
            let Some(class) = find_class(&classes, class_name) else {
                return Err(DataError::line(
                    &list,
                    n,
                    format!(
                        "class '{class_name}' is not in {}",
                        splits_dir.join("classInd.txt").display()
                    ),
                ));
            };
            if let Some(label) = label {
                let id: usize = label.parse().map_err(|_| {
                    DataError::line(&list, n, format!("label '{label}' is not an integer"))
                })?;
                if id != class + 1 {
                    return Err(DataError::line(
                        &list,
                        n,
                        format!(
                            "label {id} disagrees with classInd, which gives '{}' the id {}",
                            classes[class],
                            class + 1
                        ),
                    ));
                }
            }
            let path = match layout {
                Layout::Video => root.join(&relative),
                Layout::Frames => frames_dir(root, &relative),
            };
            items.push(Item {
                path,
                label: class,
                layout,
            });
        }
        if items.is_empty() {
            return Err(DataError::Empty {
                path: list,
                why: format!("split {split} {what} lists no videos"),
            });
        }
        let subset_name = match subset {
            Subset::Train => "train",
            Subset::Test => "test",
        };
        Ok(Dataset {
            classes,
            items,
            source: format!("UCF-101 split {split} {subset_name} ({})", list.display()),
        })
    }

    /// A generic list: one `relative/path label` per line (label a 0-based integer), or
    /// mmaction2's rawframe form `relative/dir num_frames label`. A path that is a folder under
    /// `root` is read as frames, anything else as a video. Class names come from `class_names`
    /// (one per line, or classInd's `<id> <Name>` lines), else `class_0`, `class_1`, ...
    pub fn from_list(
        list: &Path,
        root: &Path,
        class_names: Option<&Path>,
    ) -> Result<Dataset, DataError> {
        let text = read_text(list, "list file")?;
        let names = match class_names {
            Some(p) => Some(read_names(p)?),
            None => None,
        };
        let mut items = Vec::new();
        let mut max_label = 0;
        for (n, line) in lines(&text) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (rel, label) = match parts.as_slice() {
                [rel, label] => (*rel, *label),
                [rel, frames, label] if frames.parse::<usize>().is_ok() => (*rel, *label),
                _ => {
                    return Err(DataError::line(
                        list,
                        n,
                        format!("expected 'path label' or 'path num_frames label', found '{line}'"),
                    ));
                }
            };
            let label: usize = label.parse().map_err(|_| {
                DataError::line(
                    list,
                    n,
                    format!("label '{label}' is not a non-negative integer"),
                )
            })?;
            if let Some(names) = &names
                && label >= names.len()
            {
                return Err(DataError::line(
                    list,
                    n,
                    format!(
                        "label {label} is out of range 0..={} for the {} classes of {} (labels \
                         are 0-based)",
                        names.len().saturating_sub(1),
                        names.len(),
                        class_names.map_or(String::new(), |p| p.display().to_string()),
                    ),
                ));
            }
            max_label = max_label.max(label);
            let path = root.join(rel);
            let layout = if path.is_dir() {
                Layout::Frames
            } else {
                Layout::Video
            };
            items.push(Item {
                path,
                label,
                layout,
            });
        }
        if items.is_empty() {
            return Err(DataError::Empty {
                path: list.to_path_buf(),
                why: "the list names no videos".into(),
            });
        }
        let classes =
            names.unwrap_or_else(|| (0..=max_label).map(|i| format!("class_{i}")).collect());
        Ok(Dataset {
            classes,
            items,
            source: format!("list {}", list.display()),
        })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Items per class, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for item in &self.items {
            if let Some(c) = counts.get_mut(item.label) {
                *c += 1;
            }
        }
        counts
    }
}

/// Class names: one per line, or classInd's `<id> <Name>` form.
fn read_names(path: &Path) -> Result<Vec<String>, DataError> {
    let text = read_text(path, "class names file")?;
    let first = lines(&text).next();
    let indexed = first.is_some_and(|(_, l)| {
        let mut p = l.split_whitespace();
        p.next().is_some_and(|id| id.parse::<usize>().is_ok()) && p.next().is_some()
    });
    if indexed {
        return read_class_index(path);
    }
    let names: Vec<String> = lines(&text).map(|(_, l)| l.to_string()).collect();
    if names.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            why: "a class names file needs one name per line".into(),
        });
    }
    Ok(names)
}
