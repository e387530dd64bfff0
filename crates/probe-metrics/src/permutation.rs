//! Permutation tests read at a level α, and what they can say: a null of n samples cannot give
//! a p-value below 1/(n + 1), so a test whose null is that small answers "undetermined" rather
//! than "not above chance" — a verdict the data did not reach must not be printed as found.

use serde::{Deserialize, Serialize};

/// The level every chance test in `probe` is read at.
pub const ALPHA: f64 = 0.05;

/// The answer of a permutation test at level α.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// p < α.
    Above,
    /// p ≥ α with a null large enough that p < α was reachable.
    NotAbove,
    /// The null is too small for p < α: its smallest p, 1/(n + 1), is ≥ α.
    #[default]
    Undetermined,
}

impl Verdict {
    /// The verdict of a permutation p-value from a null of `n` samples, at level `alpha`.
    pub fn of(p: f64, n: usize, alpha: f64) -> Verdict {
        if smallest_p(n) >= alpha {
            Verdict::Undetermined
        } else if p < alpha {
            Verdict::Above
        } else {
            Verdict::NotAbove
        }
    }

    /// Several nulls together: above only when every null says above; not above when any
    /// null that could decide says not above; else undetermined. No null: undetermined.
    pub fn all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut any = false;
        let mut undetermined = false;
        for v in verdicts {
            any = true;
            match v {
                Verdict::NotAbove => return Verdict::NotAbove,
                Verdict::Undetermined => undetermined = true,
                Verdict::Above => {}
            }
        }
        if !any || undetermined {
            Verdict::Undetermined
        } else {
            Verdict::Above
        }
    }

    /// "above chance", "not above chance", "undetermined (p ≥ 1/(n+1) = …)" for a null of
    /// `n` samples (the smallest null when several were run).
    pub fn describe(self, n: usize) -> String {
        match self {
            Verdict::Above => "above chance".into(),
            Verdict::NotAbove => "not above chance".into(),
            Verdict::Undetermined => format!(
                "undetermined (p ≥ 1/(n+1) = {:.3} with n = {n})",
                smallest_p(n)
            ),
        }
    }
}

/// The smallest permutation p-value a null of `n` samples can give: 1/(n + 1).
pub fn smallest_p(n: usize) -> f64 {
    1.0 / (n as f64 + 1.0)
}

/// Null samples needed for a permutation test to be able to reach p < `alpha`.
pub fn null_size_for(alpha: f64) -> usize {
    // 1/(n+1) < α  ⇔  n > 1/α − 1
    (1.0 / alpha - 1.0).floor() as usize + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_must_be_large_enough_to_decide() {
        assert_eq!(null_size_for(0.05), 20);
        assert!(smallest_p(null_size_for(0.05)) < 0.05);
        assert!(smallest_p(null_size_for(0.05) - 1) >= 0.05);
        assert_eq!(Verdict::of(0.05, 19, 0.05), Verdict::Undetermined);
        assert_eq!(Verdict::of(1.0 / 21.0, 20, 0.05), Verdict::Above);
        assert_eq!(Verdict::of(0.2, 20, 0.05), Verdict::NotAbove);
        assert_eq!(Verdict::of(0.2, 3, 0.05), Verdict::Undetermined);
        assert_eq!(
            serde_json::to_string(&Verdict::NotAbove).unwrap(),
            "\"not-above\""
        );
    }
}
