//! The window of `live` and `play` (eframe, glow or wgpu): the video with the smoothed label over
//! it, the top-k, a stats panel with a latency plot, and controls for the running pipeline.
//!
//! ```text
//! capture -> ring -> infer -> [shiftlive-session] -> bounded queues -> UI thread
//!                              (owns the pipeline,    try_recv per pass, texture.set,
//!                               loads the model,      widgets; commands back with try_send)
//!                               request_repaint)
//! ```
//!
//! `state` is plain data the tests drive without a window (`stats` its latency figures); `draw`
//! and `controls` are the widgets; `app` owns the state, the texture and the session (the eframe
//! glue); `session` is the thread that owns the pipeline (`running`: one source's or a batch's);
//! `screenshot` writes PNGs. Several sources show as a grid of tiles: `tile` is one stream's plain
//! data, `grid` draws them (a click enlarges one).

mod actions;
mod app;
mod controls;
mod draw;
mod grid;
mod guard;
mod messages;
mod panel;
mod running;
mod screenshot;
mod session;
mod settings;
mod state;
mod stats;
mod tile;

pub use actions::Action;
pub use app::{
    App, Renderer, ResultHook, WindowError, WindowOptions, WindowOutcome, display_available,
    run_window, window_ui,
};
pub use controls::{HELP, bindings, list_dir};
pub use draw::color_image;
pub use grid::FAILED;
pub use messages::{Command, LoadedModel, Message, ModelInfo, ModelLoader, Origin, Shown};
pub use panel::{PLOT_GAP_S, plot_segments, smoothing_text};
pub use running::Closed;
pub use screenshot::{ScreenshotError, next_screenshot_path, save_png};
pub use session::{Session, SessionConfig};
pub use settings::Settings;
pub use state::{AppState, Banner, BannerKind, NARROW, is_checkpoint};
pub use stats::{ROLLING, Rolling, WindowReport};
pub use tile::Tile;
