//! The pipeline's errors: a pipeline that cannot start, and how a running source failed (the
//! capture thread's result). A summary carries the failure as text with its whole cause chain
//! (`crate::errors::chain`).

use crate::capture::CaptureError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] CaptureError),
    #[error("cannot start a pipeline thread")]
    Thread(#[from] std::io::Error),
    #[error("{sources} sources given for a recogniser of {streams} streams")]
    Streams { sources: usize, streams: usize },
}

/// Why a running source stopped delivering frames before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file failed, or a live source failed before its first frame.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// A live source was lost again after its last allowed reopening.
    #[error("gave up after {retries} retries")]
    GaveUp {
        retries: u32,
        #[source]
        last: SourceLost,
    },
    /// The capture thread panicked (a bug: it returns its errors).
    #[error("the capture thread panicked")]
    Panicked,
}

impl SourceError {
    /// Damaged input: the source delivered frames, then a decode error or an early end.
    pub fn is_damage(&self) -> bool {
        matches!(self, Self::Capture(e) if e.is_damage())
    }
}

/// Why a live source that was running went away (it is reopened).
#[derive(Debug, thiserror::Error)]
pub enum SourceLost {
    #[error("{0} ended")]
    Ended(String),
    #[error(transparent)]
    Failed(CaptureError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::chain;

    #[test]
    fn giving_up_names_the_last_loss() {
        let err = SourceError::GaveUp {
            retries: 2,
            last: SourceLost::Ended("camera /dev/video0".into()),
        };
        assert_eq!(
            chain(&err),
            "gave up after 2 retries: camera /dev/video0 ended"
        );
    }
}
