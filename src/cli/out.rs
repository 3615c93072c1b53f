//! The one writer of results to stdout. `println!` panics when stdout fails ("failed printing to
//! stdout") and a line buffer loses the last error at exit; here every line is written and
//! flushed at once, and the failure is typed:
//!
//! - a closed pipe (`shiftlive presets | head -1`) is [`OutputError::Closed`]: `main` ends the run
//!   quietly with exit 0, as Unix filters do (Rust ignores SIGPIPE, so the write sees EPIPE);
//! - any other write error (a full disk, `> /dev/full`) is [`OutputError::Write`], an error that
//!   names stdout, with a non-zero exit.

use std::io::{self, Write};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reader of stdout went away: not a failure of the run.
    #[error("stdout closed")]
    Closed,
    #[error("cannot write to stdout")]
    Write(#[source] io::Error),
}

impl From<io::Error> for OutputError {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::BrokenPipe {
            Self::Closed
        } else {
            Self::Write(err)
        }
    }
}

/// Writes one line (and flushes it) to stdout.
pub fn line(args: std::fmt::Arguments<'_>) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// `println!` for results: writes the line through [`line`] and returns its error with `?` from
/// the enclosing function (which returns an `anyhow::Result`), so replacing a `println!` is a
/// one-word change.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::line(format_args!($($arg)*))?
    };
}
pub(crate) use outln;
