//! One stream of a run of several sources as the window shows it: a tile with its picture, label,
//! score, results per second and drops, red with its error once its source failed. Plain data, as
//! `AppState` is; the window's figures (latency, plot, counters) sum every stream's results, the
//! tile keeps what is the stream's own.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::capture::Frame;
use crate::online::LabelState;
use crate::pipeline::{FrameResult, PipelineOptions, Scored};

use super::messages::Message;
use super::state::{AppState, BannerKind, label_text};
use super::stats::{ROLLING, push_capped, rate};

/// One stream's tile.
#[derive(Debug, Clone, Default)]
pub struct Tile {
    /// The source's name (as the command line or the sources file gave it).
    pub name: String,
    pub label: Option<String>,
    pub score: f32,
    pub top: Vec<Scored>,
    pub label_state: Option<LabelState>,
    pub frame_index: Option<u64>,
    pub frames_received: u64,
    pub frames_shown: u64,
    /// The stream's frames captured and never processed.
    pub dropped: u64,
    /// The stream's results per second.
    pub fps: f64,
    /// Its source failed (the tile turns red and says why); the others run on.
    pub error: Option<String>,
    /// Its source ended (a file played to its end, `--max-frames`, or a failure).
    pub ended: bool,
    /// The newest picture not drawn yet, with the instant its result was produced (None for a
    /// picture the stride left out).
    pub pending_image: Option<(Arc<Frame>, Option<Instant>)>,
    arrivals: VecDeque<Instant>,
}

impl Tile {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// The label as the tile says it: the class, or why there is none.
    pub fn label_text(&self, threshold: f32) -> String {
        label_text(self.label.as_deref(), self.label_state, threshold)
    }

    /// What the tile's bottom line says: results per second and drops.
    pub fn figures_text(&self) -> String {
        format!("{:.1} fps, {} dropped", self.fps, self.dropped)
    }

    fn apply(&mut self, result: FrameResult, produced: Instant) {
        self.frames_received += 1;
        self.frame_index = Some(result.frame);
        self.label = result.label;
        self.score = result.score;
        self.top = result.top;
        self.label_state = Some(result.label_state);
        self.dropped = result.dropped;
        push_capped(&mut self.arrivals, produced, ROLLING);
        self.fps = rate(&self.arrivals);
        if let Some(image) = result.image {
            self.pending_image = Some((image, Some(produced)));
        }
    }

    /// A new run: everything but the name starts afresh.
    fn restart(&mut self) {
        *self = Self::new(std::mem::take(&mut self.name));
    }
}

impl AppState {
    /// The window of a run of several sources, named `names` in stream order: a grid of tiles.
    pub fn with_streams(options: &PipelineOptions, names: Vec<String>) -> Self {
        let mut state = Self::new(options);
        state.source = format!("{} streams", names.len());
        state.tiles = names.into_iter().map(Tile::new).collect();
        state
    }

    /// True when the window shows several streams as tiles.
    pub fn is_grid(&self) -> bool {
        !self.tiles.is_empty()
    }

    /// A result of stream `stream`: its tile takes the label and the picture, the window's
    /// figures count it. `now` stands for the instant it was produced when it carries no frame.
    pub fn apply_stream_frame(&mut self, stream: usize, result: FrameResult, now: Instant) {
        if stream >= self.tiles.len() {
            return;
        }
        let produced = self.record_result(&result, now);
        let tile = &mut self.tiles[stream];
        tile.apply(result, produced);
        self.dropped = self.tiles.iter().map(|t| t.dropped).sum();
    }

    /// A picture of stream `stream` the stride left out: the tile shows it, the label stays.
    pub fn apply_stream_picture(&mut self, stream: usize, frame: Arc<Frame>) {
        if let Some(tile) = self.tiles.get_mut(stream) {
            self.pictures_received += 1;
            tile.pending_image = Some((frame, None));
        }
    }

    /// The messages of a run of several sources.
    pub(super) fn apply_streams_message(&mut self, message: Message) {
        match message {
            Message::StreamsStarted => {
                self.tiles.iter_mut().for_each(Tile::restart);
                self.idle = false;
                self.ended = false;
                self.summary = None;
                self.break_plot();
            }
            Message::StreamWarning(stream, text) => {
                let name = self.tiles.get(stream).map_or("", |t| t.name.as_str());
                let text = format!("stream {stream} ({name}): {text}");
                self.set_banner(BannerKind::Warning, text);
            }
            Message::StreamEnded(stream, summary) => {
                if let Some(tile) = self.tiles.get_mut(stream) {
                    tile.ended = true;
                    tile.error = summary.error;
                }
            }
            Message::StreamsSummary(summary) => {
                for ended in &summary.streams {
                    if let Some(tile) = self.tiles.get_mut(ended.stream) {
                        tile.ended = true;
                        tile.error.clone_from(&ended.summary.error);
                    }
                }
                // Every stream ended; unless all failed, Space plays them again.
                self.ended = summary.totals.failed < summary.totals.streams;
                self.streams_summary = Some(*summary);
            }
            // The others are `apply_message`'s, which hands these over.
            _ => {}
        }
    }
}
