//! The one reader of a frame folder, for every command: `play` hands its numbering to GStreamer's
//! multifilesrc (`capture`), `predict`, `eval` and training decode the frames it lists (`loader`).
//!
//! A folder's frames are its image files (`.jpg`, `.jpeg`, `.png`) named PREFIX NUMBER.EXT, in the
//! numeric order of NUMBER (`img_9` before `img_10`):
//! - the `img_*` files when there are any (mmaction2's rawframes keep `flow_x_*` and `flow_y_*`
//!   beside them), else every image file;
//! - each frame name ends in its number (`cover.jpg` among the frames is refused);
//! - one naming scheme: one prefix, one extension and one printf width, numbers either padded with
//!   zeros to one width (`img_00001`, `%05d`) or not padded (`img_1` ... `img_40`, `%d`); a folder
//!   holding `img_01` beside `img_1` or `img_001` is ambiguous and refused;
//! - numbers without gaps.
//!
//! Names that are not UTF-8 are not frame names this layout makes: they are left out, as other
//! files are.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a folder is not a sequence of frames.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FrameFolderError {
    #[error("cannot read the directory")]
    Read(#[source] Arc<std::io::Error>),
    #[error("{0}: a frame name must end in its number (img_00001.jpg)")]
    Unnumbered(String),
    #[error("{0}: frame number out of range")]
    OutOfRange(String),
    #[error("no frames (.jpg, .jpeg or .png files) in it")]
    Empty,
    #[error(
        "mixed frame names: {0} and {1} (one prefix and extension, numbers all padded to one \
         width or none padded)"
    )]
    MixedNames(String, String),
    #[error("a gap in the frames: {0} is followed by {1}")]
    Gap(String, String),
    #[error("its path is not UTF-8, which GStreamer's multifilesrc cannot read (rename it)")]
    NotUtf8,
}

/// The frames of a folder, in order, and the naming scheme they share.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameFolder {
    dir: PathBuf,
    prefix: String,
    /// Digits the numbers are padded to with zeros (1: not padded).
    width: usize,
    ext: String,
    first: u64,
    paths: Vec<PathBuf>,
}

/// One frame file's name: prefix, number as written, number, extension.
#[derive(Debug, Clone)]
struct Numbered {
    prefix: String,
    digits: String,
    number: u64,
    ext: String,
}

impl Numbered {
    /// None for a file that is not an image; an error for an image whose name has no number.
    fn parse(name: &str) -> Result<Option<Self>, FrameFolderError> {
        let Some((stem, ext)) = name.rsplit_once('.') else {
            return Ok(None);
        };
        if !matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png") {
            return Ok(None);
        }
        let prefix = stem.trim_end_matches(|c: char| c.is_ascii_digit());
        let digits = &stem[prefix.len()..];
        if digits.is_empty() {
            return Err(FrameFolderError::Unnumbered(name.to_string()));
        }
        let number = digits
            .parse()
            .map_err(|_| FrameFolderError::OutOfRange(name.to_string()))?;
        Ok(Some(Self {
            prefix: prefix.to_string(),
            digits: digits.to_string(),
            number,
            ext: ext.to_string(),
        }))
    }

    fn name(&self) -> String {
        format!("{}{}.{}", self.prefix, self.digits, self.ext)
    }

    /// Written with leading zeros: its width is the scheme's.
    fn padded(&self) -> bool {
        self.digits.len() > 1 && self.digits.starts_with('0')
    }

    /// Whether printf `%0{width}d` writes this number as it is written.
    fn fits(&self, width: usize) -> bool {
        self.digits.len() == width || (self.digits.len() > width && !self.padded())
    }
}

