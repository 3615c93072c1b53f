//! The controls: keyboard shortcuts (one table, which the help overlay also lists), files dropped
//! on the window, the toolbar, the settings and the source dialog. Each turns input into
//! `Action`s on the state; none of them waits on anything.

use std::path::{Path, PathBuf};

use egui::{Key, KeyboardShortcut, Modifiers};

use crate::capture::Source;

use super::actions::{Action, SMOOTH_MS_MAX, SMOOTH_MS_MIN};
use super::settings::{SMOOTH_MAX, STRIDE_MAX, TOP_K_MAX};
use super::state::AppState;

const fn key(k: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(Modifiers::NONE, k)
}

const fn shift(k: Key) -> KeyboardShortcut {
    KeyboardShortcut::new(Modifiers::SHIFT, k)
}

/// Every shortcut. Shifted ones come first: egui ignores an extra Shift when it matches a plain key.
pub fn bindings() -> [(KeyboardShortcut, Action); 20] {
    [
        (shift(Key::T), Action::Threshold(-0.05)),
        (shift(Key::K), Action::TopK(-1)),
        (shift(Key::S), Action::Stride(-1)),
        (key(Key::Space), Action::TogglePause),
        (key(Key::R), Action::ResetCache),
        (key(Key::OpenBracket), Action::SmoothWindow(-1)),
        (key(Key::CloseBracket), Action::SmoothWindow(1)),
        (key(Key::T), Action::Threshold(0.05)),
        (key(Key::K), Action::TopK(1)),
        (key(Key::S), Action::Stride(1)),
        (key(Key::O), Action::ToggleSources),
        (key(Key::C), Action::ToggleSources),
        (key(Key::P), Action::Screenshot),
        (key(Key::F), Action::ToggleFullscreen),
        (key(Key::F11), Action::ToggleFullscreen),
        (key(Key::V), Action::ToggleCards),
        (key(Key::I), Action::TogglePanel),
        (key(Key::H), Action::ToggleHelp),
        (key(Key::F1), Action::ToggleHelp),
        (key(Key::Escape), Action::Escape),
    ]
}

/// The help overlay's rows: keys, what they do.
pub const HELP: &[(&str, &str)] = &[
    ("Space", "pause / resume (replay an ended file)"),
    (
        "R",
        "reset the shift cache and the smoothing (of the stream shown alone)",
    ),
    ("[  ]", "smoothing - / + (100 ms, or a frame)"),
    ("T  Shift+T", "threshold + / - 0.05"),
    ("K  Shift+K", "top-k + / -"),
    ("S  Shift+S", "stride + / -"),
    ("O  C", "open a source: a file, a camera, the test pattern"),
    ("", "(drop a video or a .safetensors model on the window)"),
    ("P", "save a screenshot (PNG)"),
    ("F  F11", "full screen"),
    ("V", "hide / show the label and top-k cards"),
    ("I", "hide / show the side panel"),
    ("H  F1", "this help"),
    (
        "click",
        "several streams: show a tile alone, again to go back",
    ),
    (
        "Esc",
        "close a dialog, else back to the grid, else dismiss the banner",
    ),
];

/// Key presses and dropped files. Runs before the widgets, so a consumed key never also
/// activates a focused button. While a text field has the keyboard or the source dialog is open,
/// only Esc is taken (it closes the dialog).
pub fn shortcuts_ui(ctx: &egui::Context, state: &mut AppState) {
    let typing = ctx.egui_wants_keyboard_input() || state.show_sources;
    let mut actions = Vec::new();
    ctx.input_mut(|input| {
        for (shortcut, action) in bindings() {
            if typing && shortcut.logical_key != Key::Escape {
                continue;
            }
            if input.consume_shortcut(&shortcut) {
                actions.push(action);
            }
        }
        for file in &input.raw.dropped_files {
            actions.push(Action::OpenPath(file.path().to_path_buf()));
        }
    });
    for action in actions {
        state.act(action);
    }
}

/// The row of buttons at the top: the same actions as the keys.
pub fn toolbar_ui(ui: &mut egui::Ui, state: &mut AppState) {
    ui.horizontal_wrapped(|ui| {
        let pause = if state.ended {
            "Replay (Space)"
        } else if state.settings.paused {
            "Resume (Space)"
        } else {
            "Pause (Space)"
        };
        let playing = !state.idle;
        let reset = if state.enlarged.is_some() {
            "Reset stream (R)"
        } else {
            "Reset cache (R)"
        };
        let buttons = [
            (pause, Action::TogglePause),
            (reset, Action::ResetCache),
            ("Source… (O)", Action::ToggleSources),
            ("Screenshot (P)", Action::Screenshot),
            ("Full screen (F)", Action::ToggleFullscreen),
            ("Cards (V)", Action::ToggleCards),
            ("Panel (I)", Action::TogglePanel),
            ("Help (H)", Action::ToggleHelp),
        ];
        for (text, action) in buttons {
            let enabled = playing || !matches!(action, Action::TogglePause | Action::ResetCache);
            if ui.add_enabled(enabled, egui::Button::new(text)).clicked() {
                state.act(action);
            }
        }
        ui.separator();
        ui.label(&state.source);
    });
}

