//! Binary classification scores of a probe on held-out rows.

pub use probe_schema::probes::Scores;

/// Scores of the decisions `score > 0` (probability > 0.5) against `truth`.
pub fn score(truth: &[bool], decision: &[f64]) -> Scores {
    assert_eq!(truth.len(), decision.len());
    let (mut tp, mut fp, mut tn, mut fn_) = (0usize, 0usize, 0usize, 0usize);
    for (&t, &d) in truth.iter().zip(decision) {
        match (t, d > 0.0) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (false, false) => tn += 1,
            (true, false) => fn_ += 1,
        }
    }
    let rate = |a: usize, b: usize| {
        if a + b == 0 {
            f64::NAN
        } else {
            a as f64 / (a + b) as f64
        }
    };
    let n = truth.len();
    Scores {
        accuracy: (tp + tn) as f64 / n.max(1) as f64,
        balanced_accuracy: (rate(tp, fn_) + rate(tn, fp)) / 2.0,
        auc: auc(truth, decision),
        f1: if tp == 0 {
            0.0
        } else {
            2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
        },
        n,
    }
}

/// ROC AUC as the Mann–Whitney statistic with average ranks for ties.
pub fn auc(truth: &[bool], score: &[f64]) -> f64 {
    let n_pos = truth.iter().filter(|&&t| t).count();
    let n_neg = truth.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += mean_rank * order[i..=j].iter().filter(|&&k| truth[k]).count() as f64;
        i = j + 1;
    }
    (rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0) / (n_pos * n_neg) as f64
}

/// The mean of each score over folds (NaN scores, e.g. AUC of a one-class fold, skipped).
pub fn mean(scores: &[Scores]) -> Scores {
    let avg = |f: fn(&Scores) -> f64| {
        let v: Vec<f64> = scores.iter().map(f).filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    Scores {
        accuracy: avg(|s| s.accuracy),
        balanced_accuracy: avg(|s| s.balanced_accuracy),
        auc: avg(|s| s.auc),
        f1: avg(|s| s.f1),
        n: scores.iter().map(|s| s.n).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_scores() {
        // tp=2 fn=1 tn=3 fp=1
        let truth = [true, true, true, false, false, false, false];
        let dec = [2.0, 0.5, -1.0, 1.0, -0.5, -2.0, -3.0];
        let s = score(&truth, &dec);
        assert!((s.accuracy - 5.0 / 7.0).abs() < 1e-12);
        assert!((s.balanced_accuracy - (2.0 / 3.0 + 3.0 / 4.0) / 2.0).abs() < 1e-12);
        assert!((s.f1 - 4.0 / 6.0).abs() < 1e-12);
        // Pairs (pos, neg) ordered correctly: 2.0 beats all 4, 0.5 beats 3, -1.0 beats 2 → 9/12.
        assert!((s.auc - 9.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[true, false], &[1.0, 1.0]), 0.5);
        assert_eq!(auc(&[true, false, true], &[0.0, 0.0, 1.0]), 0.75);
        assert!(auc(&[true, true], &[0.0, 1.0]).is_nan());
    }
}
