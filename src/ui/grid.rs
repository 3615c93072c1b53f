//! The video area of a run of several sources: a grid of tiles, one per stream (its picture, name,
//! label, score, results per second and drops; red with its error once its source failed). A click
//! on a tile shows it alone, larger, with its top-k and a reset of its own rows; a click on it
//! again, the button or Esc goes back to the grid. Each tile has its own texture, created with the
//! stream's first picture and then updated in place, as the single video's is.

use egui::{Align, Color32, Layout, Rect, RichText, Sense, TextureOptions, UiBuilder, vec2};

use super::actions::Action;
use super::draw::{bars_ui, color_image, dark_box, paint_fitted, status_ui};
use super::state::AppState;
use super::tile::Tile;

/// Space between two tiles (points).
const GAP: f32 = 6.0;
/// The shape a tile is laid out for (width / height): most cameras and clips are 4:3 or 16:9.
const TILE_ASPECT: f32 = 4.0 / 3.0;
/// A failed stream's tile.
pub const FAILED: Color32 = Color32::from_rgb(130, 24, 24);

/// Uploads each tile's newest picture: its texture is created once, then `set`.
pub fn upload_tiles(
    ctx: &egui::Context,
    state: &mut AppState,
    textures: &mut Vec<Option<egui::TextureHandle>>,
) {
    textures.resize_with(state.tiles.len(), || None);
    let max_side = ctx.input(|i| i.max_texture_side);
    let mut shown = 0;
    for (stream, (tile, texture)) in state.tiles.iter_mut().zip(textures.iter_mut()).enumerate() {
        let Some((frame, produced)) = tile.pending_image.take() else {
            continue;
        };
        let Some(image) = color_image(&frame, max_side) else {
            continue;
        };
        match texture {
            Some(texture) => texture.set(image, TextureOptions::LINEAR),
            None => {
                let name = format!("tile{stream}");
                *texture = Some(ctx.load_texture(name, image, TextureOptions::LINEAR));
            }
        }
        tile.frames_shown += 1;
        shown += 1;
        // The window's latency is measured on one upload per pass, whichever stream it was.
        if let Some(produced) = produced
            && state.latency_pending.is_none()
        {
            state.latency_pending = Some((produced, produced.elapsed().as_secs_f64() * 1e3));
        }
    }
    state.frames_shown += shown;
}

/// The columns of the grid that give `n` tiles of `TILE_ASPECT` the largest size in `area`.
pub fn columns(n: usize, area: egui::Vec2) -> usize {
    let side = |cols: usize| {
        let rows = n.div_ceil(cols);
        let cell = vec2(area.x / cols as f32 - GAP, area.y / rows as f32 - GAP);
        cell.x.min(cell.y * TILE_ASPECT)
    };
    (1..=n.max(1))
        .max_by(|&a, &b| side(a).total_cmp(&side(b)))
        .unwrap_or(1)
}

/// The grid (or the enlarged tile) in the whole of the central area.
pub fn grid_ui(ui: &mut egui::Ui, state: &mut AppState, textures: &[Option<egui::TextureHandle>]) {
    let area = ui.available_rect_before_wrap();
    ui.allocate_rect(area, Sense::hover());
    ui.painter().rect_filled(area, 0.0, Color32::from_gray(12));
    let mut actions = Vec::new();
    let cells: Vec<(usize, Rect)> = match state.enlarged {
        Some(stream) => vec![(stream, area)],
        None => {
            let n = state.tiles.len();
            let cols = columns(n, area.size());
            let rows = n.div_ceil(cols);
            let cell = vec2(area.width() / cols as f32, area.height() / rows as f32);
            (0..n)
                .map(|i| {
                    let at =
                        area.min + vec2((i % cols) as f32 * cell.x, (i / cols) as f32 * cell.y);
                    (i, Rect::from_min_size(at, cell).shrink(GAP / 2.0))
                })
                .collect()
        }
    };
    let alone = state.enlarged.is_some();
    for (stream, rect) in cells {
        let Some(tile) = state.tiles.get(stream) else {
            continue;
        };
        let texture = textures.get(stream).and_then(Option::as_ref);
        let threshold = state.settings.threshold;
        actions.extend(tile_ui(ui, stream, tile, rect, texture, threshold, alone));
    }
    // PAUSED and the random weights' badge at the bottom right, clear of the tiles' cards.
    let bottom = Rect::from_min_max(egui::pos2(area.left(), area.bottom() - 110.0), area.max);
    status_ui(ui, state, bottom.shrink(12.0));
    for action in actions {
        state.act(action);
    }
}

