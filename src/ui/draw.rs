//! The drawing: the video frame as a texture (created once, then updated in place), the smoothed
//! label large over it with its score, the top-k as bars, the stats panel with its latency plot,
//! the error banner and the help overlay. Text is drawn as widgets, not painted, so it is in the
//! accessibility tree the tests query.

use egui::{
    Align, Align2, Color32, Layout, Rect, RichText, Sense, TextureOptions, UiBuilder, vec2,
};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::capture::Frame;

use super::controls::HELP;
use super::state::{AppState, BannerKind};

/// The frame as an egui image, subsampled when a side exceeds `max_side` (the GPU's texture
/// limit). None when the pixels do not match the size (never from a capture; a guard, not a panic).
pub fn color_image(frame: &Frame, max_side: usize) -> Option<egui::ColorImage> {
    let (width, height) = (frame.width, frame.height);
    if width == 0 || height == 0 || frame.data.len() != width * height * 3 {
        return None;
    }
    let step = width.max(height).div_ceil(max_side.max(1)).max(1);
    if step == 1 {
        return Some(egui::ColorImage::from_rgb([width, height], &frame.data));
    }
    let (w, h) = (width / step, height / step);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let at = ((y * step) * width + x * step) * 3;
            rgb.extend_from_slice(&frame.data[at..at + 3]);
        }
    }
    Some(egui::ColorImage::from_rgb([w, h], &rgb))
}

/// Uploads the newest frame, if one is waiting: the texture is created once and then `set`.
pub fn upload_frame(
    ctx: &egui::Context,
    state: &mut AppState,
    texture: &mut Option<egui::TextureHandle>,
) {
    let Some((frame, produced)) = state.pending_image.take() else {
        return;
    };
    let max_side = ctx.input(|i| i.max_texture_side);
    let Some(image) = color_image(&frame, max_side) else {
        state.set_banner(
            BannerKind::Warning,
            format!(
                "frame {} has {} bytes for {}x{} RGB: not shown",
                frame.index,
                frame.data.len(),
                frame.width,
                frame.height
            ),
        );
        return;
    };
    match texture {
        Some(texture) => texture.set(image, TextureOptions::LINEAR),
        None => *texture = Some(ctx.load_texture("video", image, TextureOptions::LINEAR)),
    }
    state.frames_shown += 1;
    state.latency_pending = Some((produced, produced.elapsed().as_secs_f64() * 1e3));
}

/// The video with the label, score and top-k drawn over it.
pub fn video_ui(ui: &mut egui::Ui, state: &AppState, texture: Option<&egui::TextureHandle>) {
    let area = ui.available_rect_before_wrap();
    let (rect, _) = ui.allocate_exact_size(area.size(), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(20));
    match texture {
        Some(texture) => {
            let size = texture.size_vec2();
            let scale = (rect.width() / size.x).min(rect.height() / size.y);
            let shown = Rect::from_center_size(rect.center(), size * scale);
            let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
            painter.image(texture.id(), shown, uv, Color32::WHITE);
        }
        None => {
            let text = match &state.model {
                Some(_) => format!("waiting for frames from {}", state.source),
                None => "no model: open a checkpoint (O) or drop one on the window".to_string(),
            };
            painter.text(
                rect.center(),
                Align2::CENTER_CENTER,
                text,
                egui::FontId::proportional(18.0),
                Color32::GRAY,
            );
        }
    }
    if ui.ctx().input(|i| !i.raw.hovered_files.is_empty()) {
        painter.rect_filled(rect, 0.0, Color32::from_black_alpha(160));
        painter.text(
            rect.center(),
            Align2::CENTER_CENTER,
            "drop to open (a video, or a .safetensors model)",
            egui::FontId::proportional(24.0),
            Color32::WHITE,
        );
    }
    overlay_ui(ui, state, rect.shrink(12.0));
}

fn dark_box() -> egui::Frame {
    egui::Frame::new()
        .fill(Color32::from_black_alpha(170))
        .corner_radius(6.0)
        .inner_margin(10.0)
}

/// Label and score at the top left, PAUSED at the top right, the top-k bars at the bottom left
/// (the label and bars once there is a result).
fn overlay_ui(ui: &mut egui::Ui, state: &AppState, rect: Rect) {
    if state.frames_received == 0 {
        return paused_ui(ui, state, rect);
    }
    let mut top = ui.new_child(
        UiBuilder::new()
            .max_rect(rect)
            .layout(Layout::top_down(Align::Min)),
    );
    dark_box().show(&mut top, |ui| {
        let label = state.label.as_deref().unwrap_or("(no label)");
        ui.label(
            RichText::new(label)
                .size(40.0)
                .strong()
                .color(Color32::WHITE),
        );
        ui.label(
            RichText::new(format!("score {:.1}%", state.score * 100.0))
                .size(18.0)
                .color(Color32::from_rgb(200, 220, 255)),
        );
    });
    paused_ui(ui, state, rect);
    if state.top.is_empty() {
        return;
    }
    let row_height = 24.0;
    let block = state.top.len() as f32 * (row_height + 4.0) + 20.0;
    let bars = Rect::from_min_max(
        egui::pos2(rect.left(), (rect.bottom() - block).max(rect.top())),
        rect.right_bottom(),
    );
    let mut bottom = ui.new_child(
        UiBuilder::new()
            .max_rect(bars)
            .layout(Layout::top_down(Align::Min)),
    );
    dark_box().show(&mut bottom, |ui| {
        ui.spacing_mut().item_spacing.y = 4.0;
        for scored in &state.top {
            let (row, _) = ui.allocate_exact_size(vec2(300.0, row_height), Sense::hover());
            ui.painter()
                .rect_filled(row, 3.0, Color32::from_white_alpha(24));
            let mut fill = row;
            fill.set_width(row.width() * scored.score.clamp(0.0, 1.0));
            ui.painter()
                .rect_filled(fill, 3.0, Color32::from_rgb(40, 120, 210));
            let text = format!("{}  {:.1}%", scored.label, scored.score * 100.0);
            ui.scope_builder(
                UiBuilder::new()
                    .max_rect(row.shrink2(vec2(6.0, 0.0)))
                    .layout(Layout::left_to_right(Align::Center)),
                |ui| ui.label(RichText::new(text).color(Color32::WHITE)),
            );
        }
    });
}