impl FrameFolder {
    /// Lists and orders the frames of `dir` (see the module's rules).
    pub fn read(dir: &Path) -> Result<Self, FrameFolderError> {
        let read = |e| FrameFolderError::Read(Arc::new(e));
        let mut frames = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read)? {
            let name = entry.map_err(read)?.file_name();
            if let Some(name) = name.to_str() {
                frames.push(name.to_string());
            }
        }
        Self::of_names(dir, &frames)
    }

    /// The frames among the file names `names` of folder `dir`.
    fn of_names(dir: &Path, names: &[String]) -> Result<Self, FrameFolderError> {
        let rawframes = names.iter().any(|n| n.starts_with("img_"));
        let mut frames = Vec::new();
        for name in names.iter().filter(|n| !rawframes || n.starts_with("img_")) {
            if let Some(frame) = Numbered::parse(name)? {
                frames.push(frame);
            }
        }
        frames.sort_by_key(|f| f.number);
        let Some(first) = frames.first().cloned() else {
            return Err(FrameFolderError::Empty);
        };
        // The width: that of any padded number (all padded ones must agree), else the narrowest.
        let padded = frames.iter().find(|f| f.padded());
        let width = padded.map_or_else(
            || frames.iter().map(|f| f.digits.len()).min().unwrap_or(1),
            |f| f.digits.len(),
        );
        let scheme = padded.unwrap_or(&first);
        if let Some(other) = frames
            .iter()
            .find(|f| f.prefix != scheme.prefix || f.ext != scheme.ext || !f.fits(width))
        {
            return Err(FrameFolderError::MixedNames(scheme.name(), other.name()));
        }
        for pair in frames.windows(2) {
            if pair[1].number != pair[0].number + 1 {
                return Err(FrameFolderError::Gap(pair[0].name(), pair[1].name()));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            prefix: first.prefix.clone(),
            width,
            ext: first.ext.clone(),
            first: first.number,
            paths: frames.iter().map(|f| dir.join(f.name())).collect(),
        })
    }

    /// The frame files, in order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The number in the first frame's name.
    pub fn first(&self) -> u64 {
        self.first
    }

    pub fn is_png(&self) -> bool {
        self.ext.eq_ignore_ascii_case("png")
    }

    /// The frames' paths as one printf pattern, as multifilesrc reads them
    /// (`/data/v1/img_%05d.jpg`, `/data/v2/img_%d.png`).
    pub fn pattern(&self) -> Result<String, FrameFolderError> {
        let width = if self.width > 1 {
            format!("0{}", self.width)
        } else {
            String::new()
        };
        let pattern = self
            .dir
            .join(format!("{}%{width}d.{}", self.prefix, self.ext));
        // multifilesrc takes its pattern as UTF-8 text: another name would point elsewhere.
        pattern
            .to_str()
            .map(str::to_string)
            .ok_or(FrameFolderError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn folder(names: &[&str]) -> Result<FrameFolder, FrameFolderError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        FrameFolder::of_names(Path::new("/v"), &names)
    }

    fn numbers(f: &FrameFolder) -> Vec<String> {
        f.paths()
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn padded_frames_make_a_pattern_from_the_first_number() {
        let f = folder(&[
            "img_00003.jpg",
            "img_00002.jpg",
            "notes.txt",
            "img_00004.jpg",
        ])
        .unwrap();
        assert_eq!(f.pattern().unwrap(), "/v/img_%05d.jpg");
        assert_eq!((f.first(), f.len(), f.is_png()), (2, 3, false));
        assert_eq!(
            numbers(&f),
            ["img_00002.jpg", "img_00003.jpg", "img_00004.jpg"]
        );
    }

    #[test]
    fn unpadded_numbers_are_in_numeric_order() {
        let names: Vec<String> = (1..=40).rev().map(|i| format!("img_{i}.png")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let f = folder(&names).unwrap();
        assert_eq!(f.pattern().unwrap(), "/v/img_%d.png");
        let expected: Vec<String> = (1..=40).map(|i| format!("img_{i}.png")).collect();
        assert_eq!(numbers(&f), expected);
        // Padded to 3 and running past 999: %03d writes 1000 as it is.
        let f = folder(&["f998.jpg", "f999.jpg", "f1000.jpg", "f1001.jpg"]).unwrap();
        assert_eq!(f.pattern().unwrap(), "/v/f%03d.jpg");
        assert_eq!(numbers(&f)[2], "f1000.jpg");
    }

    #[test]
    fn rawframes_flow_files_are_left_out() {
        let f = folder(&[
            "flow_x_00001.jpg",
            "img_00002.jpg",
            "flow_y_00001.jpg",
            "img_00001.jpg",
        ]);
        assert_eq!(numbers(&f.unwrap()), ["img_00001.jpg", "img_00002.jpg"]);
    }

    #[test]
    fn gaps_ambiguous_and_unnumbered_frames_are_refused() {
        let gap = folder(&["img_00006.png", "img_00008.png"]);
        assert_eq!(
            gap.unwrap_err().to_string(),
            "a gap in the frames: img_00006.png is followed by img_00008.png"
        );
        for mixed in [
            &["img_001.jpg", "img_0002.jpg"][..],
            &["img_01.jpg", "img_2.jpg"],
            &["img_1.jpg", "img_2.png"],
            &["a_1.jpg", "b_2.jpg"],
        ] {
            assert!(
                matches!(folder(mixed), Err(FrameFolderError::MixedNames(..))),
                "{mixed:?}"
            );
        }
        // img_1 and img_01 are both frame 1.
        let twice = folder(&["img_1.jpg", "img_01.jpg", "img_2.jpg"]).unwrap_err();
        assert!(matches!(twice, FrameFolderError::MixedNames(..)), "{twice}");
        assert!(matches!(
            folder(&["x_1.jpg", "cover.jpg"]),
            Err(FrameFolderError::Unnumbered(_))
        ));
        assert!(matches!(folder(&[]), Err(FrameFolderError::Empty)));
        assert!(matches!(
            folder(&["f99999999999999999999999.png"]),
            Err(FrameFolderError::OutOfRange(_))
        ));
    }
}
