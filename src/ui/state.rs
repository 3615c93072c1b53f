//! What the window shows, as plain data: the last result, the counters, rolling latency figures,
//! the user's settings and what is waiting to be said (a banner). The drawing reads it; the
//! controls turn key presses and clicks into `Action`s, which change it and queue `Command`s for
//! the session. Nothing here needs a window, so tests drive it directly; the resources egui hands
//! out (the video texture, the screenshot channel) belong to `App`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::bench::Stats;
use crate::capture::{Frame, Source};
use crate::online::SmoothingOptions;
use crate::pipeline::{Control, FrameResult, PipelineOptions, Scored, Summary};

use super::session::{Command, Message, ModelInfo};
use super::stats::{ROLLING, Rolling, WINDOW_SAMPLES, WindowReport, push_capped};

pub const TOP_K_MAX: usize = 10;
pub const SMOOTH_MAX: usize = 64;
pub const STRIDE_MAX: u32 = 16;

/// The settings the user changes while the pipeline runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub paused: bool,
    pub smooth_window: usize,
    pub hysteresis: bool,
    pub threshold: f32,
    pub top_k: usize,
    pub stride: u32,
}

impl Settings {
    pub fn from_options(options: &PipelineOptions) -> Self {
        Self {
            paused: false,
            smooth_window: options.smoothing.window,
            hysteresis: options.smoothing.hysteresis,
            threshold: options.smoothing.threshold,
            top_k: options.smoothing.top_k,
            stride: options.stride,
        }
    }

    pub fn smoothing(&self) -> SmoothingOptions {
        SmoothingOptions {
            window: self.smooth_window,
            hysteresis: self.hysteresis,
            threshold: self.threshold,
            top_k: self.top_k,
        }
    }
}

/// A user's intent, from a key or a widget.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    TogglePause,
    /// Empty the shift cache and the smoothing history.
    ResetCache,
    SmoothWindow(i64),
    Threshold(f32),
    TopK(i64),
    Stride(i64),
    /// Settings changed by a slider: send them as they are.
    SettingsEdited,
    OpenSource(Source),
    /// A file opened or dropped: a `.safetensors` checkpoint is a model, anything else a video.
    OpenPath(PathBuf),
    Screenshot,
    ToggleFullscreen,
    ToggleHelp,
    /// The source dialog: a file, a camera, the test pattern.
    ToggleSources,
    /// Esc: close what is open, else dismiss the banner.
    Escape,
}

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
}

