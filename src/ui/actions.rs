//! What the user asks for (`Action`, from a key or a widget) and what it does to the state: the
//! settings change at once (the widgets follow) and the session hears of it through a queued
//! command. An action that makes no sense in the present state (pause an ended file) does the
//! thing that does: Space on an ended file replays it.

use std::path::PathBuf;

use crate::capture::Source;
use crate::pipeline::Control;

use super::messages::{Command, Origin};
use super::settings::{SMOOTH_MAX, STRIDE_MAX, TOP_K_MAX};
use super::state::{AppState, BannerKind, is_checkpoint};

/// The smoothing span's step for `[` and `]` (ms), and its bounds.
pub const SMOOTH_MS_STEP: f64 = 100.0;
pub const SMOOTH_MS_MIN: f64 = 40.0;
pub const SMOOTH_MS_MAX: f64 = 5000.0;

/// A user's intent, from a key or a widget.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Pause or resume; on an ended file, play it again.
    TogglePause,
    /// Empty the shift cache and the smoothing history (of the enlarged stream only, when one is
    /// shown alone).
    ResetCache,
    /// A step of the smoothing: 100 ms when it is set in time, else a frame.
    SmoothWindow(i64),
    Threshold(f32),
    TopK(i64),
    Stride(i64),
    /// Settings changed by a slider: send them as they are.
    SettingsEdited,
    OpenSource(Source),
    /// A file opened or dropped: a `.safetensors` checkpoint is a model, anything else a video.
    OpenPath(PathBuf),
    /// Play the last source again from its start.
    Replay,
    Screenshot,
    ToggleFullscreen,
    ToggleHelp,
    /// The source dialog: a file, a camera, the test pattern.
    ToggleSources,
    /// Show or hide the label and top-k cards over the video.
    ToggleCards,
    /// Show or hide the side panel (it folds away in full screen and small windows).
    TogglePanel,
    /// Esc: close what is open, else go back from an enlarged tile to the grid, else dismiss the
    /// banner.
    Escape,
    /// A click on a stream's tile: show it alone, or (shown alone) go back to the grid.
    ToggleTile(usize),
}

fn step(value: i64, delta: i64, min: i64, max: i64) -> i64 {
    (value + delta).clamp(min, max)
}

impl AppState {
    fn control(&mut self, control: Control) {
        self.queue(Command::Control(control));
    }

    /// Applies a user's intent: settings change here at once (the widgets follow), the pipeline
    /// hears of it through a queued command.
    pub fn act(&mut self, action: Action) {
        let s = &mut self.settings;
        match action {
            Action::TogglePause if self.ended => self.act(Action::Replay),
            Action::TogglePause => {
                s.paused = !s.paused;
                let paused = s.paused;
                if !paused {
                    self.break_plot();
                }
                self.control(Control::Pause(paused));
            }
            Action::ResetCache => match self.enlarged {
                Some(stream) if stream < self.tiles.len() => {
                    self.queue(Command::StreamControl(stream, Control::Reset));
                    let text = format!(
                        "stream {stream} ({}): its shift cache rows and smoothing reset",
                        self.tiles[stream].name
                    );
                    self.set_banner(BannerKind::Info, text);
                }
                _ => {
                    self.control(Control::Reset);
                    self.set_banner(BannerKind::Info, "shift cache and smoothing reset");
                }
            },
            Action::SmoothWindow(delta) => {
                match &mut s.smooth_ms {
                    Some(ms) => {
                        *ms = (*ms + delta as f64 * SMOOTH_MS_STEP)
                            .clamp(SMOOTH_MS_MIN, SMOOTH_MS_MAX);
                    }
                    None => {
                        s.smooth_window =
                            step(s.smooth_window as i64, delta, 1, SMOOTH_MAX as i64) as usize;
                    }
                }
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
                self.stride_from = Origin::Window;
                self.control(Control::Stride(stride));
            }
            Action::SettingsEdited => {
                let smoothing = s.smoothing();
                self.control(Control::Smoothing(smoothing));
            }
            Action::OpenSource(source) => {
                self.show_sources = false;
                self.queue(Command::OpenSource(source));
            }
            Action::OpenPath(path) => {
                self.show_sources = false;
                if is_checkpoint(&path) {
                    self.queue(Command::LoadModel(path));
                } else {
                    self.queue(Command::OpenSource(Source::File(path)));
                }
            }
            // A batch plays all its sources again from their start.
            Action::Replay if self.is_grid() => self.queue(Command::ReplayStreams),
            Action::Replay => {
                if let Some(source) = self.current.clone() {
                    self.queue(Command::OpenSource(source));
                }
            }
            Action::Screenshot => self.screenshot_requested = true,
            Action::ToggleFullscreen => self.fullscreen = !self.fullscreen,
            Action::ToggleHelp => self.show_help = !self.show_help,
            Action::ToggleSources => {
                self.show_sources = !self.show_sources;
                if self.show_sources {
                    self.focus_path = true;
                    self.refresh_cameras();
                    self.listing = None;
                }
            }
            Action::ToggleCards => self.show_cards = !self.show_cards,
            Action::TogglePanel => self.show_panel = Some(!self.panel_shown()),
            Action::Escape => {
                if self.show_help || self.show_sources {
                    self.show_help = false;
                    self.show_sources = false;
                } else if self.enlarged.is_some() {
                    self.enlarged = None;
                } else {
                    self.banner = None;
                }
            }
            Action::ToggleTile(stream) => {
                self.enlarged = match self.enlarged {
                    Some(shown) if shown == stream => None,
                    _ if stream < self.tiles.len() => Some(stream),
                    other => other,
                };
            }
        }
    }
}
