//! Optimal transport between discrete distributions with an arbitrary ground cost: exact
//! (min-cost flow, POT's `ot.emd2`) and entropic (Sinkhorn, POT's `ot.sinkhorn2`).

use crate::{check_distribution, MetricError, Result};

/// A ground cost between categories.
#[derive(Debug, Clone)]
pub enum GroundCost {
    /// Categories on the real line: cost |x_i − x_j| (W1 in closed form).
    Positions(Vec<f64>),
    /// Any `n × n` cost matrix, row-major (e.g. distances between parties on a left–right
    /// axis, or 1 − δ_ij which makes W equal to total variation).
    Matrix { n: usize, cost: Vec<f64> },
}

impl GroundCost {
    /// The transport distance between p and q under this cost.
    pub fn distance(&self, p: &[f64], q: &[f64]) -> Result<f64> {
        match self {
            GroundCost::Positions(x) => crate::wasserstein::wasserstein_1d(p, q, Some(x)),
            GroundCost::Matrix { n, cost } => {
                if p.len() != *n {
                    return Err(MetricError::LengthMismatch {
                        what: "distribution and cost matrix".into(),
                        left: p.len(),
                        right: *n,
                    });
                }
                Ok(emd(p, q, cost)?.cost)
            }
        }
    }
}

/// The latent-space study's prompt sensitivity: W(ψ_j, ψ̄) for every prompt variant j, with ψ̄
/// the arithmetic barycenter of the variants. `cost` is the ground cost between categories.
pub fn prompt_sensitivity(variants: &[Vec<f64>], cost: &GroundCost) -> Result<Vec<f64>> {
    let bary = crate::wasserstein::arithmetic_barycenter(variants, None)?;
    variants.iter().map(|v| cost.distance(v, &bary)).collect()
}

/// An optimal transport plan and its cost.
#[derive(Debug, Clone)]
pub struct Transport {
    pub cost: f64,
    /// `n × m` row-major: mass moved from source i to target j.
    pub plan: Vec<f64>,
}

fn check_cost(n: usize, m: usize, cost: &[f64]) -> Result<()> {
    if cost.len() != n * m {
        return Err(MetricError::LengthMismatch {
            what: "cost matrix (n·m) and distributions".into(),
            left: cost.len(),
            right: n * m,
        });
    }
    if let Some(i) = cost.iter().position(|c| !c.is_finite()) {
        return Err(MetricError::NonFinite {
            what: "cost matrix".into(),
            index: i,
        });
    }
    Ok(())
}

