//! Training curves as PNG (plotters' bitmap backend): loss (training and validation), top-1
//! (training and validation) and the learning rate against the epoch, each point marked so a
//! one-epoch run shows its values, the legend above each panel so it never covers data. Axes,
//! ticks and text are drawn here ([`super::text`] lays out the bundled font). Files are drawn to
//! a temporary file beside the target and renamed into place.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::TrainError;
use super::text::{self, Anchor};

/// A drawing failure, kept as the source of [`TrainError::Plot`].
pub(super) type PlotError = Box<dyn std::error::Error + Send + Sync>;

pub(super) fn draw_atomically(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), PlotError>,
) -> Result<(), TrainError> {
    let err = |source: PlotError| TrainError::Plot {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::fsio::AtomicFile::create(path, &[])?;
    {
        let root = BitMapBackend::new(file.temp_path(), size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string().into()))?;
        draw(&root).map_err(err)?;
        root.present().map_err(|e| err(e.to_string().into()))?;
    }
    file.commit()?;
    Ok(())
}

/// One epoch's figures for the curves.
#[derive(Debug, Clone, Copy)]
pub struct CurvePoint {
    pub epoch: f64,
    pub lr: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_loss: Option<f64>,
    pub val_top1: Option<f64>,
}

/// A line of a panel.
struct Series {
    name: &'static str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// About five round tick values covering `0..=max`.
fn ticks(max: f64) -> Vec<f64> {
    if !(max > 0.0 && max.is_finite()) {
        return vec![0.0];
    }
    let rough = max / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    (0..=((max / step + 1e-9).floor() as usize))
        .map(|k| k as f64 * step)
        .collect()
}

/// A tick label: integers as they are, small numbers in scientific form.
fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() < 0.01 {
        format!("{v:.0e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// One panel: title, legend row, axes with ticks, the series as lines with a marker per point.
fn panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    y_top: f64,
    series: &[Series],
) -> Result<(), PlotError> {
    let e = |x: DrawingAreaErrorKind<_>| PlotError::from(x.to_string());
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    text::draw(area, title, (w / 2, 6), 15.0, BLACK, Anchor::Centre, false)?;
    // The legend, in a row of its own above the plot.
    let mut x = 60;
    for s in series {
        area.draw(&PathElement::new(
            vec![(x, 37), (x + 18, 37)],
            s.color.stroke_width(2),
        ))
        .map_err(e)?;
        area.draw(&Circle::new((x + 9, 37), 3, s.color.filled()))
            .map_err(e)?;
        text::draw(
            area,
            s.name,
            (x + 23, 30),
            12.0,
            BLACK,
            Anchor::Start,
            false,
        )?;
        x += 23 + text::width(s.name, 12.0) as i32 + 16;
    }
    let (left, right, top, bottom) = (58, w - 14, 52, h - 38);
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_top = if y_top > 0.0 && y_top.is_finite() {
        y_top
    } else {
        1.0
    };
    // Room after the last epoch, so its marker sits inside the frame.
    let x_span = x_max * 1.04 + 0.1;
    let px = |(x, y): (f64, f64)| -> (i32, i32) {
        (
            left + ((x / x_span) * f64::from(right - left)).round() as i32,
            bottom - ((y / y_top) * f64::from(bottom - top)).round() as i32,
        )
    };
    let grid = RGBColor(225, 225, 225);
    for t in ticks(y_top) {
        let (_, y) = px((0.0, t));
        area.draw(&PathElement::new(vec![(left, y), (right, y)], grid))
            .map_err(e)?;
        text::draw(
            area,
            &label(t),
            (left - 6, y - 7),
            11.0,
            BLACK,
            Anchor::End,
            false,
        )?;
    }
    // Whole epochs only.
    for t in ticks(x_max).into_iter().filter(|t| t.fract() == 0.0) {
        let (x, _) = px((t, 0.0));
        area.draw(&PathElement::new(vec![(x, top), (x, bottom)], grid))
            .map_err(e)?;
        text::draw(
            area,
            &label(t),
            (x, bottom + 5),
            11.0,
            BLACK,
            Anchor::Centre,
            false,
        )?;
    }
    text::draw(
        area,
        "epoch",
        ((left + right) / 2, h - 17),
        12.0,
        BLACK,
        Anchor::Centre,
        false,
    )?;
    area.draw(&Rectangle::new(
        [(left, top), (right, bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(e)?;
    for s in series {
        let points: Vec<(i32, i32)> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&p| px((p.0, p.1.clamp(0.0, y_top))))
            .collect();
        area.draw(&PathElement::new(points.clone(), s.color.stroke_width(2)))
            .map_err(e)?;
        for p in points {
            area.draw(&Circle::new(p, 3, s.color.filled())).map_err(e)?;
        }
    }
    Ok(())
}

/// Loss, top-1 and learning rate against the epoch, side by side, under `title`.
pub fn curves(path: &Path, points: &[CurvePoint], title: &str) -> Result<(), TrainError> {
    // Colour-blind-safe pair (Okabe-Ito blue and vermillion), plus black for the rate.
    let (train, val) = (RGBColor(0, 114, 178), RGBColor(213, 94, 0));
    let of = |f: &dyn Fn(&CurvePoint) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| f(p).map(|v| (p.epoch, v)))
            .collect()
    };
    let pair = |training: Vec<(f64, f64)>, validation: Vec<(f64, f64)>| {
        [
            ("training", train, training),
            ("validation", val, validation),
        ]
        .map(|(name, color, points)| Series {
            name,
            color,
            points,
        })
    };
    let loss = pair(of(&|p| Some(p.train_loss)), of(&|p| p.val_loss));
    let top1 = pair(of(&|p| Some(p.train_top1)), of(&|p| p.val_top1));
    let lr = [Series {
        name: "learning rate",
        color: BLACK,
        points: of(&|p| Some(p.lr)),
    }];
    let max = |s: &[Series]| {
        s.iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            * 1.08
    };
    draw_atomically(path, (1260, 420), |root| {
        text::draw(root, title, (630, 6), 16.0, BLACK, Anchor::Centre, false)?;
        let body = root.margin(28, 0, 0, 0);
        let panels = body.split_evenly((1, 3));
        panel(&panels[0], "loss", max(&loss), &loss)?;
        panel(&panels[1], "top-1", 1.0, &top1)?;
        panel(&panels[2], "learning rate", max(&lr), &lr)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A one-epoch run still shows its values: a marker per series, inside the frame.
    #[cfg(feature = "ui")]
    #[test]
    fn one_epoch_curves_show_their_markers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let point = CurvePoint {
            epoch: 1.0,
            lr: 0.003,
            train_loss: 2.2,
            train_top1: 0.12,
            val_loss: Some(2.1),
            val_top1: Some(0.11),
        };
        curves(&path, &[point], "one epoch").unwrap();
        let png = image::open(&path).unwrap().to_rgb8();
        let count = |rgb: [u8; 3]| png.pixels().filter(|p| p.0 == rgb).count();
        // Legend swatches alone are about 2 x 40 pixels per colour and panel; markers add more.
        let (train, val) = (count([0, 114, 178]), count([213, 94, 0]));
        assert!(
            train >= 2 * 60 && val >= 2 * 60,
            "train {train}, validation {val}"
        );
        // The rate's marker sits in the third panel, right of its left axis.
        let black_in_plot = (850..1240)
            .flat_map(|x| (60..380).map(move |y| (x, y)))
            .filter(|&(x, y)| png.get_pixel(x, y).0 == [0, 0, 0])
            .count();
        assert!(black_in_plot > 500, "{black_in_plot}");
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let near = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
        };
        assert!(near(&ticks(1.0), &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]));
        assert!(near(&ticks(40.0), &[0.0, 10.0, 20.0, 30.0, 40.0]));
        assert_eq!(ticks(0.0033).len(), 4);
        assert_eq!(label(0.003), "3e-3");
        assert_eq!(label(0.25), "0.25");
        assert_eq!(label(20.0), "20");
        assert_eq!(ticks(f64::NAN), [0.0]);
    }
}
