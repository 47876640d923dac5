//! Parsers of flag values that are numbers with a range.

/// A number of cores, 0.01 or more (`--scaling-cpu-limit`).
pub(super) fn positive_cores(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(cores) if cores.is_finite() && cores >= 0.01 => Ok(cores),
        _ => Err(format!(
            "expected a number of cores of 0.01 or more, got {s:?}"
        )),
    }
}

/// A count of 1 or more (`--stock-rounds`).
pub(super) fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of 1 or more, got {s:?}")),
    }
}

/// A share, from 0 to 1.
pub(super) fn share(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("expected a share from 0 to 1, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_out_of_their_range_are_refused_with_what_was_expected() {
        assert_eq!(positive_cores("0.3"), Ok(0.3));
        for bad in ["0", "0.001", "-1", "NaN", "inf", "many"] {
            let refused = positive_cores(bad).unwrap_err();
            assert!(refused.contains("0.01 or more"), "{bad}: {refused}");
        }
        assert_eq!(
            (share("0"), share("0.05"), share("1")),
            (Ok(0.0), Ok(0.05), Ok(1.0))
        );
        for bad in ["-0.1", "1.5", "NaN", "5%"] {
            let refused = share(bad).unwrap_err();
            assert!(refused.contains("from 0 to 1"), "{bad}: {refused}");
        }
    }
}
