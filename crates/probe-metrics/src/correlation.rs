//! Correlation structure of answers (the representativeness framework): item × item
//! correlation matrices from respondent-level (or simulated-respondent) answers, and how far a
//! model's matrix is from the humans'.

use crate::stats::Rng;
use crate::{check_same_len, MetricError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pearson,
    Spearman,
}

/// Pearson r (`scipy.stats.pearsonr`).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64> {
    check_same_len(x, y, "x and y")?;
    let n = x.len();
    if n < 2 {
        return Err(MetricError::InvalidInput(
            "correlation needs at least 2 observations".into(),
        ));
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(MetricError::InvalidInput(
            "correlation undefined: a variable is constant".into(),
        ));
    }
    Ok((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Ranks 1..n with ties given their average rank.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman ρ: Pearson r of average ranks (`scipy.stats.spearmanr`).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64> {
    check_same_len(x, y, "x and y")?;
    pearson(&average_ranks(x), &average_ranks(y))
}

/// A symmetric item × item matrix, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationMatrix {
    pub n_items: usize,
    pub values: Vec<f64>,
}

impl CorrelationMatrix {
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.n_items + j]
    }

    fn upper(&self) -> Vec<f64> {
        let k = self.n_items;
        (0..k)
            .flat_map(|i| (i + 1..k).map(move |j| (i, j)))
            .map(|(i, j)| self.get(i, j))
            .collect()
    }
}

/// Correlations between the columns (items) of `answers` (rows = respondents), using for each
/// pair the respondents who answered both (NaN = no answer).
pub fn correlation_matrix(answers: &[Vec<f64>], method: Method) -> Result<CorrelationMatrix> {
    let first = answers
        .first()
        .ok_or_else(|| MetricError::Empty("answer matrix".into()))?;
    let k = first.len();
    if let Some(r) = answers.iter().position(|row| row.len() != k) {
        return Err(MetricError::InvalidInput(format!(
            "answer row {r} has {} items, row 0 has {k}",
            answers[r].len()
        )));
    }
    let mut values = vec![1.0; k * k];
    for i in 0..k {
        for j in i + 1..k {
            let (x, y): (Vec<f64>, Vec<f64>) = answers
                .iter()
                .filter(|r| r[i].is_finite() && r[j].is_finite())
                .map(|r| (r[i], r[j]))
                .unzip();
            let c = match method {
                Method::Pearson => pearson(&x, &y),
                Method::Spearman => spearman(&x, &y),
            }
            .map_err(|e| MetricError::InvalidInput(format!("items {i} and {j}: {e}")))?;
            values[i * k + j] = c;
            values[j * k + i] = c;
        }
    }
    Ok(CorrelationMatrix { n_items: k, values })
}

/// How far two correlation matrices are apart.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MatrixDistance {
    /// Mean |a_ij − b_ij| over item pairs i < j.
    pub mean_abs_diff: f64,
    /// ‖A − B‖_F over the whole matrix.
    pub frobenius: f64,
    /// Pearson correlation of the i < j entries ("correlation of correlations").
    pub corr_of_corr: f64,
}

pub fn matrix_distance(a: &CorrelationMatrix, b: &CorrelationMatrix) -> Result<MatrixDistance> {
    if a.n_items != b.n_items {
        return Err(MetricError::LengthMismatch {
            what: "correlation matrices".into(),
            left: a.n_items,
            right: b.n_items,
        });
    }
    if a.n_items < 2 {
        return Err(MetricError::InvalidInput(
            "matrix distance needs at least 2 items".into(),
        ));
    }
    let (ua, ub) = (a.upper(), b.upper());
    let mean_abs_diff =
        ua.iter().zip(&ub).map(|(x, y)| (x - y).abs()).sum::<f64>() / ua.len() as f64;
    let frobenius = a
        .values
        .iter()
        .zip(&b.values)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let corr_of_corr = if ua.len() >= 2 {
        pearson(&ua, &ub).unwrap_or(0.0)
    } else {
        0.0
    };
    Ok(MatrixDistance {
        mean_abs_diff,
        frobenius,
        corr_of_corr,
    })
}

/// Baselines that put a model's mean |Δr| in context, both seeded:
/// `noise_floor` — mean |Δr| between the humans' matrix and those of bootstrap resamples of the
/// humans (what sampling noise alone gives); `no_structure` — mean |Δr| between the humans' matrix
/// and that of the humans with each item shuffled independently (all structure destroyed).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StructureBaselines {
    pub noise_floor: f64,
    pub no_structure: f64,
}

pub fn structure_baselines(
    answers: &[Vec<f64>],
    method: Method,
    resamples: usize,
    seed: u64,
) -> Result<StructureBaselines> {
    let human = correlation_matrix(answers, method)?;
    let mut rng = Rng::new(seed);
    let n = answers.len();
    let (mut floor, mut none) = (0.0, 0.0);
    let (mut n_floor, mut n_none) = (0usize, 0usize);
    for _ in 0..resamples.max(1) {
        let boot: Vec<Vec<f64>> = (0..n).map(|_| answers[rng.below(n)].clone()).collect();
        if let Ok(m) = correlation_matrix(&boot, method) {
            floor += matrix_distance(&human, &m)?.mean_abs_diff;
            n_floor += 1;
        }
        let mut shuffled = answers.to_vec();
        for item in 0..human.n_items {
            let mut column: Vec<f64> = shuffled.iter().map(|row| row[item]).collect();
            for r in (1..n).rev() {
                column.swap(r, rng.below(r + 1));
            }
            for (row, x) in shuffled.iter_mut().zip(column) {
                row[item] = x;
            }
        }
        if let Ok(m) = correlation_matrix(&shuffled, method) {
            none += matrix_distance(&human, &m)?.mean_abs_diff;
            n_none += 1;
        }
    }
    if n_floor == 0 || n_none == 0 {
        return Err(MetricError::InvalidInput(
            "no resample had defined correlations".into(),
        ));
    }
    Ok(StructureBaselines {
        noise_floor: floor / n_floor as f64,
        no_structure: none / n_none as f64,
    })
}
