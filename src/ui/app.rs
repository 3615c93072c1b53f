//! The eframe app: each pass drains the session's queues with `try_recv`, draws the state and
//! hands the queued commands back, so the UI thread never runs the model and never waits. The
//! session's thread wakes it with `request_repaint`. Closing the window drops the session, which
//! stops the pipeline and joins every thread.
//!
//! The window's own latency: from a result leaving the inference thread to the end of the frame
//! that shows it. By default = (the upload of its frame in `ui`) - (its production) + eframe's
//! measured time of that whole frame (input, ui, tessellation, paint; the buffer swap excluded);
//! the frame time includes the part of `ui` before the upload, so it errs high by a fraction of a
//! millisecond. With `measure_latency` the next pass is requested right after the upload and its
//! start ends the measurement: the swap (where a software renderer rasterises and presents) is
//! included.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::pipeline::{FrameResult, PipelineOptions, StreamSource, StreamsSummary, Summary};

use super::controls;
use super::draw;
use super::grid;
use super::messages::{Command, ModelLoader, Shown};
use super::panel;
use super::screenshot::next_screenshot_path;
use super::session::{Session, SessionConfig};
use super::state::{AppState, NARROW};
use super::stats::WindowReport;

/// The renderer eframe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Renderer {
    /// OpenGL (2.0+, or GLES): works on more machines, including software Mesa (llvmpipe).
    #[default]
    Glow,
    /// wgpu: Vulkan, Metal, DX12 or GL, whichever the machine has.
    Wgpu,
}

/// How the window starts.
pub struct WindowOptions {
    pub pipeline: PipelineOptions,
    /// Several sources run as a batch, shown as a grid of tiles (empty or one: the one
    /// `pipeline.source`; the loader must then give a recogniser of as many streams).
    pub streams: Vec<StreamSource>,
    /// Reopenings of a live source opened from the window (None: forever).
    pub live_retries: Option<u32>,
    pub loader: ModelLoader,
    /// `--stride`: wins over the stride of a checkpoint opened in the window.
    pub stride_flag: Option<u32>,
    pub renderer: Renderer,
    /// Called once with the egui context (the command line closes the window on Ctrl-C with it).
    pub on_context: Box<dyn FnOnce(egui::Context) + Send>,
    /// Called with each result the window receives (the command line's `--echo-results`).
    pub on_result: Option<ResultHook>,
    /// Measure the window's latency to the end of the buffer swap: each shown frame is followed
    /// at once by one more pass, whose start marks the end of the previous one. Costs one extra
    /// pass per video frame; without it the figure stops at the end of the paint (eframe's frame
    /// time), the swap excluded.
    pub measure_latency: bool,
}

/// What a closed window leaves behind.
#[derive(Debug, Clone)]
pub struct WindowOutcome {
    pub report: WindowReport,
    /// The last pipeline summary seen (a file played to its end, or a failed source).
    pub summary: Option<Summary>,
    /// The last summary of a run of several sources.
    pub streams: Option<StreamsSummary>,
}

// eframe's error is not `Send` (one variant boxes a `dyn Error`), so it cannot travel as a
// source through `anyhow`: its text is kept instead.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("cannot open the window ({renderer:?} renderer): {why}")]
    Open { renderer: Renderer, why: String },
    /// The window system or the renderer failed while the window was up, before it could close.
    #[error("the window failed: {why}")]
    Failed { why: String },
}

/// A function given each result the window takes.
pub type ResultHook = Box<dyn FnMut(&FrameResult) + Send>;

