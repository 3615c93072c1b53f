//! The side panel's figures: model (and whether its weights are trained), where the stride and
//! the smoothing came from, counters, the label's age, latency per stage, and the latency plot,
//! whose lines break at pauses and source changes (`plot_segments`).

use egui::Color32;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::state::AppState;

/// A plot line breaks where results are further apart than this (a pause, a stall).
pub const PLOT_GAP_S: f64 = 1.0;
/// The plot shows the last this many seconds.
pub const PLOT_SPAN_S: f64 = 10.0;

fn ms(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "-".into()
    }
}

/// The smoothing as the panel says it: a span and the frames it sums now, or frames.
pub fn smoothing_text(state: &AppState) -> String {
    match state.settings.smooth_ms {
        Some(span) => format!("{span:.0} ms = {} frames", state.smooth_frames),
        None => format!("{} frames", state.settings.smooth_window),
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
                row(
                    "weights",
                    if m.trained {
                        "trained (checkpoint)".into()
                    } else {
                        "random: labels mean nothing".into()
                    },
                );
                row("device", m.device.clone());
                row("classes", m.classes.to_string());
            }
            None => row("model", "not loaded".into()),
        }
        row(
            "stride",
            format!(
                "{} ({})",
                state.settings.stride,
                state.stride_from.describe()
            ),
        );
        row("smoothing", smoothing_text(state));
        row("fps", format!("{:.1}", state.fps));
        row(
            "frames",
            format!(
                "{} shown / {} received",
                state.frames_shown,
                state.frames_received + state.pictures_received
            ),
        );
        row("dropped", format!("{} dropped", state.dropped));
        if state.frames_lost > 0 {
            row("lost", format!("{} not drawn in time", state.frames_lost));
        }
        if let Some(index) = state.frame_index {
            row("frame", format!("#{index}"));
        }
        if let Some(age) = state.label_age_ms() {
            row("label age", format!("{age:.0} ms behind the picture"));
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

/// Splits time-ordered points into lines: a new line starts after a gap longer than
/// `PLOT_GAP_S` or at a break (a source start, a resume) between two points.
pub fn plot_segments(points: impl Iterator<Item = [f64; 2]>, breaks: &[f64]) -> Vec<Vec<[f64; 2]>> {
    let mut lines: Vec<Vec<[f64; 2]>> = Vec::new();
    let mut last: Option<f64> = None;
    for p in points {
        let split = last
            .is_none_or(|t| p[0] - t > PLOT_GAP_S || breaks.iter().any(|&b| b > t && b <= p[0]));
        if split {
            lines.push(Vec::new());
        }
        if let Some(line) = lines.last_mut() {
            line.push(p);
        }
        last = Some(p[0]);
    }
    lines
}

/// Latency of the last results, scrolling with time: total, model and the window's own.
fn plot_ui(ui: &mut egui::Ui, state: &AppState) {
    let breaks: Vec<f64> = state.plot_breaks.iter().copied().collect();
    let newest = state
        .plot
        .back()
        .map_or(0.0, |p| p[0])
        .max(state.window_plot.back().map_or(0.0, |p| p[0]));
    let from = (newest - PLOT_SPAN_S).max(0.0);
    let recent = |p: &[f64; 2]| p[0] >= from;
    let series = [
        (
            "total",
            Color32::from_rgb(70, 140, 230),
            plot_segments(
                state.plot.iter().map(|p| [p[0], p[1]]).filter(recent),
                &breaks,
            ),
        ),
        (
            "model",
            Color32::from_rgb(230, 150, 50),
            plot_segments(
                state.plot.iter().map(|p| [p[0], p[2]]).filter(recent),
                &breaks,
            ),
        ),
        (
            "window",
            Color32::from_rgb(90, 190, 110),
            plot_segments(state.window_plot.iter().copied().filter(recent), &breaks),
        ),
    ];
    Plot::new("latency_plot")
        .height(140.0)
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        // A fixed span in x and a fixed axis width: the labels do not jump as values change.
        .include_x(from)
        .include_x(from + PLOT_SPAN_S)
        .include_y(0.0)
        .y_axis_min_width(36.0)
        .x_axis_label("s")
        .y_axis_label("ms")
        .show(ui, |plot| {
            for (name, color, lines) in series {
                for line in lines {
                    plot.line(Line::new(name, PlotPoints::from(line)).color(color));
                }
            }
        });
}
