//! A directory of numbered frames (`img_00001.jpg`, ... as in the rawframes layout) as
//! GStreamer's multifilesrc reads it: one printf pattern and a first and last number.

use std::path::Path;

use super::FrameSequenceError;

/// A directory of numbered frames, as GStreamer's multifilesrc reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameSequence {
    /// printf pattern of the paths, e.g. `/data/v1/img_%05d.jpg`.
    pub pattern: String,
    pub first: u64,
    pub count: u64,
    pub png: bool,
}

/// One frame file: prefix, number, digits of the number, extension.
#[derive(Debug, Clone)]
struct Numbered {
    prefix: String,
    number: u64,
    digits: usize,
    ext: String,
}

impl Numbered {
    fn parse(name: &str) -> Result<Option<Self>, FrameSequenceError> {
        let Some((stem, ext)) = name.rsplit_once('.') else {
            return Ok(None);
        };
        if !matches!(ext.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png") {
            return Ok(None);
        }
        let digits = stem.len() - stem.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err(FrameSequenceError::Unnumbered(name.to_string()));
        }
        let (prefix, number) = stem.split_at(stem.len() - digits);
        let number = number
            .parse()
            .map_err(|_| FrameSequenceError::OutOfRange(name.to_string()))?;
        Ok(Some(Self {
            prefix: prefix.to_string(),
            number,
            digits,
            ext: ext.to_string(),
        }))
    }

    fn name(&self, number: u64) -> String {
        let (prefix, ext, width) = (&self.prefix, &self.ext, self.digits);
        format!("{prefix}{number:0width$}.{ext}")
    }

    fn same_scheme(&self, other: &Self) -> bool {
        self.prefix == other.prefix && self.digits == other.digits && self.ext == other.ext
    }
}

/// Finds the numbered frames of `dir`: one prefix, one extension, numbers without gaps.
pub fn frame_sequence(dir: &Path) -> Result<FrameSequence, FrameSequenceError> {
    let mut frames = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(FrameSequenceError::Read)? {
        let entry = entry.map_err(FrameSequenceError::Read)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // Not a frame name this layout makes (frames are ASCII): left out, as other files.
            continue;
        };
        if let Some(frame) = Numbered::parse(name)? {
            frames.push(frame);
        }
    }
    sequence_of(dir, frames)
}

/// The sequence the frame names make, checked for one naming scheme and no gaps.
fn sequence_of(dir: &Path, mut frames: Vec<Numbered>) -> Result<FrameSequence, FrameSequenceError> {
    let Some(first) = frames.first().cloned() else {
        return Err(FrameSequenceError::Empty);
    };
    if let Some(other) = frames.iter().find(|f| !f.same_scheme(&first)) {
        return Err(FrameSequenceError::MixedNames(
            first.name(first.number),
            other.name(other.number),
        ));
    }
    frames.sort_by_key(|f| f.number);
    for pair in frames.windows(2) {
        if pair[1].number != pair[0].number + 1 {
            return Err(FrameSequenceError::Gap(
                pair[0].name(pair[0].number),
                pair[0].name(pair[1].number),
            ));
        }
    }
    let start = &frames[0];
    // multifilesrc takes its pattern as UTF-8 text: another name would point elsewhere.
    let pattern = dir.join(format!("{}%0{}d.{}", start.prefix, start.digits, start.ext));
    let Some(pattern) = pattern.to_str() else {
        return Err(FrameSequenceError::NotUtf8);
    };
    Ok(FrameSequence {
        pattern: pattern.to_string(),
        first: start.number,
        count: frames.len() as u64,
        png: start.ext.eq_ignore_ascii_case("png"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn frames(names: &[&str]) -> Vec<Numbered> {
        names
            .iter()
            .filter_map(|n| Numbered::parse(n).unwrap())
            .collect()
    }

    #[test]
    fn numbered_frames_make_a_pattern_from_the_first_number() {
        let seq = sequence_of(
            Path::new("/v"),
            frames(&[
                "img_00003.jpg",
                "img_00002.jpg",
                "notes.txt",
                "img_00004.jpg",
            ]),
        )
        .unwrap();
        assert_eq!(seq.pattern, "/v/img_%05d.jpg");
        assert_eq!((seq.first, seq.count, seq.png), (2, 3, false));
    }

    #[test]
    fn gaps_mixed_names_and_unnumbered_frames_are_refused() {
        let gap = sequence_of(Path::new("/v"), frames(&["img_00006.png", "img_00008.png"]));
        assert_eq!(
            gap.unwrap_err().to_string(),
            "a gap in the frames: img_00006.png is followed by img_00008.png"
        );
        let mixed = sequence_of(Path::new("/v"), frames(&["img_001.jpg", "img_0002.jpg"]));
        assert!(matches!(mixed, Err(FrameSequenceError::MixedNames(..))));
        assert!(matches!(
            Numbered::parse("cover.jpg"),
            Err(FrameSequenceError::Unnumbered(_))
        ));
        assert!(matches!(
            sequence_of(Path::new("/v"), Vec::new()),
            Err(FrameSequenceError::Empty)
        ));
    }
}
