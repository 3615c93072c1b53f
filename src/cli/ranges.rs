//! Range checks of numeric flags, done by the parser so that a value out of range is a usage
//! error (exit 2) that states the allowed range, before anything starts.
//!
//! Integers use clap's ranged parsers (`clap::value_parser!(u32).range(1..)`, [`positive`] for
//! `usize`); floats use [`finite`], which also refuses `nan` and `inf` (Rust's `f32` parser
//! accepts both). Shared by every command: training flags can use the same parsers.

use std::ops::RangeInclusive;

/// A flag's value that is not a number in its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RangeError {
    #[error("'{text}' is not a number")]
    NotNumber { text: String },
    #[error("{value} is not in {lo}..={hi}")]
    OutOfRange { value: String, lo: f64, hi: f64 },
    #[error("{value} is not in {lo}..={hi} (it must be above {lo})")]
    NotAbove { value: String, lo: f64, hi: f64 },
}

/// Parses a finite number in `lo..=hi` (above `lo` when `open`).
fn parse_in<T>(text: &str, lo: T, hi: T, open: bool) -> Result<T, RangeError>
where
    T: std::str::FromStr + PartialOrd + Copy + Into<f64>,
{
    let value: T = text
        .trim()
        .parse()
        .map_err(|_| RangeError::NotNumber { text: text.into() })?;
    let finite = value.into().is_finite();
    let low_ok = if open { value > lo } else { value >= lo };
    if finite && low_ok && value <= hi {
        return Ok(value);
    }
    let (value, lo, hi) = (text.trim().to_string(), lo.into(), hi.into());
    Err(
        if open && finite && value.parse::<f64>().is_ok_and(|v| v == lo) {
            RangeError::NotAbove { value, lo, hi }
        } else {
            RangeError::OutOfRange { value, lo, hi }
        },
    )
}

/// A parser of finite `f32` values in `range` (both ends included).
pub fn finite(
    range: RangeInclusive<f32>,
) -> impl Fn(&str) -> Result<f32, RangeError> + Clone + Send + Sync + 'static {
    move |text: &str| parse_in(text, *range.start(), *range.end(), false)
}

/// A parser of finite `f64` values in `range` (both ends included).
pub fn finite64(
    range: RangeInclusive<f64>,
) -> impl Fn(&str) -> Result<f64, RangeError> + Clone + Send + Sync + 'static {
    move |text: &str| parse_in(text, *range.start(), *range.end(), false)
}

/// A parser of finite `f64` values above `range.start()` and at most `range.end()` (a learning
/// rate, a temperature: 0 is no value for them).
pub fn above64(
    range: RangeInclusive<f64>,
) -> impl Fn(&str) -> Result<f64, RangeError> + Clone + Send + Sync + 'static {
    move |text: &str| parse_in(text, *range.start(), *range.end(), true)
}

/// A parser of `usize` values in `range` (clips per video: the published protocols take 1 to 10).
pub fn count(range: RangeInclusive<u64>) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(range)
}

/// A parser of `usize` values of at least 1 (clap's `value_parser!(usize)` has no `.range`).
pub fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=u32::MAX as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finite_floats_in_range_pass_and_nan_inf_and_outsiders_do_not() {
        let unit = finite(0.0..=1.0);
        assert_eq!(unit("0.5"), Ok(0.5));
        assert_eq!(unit("1"), Ok(1.0));
        for bad in ["nan", "inf", "-inf", "1.5", "-0.1"] {
            let err = unit(bad).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains("is not in 0..=1"), "{bad}: {err}");
        }
        assert!(matches!(unit("x"), Err(RangeError::NotNumber { .. })));
    }

    #[test]
    fn f64_ranges_open_and_closed() {
        let lr = above64(0.0..=10.0);
        assert_eq!(lr("0.003"), Ok(0.003));
        assert_eq!(
            lr("0").unwrap_err().to_string(),
            "0 is not in 0..=10 (it must be above 0)"
        );
        for bad in ["-1", "11", "nan", "inf"] {
            let err = lr(bad).unwrap_err().to_string();
            assert_eq!(err, format!("{bad} is not in 0..=10"));
        }
        let momentum = finite64(0.0..=0.999);
        assert_eq!(momentum("0"), Ok(0.0));
        assert_eq!(
            momentum("1").unwrap_err().to_string(),
            "1 is not in 0..=0.999"
        );
    }
}