/// True when there is a display to open a window on (X11 or Wayland).
pub fn display_available() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Opens the window and runs until it is closed.
pub fn run_window(options: WindowOptions) -> Result<WindowOutcome, WindowError> {
    let renderer = options.renderer;
    let native = eframe::NativeOptions {
        renderer: match renderer {
            Renderer::Glow => eframe::Renderer::Glow,
            Renderer::Wgpu => eframe::Renderer::Wgpu,
        },
        viewport: egui::ViewportBuilder::default()
            .with_title("shiftlive")
            .with_inner_size([1120.0, 680.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let outcome: Arc<Mutex<Option<WindowOutcome>>> = Arc::default();
    let slot = outcome.clone();
    let WindowOptions {
        pipeline,
        streams,
        live_retries,
        loader,
        stride_flag,
        on_context,
        on_result,
        measure_latency,
        ..
    } = options;
    let run = move || {
        eframe::run_native(
            "shiftlive",
            native,
            Box::new(move |cc| {
                let ctx = cc.egui_ctx.clone();
                on_context(ctx.clone());
                let state = match streams.len() {
                    0 | 1 => AppState::new(&pipeline),
                    _ => AppState::with_streams(
                        &pipeline,
                        streams.iter().map(|s| s.name.clone()).collect(),
                    ),
                };
                let config = SessionConfig {
                    options: pipeline,
                    live_retries,
                    loader,
                    stride_flag,
                    repaint: Box::new(move || ctx.request_repaint()),
                };
                let session = Session::start_streams(config, streams)?;
                let mut app = App::with_session(state, session, slot, measure_latency);
                app.echo = on_result;
                Ok(Box::new(app))
            }),
        )
    };
    match super::guard::run_guarded(run) {
        Ok(result) => result.map_err(|e| WindowError::Open {
            renderer,
            why: e.to_string(),
        })?,
        Err(why) => {
            // The App was dropped while the panic unwound: it closed the session and left the
            // run's figures. A window the window system destroyed (`xdotool windowclose`, a
            // killed X client) makes winit panic; that is a close.
            let taken = outcome.lock().ok().and_then(|mut o| o.take());
            return match taken {
                Some(outcome) => {
                    tracing::warn!("the window was closed by the window system ({why})");
                    Ok(outcome)
                }
                None => Err(WindowError::Failed { why }),
            };
        }
    }
    let taken = outcome.lock().ok().and_then(|mut o| o.take());
    taken.ok_or_else(|| WindowError::Open {
        renderer,
        why: "the window closed before it started".into(),
    })
}

/// The whole window in one `Ui` (see [`App::window_ui`]); tests call it on an `App` without a
/// session.
pub fn window_ui(ui: &mut egui::Ui, app: &mut App) {
    app.window_ui(ui);
}

/// Screenshots arrive from the renderer through this channel.
type Shots = (
    Sender<Arc<egui::ColorImage>>,
    Receiver<Arc<egui::ColorImage>>,
);

/// The window: the plain state, the resources egui hands out (the video texture, the screenshot
/// channel) and the session that owns the pipeline.
pub struct App {
    state: AppState,
    /// The video texture: created with the first frame, then updated in place.
    texture: Option<egui::TextureHandle>,
    /// The tiles' textures, one per stream of a run of several sources.
    tiles: Vec<Option<egui::TextureHandle>>,
    /// Screenshots come back from the renderer through this channel.
    shots: Shots,
    session: Option<Session>,
    outcome: Arc<Mutex<Option<WindowOutcome>>>,
    /// The frame whose upload is waiting for its paint time.
    pending_frame_nr: u64,
    /// Measure the latency to the end of the buffer swap (one extra pass per video frame).
    measure: bool,
    /// Given each result as it is taken.
    echo: Option<ResultHook>,
    /// The window's size at the last pass.
    last_size: egui::Vec2,
}

impl App {
    /// A window without a session: it draws `state` and queues commands nobody takes (tests
    /// drive it with egui_kittest).
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            texture: None,
            tiles: Vec::new(),
            shots: bounded(4),
            session: None,
            outcome: Arc::default(),
            pending_frame_nr: 0,
            measure: false,
            echo: None,
            last_size: egui::Vec2::ZERO,
        }
    }

    fn with_session(
        state: AppState,
        session: Session,
        outcome: Arc<Mutex<Option<WindowOutcome>>>,
        measure: bool,
    ) -> Self {
        let mut app = Self::new(state);
        app.session = Some(session);
        app.outcome = outcome;
        app.measure = measure;
        app
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut AppState {
        &mut self.state
    }

    /// The video texture, once the first frame was drawn.
    pub fn texture(&self) -> Option<&egui::TextureHandle> {
        self.texture.as_ref()
    }

    /// The texture of stream `stream`'s tile, once its first picture was drawn.
    pub fn tile_texture(&self, stream: usize) -> Option<&egui::TextureHandle> {
        self.tiles.get(stream).and_then(Option::as_ref)
    }

    /// The whole window in one `Ui`: the shortcuts first (so a key is never also taken by a
    /// focused widget), the newest frame to the texture, then toolbar, panel, video and dialogs.
    pub fn window_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        let size = ui.max_rect().size();
        if size != self.last_size {
            // The panels size themselves from the previous pass: after a resize draw once more,
            // or an idle window (an ended file) keeps a toolbar clipped to its old height.
            self.last_size = size;
            ctx.request_repaint();
        }
        let state = &mut self.state;
        state.narrow = ui.available_width() < NARROW;
        controls::shortcuts_ui(&ctx, state);
        draw::upload_frame(&ctx, state, &mut self.texture);
        grid::upload_tiles(&ctx, state, &mut self.tiles);
        egui::Panel::top("toolbar").show(ui, |ui| controls::toolbar_ui(ui, state));
        if state.panel_shown() {
            let width = (ui.available_width() * 0.45).min(330.0);
            egui::Panel::right("panel")
                .default_size(width)
                .max_size(width.max(200.0))
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        panel::stats_ui(ui, state);
                        ui.separator();
                        controls::settings_ui(ui, state);
                    });
                });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            let area = ui.available_rect_before_wrap();
            if state.is_grid() {
                grid::grid_ui(ui, state, &self.tiles);
            } else {
                draw::video_ui(ui, state, self.texture.as_ref());
            }
            // Over the video, so it never moves the layout.
            draw::banner_ui(ui, state, area);
        });
        if state.show_sources {
            controls::sources_ui(&ctx, state);
        }
        if state.show_help {
            draw::help_ui(&ctx, state);
        }
        if state.fullscreen != state.fullscreen_applied {
            state.fullscreen_applied = state.fullscreen;
            ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(state.fullscreen));
        }
        if std::mem::take(&mut state.screenshot_requested) {
            let shots = self.shots.0.clone();
            let wake = ctx.clone();
            ctx.request_screenshot(move |image| {
                let _ = shots.try_send(image);
                wake.request_repaint();
            });
        }
        while let Ok(image) = self.shots.1.try_recv() {
            let path = next_screenshot_path(&state.screenshot_dir);
            state.queue(Command::SaveScreenshot { image, path });
        }
    }
    /// Takes what the session has, without waiting (at most one queue's worth per pass).
    fn drain(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        let now = Instant::now();
        for _ in 0..256 {
            match session.try_frame() {
                Some(Shown::Result(result)) => {
                    if let Some(echo) = &mut self.echo {
                        echo(&result);
                    }
                    self.state.apply_frame(*result, now);
                }
                Some(Shown::Picture(frame)) => self.state.apply_picture(frame),
                Some(Shown::StreamResult(stream, result)) => {
                    self.state.apply_stream_frame(stream, *result, now);
                }
                Some(Shown::StreamPicture(stream, frame)) => {
                    self.state.apply_stream_picture(stream, frame);
                }
                None => break,
            }
        }
        for _ in 0..64 {
            let Some(message) = session.try_message() else {
                break;
            };
            self.state.apply_message(message);
        }
        self.state.frames_lost = session.frames_lost();
    }

    fn send_commands(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        for command in self.state.take_commands() {
            if !session.send(command) {
                self.state.set_banner(
                    super::state::BannerKind::Warning,
                    "busy: the last change was not taken, try again",
                );
            }
        }
    }

    /// Stops and joins everything, then leaves the figures for the command line: the summary of
    /// the run still going, else of the last one that ended.
    fn close(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let running = session.close_all();
        if let Ok(mut slot) = self.outcome.lock() {
            *slot = Some(WindowOutcome {
                report: self.state.report(),
                summary: running.summary.or_else(|| self.state.summary.clone()),
                streams: running
                    .streams
                    .or_else(|| self.state.streams_summary.clone()),
            });
        }
    }
}

