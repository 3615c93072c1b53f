//! How a run ends: the exit code of an error, the error as one line, and the panic hook.
//!
//! | exit | when |
//! |------|------|
//! | 0    | success, or stdout closed by its reader (`\| head`) |
//! | 1    | an error (one `error: ...` line on stderr) |
//! | 2    | a command line clap refused (a flag out of its range, ...) |
//! | 3    | damaged input: a decode error or a file shorter than its container states, after some frames were processed (`--allow-damaged` makes it a warning and 0) |
//! | 70   | a bug: a panic, printed as one `error: internal error ...` line |
//!
//! libtorch's exceptions carry the C++ backtrace after their first line: each error of the chain
//! is shown by its first line only (`shiftlive::errors::chain`); the full text goes to the debug
//! log (`SHIFTLIVE_LOG=debug`).

use std::process::ExitCode;

use super::out::OutputError;

/// Exit code of damaged input (see the module docs).
pub const DAMAGED: u8 = 3;
/// Exit code of a panic (EX_SOFTWARE of sysexits.h).
pub const BUG: u8 = 70;

/// The input was damaged: the run reported what decoded, then this.
#[derive(Debug, thiserror::Error)]
#[error("{message} (--allow-damaged accepts damaged input)")]
pub struct Damaged {
    /// The summary's error: the source and what is wrong with it.
    pub message: String,
}

/// The error as one line: each cause's first line, `: `-separated (as `{:#}` of anyhow).
pub fn one_line(err: &anyhow::Error) -> String {
    shiftlive::errors::chain(err.as_ref())
}

/// Prints `err` (unless it is a closed stdout) and gives its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if let Some(OutputError::Closed) = err.downcast_ref::<OutputError>() {
        return ExitCode::SUCCESS;
    }
    eprintln!("error: {}", one_line(err));
    if err.downcast_ref::<Damaged>().is_some() {
        ExitCode::from(DAMAGED)
    } else {
        ExitCode::FAILURE
    }
}

/// A panic prints one line (where and what) instead of Rust's "thread panicked" text and an
/// optional backtrace; `main` then exits with [`BUG`].
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let text = shiftlive::errors::panic_text(info);
        // "what at file:line" -> "'name' at file:line: what", as before.
        let (what, place) = match text.rsplit_once(" at ") {
            Some((what, place)) if info.location().is_some() => (what, format!(" at {place}")),
            _ => (text.as_str(), String::new()),
        };
        eprintln!("error: internal error in thread '{name}'{place}: {what}");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("loading the model")]
    struct Load(#[source] std::io::Error);

    #[test]
    fn each_cause_shows_its_first_line_only() {
        let cpp = std::io::Error::other(
            "shape '[2, 3]' is invalid for input of size 5\nException raised from ... (frame 0)\nframe #1",
        );
        let err = anyhow::Error::new(Load(cpp));
        assert_eq!(
            one_line(&err),
            "loading the model: shape '[2, 3]' is invalid for input of size 5"
        );
    }
}