/// One tile in `rect`; shown `alone`, also its top-k and its buttons. Returns what was clicked.
fn tile_ui(
    ui: &mut egui::Ui,
    stream: usize,
    tile: &Tile,
    rect: Rect,
    texture: Option<&egui::TextureHandle>,
    threshold: f32,
    alone: bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let click = ui.interact(rect, ui.scope_id().with(("tile", stream)), Sense::click());
    let what = if alone { "back to the grid" } else { "enlarge" };
    let name = format!("tile {stream} ({}): {what}", tile.name);
    click.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
    if click.clicked() {
        actions.push(Action::ToggleTile(stream));
    }
    let painter = ui.painter_at(rect);
    let background = if tile.error.is_some() {
        FAILED
    } else {
        Color32::from_gray(24)
    };
    painter.rect_filled(rect, 4.0, background);
    if let Some(texture) = texture
        && tile.error.is_none()
    {
        paint_fitted(&painter, rect, texture);
    }
    let stroke = if click.hovered() { 140 } else { 60 };
    painter.rect_stroke(
        rect,
        4.0,
        egui::Stroke::new(1.0, Color32::from_gray(stroke)),
        egui::StrokeKind::Inside,
    );
    let inner = rect.shrink(8.0);
    let big = (rect.height() / 10.0).clamp(13.0, 36.0);
    let mut card = ui.new_child(
        UiBuilder::new()
            .max_rect(Rect::from_min_size(
                inner.min,
                vec2(inner.width() * 0.7, inner.height()),
            ))
            .layout(Layout::top_down(Align::Min)),
    );
    let text = |text: String, size: f32, color: Color32| {
        egui::Label::new(RichText::new(text).size(size).color(color))
            .selectable(false)
            .wrap()
    };
    dark_box().show(&mut card, |ui| {
        ui.add(text(tile.name.clone(), big * 0.5, Color32::from_gray(190)));
        if let Some(error) = &tile.error {
            ui.add(text(format!("failed: {error}"), big * 0.5, Color32::WHITE));
            return;
        }
        let label = tile.label_text(threshold);
        ui.add(text(label, big, Color32::WHITE));
        let score = match tile.label {
            Some(_) => format!("score {:.1}%", tile.score * 100.0),
            None => "score -".to_string(),
        };
        ui.add(text(score, big * 0.45, Color32::from_rgb(200, 220, 255)));
        let mut figures = tile.figures_text();
        if tile.ended {
            figures.push_str(", ended");
        }
        ui.add(text(figures, big * 0.4, Color32::from_gray(200)));
    });
    if alone {
        bars_ui(ui, &tile.top, inner, inner.width() / 2.0 - 8.0);
        let corner = Rect::from_min_max(inner.center_top(), inner.right_top() + vec2(0.0, 40.0));
        let mut buttons = ui.new_child(
            UiBuilder::new()
                .max_rect(corner)
                .layout(Layout::right_to_left(Align::Min)),
        );
        if buttons.button("Back to the grid (Esc)").clicked() {
            actions.push(Action::ToggleTile(stream));
        }
        if buttons.button("Reset this stream (R)").clicked() {
            actions.push(Action::ResetCache);
        }
    }
    actions
}
