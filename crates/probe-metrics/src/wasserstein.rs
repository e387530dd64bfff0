//! Wasserstein distances on ordered categories, barycenters and the prompt-sensitivity measure.

use crate::{check_distribution, check_pair, check_same_len, MetricError, Result};

/// Sorts the support ascending, carrying p and q along; positions default to 0..N−1.
fn sorted_support(p: &[f64], q: &[f64], positions: Option<&[f64]>) -> Result<Vec<(f64, f64, f64)>> {
    check_pair(p, q)?;
    let pos: Vec<f64> = match positions {
        Some(v) => {
            check_same_len(p, v, "distribution and positions")?;
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(MetricError::NonFinite {
                    what: "positions".into(),
                    index: i,
                });
            }
            v.to_vec()
        }
        None => (0..p.len()).map(|i| i as f64).collect(),
    };
    let mut rows: Vec<(f64, f64, f64)> = pos
        .into_iter()
        .zip(p.iter().copied())
        .zip(q.iter().copied())
        .map(|((x, a), b)| (x, a, b))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(rows)
}

/// Wasserstein-1 between p and q on the real line, with the categories at `positions`
/// (default 0..N−1): Σ |F_p − F_q| · gap. Equals `scipy.stats.wasserstein_distance(x, x, p, q)`.
pub fn wasserstein_1d(p: &[f64], q: &[f64], positions: Option<&[f64]>) -> Result<f64> {
    let rows = sorted_support(p, q, positions)?;
    let (mut cp, mut cq, mut w) = (0.0, 0.0, 0.0);
    for pair in rows.windows(2) {
        cp += pair[0].1;
        cq += pair[0].2;
        w += (cp - cq).abs() * (pair[1].0 - pair[0].0);
    }
    Ok(w)
}

/// W1 divided by the largest possible W1 on that support (max − min position), in [0, 1]:
/// OpinionQA's normalized form.
pub fn normalized_wasserstein_1d(p: &[f64], q: &[f64], positions: Option<&[f64]>) -> Result<f64> {
    let rows = sorted_support(p, q, positions)?;
    let span = rows.last().map(|r| r.0).unwrap_or(0.0) - rows.first().map(|r| r.0).unwrap_or(0.0);
    if span <= 0.0 {
        return Err(MetricError::InvalidInput(
            "normalized Wasserstein needs at least two distinct positions".into(),
        ));
    }
    Ok(wasserstein_1d(p, q, positions)? / span)
}

fn check_weights(n: usize, weights: Option<&[f64]>) -> Result<Vec<f64>> {
    match weights {
        None => Ok(vec![1.0 / n as f64; n]),
        Some(w) => {
            if w.len() != n {
                return Err(MetricError::LengthMismatch {
                    what: "distributions and weights".into(),
                    left: n,
                    right: w.len(),
                });
            }
            crate::normalize(w, "weights")
        }
    }
}

/// The (weighted) arithmetic mean of distributions: the latent-space study's barycenter ψ̄.
pub fn arithmetic_barycenter(dists: &[Vec<f64>], weights: Option<&[f64]>) -> Result<Vec<f64>> {
    let first = dists
        .first()
        .ok_or_else(|| MetricError::Empty("distributions".into()))?;
    let w = check_weights(dists.len(), weights)?;
    let mut out = vec![0.0; first.len()];
    for (d, wk) in dists.iter().zip(&w) {
        check_same_len(first, d, "barycenter inputs")?;
        check_distribution(d, "barycenter input")?;
        for (o, x) in out.iter_mut().zip(d) {
            *o += wk * x;
        }
    }
    Ok(out)
}

/// The 1-D Wasserstein-2 barycenter of distributions on the same ordered positions: its
/// quantile function is the weighted average of theirs. Returns its atoms (ascending) and
/// their masses; atoms generally fall between the input positions.
pub fn w2_barycenter_1d(
    dists: &[Vec<f64>],
    positions: &[f64],
    weights: Option<&[f64]>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    if dists.is_empty() {
        return Err(MetricError::Empty("distributions".into()));
    }
    let w = check_weights(dists.len(), weights)?;
    let mut order: Vec<usize> = (0..positions.len()).collect();
    order.sort_by(|&a, &b| positions[a].total_cmp(&positions[b]));
    let mut cdfs = Vec::with_capacity(dists.len());
    let mut breaks = vec![0.0, 1.0];
    for d in dists {
        check_same_len(d, positions, "distribution and positions")?;
        check_distribution(d, "barycenter input")?;
        let mut acc = 0.0;
        let cdf: Vec<f64> = order
            .iter()
            .map(|&i| {
                acc += d[i];
                acc
            })
            .collect();
        breaks.extend(cdf.iter().copied().filter(|&c| c > 0.0 && c < 1.0));
        cdfs.push(cdf);
    }
    breaks.sort_by(f64::total_cmp);
    breaks.dedup_by(|a, b| (*a - *b).abs() < 1e-15);
    let sorted_pos: Vec<f64> = order.iter().map(|&i| positions[i]).collect();
    let mut atoms: Vec<f64> = Vec::new();
    let mut masses: Vec<f64> = Vec::new();
    for seg in breaks.windows(2) {
        let (lo, hi) = (seg[0], seg[1]);
        if hi - lo <= 0.0 {
            continue;
        }
        let mid = 0.5 * (lo + hi);
        // Quantile of each input at `mid`: the first position whose CDF reaches it.
        let atom: f64 = cdfs
            .iter()
            .zip(&w)
            .map(|(cdf, wk)| {
                let k = cdf.iter().position(|&c| c >= mid).unwrap_or(cdf.len() - 1);
                wk * sorted_pos[k]
            })
            .sum();
        match atoms.last() {
            Some(&last) if (last - atom).abs() < 1e-12 => {
                *masses.last_mut().expect("paired") += hi - lo
            }
            _ => {
                atoms.push(atom);
                masses.push(hi - lo);
            }
        }
    }
    Ok((atoms, masses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w1_of_opposite_corners_is_the_span() {
        assert_eq!(
            wasserstein_1d(&[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0], None).unwrap(),
            2.0
        );
        assert_eq!(
            normalized_wasserstein_1d(&[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0], None).unwrap(),
            1.0
        );
    }

    #[test]
    fn w2_barycenter_of_two_diracs_is_their_midpoint() {
        let (atoms, masses) = w2_barycenter_1d(
            &[vec![1.0, 0.0, 0.0], vec![0.0, 0.0, 1.0]],
            &[0.0, 1.0, 2.0],
            None,
        )
        .unwrap();
        assert_eq!(atoms, vec![1.0]);
        assert_eq!(masses, vec![1.0]);
    }
}
