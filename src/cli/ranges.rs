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
}

/// A parser of finite `f32` values in `range` (both ends included).
pub fn finite(
    range: RangeInclusive<f32>,
) -> impl Fn(&str) -> Result<f32, RangeError> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let value: f32 = text
            .trim()
            .parse()
            .map_err(|_| RangeError::NotNumber { text: text.into() })?;
        if value.is_finite() && range.contains(&value) {
            Ok(value)
        } else {
            Err(RangeError::OutOfRange {
                value: text.trim().to_string(),
                lo: f64::from(*range.start()),
                hi: f64::from(*range.end()),
            })
        }
    }
}

/// A parser of `usize` values of at least 1 (clap's `value_parser!(usize)` has no `.range`).
pub fn positive() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=u32::MAX as u64)
}

#[cfg(test)]
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
}
