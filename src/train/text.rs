//! Text on the plots, laid out here with ab_glyph: each glyph at the pen position plus its own
//! left bearing, pen advanced by the glyph's advance and the pair's kerning, in floating point.
//! plotters' ab_glyph text drops the bearing and rounds each glyph's position, which spaces
//! letters unevenly ("Han dstan dPushups" for HandstandPushups). Text is drawn horizontally or
//! rotated a quarter turn (reading upwards), with the bundled Ubuntu Light font.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::plot::PlotError;

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(epaint_default_fonts::UBUNTU_LIGHT).ok())
        .as_ref()
}

/// A line of text as ink: `(x, y, coverage)` pixels with the origin at the top left of the
/// line box (`size` pixels high), and the line's advance width.
pub struct Ink {
    pub pixels: Vec<(i32, i32, f32)>,
    pub width: f32,
}

/// Lays out `text` at `size` pixels (the em height).
pub fn layout(text: &str, size: f32) -> Ink {
    let Some(font) = font() else {
        return Ink {
            pixels: Vec::new(),
            width: 0.0,
        };
    };
    let scaled = font.as_scaled(PxScale::from(size));
    let ascent = scaled.ascent();
    let mut pixels = Vec::new();
    let mut pen = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(PxScale::from(size), point(pen, ascent));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            let (x0, y0) = (bounds.min.x as i32, bounds.min.y as i32);
            outline.draw(|x, y, coverage| {
                if coverage > 0.02 {
                    pixels.push((x0 + x as i32, y0 + y as i32, coverage));
                }
            });
        }
        pen += scaled.h_advance(id);
        prev = Some(id);
    }
    Ink { pixels, width: pen }
}

/// Width in pixels of `text` at `size`.
pub fn width(text: &str, size: f32) -> f32 {
    layout(text, size).width
}

/// Where a line of text is anchored at the given point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// The point is the line's top left (top right for `End`; a rotated line starts at its
    /// bottom left).
    Start,
    End,
    Centre,
}

/// Draws `text` at `at`, horizontally or (`upright`) rotated to read upwards.
pub fn draw(
    area: &DrawingArea<BitMapBackend, Shift>,
    text: &str,
    at: (i32, i32),
    size: f32,
    color: RGBColor,
    anchor: Anchor,
    upright: bool,
) -> Result<(), PlotError> {
    let ink = layout(text, size);
    let shift = match anchor {
        Anchor::Start => 0,
        Anchor::End => -(ink.width.round() as i32),
        Anchor::Centre => -(ink.width / 2.0).round() as i32,
    };
    for (x, y, coverage) in ink.pixels {
        let (x, y) = (x + shift, y);
        let p = if upright {
            (at.0 + y, at.1 - x)
        } else {
            (at.0 + x, at.1 + y)
        };
        // Ubuntu Light is thin at 9-12 px: the square root of the coverage darkens its strokes.
        area.draw_pixel(p, &color.mix(f64::from(coverage.min(1.0).sqrt())))
            .map_err(|e| PlotError::from(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest run of blank columns between the first and the last inked column.
    fn widest_gap(text: &str, size: f32) -> i32 {
        let ink = layout(text, size);
        let (lo, hi) = ink.pixels.iter().fold((i32::MAX, i32::MIN), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        let inked: std::collections::BTreeSet<i32> = ink
            .pixels
            .iter()
            .filter(|p| p.2 > 0.25)
            .map(|p| p.0)
            .collect();
        let (mut gap, mut run) = (0, 0);
        for x in lo..=hi {
            run = if inked.contains(&x) { 0 } else { run + 1 };
            gap = gap.max(run);
        }
        gap
    }

    #[test]
    fn letters_of_a_word_are_evenly_spaced() {
        // One word: no gap between letters wider than a thin space at 14 px.
        for word in ["HandstandPushups", "ApplyEyeMakeup", "BlowDryHair", "Yo-Yo"] {
            let gap = widest_gap(word, 14.0);
            assert!(gap <= 2, "{word}: a gap of {gap} px between letters");
        }
        // A space is a gap: the layout keeps it.
        assert!(widest_gap("Handstand Pushups", 14.0) >= 3);
        // Width grows with the text, about 0.45-0.6 em per letter in Ubuntu Light.
        let w = width("HandstandPushups", 14.0);
        assert!((90.0..=140.0).contains(&w), "width {w}");
    }
}
