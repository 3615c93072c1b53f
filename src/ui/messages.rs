//! What the window and its session tell each other: the UI's commands, the session's messages,
//! the frames it shows (with their results or not), the model as the command line loads it, and
//! where a setting in force came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::capture::{Frame, Source};
use crate::online::Recognizer;
use crate::pipeline::{Control, FrameResult, StreamsSummary, Summary};

/// A model ready to run, as the command line loads it.
pub struct LoadedModel {
    pub recognizer: Recognizer,
    pub labels: Vec<String>,
    /// Where it runs ("cpu", "cuda:0").
    pub device: String,
    /// The stride the checkpoint was trained at (its metadata), if it records one.
    pub stride: Option<u32>,
    /// Trained weights from a checkpoint (false: a preset's random weights).
    pub trained: bool,
}

/// Where a setting in force came from (the panel says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// The model's checkpoint.
    Checkpoint,
    /// The built-in default.
    Default,
    /// Changed in the window.
    Window,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Flag => "command line",
            Origin::Checkpoint => "checkpoint",
            Origin::Default => "default",
            Origin::Window => "set here",
        }
    }
}

/// Loads the model: the command line's choice (None) or a checkpoint opened in the window.
pub type ModelLoader = Box<dyn FnMut(Option<&Path>) -> anyhow::Result<LoadedModel> + Send>;

/// What the window shows about the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    pub device: String,
    pub classes: i64,
    /// Trained weights (false: random weights, whose labels mean nothing).
    pub trained: bool,
    /// The stride the model runs at, and where it came from (--stride, the checkpoint, 1).
    pub stride: u32,
    pub stride_from: Origin,
}

/// What the video shows next: a processed frame with its result, or a frame the stride left out.
#[derive(Debug)]
pub enum Shown {
    Result(Box<FrameResult>),
    Picture(Arc<Frame>),
    /// A result of stream `.0` in a run of several sources.
    StreamResult(usize, Box<FrameResult>),
    /// A picture of stream `.0` in a run of several sources.
    StreamPicture(usize, Arc<Frame>),
}

/// A request from the UI.
#[derive(Debug)]
pub enum Command {
    /// Passed to the running pipeline (and kept for the next one).
    Control(Control),
    /// Passed to one stream of a run of several sources (a reset of its rows).
    StreamControl(usize, Control),
    OpenSource(Source),
    /// Run the batch of several sources again from their start (it ended).
    ReplayStreams,
    LoadModel(PathBuf),
    SaveScreenshot {
        image: Arc<egui::ColorImage>,
        path: PathBuf,
    },
}

/// What the session tells the UI, besides frames.
#[derive(Debug, Clone)]
pub enum Message {
    ModelLoaded(ModelInfo),
    /// A pipeline started on this source.
    Started(Source),
    /// A live source failed and is being reopened.
    Warning(String),
    /// Something failed; the window stays up.
    Error(String),
    /// A pipeline ended (end of file, `--max-frames`, or a source that failed).
    Summary(Box<Summary>),
    /// Nothing plays: a source failed to start after the previous one was stopped.
    Idle,
    Saved(PathBuf),
    /// A run of several sources started (the tiles start afresh).
    StreamsStarted,
    /// A live source of a run of several failed and is being reopened.
    StreamWarning(usize, String),
    /// One stream of a run of several ended (its error, if it failed); the others run on.
    StreamEnded(usize, Box<Summary>),
    /// A run of several sources ended: every stream's summary and the totals.
    StreamsSummary(Box<StreamsSummary>),
}
