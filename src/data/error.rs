//! The data errors. Every message names the file (and the line, for list files) and what is wrong,
//! so a user can fix the input without reading the code.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read or written.
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: String },
    /// A file the data set needs is not there.
    #[error("{path}: {what} not found")]
    Missing { path: PathBuf, what: String },
    /// A line of a list file is wrong.
    #[error("{path}:{line}: {why}")]
    Line {
        path: PathBuf,
        line: usize,
        why: String,
    },
    /// A split or list file holds no entries.
    #[error("{path}: no entries ({why})")]
    Empty { path: PathBuf, why: String },
    /// A frame folder whose frames cannot be put in order.
    #[error("{path}")]
    Frames {
        path: PathBuf,
        #[source]
        source: super::FrameFolderError,
    },
    /// A video or image could not be decoded.
    #[error("{path}: cannot decode: {why}")]
    Decode { path: PathBuf, why: String },
    /// GStreamer could not decode the file.
    #[cfg(feature = "capture")]
    #[error("{path}: cannot decode")]
    Media {
        path: PathBuf,
        #[source]
        source: crate::media::MediaError,
    },
    /// GStreamer could not encode the file.
    #[cfg(feature = "capture")]
    #[error("{path}: encoding failed")]
    Encode {
        path: PathBuf,
        #[source]
        source: crate::media::MediaError,
    },
    /// Decoding needs GStreamer, which this build left out.
    #[error(
        "{path}: decoding videos and images needs GStreamer: build with the `capture` feature \
         (the default)"
    )]
    NoCapture { path: PathBuf },
    /// Loader or generator options that cannot work.
    #[error("invalid options: {0}")]
    Options(String),
    /// A worker thread died (a bug: workers return errors, they do not panic).
    #[error("data worker failed: {0}")]
    Worker(String),
    /// A file could not be written (see [`crate::fsio`]).
    #[error(transparent)]
    Write(#[from] crate::fsio::WriteError),
    /// A small text input (a list, a truth file) could not be read (see [`crate::fsio`]).
    #[error(transparent)]
    Read(#[from] crate::fsio::ReadError),
    /// A tensor operation failed while building a batch.
    #[error("building a batch: {0}")]
    Tensor(String),
}

impl DataError {
    pub(crate) fn io(path: &Path, err: impl fmt::Display) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            why: err.to_string(),
        }
    }

    pub(crate) fn line(path: &Path, line: usize, why: impl Into<String>) -> Self {
        Self::Line {
            path: path.to_path_buf(),
            line,
            why: why.into(),
        }
    }

    pub(crate) fn decode(path: &Path, why: impl Into<String>) -> Self {
        Self::Decode {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

/// A video (or frame folder) the loader left out because it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\t{}", self.path.display(), self.reason)
    }
}

/// Writes `contents` to `path` atomically (see [`crate::fsio`]).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), DataError> {
    Ok(crate::fsio::write_atomic(path, contents)?)
}

/// Writes the skipped videos as `path<TAB>reason` lines (sorted), atomically.
pub fn write_skipped(path: &Path, skipped: &[Skipped]) -> Result<(), DataError> {
    let mut sorted = skipped.to_vec();
    sorted.sort();
    let text: String = sorted.iter().map(|s| format!("{s}\n")).collect();
    write_atomic(path, text.as_bytes())
}
