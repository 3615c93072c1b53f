//! Training curves and confusion matrices as PNG (plotters, bitmap backend). Text uses a font
//! bundled in a crate, so nothing depends on the machine's fonts. Files are drawn to a temporary
//! file beside the target and renamed into place.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use super::TrainError;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The font is a valid TTF shipped inside the crate; failing would only lose text.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// A drawing failure of plotters, kept as the source of [`TrainError::Plot`].
type PlotError = Box<dyn std::error::Error + Send + Sync>;

fn draw_atomically(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<(), PlotError>,
) -> Result<(), TrainError> {
    register_font();
    let err = |source: PlotError| TrainError::Plot {
        path: path.to_path_buf(),
        source,
    };
    let file = crate::fsio::AtomicFile::create(path, &[])?;
    {
        let root = BitMapBackend::new(file.temp_path(), size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.into()))?;
        draw(&root).map_err(err)?;
        root.present().map_err(|e| err(e.into()))?;
    }
    file.commit()?;
    Ok(())
}

/// One epoch's figures for the curves.
#[derive(Debug, Clone, Copy)]
pub struct CurvePoint {
    pub epoch: f64,
    pub train_loss: f64,
    pub train_top1: f64,
    pub val_top1: Option<f64>,
}

/// Loss (left) and accuracy (right) against the epoch.
pub fn curves(path: &Path, points: &[CurvePoint], title: &str) -> Result<(), TrainError> {
    draw_atomically(path, (960, 400), |root| {
        let e = |x: DrawingAreaErrorKind<_>| PlotError::from(x);
        let (left, right) = root.split_horizontally(480);
        let max_epoch = points.iter().map(|p| p.epoch).fold(1.0, f64::max);
        let max_loss = points
            .iter()
            .map(|p| p.train_loss)
            .filter(|l| l.is_finite())
            .fold(0.1, f64::max);
        let mut chart = ChartBuilder::on(&left)
            .caption(format!("{title}: training loss"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..max_epoch, 0f64..max_loss * 1.05)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss")
            .draw()
            .map_err(e)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.epoch, p.train_loss)),
                &RED,
            ))
            .map_err(e)?;
        let mut chart = ChartBuilder::on(&right)
            .caption(format!("{title}: top-1"), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d(0f64..max_epoch, 0f64..1f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("accuracy")
            .draw()
            .map_err(e)?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.epoch, p.train_top1)),
                &BLUE,
            ))
            .map_err(e)?
            .label("train")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .filter_map(|p| p.val_top1.map(|v| (p.epoch, v))),
                &GREEN,
            ))
            .map_err(e)?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(e)?;
        Ok(())
    })
}

/// A confusion matrix, rows = true class, columns = prediction, shaded by the row's fraction.
pub fn confusion(
    path: &Path,
    matrix: &[Vec<u64>],
    classes: &[String],
    title: &str,
) -> Result<(), TrainError> {
    let n = matrix.len().max(1);
    let cell = (560 / n as u32).clamp(4, 48);
    let label_w = if n <= 30 { 160 } else { 20 };
    let side = cell * n as u32;
    let size = (side + label_w + 30, side + label_w + 40);
    draw_atomically(path, size, |root| {
        let e = |x: DrawingAreaErrorKind<_>| PlotError::from(x);
        root.draw(&Text::new(
            title.to_string(),
            (10, 8),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(e)?;
        let x0 = label_w as i32;
        let y0 = 30;
        let font = ("sans-serif", (cell as i32 * 2 / 5).clamp(8, 14)).into_font();
        for (r, row) in matrix.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (c, &v) in row.iter().enumerate() {
                let frac = if total > 0 {
                    v as f64 / total as f64
                } else {
                    0.0
                };
                let shade = (255.0 * (1.0 - frac)) as u8;
                let color = if r == c {
                    RGBColor(shade, 255, shade)
                } else {
                    RGBColor(255, shade, shade)
                };
                let (x, y) = (x0 + (c as u32 * cell) as i32, y0 + (r as u32 * cell) as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    color.filled(),
                ))
                .map_err(e)?;
                if cell >= 20 && v > 0 {
                    root.draw(&Text::new(
                        v.to_string(),
                        (x + 3, y + cell as i32 / 3),
                        font.clone(),
                    ))
                    .map_err(e)?;
                }
            }
            if n <= 30 {
                let name = classes.get(r).map_or("?", String::as_str);
                root.draw(&Text::new(
                    name.to_string(),
                    (4, y0 + (r as u32 * cell) as i32 + cell as i32 / 3),
                    font.clone(),
                ))
                .map_err(e)?;
                root.draw(&Text::new(
                    format!("{r}"),
                    (x0 + (r as u32 * cell) as i32 + 3, y0 + side as i32 + 4),
                    font.clone(),
                ))
                .map_err(e)?;
            }
        }
        root.draw(&Text::new(
            "rows: true class, columns: prediction (by class index)".to_string(),
            (x0, y0 + side as i32 + 22),
            ("sans-serif", 12).into_font(),
        ))
        .map_err(e)?;
        Ok(())
    })
}
