//! The confusion matrix as a PNG heat map that stays readable at 101 classes: class names on
//! both axes (rows at the left, columns below, reading upwards), each cell coloured by the share
//! of its row's videos on viridis (perceptual, readable in grey and by colour-blind readers; on a
//! square-root scale, so that a 5% confusion stands out from an empty cell), the
//! counts written only where a cell is large enough for them, a colour bar, a title saying model,
//! epoch and set.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::TrainError;
use super::confusion::Confusion;
use super::plot::{PlotError, draw_atomically};
use super::text::{self, Anchor};

/// The side of a cell in pixels for `n` classes: about 1200 px of matrix, 12 to 44 px a cell.
fn cell_side(n: usize) -> i32 {
    (1200 / n.max(1) as i32).clamp(12, 44)
}

/// The colour of a share: viridis on its square root.
fn colour(share: f64) -> RGBColor {
    ViridisRGB.get_color(share.clamp(0.0, 1.0).sqrt() as f32)
}

/// The share of a row's videos in a cell (0 for an empty row).
fn shares(matrix: &[Vec<u64>]) -> Vec<Vec<f64>> {
    matrix
        .iter()
        .map(|row| {
            let total: u64 = row.iter().sum();
            row.iter()
                .map(|&v| {
                    if total > 0 {
                        v as f64 / total as f64
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// Where the matrix goes: its cells, the names (with their index) and their size.
struct Layout {
    cell: i32,
    name_size: f32,
    names: Vec<String>,
    name_w: i32,
    /// The matrix's top left corner.
    left: i32,
    top: i32,
    side: i32,
}

impl Layout {
    fn of(confusion: &Confusion) -> Self {
        let n = confusion.matrix.len().max(1);
        let cell = cell_side(n);
        let name_size = (cell as f32 * 0.8).clamp(9.0, 14.0);
        let names: Vec<String> = (0..n)
            .map(|i| {
                let name = confusion.classes.get(i).map_or("?", String::as_str);
                format!("{name} {i}")
            })
            .collect();
        let name_w = names
            .iter()
            .map(|s| text::width(s, name_size))
            .fold(0f32, f32::max)
            .ceil() as i32;
        Self {
            cell,
            name_size,
            name_w,
            left: name_w + 12,
            top: 64,
            side: cell * n as i32,
            names,
        }
    }
}

/// Draws `confusion` to `path` with `title` above it.
pub fn draw(path: &Path, confusion: &Confusion, title: &str) -> Result<(), TrainError> {
    let n = confusion.matrix.len().max(1);
    let Layout {
        cell,
        name_size,
        names,
        name_w,
        left,
        top,
        side,
    } = Layout::of(confusion);
    let bar_w = 110;
    let title_size = 16.0;
    let width = (left + side + bar_w).max(text::width(title, title_size) as i32 + 20);
    let height = top + side + name_w + 40;
    draw_atomically(path, (width as u32, height as u32), |root| {
        let e = |x: DrawingAreaErrorKind<_>| PlotError::from(x.to_string());
        text::draw(
            root,
            title,
            (10, 8),
            title_size,
            BLACK,
            Anchor::Start,
            false,
        )?;
        let note = "rows: true class, columns: predicted class; colour: share of the row's videos \
                    (counts in the CSV)";
        text::draw(root, note, (10, 32), 12.0, BLACK, Anchor::Start, false)?;
        let shares = shares(confusion.matrix);
        let counts = cell >= 26 && n <= 40;
        let count_size = (cell as f32 * 0.4).clamp(9.0, 14.0);
        for (r, row) in confusion.matrix.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let share = shares[r][c];
                let (x, y) = (left + c as i32 * cell, top + r as i32 * cell);
                let color = colour(share);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    color.filled(),
                ))
                .map_err(e)?;
                if counts && v > 0 {
                    let ink = if share < 0.3 { WHITE } else { BLACK };
                    let at = (x + cell / 2, y + (cell - count_size as i32) / 2);
                    text::draw(
                        root,
                        &v.to_string(),
                        at,
                        count_size,
                        ink,
                        Anchor::Centre,
                        false,
                    )?;
                }
            }
        }
        // A thin grid every 10 classes helps find a row in a large matrix.
        if n > 20 {
            for k in (10..n).step_by(10) {
                let p = k as i32 * cell;
                let grey = RGBColor(255, 255, 255).mix(0.35);
                root.draw(&PathElement::new(
                    vec![(left + p, top), (left + p, top + side)],
                    grey,
                ))
                .map_err(e)?;
                root.draw(&PathElement::new(
                    vec![(left, top + p), (left + side, top + p)],
                    grey,
                ))
                .map_err(e)?;
            }
        }
        let offset = ((cell as f32 - name_size) / 2.0).round() as i32;
        for (i, name) in names.iter().enumerate() {
            let at = (left - 6, top + i as i32 * cell + offset);
            text::draw(root, name, at, name_size, BLACK, Anchor::End, false)?;
            let at = (left + i as i32 * cell + offset, top + side + 6);
            text::draw(root, name, at, name_size, BLACK, Anchor::End, true)?;
        }
        colour_bar(root, (left + side + 20, top), side.min(300), e)
    })
}

/// The colour scale: a vertical bar from 0 (bottom) to 1 (top), labelled.
fn colour_bar(
    root: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    (x, y): (i32, i32),
    h: i32,
    e: impl Fn(DrawingAreaErrorKind<<BitMapBackend as DrawingBackend>::ErrorType>) -> PlotError,
) -> Result<(), PlotError> {
    let h = h.max(60);
    // Position p (0 at the bottom, 1 at the top) shows share p^2.
    for k in 0..h {
        let p = 1.0 - f64::from(k) / f64::from(h - 1);
        root.draw(&Rectangle::new(
            [(x, y + k), (x + 16, y + k + 1)],
            colour(p * p).filled(),
        ))
        .map_err(&e)?;
    }
    for (share, label) in [
        (1.0, "1"),
        (0.5, "0.5"),
        (0.2, "0.2"),
        (0.05, "0.05"),
        (0.0, "0"),
    ] {
        let at = (
            x + 22,
            y + ((1.0 - f64::sqrt(share)) * f64::from(h - 1)) as i32 - 6,
        );
        text::draw(root, label, at, 12.0, BLACK, Anchor::Start, false)?;
    }
    text::draw(
        root,
        "share of the row",
        (x + 60, y + h),
        12.0,
        BLACK,
        Anchor::Start,
        true,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// UCF-101's classes, a matrix of a plausible model (most videos right, the rest spread to
    /// neighbours), drawn; the pixels checked: cells in viridis, names inked on both axes.
    /// `SHIFTLIVE_PLOT_DIR=DIR` keeps the PNG there for looking at.
    #[cfg(feature = "ui")]
    #[test]
    fn a_101_class_matrix_is_drawn_with_names_and_viridis_cells() {
        let labels = include_str!("../../assets/labels/ucf101.txt");
        let classes: Vec<String> = labels.lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(classes.len(), 101);
        let n = classes.len();
        let matrix: Vec<Vec<u64>> = (0..n)
            .map(|r| {
                (0..n)
                    .map(|c| match (r + n - c) % n {
                        0 => 30 + (r % 7) as u64,
                        1 if r % 3 == 0 => 6,
                        5 if r % 4 == 1 => 3,
                        _ => 0,
                    })
                    .collect()
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let c = Confusion {
            matrix: &matrix,
            classes: &classes,
        };
        let layout = Layout::of(&c);
        let keep = std::env::var_os("SHIFTLIVE_PLOT_DIR").map(std::path::PathBuf::from);
        let path = keep
            .unwrap_or_else(|| dir.path().to_path_buf())
            .join("confusion-101.png");
        let title = "tsm_r50, best model (epoch 25), on UCF-101 split 1 (synthetic matrix)";
        draw(&path, &c, title).unwrap();
        let png = image::open(&path).unwrap().to_rgb8();
        let cell = layout.cell as u32;
        assert_eq!(cell, 12);
        let origin = (layout.left as u32, layout.top as u32);
        assert_eq!(png.width(), origin.0 + 101 * cell + 110);
        assert_eq!(
            png.height(),
            origin.1 + 101 * cell + layout.name_w as u32 + 40
        );
        // The centre of cell (r, c) holds viridis of the row's share.
        let shares = shares(&matrix);
        for (r, c) in [(0, 0), (3, 2), (50, 50), (0, 1)] {
            let px = png.get_pixel(
                origin.0 + c * cell + cell / 2,
                origin.1 + r * cell + cell / 2,
            );
            let want = colour(shares[r as usize][c as usize]);
            assert_eq!(
                (px[0], px[1], px[2]),
                (want.0, want.1, want.2),
                "cell ({r}, {c})"
            );
        }
        // Names are inked left of the matrix and below it.
        let dark = |x0: u32, y0: u32, w: u32, h: u32| {
            (x0..x0 + w)
                .flat_map(|x| (y0..y0 + h).map(move |y| (x, y)))
                .filter(|&(x, y)| png.get_pixel(x, y)[0] < 128)
                .count()
        };
        assert!(dark(0, 64, origin.0, 101 * cell) > 2000, "row names");
        assert!(
            dark(origin.0, 64 + 101 * cell + 4, 101 * cell, 100) > 2000,
            "column names"
        );
    }

    #[test]
    fn cells_stay_legible_from_9_to_101_classes() {
        assert_eq!(cell_side(9), 44);
        assert_eq!(cell_side(101), 12);
        assert_eq!(cell_side(400), 12);
        let s = shares(&[vec![3, 1], vec![0, 0]]);
        assert_eq!(s, [vec![0.75, 0.25], vec![0.0, 0.0]]);
    }
}