impl eframe::App for App {
    /// Runs before each `ui`, and also while the window is hidden: the queues keep draining, so a
    /// minimised window never holds the pipeline back.
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain();
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let now = Instant::now();
        let frame_nr = ui.ctx().cumulative_frame_nr();
        // The frame that showed a video frame is over: complete its latency (a second pass of
        // the same frame waits for the next one).
        if frame_nr > self.pending_frame_nr
            && let Some((produced, wait_ms)) = self.state.latency_pending.take()
        {
            if self.measure {
                // This pass was asked for right after the upload: the previous frame, its buffer
                // swap included, ended just before now.
                let total_ms = now.saturating_duration_since(produced).as_secs_f64() * 1e3;
                self.state
                    .record_window_latency(wait_ms, (total_ms - wait_ms).max(0.0));
            } else if let Some(cpu) = frame.info().cpu_usage {
                self.state
                    .record_window_latency(wait_ms, f64::from(cpu) * 1e3);
            }
        }
        let had_pending = self.state.latency_pending.is_some();
        self.window_ui(ui);
        if !had_pending && self.state.latency_pending.is_some() {
            self.pending_frame_nr = frame_nr;
            if self.measure {
                ui.ctx().request_repaint();
            }
        }
        self.send_commands();
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.close();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.close();
    }
}
