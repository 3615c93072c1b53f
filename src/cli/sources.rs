//! The sources of a `live` or `play` run: the flags and arguments in the order of their kinds
//! (cameras, URIs, test patterns, files and frame directories), then the lines of `--sources FILE`.
//!
//! A line of a sources file is `[NAME =] SOURCE`, `#` starts a comment line. SOURCE is
//! `pattern:NAME` (a test pattern at --fps, --width, --height), `camera:DEVICE` or `/dev/videoN`,
//! a URI (`scheme://...`), or a path: a directory of numbered frames or a video file (relative to
//! the sources file's directory). NAME is a plain name (letters, digits, spaces, `_-.`); without
//! one the source is named as the run describes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use shiftlive::capture::Source;
use shiftlive::fsio::read_text_file;
use shiftlive::pipeline::StreamSource;

/// The largest sources file read.
const MAX_SOURCES_BYTES: u64 = 1 << 20;

/// What a test pattern or a frame directory named without settings plays at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceDefaults {
    pub fps: u32,
    pub width: u32,
    pub height: u32,
    pub pattern_frames: Option<u32>,
}

impl SourceDefaults {
    pub fn pattern(&self, pattern: &str) -> Source {
        Source::TestPattern {
            pattern: pattern.to_string(),
            width: self.width,
            height: self.height,
            fps: self.fps,
            frames: self.pattern_frames,
        }
    }

    /// A path: a frame directory when it is one, else a video file.
    pub fn path(&self, path: PathBuf) -> Source {
        if path.is_dir() {
            Source::Frames {
                dir: path,
                fps: self.fps,
            }
        } else {
            Source::File(path)
        }
    }

    /// One SOURCE as a sources file writes it; a relative path is taken from `base`.
    pub fn parse(&self, text: &str, base: &Path) -> Source {
        if let Some(pattern) = text.strip_prefix("pattern:") {
            self.pattern(pattern)
        } else if let Some(device) = text.strip_prefix("camera:") {
            Source::Camera(device.to_string())
        } else if text.starts_with("/dev/video") {
            Source::Camera(text.to_string())
        } else if text.contains("://") {
            Source::Uri(text.to_string())
        } else {
            self.path(base.join(text))
        }
    }
}

/// A plain name before ` = ` (so `rtsp://h/p?a=b` and `/x/a=b.mp4` stay whole sources).
fn split_name(line: &str) -> (Option<&str>, &str) {
    if let Some((name, source)) = line.split_once('=') {
        let name = name.trim();
        let plain = name
            .chars()
            .all(|c| c.is_alphanumeric() || " _-.".contains(c));
        if !name.is_empty() && plain {
            return (Some(name), source.trim());
        }
    }
    (None, line)
}

/// The sources of a sources file, in its order.
pub fn read_sources(path: &Path, defaults: &SourceDefaults) -> anyhow::Result<Vec<StreamSource>> {
    let text = read_text_file(path, MAX_SOURCES_BYTES)
        .with_context(|| format!("reading --sources {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut sources = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, source) = split_name(line);
        if source.is_empty() {
            bail!(
                "--sources {}:{}: no source after the name",
                path.display(),
                number + 1
            );
        }
        let source = defaults.parse(source, base);
        sources.push(match name {
            Some(name) => StreamSource {
                name: name.to_string(),
                source,
            },
            None => StreamSource::unnamed(source),
        });
    }
    if sources.is_empty() {
        bail!("--sources {}: no sources in it", path.display());
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: SourceDefaults = SourceDefaults {
        fps: 25,
        width: 320,
        height: 240,
        pattern_frames: None,
    };

    #[test]
    fn names_are_plain_and_uris_keep_their_equals_signs() {
        assert_eq!(
            split_name("door = /dev/video0"),
            (Some("door"), "/dev/video0")
        );
        assert_eq!(split_name("rtsp://h/p?a=b"), (None, "rtsp://h/p?a=b"));
        assert_eq!(split_name("/x/a=b.mp4"), (None, "/x/a=b.mp4"));
        assert_eq!(split_name("= x"), (None, "= x"));
    }

    #[test]
    fn each_kind_of_source_is_recognised() {
        let base = Path::new("/base");
        assert_eq!(
            DEFAULTS.parse("pattern:snow", base),
            DEFAULTS.pattern("snow")
        );
        assert_eq!(
            DEFAULTS.parse("camera:auto", base),
            Source::Camera("auto".into())
        );
        assert_eq!(
            DEFAULTS.parse("/dev/video2", base),
            Source::Camera("/dev/video2".into())
        );
        assert_eq!(
            DEFAULTS.parse("http://h/a.mp4", base),
            Source::Uri("http://h/a.mp4".into())
        );
        assert_eq!(
            DEFAULTS.parse("clips/a.mp4", base),
            Source::File("/base/clips/a.mp4".into())
        );
    }

    #[test]
    fn a_sources_file_gives_its_sources_in_order_and_refuses_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("sources.txt");
        std::fs::write(&list, "# cameras\nhall = pattern:ball\n\nb.mp4\n").unwrap();
        let sources = read_sources(&list, &DEFAULTS).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].name, "hall");
        assert_eq!(sources[1].source, Source::File(dir.path().join("b.mp4")));
        std::fs::write(&list, "# nothing\n").unwrap();
        let err = read_sources(&list, &DEFAULTS).unwrap_err();
        assert!(format!("{err:#}").contains("no sources"), "{err:#}");
    }
}