/// Exact optimal transport min Σ P_ij C_ij s.t. P 1 = a, Pᵀ 1 = b, P ≥ 0, by successive
/// shortest augmenting paths (Bellman–Ford on the residual graph, so negative reduced costs
/// of reverse edges are fine). Meant for the small N of answer options and parties.
pub fn emd(a: &[f64], b: &[f64], cost: &[f64]) -> Result<Transport> {
    check_distribution(a, "a")?;
    check_distribution(b, "b")?;
    let (n, m) = (a.len(), b.len());
    check_cost(n, m, cost)?;
    let mut supply = a.to_vec();
    let mut demand = b.to_vec();
    // Rescale the remaining mass so a and b total exactly the same.
    let (sa, sb): (f64, f64) = (supply.iter().sum(), demand.iter().sum());
    demand.iter_mut().for_each(|d| *d *= sa / sb);
    let mut flow = vec![0.0; n * m];
    let eps = 1e-15;
    loop {
        let remaining: f64 = supply.iter().sum();
        if remaining <= eps * n as f64 {
            break;
        }
        // Nodes: sources 0..n, sinks n..n+m. Forward edge i→j (cost C_ij, ∞ capacity),
        // reverse edge j→i (cost −C_ij, capacity = flow_ij).
        let nodes = n + m;
        let mut dist = vec![f64::INFINITY; nodes];
        let mut prev = vec![usize::MAX; nodes];
        for i in 0..n {
            if supply[i] > eps {
                dist[i] = 0.0;
            }
        }
        for _ in 0..nodes {
            let mut changed = false;
            for i in 0..n {
                for j in 0..m {
                    let c = cost[i * m + j];
                    if dist[i].is_finite() && dist[i] + c < dist[n + j] - 1e-14 {
                        dist[n + j] = dist[i] + c;
                        prev[n + j] = i;
                        changed = true;
                    }
                    if flow[i * m + j] > eps
                        && dist[n + j].is_finite()
                        && dist[n + j] - c < dist[i] - 1e-14
                    {
                        dist[i] = dist[n + j] - c;
                        prev[i] = n + j;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        // The cheapest reachable sink with unmet demand.
        let sink = (0..m)
            .filter(|&j| demand[j] > eps && dist[n + j].is_finite())
            .min_by(|&x, &y| dist[n + x].total_cmp(&dist[n + y]))
            .ok_or_else(|| {
                MetricError::InvalidInput(
                    "optimal transport: no augmenting path (degenerate input)".into(),
                )
            })?;
        // Walk back to find the bottleneck.
        let mut path = Vec::new();
        let mut node = n + sink;
        while prev[node] != usize::MAX {
            if path.len() > nodes {
                return Err(MetricError::InvalidInput(
                    "optimal transport: cycle in augmenting path (numerical trouble)".into(),
                ));
            }
            path.push((prev[node], node));
            node = prev[node];
        }
        let source = node;
        let mut amount = supply[source].min(demand[sink]);
        for &(from, to) in &path {
            if from >= n {
                // reverse edge sink(from) → source(to): limited by existing flow
                amount = amount.min(flow[to * m + (from - n)]);
            }
        }
        if amount <= 0.0 {
            return Err(MetricError::InvalidInput(
                "optimal transport: zero augmentation".into(),
            ));
        }
        for &(from, to) in &path {
            if from < n {
                flow[from * m + (to - n)] += amount;
            } else {
                flow[to * m + (from - n)] -= amount;
            }
        }
        supply[source] -= amount;
        demand[sink] -= amount;
    }
    let total = flow.iter().zip(cost).map(|(f, c)| f * c).sum();
    Ok(Transport {
        cost: total,
        plan: flow,
    })
}

/// Entropic OT by Sinkhorn–Knopp iterations; returns ⟨P, C⟩ of the regularized plan (what
/// POT's `ot.sinkhorn2` returns). `reg` is the entropic weight; iterates until the column
/// marginal error is below `tol` or `max_iter` passes.
pub fn sinkhorn(
    a: &[f64],
    b: &[f64],
    cost: &[f64],
    reg: f64,
    max_iter: usize,
    tol: f64,
) -> Result<Transport> {
    check_distribution(a, "a")?;
    check_distribution(b, "b")?;
    let (n, m) = (a.len(), b.len());
    check_cost(n, m, cost)?;
    if !(reg > 0.0 && reg.is_finite()) {
        return Err(MetricError::InvalidInput(format!(
            "Sinkhorn regularization {reg} must be positive"
        )));
    }
    let k: Vec<f64> = cost.iter().map(|c| (-c / reg).exp()).collect();
    let mut u = vec![1.0 / n as f64; n];
    let mut v = vec![1.0 / m as f64; m];
    for it in 0..max_iter {
        for j in 0..m {
            let ktu: f64 = (0..n).map(|i| k[i * m + j] * u[i]).sum();
            v[j] = b[j] / ktu;
        }
        for i in 0..n {
            let kv: f64 = (0..m).map(|j| k[i * m + j] * v[j]).sum();
            u[i] = a[i] / kv;
        }
        if it % 10 == 0 || it + 1 == max_iter {
            let err: f64 = (0..m)
                .map(|j| ((0..n).map(|i| u[i] * k[i * m + j] * v[j]).sum::<f64>() - b[j]).powi(2))
                .sum::<f64>()
                .sqrt();
            if err < tol {
                break;
            }
        }
        if u.iter().chain(&v).any(|x| !x.is_finite()) {
            return Err(MetricError::InvalidInput(format!(
                "Sinkhorn diverged: regularization {reg} too small for this cost scale"
            )));
        }
    }
    let plan: Vec<f64> = (0..n * m)
        .map(|idx| u[idx / m] * k[idx] * v[idx % m])
        .collect();
    let total = plan.iter().zip(cost).map(|(p, c)| p * c).sum();
    Ok(Transport { cost: total, plan })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emd_with_line_cost_equals_w1() {
        let x = [0.0f64, 1.0, 3.0];
        let cost: Vec<f64> = (0..9).map(|k| (x[k / 3] - x[k % 3]).abs()).collect();
        let (p, q) = ([0.2, 0.5, 0.3], [0.6, 0.1, 0.3]);
        let exact = emd(&p, &q, &cost).unwrap().cost;
        let w1 = crate::wasserstein::wasserstein_1d(&p, &q, Some(&x)).unwrap();
        assert!((exact - w1).abs() < 1e-12, "{exact} vs {w1}");
    }

    #[test]
    fn zero_one_cost_gives_total_variation() {
        let cost: Vec<f64> = (0..16)
            .map(|k| if k / 4 == k % 4 { 0.0 } else { 1.0 })
            .collect();
        let (p, q) = ([0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]);
        let tv = crate::divergence::total_variation(&p, &q).unwrap();
        assert!((emd(&p, &q, &cost).unwrap().cost - tv).abs() < 1e-12);
    }
}
