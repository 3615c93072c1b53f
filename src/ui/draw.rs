//! The drawing: the video frame as a texture (created once, then updated in place), the smoothed
//! label large over it with its score (or why there is none: warming up, below threshold,
//! changing), the top-k as bars, the state of the run at the top right (paused, ended, random
//! weights), the banner over the video (it never moves the layout; notices fade) and the help
//! overlay. Text is drawn as widgets, not painted, so it is in the accessibility tree the tests
//! query. The cards shrink with the video area, so nothing overlaps at 640x400.

use egui::{
    Align, Align2, Color32, Layout, Rect, RichText, Sense, TextureOptions, UiBuilder, vec2,
};

use crate::capture::Frame;
use crate::pipeline::Scored;

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
    state.shown_captured = Some(frame.captured);
    if let Some(produced) = produced {
        state.latency_pending = Some((produced, produced.elapsed().as_secs_f64() * 1e3));
    }
}

/// The video with the label, score and top-k drawn over it.
pub fn video_ui(ui: &mut egui::Ui, state: &AppState, texture: Option<&egui::TextureHandle>) {
    let area = ui.available_rect_before_wrap();
    let (rect, _) = ui.allocate_exact_size(area.size(), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(20));
    match texture {
        Some(texture) => paint_fitted(&painter, rect, texture),
        None => {
            let text = match &state.model {
                _ if state.idle => "nothing playing: open a source (O)".to_string(),
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

/// Paints `texture` as large as fits in `rect`, centred, its aspect kept.
pub(super) fn paint_fitted(painter: &egui::Painter, rect: Rect, texture: &egui::TextureHandle) {
    let size = texture.size_vec2();
    let scale = (rect.width() / size.x).min(rect.height() / size.y);
    let shown = Rect::from_center_size(rect.center(), size * scale);
    let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
    painter.image(texture.id(), shown, uv, Color32::WHITE);
}

pub(super) fn dark_box() -> egui::Frame {
    egui::Frame::new()
        .fill(Color32::from_black_alpha(170))
        .corner_radius(6.0)
        .inner_margin(10.0)
}

/// Label and score at the top left, the run's state at the top right, the top-k bars at the
/// bottom left (the cards once there is a result, unless hidden with V). Each side takes at most
/// half the width, and the text shrinks with the area.
fn overlay_ui(ui: &mut egui::Ui, state: &AppState, rect: Rect) {
    status_ui(ui, state, rect);
    if state.frames_received == 0 || !state.show_cards {
        return;
    }
    let half = (rect.width() / 2.0 - 8.0).max(120.0);
    let big = (rect.height() / 9.0).clamp(18.0, 40.0);
    let mut top = ui.new_child(
        UiBuilder::new()
            .max_rect(Rect::from_min_size(rect.min, vec2(half, rect.height())))
            .layout(Layout::top_down(Align::Min)),
    );
    dark_box().show(&mut top, |ui| {
        ui.add(
            egui::Label::new(
                RichText::new(state.label_text())
                    .size(big)
                    .strong()
                    .color(Color32::WHITE),
            )
            .wrap(),
        );
        let score = if state.label.is_some() {
            format!("score {:.1}%", state.score * 100.0)
        } else {
            "score -".to_string()
        };
        ui.label(
            RichText::new(score)
                .size(big * 0.45)
                .color(Color32::from_rgb(200, 220, 255)),
        );
        if let Some(memory) = state.memory_text() {
            ui.label(
                RichText::new(memory)
                    .size(big * 0.4)
                    .color(Color32::from_rgb(255, 220, 150)),
            );
        }
    });
    bars_ui(ui, &state.top, rect, half);
}

/// The top-k as bars with their scores, at the bottom left of `rect`, at most `half` wide.
pub(super) fn bars_ui(ui: &mut egui::Ui, top: &[Scored], rect: Rect, half: f32) {
    if top.is_empty() {
        return;
    }
    let row_height = (rect.height() / 16.0).clamp(16.0, 24.0);
    let block = top.len() as f32 * (row_height + 4.0) + 20.0;
    let bars = Rect::from_min_max(
        egui::pos2(rect.left(), (rect.bottom() - block).max(rect.top())),
        rect.right_bottom(),
    );
    let mut bottom = ui.new_child(
        UiBuilder::new()
            .max_rect(bars)
            .layout(Layout::top_down(Align::Min)),
    );
    let width = half.min(300.0);
    dark_box().show(&mut bottom, |ui| {
        ui.spacing_mut().item_spacing.y = 4.0;
        for scored in top {
            let (row, _) = ui.allocate_exact_size(vec2(width, row_height), Sense::hover());
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

/// The top right: PAUSED, the end of a file (with how to replay), and a permanent badge when the
/// model's weights are random.
pub(super) fn status_ui(ui: &mut egui::Ui, state: &AppState, rect: Rect) {
    let mut lines: Vec<(String, Color32, f32)> = Vec::new();
    if state.ended {
        let text = if state.is_grid() {
            "ALL STREAMS ENDED: Space or Replay plays them again"
        } else {
            "END OF FILE: Space or Replay plays it again"
        };
        lines.push((text.into(), Color32::from_rgb(140, 220, 255), 18.0));
    } else if state.settings.paused {
        lines.push(("PAUSED".into(), Color32::YELLOW, 22.0));
    }
    if state.model.as_ref().is_some_and(|m| !m.trained) {
        let text = "random weights: labels are meaningless; open a model with O";
        lines.push((text.into(), Color32::from_rgb(255, 170, 80), 15.0));
    }
    if lines.is_empty() {
        return;
    }
    let half = (rect.width() / 2.0 - 8.0).max(120.0);
    let right = Rect::from_min_max(egui::pos2(rect.right() - half, rect.top()), rect.max);
    let mut corner = ui.new_child(
        UiBuilder::new()
            .max_rect(right)
            .layout(Layout::top_down(Align::Max)),
    );
    for (text, color, size) in lines {
        dark_box().show(&mut corner, |ui| {
            ui.add(egui::Label::new(RichText::new(text).size(size).strong().color(color)).wrap());
        });
    }
}

/// The banner over the top of the video (it never moves the layout): errors red, warnings amber,
/// notices green and fading after a few seconds; x or Esc dismisses it.
pub fn banner_ui(ui: &mut egui::Ui, state: &mut AppState, area: Rect) {
    let Some(opacity) = state.banner_opacity(std::time::Instant::now()) else {
        return;
    };
    let Some(banner) = &state.banner else {
        return;
    };
    let fill = match banner.kind {
        BannerKind::Error => Color32::from_rgb(140, 28, 28),
        BannerKind::Warning => Color32::from_rgb(140, 100, 16),
        BannerKind::Info => Color32::from_rgb(28, 90, 56),
    };
    if opacity < 1.0 {
        // Fading: draw again until it is gone.
        ui.ctx().request_repaint();
    } else if banner.kind == BannerKind::Info {
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    }
    let mut dismiss = false;
    let mut child = ui.new_child(
        UiBuilder::new()
            .max_rect(area.shrink(6.0))
            .layout(Layout::top_down(Align::Center)),
    );
    child.set_opacity(opacity);
    egui::Frame::new()
        .fill(fill)
        .corner_radius(4.0)
        .inner_margin(8.0)
        .show(&mut child, |ui| {
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