fn paused_ui(ui: &mut egui::Ui, state: &AppState, rect: Rect) {
    if !state.settings.paused {
        return;
    }
    let mut corner = ui.new_child(
        UiBuilder::new()
            .max_rect(rect)
            .layout(Layout::top_down(Align::Max)),
    );
    dark_box().show(&mut corner, |ui| {
        ui.label(
            RichText::new("PAUSED")
                .size(22.0)
                .strong()
                .color(Color32::YELLOW),
        );
    });
}

fn ms(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "-".into()
    }
}

/// The compact panel: model, source, counters, latency per stage and the latency plot.
pub fn stats_ui(ui: &mut egui::Ui, state: &AppState) {
    egui::Grid::new("info").num_columns(2).show(ui, |ui| {
        let mut row = |name: &str, value: String| {
            ui.label(name);
            ui.label(value);
            ui.end_row();
        };
        match &state.model {
            Some(m) => {
                row("model", m.name.clone());
                row("device", m.device.clone());
                row("classes", m.classes.to_string());
            }
            None => row("model", "not loaded".into()),
        }
        row("stride", state.settings.stride.to_string());
        row(
            "smoothing",
            format!("{} frames", state.settings.smooth_window),
        );
        row("fps", format!("{:.1}", state.fps));
        row(
            "frames",
            format!(
                "{} shown / {} received",
                state.frames_shown, state.frames_received
            ),
        );
        row("dropped", format!("{} dropped", state.dropped));
        if state.frames_lost > 0 {
            row("lost", format!("{} not drawn in time", state.frames_lost));
        }
        if let Some(index) = state.frame_index {
            row("frame", format!("#{index}"));
        }
    });
    ui.separator();
    egui::Grid::new("latency")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            ui.strong("latency");
            ui.strong("p50 / p99 ms");
            ui.end_row();
            for (stage, stats) in state.latency.rows() {
                ui.label(stage);
                ui.label(format!("{} / {}", ms(stats.p50), ms(stats.p99)));
                ui.end_row();
            }
        });
    plot_ui(ui, state);
    if let Some(summary) = &state.summary {
        ui.separator();
        ui.label(format!(
            "ended: {} processed, {} dropped, {:.1} fps",
            summary.frames_processed, summary.frames_dropped, summary.fps
        ));
    }
}

/// Latency of the last results, scrolling with time.
fn plot_ui(ui: &mut egui::Ui, state: &AppState) {
    let total: Vec<[f64; 2]> = state.plot.iter().map(|p| [p[0], p[1]]).collect();
    let model: Vec<[f64; 2]> = state.plot.iter().map(|p| [p[0], p[2]]).collect();
    Plot::new("latency_plot")
        .height(140.0)
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .include_y(0.0)
        .x_axis_label("s")
        .y_axis_label("ms")
        .show(ui, |plot| {
            plot.line(Line::new("total", PlotPoints::from(total)));
            plot.line(Line::new("model", PlotPoints::from(model)));
        });
}

/// The banner over the video: errors red, warnings amber, notices green; x or Esc dismisses it.
pub fn banner_ui(ui: &mut egui::Ui, state: &mut AppState) {
    let Some(banner) = &state.banner else {
        return;
    };
    let fill = match banner.kind {
        BannerKind::Error => Color32::from_rgb(140, 28, 28),
        BannerKind::Warning => Color32::from_rgb(140, 100, 16),
        BannerKind::Info => Color32::from_rgb(28, 90, 56),
    };
    let mut dismiss = false;
    egui::Frame::new()
        .fill(fill)
        .corner_radius(4.0)
        .inner_margin(8.0)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                dismiss = ui.button("x").on_hover_text("dismiss (Esc)").clicked();
                ui.add(egui::Label::new(RichText::new(&banner.text).color(Color32::WHITE)).wrap());
            });
        });
    if dismiss {
        state.banner = None;
    }
}

/// The keyboard shortcuts, over everything.
pub fn help_ui(ctx: &egui::Context, state: &mut AppState) {
    let mut open = state.show_help;
    egui::Window::new("Keyboard shortcuts")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .anchor(Align2::CENTER_CENTER, [0.0, 0.0])
        .show(ctx, |ui| {
            egui::Grid::new("help").striped(true).show(ui, |ui| {
                for (keys, what) in HELP {
                    ui.label(RichText::new(*keys).monospace().strong());
                    ui.label(*what);
                    ui.end_row();
                }
            });
        });
    state.show_help &= open;
}
