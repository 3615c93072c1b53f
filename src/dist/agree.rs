//! Comparing what the ranks of a job were asked to do: descriptions as (what, value) pairs, the
//! first difference named with both values.

/// The first (what, ours, theirs) that differs between two descriptions.
pub(super) fn first_difference(
    ours: &[(String, String)],
    theirs: &[(String, String)],
) -> Option<(String, String, String)> {
    for (what, value) in ours {
        match theirs.iter().find(|(w, _)| w == what) {
            Some((_, v)) if v == value => {}
            Some((_, v)) => return Some((what.clone(), value.clone(), v.clone())),
            None => return Some((what.clone(), value.clone(), "nothing".into())),
        }
    }
    theirs
        .iter()
        .find(|(w, _)| !ours.iter().any(|(o, _)| o == w))
        .map(|(w, v)| (w.clone(), "nothing".into(), v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_first_difference_is_named_with_both_values() {
        let ours = items(&[
            ("config field 'lr'", "0.1"),
            ("the training list", "36 videos"),
        ]);
        assert_eq!(first_difference(&ours, &ours), None);
        let theirs = items(&[
            ("config field 'lr'", "0.2"),
            ("the training list", "35 videos"),
        ]);
        assert_eq!(
            first_difference(&ours, &theirs),
            Some(("config field 'lr'".into(), "0.1".into(), "0.2".into()))
        );
        let fewer = items(&[("config field 'lr'", "0.1")]);
        assert_eq!(
            first_difference(&ours, &fewer),
            Some((
                "the training list".into(),
                "36 videos".into(),
                "nothing".into()
            ))
        );
        assert_eq!(
            first_difference(&fewer, &ours),
            Some((
                "the training list".into(),
                "nothing".into(),
                "36 videos".into()
            ))
        );
    }
}