/// Everything the window shows.
pub struct AppState {
    pub settings: Settings,
    pub label: Option<String>,
    pub score: f32,
    pub top: Vec<Scored>,
    pub frame_index: Option<u64>,
    pub frames_received: u64,
    /// Frames drawn to the screen (the newest of each batch the UI drains is drawn).
    pub frames_shown: u64,
    pub dropped: u64,
    /// Results the UI never received (its queue was full while it did not draw).
    pub frames_lost: u64,
    pub fps: f64,
    pub latency: Rolling,
    /// (seconds since start, total ms, model ms) of the last results, for the plot.
    pub plot: VecDeque<[f64; 3]>,
    /// Every window latency sample (capped), for the figure at exit.
    pub window_latency_ms: Vec<f64>,
    /// The part of each sample spent drawing the frame (eframe's frame time).
    pub frame_time_ms: Vec<f64>,
    pub source: String,
    pub model: Option<ModelInfo>,
    pub banner: Option<Banner>,
    pub summary: Option<Summary>,
    pub show_help: bool,
    pub show_sources: bool,
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
    /// The newest frame not drawn yet, with the instant its result was produced.
    pub pending_image: Option<(Arc<Frame>, Instant)>,
    /// A frame was uploaded this pass: when its result was produced and how long it waited for
    /// the upload (ms); the paint time completes its latency.
    pub latency_pending: Option<(Instant, f64)>,
    /// Screenshots asked for and not yet handed to the session.
    pub screenshot_requested: bool,
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
            frame_index: None,
            frames_received: 0,
            frames_shown: 0,
            dropped: 0,
            frames_lost: 0,
            fps: 0.0,
            latency: Rolling::default(),
            plot: VecDeque::with_capacity(ROLLING),
            window_latency_ms: Vec::new(),
            frame_time_ms: Vec::new(),
            source: options.source.describe(),
            model: None,
            banner: None,
            summary: None,
            show_help: false,
            show_sources: false,
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
        });
    }

    /// One result from the pipeline. Its image, if any, becomes the frame to draw. `now` stands
    /// for the instant it was produced when it carries no frame.
    pub fn apply_frame(&mut self, result: FrameResult, now: Instant) {
        self.frames_received += 1;
        self.frame_index = Some(result.frame);
        self.label = result.label;
        self.score = result.score;
        self.top = result.top;
        self.dropped = result.dropped;
        let l = result.latency_ms;
        self.latency.push(&l);
        // The worker stamps no send time; the frame's capture instant plus its total latency is
        // the instant the result was produced (results drained together keep their own times).
        let produced = result.image.as_ref().map_or(now, |image| {
            image.captured + std::time::Duration::from_secs_f64(l.total.max(0.0) / 1e3)
        });
        let t = produced
            .saturating_duration_since(self.started)
            .as_secs_f64();
        push_capped(&mut self.plot, [t, l.total, l.model], ROLLING);
        push_capped(&mut self.arrivals, produced, ROLLING);
        self.fps = match (self.arrivals.front(), self.arrivals.back()) {
            (Some(first), Some(last)) if self.arrivals.len() > 1 && last > first => {
                (self.arrivals.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
            }
            _ => 0.0,
        };
        if let Some(image) = result.image {
            self.pending_image = Some((image, produced));
        }
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
                self.source = source;
                self.summary = None;
                self.frame_index = None;
                self.label = None;
                self.top.clear();
            }
            Message::Warning(text) => self.set_banner(BannerKind::Warning, text),
            Message::Error(text) => self.set_banner(BannerKind::Error, text),
            Message::Summary(summary) => self.summary = Some(*summary),
            Message::Saved(path) => {
                self.set_banner(BannerKind::Info, format!("saved {}", path.display()));
            }
        }
    }

    /// Adds a window latency sample: the wait until the frame's upload plus the time of the frame
    /// that drew it (ms).
    pub fn record_window_latency(&mut self, wait_ms: f64, frame_ms: f64) {
        let ms = wait_ms + frame_ms;
        push_capped(&mut self.latency.window, ms, ROLLING);
        if self.window_latency_ms.len() < WINDOW_SAMPLES {
            self.window_latency_ms.push(ms);
            self.frame_time_ms.push(frame_ms);
        }
    }

    fn control(&mut self, control: Control) {
        self.commands.push(Command::Control(control));
    }

    /// Applies a user's intent: settings change here at once (the widgets follow), the pipeline
    /// hears of it through a queued command.
    pub fn act(&mut self, action: Action) {
        let s = &mut self.settings;
        match action {
            Action::TogglePause => {
                s.paused = !s.paused;
                let paused = s.paused;
                self.control(Control::Pause(paused));
            }
            Action::ResetCache => {
                self.control(Control::Reset);
                self.set_banner(BannerKind::Info, "shift cache and smoothing reset");
            }
            Action::SmoothWindow(delta) => {
                s.smooth_window =
                    step(s.smooth_window as i64, delta, 1, SMOOTH_MAX as i64) as usize;
                self.act(Action::SettingsEdited);
            }
            Action::Threshold(delta) => {
                s.threshold = ((s.threshold + delta) * 100.0).round().clamp(0.0, 100.0) / 100.0;
                self.act(Action::SettingsEdited);
            }
            Action::TopK(delta) => {
                s.top_k = step(s.top_k as i64, delta, 1, TOP_K_MAX as i64) as usize;
                self.act(Action::SettingsEdited);
            }
            Action::Stride(delta) => {
                s.stride = step(s.stride as i64, delta, 1, STRIDE_MAX as i64) as u32;
                let stride = s.stride;
                self.control(Control::Stride(stride));
            }
            Action::SettingsEdited => {
                let smoothing = s.smoothing();
                self.control(Control::Smoothing(smoothing));
            }
            Action::OpenSource(source) => {
                self.show_sources = false;
                self.commands.push(Command::OpenSource(source));
            }
            Action::OpenPath(path) => {
                self.show_sources = false;
                if is_checkpoint(&path) {
                    self.commands.push(Command::LoadModel(path));
                } else {
                    self.commands
                        .push(Command::OpenSource(Source::File(path.clone())));
                }
            }
            Action::Screenshot => self.screenshot_requested = true,
            Action::ToggleFullscreen => self.fullscreen = !self.fullscreen,
            Action::ToggleHelp => self.show_help = !self.show_help,
            Action::ToggleSources => {
                self.show_sources = !self.show_sources;
                if self.show_sources {
                    self.refresh_cameras();
                    self.listing = None;
                }
            }
            Action::Escape => {
                if self.show_help || self.show_sources {
                    self.show_help = false;
                    self.show_sources = false;
                } else {
                    self.banner = None;
                }
            }
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
            frames_shown: self.frames_shown,
            frames_lost: self.frames_lost,
            last_label: self.label.clone(),
            latency_ms: Stats::of(&self.window_latency_ms),
            frame_time_ms: Stats::of(&self.frame_time_ms),
        }
    }
}

fn step(value: i64, delta: i64, min: i64, max: i64) -> i64 {
    (value + delta).clamp(min, max)
}

/// A `.safetensors` file is a model checkpoint; anything else is taken for a video.
pub fn is_checkpoint(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}