/// Sliders for the settings the pipeline takes at run time.
pub fn settings_ui(ui: &mut egui::Ui, state: &mut AppState) {
    let s = &mut state.settings;
    let mut smoothing = false;
    let mut stride = false;
    smoothing |= match &mut s.smooth_ms {
        Some(span) => ui.add(
            egui::Slider::new(span, SMOOTH_MS_MIN..=SMOOTH_MS_MAX)
                .step_by(20.0)
                .suffix(" ms")
                .text("smoothing  [ ]"),
        ),
        None => ui.add(
            egui::Slider::new(&mut s.smooth_window, 1..=SMOOTH_MAX)
                .suffix(" frames")
                .text("smoothing  [ ]"),
        ),
    }
    .changed();
    smoothing |= ui
        .add(
            egui::Slider::new(&mut s.threshold, 0.0..=1.0)
                .step_by(0.01)
                .text("threshold  T"),
        )
        .changed();
    smoothing |= ui
        .add(egui::Slider::new(&mut s.top_k, 1..=TOP_K_MAX).text("top-k  K"))
        .changed();
    smoothing |= ui.checkbox(&mut s.hysteresis, "hysteresis").changed();
    stride |= ui
        .add(egui::Slider::new(&mut s.stride, 1..=STRIDE_MAX).text("stride  S"))
        .changed();
    if smoothing {
        state.act(Action::SettingsEdited);
    }
    if stride {
        state.act(Action::Stride(0));
    }
}

/// Entries of `dir` for the file list: directories first, then files, each sorted by name.
pub fn list_dir(dir: &Path) -> Vec<(String, PathBuf, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut list: Vec<(String, PathBuf, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().ok()?.is_dir();
            (!name.starts_with('.')).then(|| (name, e.path(), is_dir))
        })
        .collect();
    list.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    list
}

/// The source dialog: a path (typed or browsed), the cameras there are, the test pattern.
pub fn sources_ui(ctx: &egui::Context, state: &mut AppState) {
    let mut open = state.show_sources;
    let mut actions = Vec::new();
    egui::Window::new("Open a source")
        .open(&mut open)
        .collapsible(false)
        .default_width(420.0)
        .show(ctx, |ui| {
            ui.label("A video file, or a .safetensors checkpoint to load as the model:");
            ui.horizontal(|ui| {
                let field = ui.add(
                    egui::TextEdit::singleline(&mut state.path_text)
                        .hint_text("/path/to/clip.mp4")
                        .desired_width(300.0),
                );
                // Typing goes to the path at once: the dialog just opened.
                if std::mem::take(&mut state.focus_path) {
                    field.request_focus();
                }
                let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
                if (ui.button("Open").clicked() || entered) && !state.path_text.trim().is_empty() {
                    actions.push(Action::OpenPath(PathBuf::from(state.path_text.trim())));
                }
            });
            ui.horizontal(|ui| {
                if ui.button("..").on_hover_text("parent directory").clicked()
                    && let Some(parent) = state.browse_dir.parent()
                {
                    state.browse_dir = parent.to_path_buf();
                    state.listing = None;
                }
                ui.label(state.browse_dir.display().to_string());
            });
            let listing = state
                .listing
                .get_or_insert_with(|| list_dir(&state.browse_dir));
            let mut enter = None;
            egui::ScrollArea::vertical()
                .max_height(220.0)
                .show(ui, |ui| {
                    for (name, path, is_dir) in listing.iter() {
                        let text = if *is_dir {
                            format!("{name}/")
                        } else {
                            name.clone()
                        };
                        if ui.selectable_label(false, text).clicked() {
                            if *is_dir {
                                enter = Some(path.clone());
                            } else {
                                actions.push(Action::OpenPath(path.clone()));
                            }
                        }
                    }
                });
            if let Some(dir) = enter {
                state.browse_dir = dir;
                state.listing = None;
            }
            ui.separator();
            ui.horizontal(|ui| {
                ui.label("Cameras:");
                if ui.small_button("refresh").clicked() {
                    state.refresh_cameras();
                }
            });
            if state.cameras.is_empty() {
                ui.label("no /dev/video* devices on this machine");
            }
            for camera in &state.cameras {
                if ui.button(camera.display().to_string()).clicked() {
                    actions.push(Action::OpenSource(Source::Camera(
                        camera.display().to_string(),
                    )));
                }
            }
            ui.separator();
            if ui
                .button("Test pattern (ball, 640x480 at 30 fps)")
                .clicked()
            {
                actions.push(Action::OpenSource(Source::TestPattern {
                    pattern: "ball".into(),
                    width: 640,
                    height: 480,
                    fps: 30,
                    frames: None,
                }));
            }
        });
    state.show_sources &= open;
    for action in actions {
        state.act(action);
    }
}
