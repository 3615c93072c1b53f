//! What the window shows, as plain data: the last result, the counters, rolling latency figures,
//! the user's settings and what is waiting to be said (a banner). The drawing reads it; the
//! controls turn key presses and clicks into `Action`s (`actions`), which change it and queue
//! `Command`s for the session. Nothing here needs a window, so tests drive it directly; the
//! resources egui hands out (the video texture, the screenshot channel) belong to `App`.
//!
//! The picture and the label move apart on purpose: every captured frame is shown (the picture
//! moves at the source's rate whatever the stride), while the label, its score and the bars are
//! those of the latest processed frame; `label_age_ms` says how old they are.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::Stats;
use crate::capture::{Frame, Source};
use crate::online::{LabelState, MemoryStatus};
use crate::pipeline::{FrameResult, PipelineOptions, Scored, StreamsSummary, Summary};

use super::messages::{Command, Message, ModelInfo, Origin};
use super::settings::Settings;
use super::stats::{ROLLING, Rolling, WINDOW_SAMPLES, WindowReport, push_capped, rate};
use super::tile::Tile;

/// How long an info banner stays (it fades over its last second).
pub const INFO_BANNER: Duration = Duration::from_secs(4);
/// Below this width (points) the side panel folds away unless asked for.
pub const NARROW: f32 = 800.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BannerKind {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Banner {
    pub kind: BannerKind,
    pub text: String,
    pub since: Instant,
}

/// Everything the window shows.
pub struct AppState {
    pub settings: Settings,
    pub label: Option<String>,
    pub score: f32,
    pub top: Vec<Scored>,
    /// Why the label is what it is (warming up, below threshold, changing, confirmed).
    pub label_state: Option<LabelState>,
    /// Processed frames the smoothing sums.
    pub smooth_frames: usize,
    /// A model answering every N frames (ECO's working memory): where it stands.
    pub memory: Option<MemoryStatus>,
    /// When the frame of the latest result was captured (the label's age runs from it).
    pub label_captured: Option<Instant>,
    /// When the frame on screen was captured.
    pub shown_captured: Option<Instant>,
    pub frame_index: Option<u64>,
    pub frames_received: u64,
    /// Frames drawn to the screen (the newest of each batch the UI drains is drawn).
    pub frames_shown: u64,
    /// Frames the stride left out, received to be shown.
    pub pictures_received: u64,
    pub dropped: u64,
    /// Results the UI never received (its queue was full while it did not draw).
    pub frames_lost: u64,
    pub fps: f64,
    pub latency: Rolling,
    /// (seconds since start, total ms, model ms) of the last results, for the plot.
    pub plot: VecDeque<[f64; 3]>,
    /// (seconds since start, ms) of the window's own latency, for the plot.
    pub window_plot: VecDeque<[f64; 2]>,
    /// Instants (seconds since start) where the plot's lines break: a source started, a resume.
    pub plot_breaks: VecDeque<f64>,
    /// Every window latency sample (capped), for the figure at exit.
    pub window_latency_ms: Vec<f64>,
    /// The part of each sample spent drawing the frame (eframe's frame time).
    pub frame_time_ms: Vec<f64>,
    pub source: String,
    /// The source that plays or played last (Replay opens it again).
    pub current: Option<Source>,
    /// The file played to its end (Space replays it).
    pub ended: bool,
    /// Nothing plays (a source failed to start after the previous one stopped).
    pub idle: bool,
    pub model: Option<ModelInfo>,
    /// Where the stride in force came from.
    pub stride_from: Origin,
    pub banner: Option<Banner>,
    pub summary: Option<Summary>,
    pub show_help: bool,
    pub show_sources: bool,
    /// Focus the path field on the next pass (the source dialog just opened).
    pub focus_path: bool,
    /// The label and top-k cards over the video (V hides them).
    pub show_cards: bool,
    /// The side panel, when the user chose (None: shown unless full screen or narrow).
    pub show_panel: Option<bool>,
    /// The window is narrower than `NARROW` (set by the app each pass).
    pub narrow: bool,
    pub fullscreen: bool,
    /// What the viewport was last told.
    pub fullscreen_applied: bool,
    /// The path typed or browsed in the source dialog.
    pub path_text: String,
    pub browse_dir: PathBuf,
    /// The entries of `browse_dir` (read when the dialog opens or the directory changes).
    pub listing: Option<Vec<(String, PathBuf, bool)>>,
    pub cameras: Vec<PathBuf>,
    pub screenshot_dir: PathBuf,
    /// The newest frame not drawn yet, with the instant its result was produced (None for a
    /// frame the stride left out: it has no result, so no window latency).
    pub pending_image: Option<(Arc<Frame>, Option<Instant>)>,
    /// A frame was uploaded this pass: when its result was produced and how long it waited for
    /// the upload (ms); the paint time completes its latency.
    pub latency_pending: Option<(Instant, f64)>,
    /// Screenshots asked for and not yet handed to the session.
    pub screenshot_requested: bool,
    /// The streams of a run of several sources, one tile each (empty: one source, as ever).
    pub tiles: Vec<Tile>,
    /// The summary of a run of several sources, once it ended.
    pub streams_summary: Option<StreamsSummary>,
    /// The tile shown alone (a click on it, or on it again / Esc goes back to the grid).
    pub enlarged: Option<usize>,
    commands: Vec<Command>,
    arrivals: VecDeque<Instant>,
    started: Instant,
}

impl AppState {
    pub fn new(options: &PipelineOptions) -> Self {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self {
            settings: Settings::from_options(options),
            label: None,
            score: 0.0,
            top: Vec::new(),
            label_state: None,
            smooth_frames: options.smoothing.window,
            memory: None,
            label_captured: None,
            shown_captured: None,
            frame_index: None,
            frames_received: 0,
            frames_shown: 0,
            pictures_received: 0,
            dropped: 0,
            frames_lost: 0,
            fps: 0.0,
            latency: Rolling::default(),
            plot: VecDeque::with_capacity(ROLLING),
            window_plot: VecDeque::with_capacity(ROLLING),
            plot_breaks: VecDeque::new(),
            window_latency_ms: Vec::new(),
            frame_time_ms: Vec::new(),
            source: options.source.describe(),
            current: Some(options.source.clone()),
            ended: false,
            idle: false,
            model: None,
            stride_from: Origin::Default,
            banner: None,
            summary: None,
            show_help: false,
            show_sources: false,
            focus_path: false,
            show_cards: true,
            show_panel: None,
            narrow: false,
            fullscreen: false,
            fullscreen_applied: false,
            path_text: String::new(),
            browse_dir: cwd.clone(),
            listing: None,
            cameras: Vec::new(),
            screenshot_dir: cwd,
            pending_image: None,
            latency_pending: None,
            screenshot_requested: false,
            tiles: Vec::new(),
            streams_summary: None,
            enlarged: None,
            commands: Vec::new(),
            arrivals: VecDeque::with_capacity(ROLLING),
            started: Instant::now(),
        }
    }

    /// Queues a command for the session.
    pub fn queue(&mut self, command: Command) {
        self.commands.push(command);
    }

    /// The commands queued since the last call, for the session.
    pub fn take_commands(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    pub fn set_banner(&mut self, kind: BannerKind, text: impl Into<String>) {
        self.banner = Some(Banner {
            kind,
            text: text.into(),
            since: Instant::now(),
        });
    }

    /// An info banner's opacity at `now` (1 to 0 over its last second); None once it is gone,
    /// which also clears it. Errors and warnings stay until dismissed.
    pub fn banner_opacity(&mut self, now: Instant) -> Option<f32> {
        let banner = self.banner.as_ref()?;
        if banner.kind != BannerKind::Info {
            return Some(1.0);
        }
        let age = now.saturating_duration_since(banner.since);
        if age >= INFO_BANNER {
            self.banner = None;
            return None;
        }
        let left = (INFO_BANNER - age).as_secs_f32();
        Some(left.min(1.0))
    }

    /// Whether the side panel shows: as the user chose, else not in full screen or a narrow
    /// window.
    pub fn panel_shown(&self) -> bool {
        self.show_panel.unwrap_or(!self.fullscreen && !self.narrow)
    }

    /// How far the label trails the picture: ms from the capture of its frame to the capture of
    /// the frame on screen (0 when they are the same frame).
    pub fn label_age_ms(&self) -> Option<f64> {
        let (label, shown) = (self.label_captured?, self.shown_captured?);
        Some(shown.saturating_duration_since(label).as_secs_f64() * 1e3)
    }

    /// The label as the overlay says it: the class, or why there is none.
    pub fn label_text(&self) -> String {
        label_text(
            self.label.as_deref(),
            self.label_state,
            self.settings.threshold,
        )
    }

    /// For a model answering every N frames (ECO): when its answer comes, under the label.
    pub fn memory_text(&self) -> Option<String> {
        self.memory.map(memory_text)
    }

    fn seconds(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64()
    }

    /// Breaks the plot's lines here (a new source, a resume).
    pub(super) fn break_plot(&mut self) {
        let t = self.seconds(Instant::now());
        push_capped(&mut self.plot_breaks, t, ROLLING);
    }

    /// A frame the stride left out: it becomes the frame to draw; the label stays.
    pub fn apply_picture(&mut self, frame: Arc<Frame>) {
        self.pictures_received += 1;
        self.pending_image = Some((frame, None));
    }

    /// One result from the pipeline. Its image, if any, becomes the frame to draw. `now` stands
    /// for the instant it was produced when it carries no frame.
    pub fn apply_frame(&mut self, result: FrameResult, now: Instant) {
        let produced = self.record_result(&result, now);
        self.frame_index = Some(result.frame);
        self.label = result.label;
        self.score = result.score;
        self.top = result.top;
        self.label_state = Some(result.label_state);
        self.smooth_frames = result.smooth_frames;
        self.memory = result.memory;
        self.label_captured = result.image.as_ref().map(|image| image.captured);
        self.dropped = result.dropped;
        if let Some(image) = result.image {
            self.pending_image = Some((image, Some(produced)));
        }
    }

    /// Counts a result (of the one stream or of any of several) in the figures: received,
    /// latency, plot and results per second. Returns the instant it was produced.
    pub(super) fn record_result(&mut self, result: &FrameResult, now: Instant) -> Instant {
        self.frames_received += 1;
        let l = result.latency_ms;
        self.latency.push(&l);
        // The worker stamps no send time; the frame's capture instant plus its total latency is
        // the instant the result was produced (results drained together keep their own times).
        let produced = result.image.as_ref().map_or(now, |image| {
            image.captured + std::time::Duration::from_secs_f64(l.total.max(0.0) / 1e3)
        });
        let t = self.seconds(produced);
        push_capped(&mut self.plot, [t, l.total, l.model], ROLLING);
        push_capped(&mut self.arrivals, produced, ROLLING);
        self.fps = rate(&self.arrivals);
        produced
    }

    /// One message from the session.
    pub fn apply_message(&mut self, message: Message) {
        match message {
            Message::ModelLoaded(info) => {
                if self
                    .banner
                    .as_ref()
                    .is_some_and(|b| b.text.contains("model"))
                {
                    self.banner = None;
                }
                self.settings.stride = info.stride;
                self.stride_from = info.stride_from;
                self.model = Some(info);
            }
            Message::Started(source) => {
                if self
                    .banner
                    .as_ref()
                    .is_some_and(|b| b.kind != BannerKind::Info)
                {
                    self.banner = None;
                }
                self.source = source.describe();
                self.current = Some(source);
                self.ended = false;
                self.idle = false;
                self.summary = None;
                self.frame_index = None;
                self.label = None;
                self.label_state = None;
                self.label_captured = None;
                self.memory = None;
                self.top.clear();
                self.break_plot();
            }
            Message::Idle => {
                self.idle = true;
                self.ended = false;
                self.source = "nothing playing".into();
                self.label = None;
                self.label_state = None;
                self.top.clear();
            }
            Message::Warning(text) => self.set_banner(BannerKind::Warning, text),
            Message::Error(text) => self.set_banner(BannerKind::Error, text),
            Message::Summary(summary) => {
                // A file that played to its end (a failure says so in its own banner).
                self.ended = summary.error.is_none()
                    && matches!(self.current, Some(Source::File(_) | Source::Frames { .. }));
                self.summary = Some(*summary);
            }
            Message::Saved(path) => {
                self.set_banner(BannerKind::Info, format!("saved {}", path.display()));
            }
            Message::StreamsStarted
            | Message::StreamWarning(..)
            | Message::StreamEnded(..)
            | Message::StreamsSummary(_) => self.apply_streams_message(message),
        }
    }

    /// Adds a window latency sample: the wait until the frame's upload plus the time of the frame
    /// that drew it (ms).
    pub fn record_window_latency(&mut self, wait_ms: f64, frame_ms: f64) {
        let ms = wait_ms + frame_ms;
        push_capped(&mut self.latency.window, ms, ROLLING);
        let t = self.seconds(Instant::now());
        push_capped(&mut self.window_plot, [t, ms], ROLLING);
        if self.window_latency_ms.len() < WINDOW_SAMPLES {
            self.window_latency_ms.push(ms);
            self.frame_time_ms.push(frame_ms);
        }
    }

    /// Lists the cameras again; a failure to read /dev says so in a banner.
    pub fn refresh_cameras(&mut self) {
        match crate::capture::camera_devices() {
            Ok(cameras) => self.cameras = cameras,
            Err(e) => {
                self.cameras.clear();
                self.set_banner(BannerKind::Warning, format!("cannot list the cameras: {e}"));
            }
        }
    }

    /// The figures printed when the window closes.
    pub fn report(&self) -> WindowReport {
        WindowReport {
            frames_received: self.frames_received,
            pictures_received: self.pictures_received,
            frames_shown: self.frames_shown,
            frames_lost: self.frames_lost,
            last_label: self.label.clone(),
            latency_ms: Stats::of(&self.window_latency_ms),
            frame_time_ms: Stats::of(&self.frame_time_ms),
        }
    }
}

/// A label as the window says it: the class, or why there is none (warming up, below
/// `threshold`, changing).
pub fn label_text(label: Option<&str>, state: Option<LabelState>, threshold: f32) -> String {
    match (label, state) {
        (Some(label), _) => label.to_string(),
        (None, Some(LabelState::WarmingUp { frames, of })) => {
            format!("warming up ({frames} of {of} frames)")
        }
        (None, Some(LabelState::BelowThreshold)) => {
            format!("(no label: best score below {:.0}%)", threshold * 100.0)
        }
        (None, Some(LabelState::Unconfirmed)) => "(changing)".into(),
        (None, _) => "(no label)".into(),
    }
}

/// What the window says of a model answering every N frames (ECO's working memory).
pub fn memory_text(memory: MemoryStatus) -> String {
    let next = memory.every - memory.position;
    if memory.fresh {
        format!("ECO memory: new answer (every {} frames)", memory.every)
    } else if memory.updates == 0 {
        format!("ECO memory: first answer in {next} frames")
    } else {
        format!(
            "ECO memory: answer every {} frames, next in {next}",
            memory.every
        )
    }
}

/// A `.safetensors` file is a model checkpoint; anything else is taken for a video.
pub fn is_checkpoint(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}
