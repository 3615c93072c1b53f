//! Errors as text: an error and its causes on one line, for the places that keep an error as a
//! string (a pipeline's summary, the window's banner, the skipped-videos list). `main` prints
//! errors the same way (`{:#}` of `anyhow`); a panic's message and place, also on one line.

use std::error::Error;

/// `err` and its causes, `: `-separated, as `{:#}` prints an `anyhow::Error`, each by its first
/// line only: libtorch's errors carry the C++ backtrace after theirs (the whole text is logged at
/// debug level).
pub fn chain(err: &dyn Error) -> String {
    let mut text = first_line(&err.to_string());
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&first_line(&next.to_string()));
        cause = next.source();
    }
    text
}

/// A panic's message and place on one line: "what at file:line" (the first line of what).
pub fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown cause".to_string());
    let place = info
        .location()
        .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
    format!("{}{place}", what.lines().next().unwrap_or(""))
}

fn first_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim_end();
    if first.len() < message.trim_end().len() {
        tracing::debug!("error in full: {message}");
    }
    first.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {0}")]
    struct Outer(&'static str, #[source] std::io::Error);

    #[test]
    fn a_chain_lists_every_cause_once() {
        let err = Outer("clip.avi", std::io::Error::other("disk gone"));
        assert_eq!(chain(&err), "reading clip.avi: disk gone");
    }

    #[test]
    fn a_cause_of_many_lines_shows_its_first() {
        let cpp = std::io::Error::other("shape '[2, 3]' is invalid\nException raised from ...");
        let err = Outer("model.safetensors", cpp);
        assert_eq!(
            chain(&err),
            "reading model.safetensors: shape '[2, 3]' is invalid"
        );
    }
}
