//! Errors as text: an error and its causes on one line, for the places that keep an error as a
//! string (a pipeline's summary, the window's banner, the skipped-videos list). `main` prints
//! errors the same way (`{:#}` of `anyhow`).

use std::error::Error;

/// `err` and its causes, `: `-separated, as `{:#}` prints an `anyhow::Error`.
pub fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
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
}
