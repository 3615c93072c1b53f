//! Errors as text: an error and its causes on one line, for the places that keep an error as a
//! string (a pipeline's summary, the window's banner, the skipped-videos list). `main` prints
//! errors the same way (`{:#}` of `anyhow`).

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
