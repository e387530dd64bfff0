//! Persona scaling factors and the party distributions built from them.
//!
//! For party n with value vectors V̂_n and persona prompt p (coefficients m at its last
//! token): m_p^n = Σ_{(i,l)∈V̂_n} m_i^l cos θ_i^l / Σ_{(i,l)∈V̂_n} cos θ_i^l. Over a set of
//! rows (persona × prompt variant) with weights w: ψ_n = Σ_r w_r m'_{r,n} / Σ_r Σ_n' w_r m'_{r,n'},
//! where m' ≥ 0 is m after the [`NegativePolicy`].

pub use probe_schema::psi::{
    Count, Distribution, EntropySummary, Ordered, Summary, VariantSummary,
};

use crate::{LatentError, Result, Selected};

/// The columns (layer, neuron) every party's V̂ needs, and each party's weights on them.
#[derive(Debug, Clone)]
pub struct FactorPlan {
    /// Sorted by (layer, neuron), no repeats: the order coefficients are stored in.
    pub columns: Vec<(usize, usize)>,
    /// Per party: (column index, cos θ).
    terms: Vec<Vec<(usize, f64)>>,
    /// Per party: Σ cos θ.
    denominators: Vec<f64>,
}

impl FactorPlan {
    /// `selections[n]` is V̂ of party n (`parties` names them for errors).
    pub fn new(parties: &[String], selections: &[Vec<Selected>]) -> Result<Self> {
        if parties.len() != selections.len() || parties.is_empty() {
            return Err(LatentError::Input(format!(
                "{} parties but {} selections",
                parties.len(),
                selections.len()
            )));
        }
        let mut columns: Vec<(usize, usize)> = selections
            .iter()
            .flatten()
            .map(|s| (s.layer, s.neuron))
            .collect();
        columns.sort_unstable();
        columns.dedup();
        let mut terms = Vec::with_capacity(parties.len());
        let mut denominators = Vec::with_capacity(parties.len());
        for (party, sel) in parties.iter().zip(selections) {
            if sel.is_empty() {
                return Err(LatentError::Input(format!(
                    "no value vectors selected for `{party}` (an IQR threshold that keeps none? \
                     lower c or use the joint top-k)"
                )));
            }
            let sum: f64 = sel.iter().map(|s| f64::from(s.cos)).sum();
            if sum.is_nan() || sum <= 0.0 {
                return Err(LatentError::Input(format!(
                    "the value vectors of `{party}` have Σ cos θ = {sum:.4} ≤ 0: the scaling \
                     factor is a cosine-weighted mean and needs positively aligned vectors \
                     (use a joint, per-layer or IQR selection, not the diametric one)"
                )));
            }
            terms.push(
                sel.iter()
                    .map(|s| {
                        let col = columns
                            .binary_search(&(s.layer, s.neuron))
                            .expect("column was collected");
                        (col, f64::from(s.cos))
                    })
                    .collect(),
            );
            denominators.push(sum);
        }
        Ok(FactorPlan {
            columns,
            terms,
            denominators,
        })
    }

    /// The neurons to read per layer, ascending, in the order of [`Self::columns`].
    pub fn layers(&self) -> Vec<(usize, Vec<usize>)> {
        let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
        for &(layer, neuron) in &self.columns {
            match out.last_mut() {
                Some((l, n)) if *l == layer => n.push(neuron),
                _ => out.push((layer, vec![neuron])),
            }
        }
        out
    }

    /// m_p^n for every party from one row of coefficients (in column order).
    pub fn factors(&self, coefficients: &[f32]) -> Vec<f64> {
        assert_eq!(
            coefficients.len(),
            self.columns.len(),
            "one coefficient per column"
        );
        self.terms
            .iter()
            .zip(&self.denominators)
            .map(|(terms, den)| {
                terms
                    .iter()
                    .map(|&(c, cos)| f64::from(coefficients[c]) * cos)
                    .sum::<f64>()
                    / den
            })
            .collect()
    }
}

/// What to do with negative scaling factors, which would put ψ outside the simplex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegativePolicy {
    /// max(m, 0): a persona that drives a party's vectors negatively gives it no mass.
    /// Default: it equals the paper's formula whenever no factor is negative, and unlike the
    /// others it depends neither on the other rows nor on an arbitrary scale.
    Clip,
    /// m − min: subtract the smallest factor of the whole run (over all rows and parties)
    /// when it is negative, keeping differences between parties intact.
    Shift,
    /// softmax over parties per row (factors read as logits); ψ becomes the weighted mean
    /// of the per-row distributions.
    Softmax,
}

impl NegativePolicy {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "clip" => Ok(NegativePolicy::Clip),
            "shift" => Ok(NegativePolicy::Shift),
            "softmax" => Ok(NegativePolicy::Softmax),
            other => Err(LatentError::Input(format!(
                "unknown --negative `{other}` (known: clip, shift, softmax)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NegativePolicy::Clip => "clip",
            NegativePolicy::Shift => "shift",
            NegativePolicy::Softmax => "softmax",
        }
    }

    /// m' ≥ 0 for every row.
    pub fn apply(self, factors: &[Vec<f64>]) -> Vec<Vec<f64>> {
        match self {
            NegativePolicy::Clip => factors
                .iter()
                .map(|r| r.iter().map(|&m| m.max(0.0)).collect())
                .collect(),
            NegativePolicy::Shift => {
                let min = factors.iter().flatten().copied().fold(0.0f64, f64::min);
                factors
                    .iter()
                    .map(|r| r.iter().map(|&m| m - min).collect())
                    .collect()
            }
            NegativePolicy::Softmax => factors
                .iter()
                .map(|r| {
                    let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = r.iter().map(|&m| (m - max).exp()).collect();
                    let s: f64 = e.iter().sum();
                    e.into_iter().map(|x| x / s).collect()
                })
                .collect(),
        }
    }
}

/// One (persona, prompt variant) row.
#[derive(Debug, Clone)]
pub struct ScaleRow {
    pub persona: String,
    pub variant: String,
    /// (attribute, value id), in spec order.
    pub values: Vec<(String, String)>,
    pub weight: f64,
    /// m_p^n per party.
    pub factors: Vec<f64>,
}

/// One persona's contribution to ψ: Σ over its rows (every prompt variant) of w · m′, and the
/// (attribute, value) pairs it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonaUnit {
    pub values: Vec<(String, String)>,
    pub sum: Vec<f64>,
}

/// Each persona's [`PersonaUnit`] under `policy` (applied to all rows, as [`summarize`] does),
/// personas in first-seen order. ψ of any set of personas is the normalized sum of theirs.
pub fn persona_units(rows: &[ScaleRow], policy: NegativePolicy) -> Vec<PersonaUnit> {
    let raw: Vec<Vec<f64>> = rows.iter().map(|r| r.factors.clone()).collect();
    let mut order: Vec<&str> = Vec::new();
    let mut units: std::collections::HashMap<&str, PersonaUnit> = Default::default();
    for (r, m) in rows.iter().zip(policy.apply(&raw)) {
        let unit = units.entry(r.persona.as_str()).or_insert_with(|| {
            order.push(r.persona.as_str());
            PersonaUnit {
                values: r.values.clone(),
                sum: vec![0.0; m.len()],
            }
        });
        for (s, x) in unit.sum.iter_mut().zip(&m) {
            *s += r.weight * x;
        }
    }
    order
        .into_iter()
        .map(|p| units.remove(p).expect("every persona has a unit"))
        .collect()
}

/// H_norm of ψ over all rows and per group (`attributes`, as in [`summarize`]), each with a
/// bootstrap interval over personas. Groups whose ψ is undefined are left out.
pub fn entropy_summary(
    attributes: &[(String, Vec<String>)],
    rows: &[ScaleRow],
    policy: NegativePolicy,
    bootstrap: probe_metrics::stats::Bootstrap,
) -> Result<EntropySummary> {
    use probe_metrics::entropy::entropy_of_units;
    let units = persona_units(rows, policy);
    // H_norm over everyone (`None`) or one (attribute, value) group
    let of = |group: Option<(&str, &str)>| -> Option<probe_metrics::stats::Estimate> {
        let mine: Vec<Vec<f64>> = units
            .iter()
            .filter(|u| {
                group.is_none_or(|(attr, v)| u.values.iter().any(|(a, x)| a == attr && x == v))
            })
            .map(|u| u.sum.clone())
            .collect();
        entropy_of_units(&mine, bootstrap).ok()
    };
    let all = of(None)
        .ok_or_else(|| LatentError::Input("ψ is undefined: every factor is zero".into()))?;
    let by_group = Ordered(
        attributes
            .iter()
            .map(|(attr, values)| {
                let per_value = values
                    .iter()
                    .filter_map(|v| of(Some((attr, v))).map(|e| (v.clone(), e)))
                    .collect();
                (attr.clone(), Ordered(per_value))
            })
            .collect(),
    );
    Ok(EntropySummary {
        unit: "persona".into(),
        resamples: bootstrap.resamples,
        level: bootstrap.level,
        all,
        by_group,
    })
}

/// Per-row m' (after the policy) and the row's own normalized distribution (None when m'
/// is all zero).
pub fn row_distributions(
    factors: &[Vec<f64>],
    policy: NegativePolicy,
) -> Vec<(Vec<f64>, Option<Vec<f64>>)> {
    policy
        .apply(factors)
        .into_iter()
        .map(|m| {
            let s: f64 = m.iter().sum();
            let d = (s > 0.0).then(|| m.iter().map(|x| x / s).collect());
            (m, d)
        })
        .collect()
}

/// Aggregates rows into ψ, ψ_g (for every value of every attribute, in `attributes` order)
/// and ψ_{j,g} per variant (in `variants` order).
pub fn summarize(
    parties: &[String],
    attributes: &[(String, Vec<String>)],
    variants: &[String],
    rows: &[ScaleRow],
    policy: NegativePolicy,
) -> Result<Summary> {
    if rows.is_empty() {
        return Err(LatentError::Input("no rows to summarize".into()));
    }
    if let Some(r) = rows.iter().find(|r| r.factors.len() != parties.len()) {
        return Err(LatentError::Input(format!(
            "row {} / {} has {} factors for {} parties",
            r.persona,
            r.variant,
            r.factors.len(),
            parties.len()
        )));
    }
    if let Some(r) = rows
        .iter()
        .find(|r| r.factors.iter().any(|m| !m.is_finite()))
    {
        return Err(LatentError::Input(format!(
            "row {} / {}: non-finite scaling factor",
            r.persona, r.variant
        )));
    }
    let raw: Vec<Vec<f64>> = rows.iter().map(|r| r.factors.clone()).collect();
    let transformed = policy.apply(&raw);
    let negative = raw.iter().flatten().filter(|&&m| m < 0.0).count();
    let undefined = transformed
        .iter()
        .filter(|m| m.iter().sum::<f64>() <= 0.0)
        .count();
    let aggregate = |keep: &dyn Fn(&ScaleRow) -> bool| -> Distribution {
        let mut sums = vec![0.0f64; parties.len()];
        let mut n = 0;
        let mut weight = 0.0;
        for (r, m) in rows.iter().zip(&transformed) {
            if keep(r) {
                n += 1;
                weight += r.weight;
                for (s, x) in sums.iter_mut().zip(m) {
                    *s += r.weight * x;
                }
            }
        }
        let total: f64 = sums.iter().sum();
        Distribution {
            rows: n,
            weight,
            psi: (total > 0.0).then(|| {
                Ordered(
                    parties
                        .iter()
                        .cloned()
                        .zip(sums.iter().map(|s| s / total))
                        .collect(),
                )
            }),
        }
    };
    let groups = |variant: Option<&str>| -> Ordered<Ordered<Distribution>> {
        Ordered(
            attributes
                .iter()
                .map(|(attr, values)| {
                    let per_value = values
                        .iter()
                        .map(|v| {
                            let d = aggregate(&|r: &ScaleRow| {
                                variant.is_none_or(|j| r.variant == j)
                                    && r.values.iter().any(|(a, x)| a == attr && x == v)
                            });
                            (v.clone(), d)
                        })
                        .filter(|(_, d)| d.rows > 0)
                        .collect();
                    (attr.clone(), Ordered(per_value))
                })
                .collect(),
        )
    };
    let by_variant = Ordered(
        variants
            .iter()
            .map(|j| {
                (
                    j.clone(),
                    VariantSummary {
                        all: aggregate(&|r: &ScaleRow| &r.variant == j),
                        by_group: groups(Some(j)),
                    },
                )
            })
            .collect(),
    );
    Ok(Summary {
        format_version: <Summary as probe_schema::Artifact>::FORMAT_VERSION,
        parties: parties.to_vec(),
        negative: policy.name().to_string(),
        negative_factors: Count {
            count: negative,
            of: raw.len() * parties.len(),
        },
        undefined_rows: undefined,
        all: aggregate(&|_| true),
        by_group: groups(None),
        by_variant,
        entropy: None,
        run: None,
    })
}

/// ψ over the rows `keep` accepts, under `policy` applied to all rows (as [`summarize`] does, so
/// that `shift` uses the run's minimum): Σ w m' / Σ Σ w m', or `None` when undefined.
pub fn psi_over(
    rows: &[ScaleRow],
    policy: NegativePolicy,
    keep: impl Fn(&ScaleRow) -> bool,
) -> Option<Vec<f64>> {
    let parties = rows.first()?.factors.len();
    let raw: Vec<Vec<f64>> = rows.iter().map(|r| r.factors.clone()).collect();
    let mut sums = vec![0.0f64; parties];
    for (r, m) in rows.iter().zip(policy.apply(&raw)) {
        if keep(r) {
            for (s, x) in sums.iter_mut().zip(m) {
                *s += r.weight * x;
            }
        }
    }
    let total: f64 = sums.iter().sum();
    (total > 0.0).then(|| sums.iter().map(|s| s / total).collect())
}

/// How much the negative-factor policy, rather than the model, decides ψ: per party the share
/// of rows whose raw factor m_p^n is negative, and ψ over all rows under each policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySensitivity {
    /// Per party, the share of rows (weighted) with m_p^n < 0.
    pub negative_share: Vec<f64>,
    /// Per policy (clip, shift, softmax): ψ over every row, or `None` when undefined.
    pub psi: Vec<(NegativePolicy, Option<Vec<f64>>)>,
}

/// [`PolicySensitivity`] of `rows` (each with one factor per party).
pub fn policy_sensitivity(rows: &[ScaleRow]) -> PolicySensitivity {
    let parties = rows.first().map_or(0, |r| r.factors.len());
    let total: f64 = rows.iter().map(|r| r.weight).sum();
    let negative_share = (0..parties)
        .map(|p| {
            let w: f64 = rows
                .iter()
                .filter(|r| r.factors[p] < 0.0)
                .map(|r| r.weight)
                .sum();
            if total > 0.0 {
                w / total
            } else {
                f64::NAN
            }
        })
        .collect();
    let raw: Vec<Vec<f64>> = rows.iter().map(|r| r.factors.clone()).collect();
    let psi = [
        NegativePolicy::Clip,
        NegativePolicy::Shift,
        NegativePolicy::Softmax,
    ]
    .into_iter()
    .map(|policy| {
        let mut sums = vec![0.0f64; parties];
        for (r, m) in rows.iter().zip(policy.apply(&raw)) {
            for (s, x) in sums.iter_mut().zip(m) {
                *s += r.weight * x;
            }
        }
        let sum: f64 = sums.iter().sum();
        (
            policy,
            (sum > 0.0).then(|| sums.iter().map(|s| s / sum).collect()),
        )
    })
    .collect();
    PolicySensitivity {
        negative_share,
        psi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Party B's factor is negative in every row: clipping gives it exactly 0, shifting does
    /// not; the shares and ψ per policy show it.
    #[test]
    fn policy_sensitivity_shows_when_the_policy_decides() {
        let row = |f: [f64; 2]| ScaleRow {
            persona: "p".into(),
            variant: "v".into(),
            values: vec![],
            weight: 1.0,
            factors: f.to_vec(),
        };
        let s = policy_sensitivity(&[row([1.0, -1.0]), row([3.0, -2.0])]);
        assert_eq!(s.negative_share, [0.0, 1.0]);
        let psi = |p: NegativePolicy| {
            s.psi
                .iter()
                .find(|(q, _)| *q == p)
                .unwrap()
                .1
                .clone()
                .unwrap()
        };
        assert_eq!(psi(NegativePolicy::Clip), [1.0, 0.0]);
        // shift by the minimum −2: (3 + 5, 1 + 0) / 9
        let shifted = psi(NegativePolicy::Shift);
        assert!((shifted[0] - 8.0 / 9.0).abs() < 1e-12 && (shifted[1] - 1.0 / 9.0).abs() < 1e-12);
    }

    fn sel(layer: usize, neuron: usize, cos: f32) -> Selected {
        Selected { layer, neuron, cos }
    }

    #[test]
    fn factor_is_the_cosine_weighted_mean_of_coefficients() {
        let parties = vec!["A".to_string(), "B".to_string()];
        // A: (l5,n3) cos .5 and (l2,n7) cos .25; B: (l5,n3) cos .2 and (l5,n1) cos .6.
        let plan = FactorPlan::new(
            &parties,
            &[
                vec![sel(5, 3, 0.5), sel(2, 7, 0.25)],
                vec![sel(5, 3, 0.2), sel(5, 1, 0.6)],
            ],
        )
        .unwrap();
        assert_eq!(plan.columns, vec![(2, 7), (5, 1), (5, 3)]);
        assert_eq!(plan.layers(), vec![(2, vec![7]), (5, vec![1, 3])]);
        // m(2,7) = 4, m(5,1) = -1, m(5,3) = 2.
        let m = plan.factors(&[4.0, -1.0, 2.0]);
        // A: (2·.5 + 4·.25)/.75 = 2/.75; B: (2·.2 − 1·.6)/.8 = −.2/.8 = −.25.
        assert!((m[0] - 2.0 / 0.75).abs() < 1e-6, "{m:?}");
        assert!((m[1] + 0.25).abs() < 1e-6, "{m:?}");
    }

    #[test]
    fn plans_refuse_empty_or_negative_selections() {
        let parties = vec!["A".to_string()];
        let err = FactorPlan::new(&parties, &[vec![]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no value vectors selected for `A`"), "{err}");
        let err = FactorPlan::new(&parties, &[vec![sel(1, 1, -0.3)]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("Σ cos θ"), "{err}");
    }

    fn row(persona: &str, variant: &str, gender: &str, weight: f64, factors: [f64; 2]) -> ScaleRow {
        ScaleRow {
            persona: persona.into(),
            variant: variant.into(),
            values: vec![("gender".into(), gender.into())],
            weight,
            factors: factors.to_vec(),
        }
    }

    #[test]
    fn psi_sums_factors_before_normalizing() {
        let parties = vec!["A".to_string(), "B".to_string()];
        let attrs = vec![(
            "gender".to_string(),
            vec!["female".to_string(), "male".to_string()],
        )];
        let variants = vec!["j1".to_string(), "j2".to_string()];
        let rows = vec![
            row("p1", "j1", "female", 1.0, [3.0, 1.0]),
            row("p1", "j2", "female", 1.0, [1.0, 1.0]),
            row("p2", "j1", "male", 2.0, [0.0, 2.0]),
            row("p2", "j2", "male", 2.0, [-1.0, 1.0]),
        ];
        let s = summarize(&parties, &attrs, &variants, &rows, NegativePolicy::Clip).unwrap();
        // Clip: p2/j2 → (0, 1). Weighted sums A = 3 + 1 + 0 + 0 = 4, B = 1 + 1 + 4 + 2 = 8.
        let psi = s.all.psi.as_ref().unwrap();
        assert!((psi.get("A").unwrap() - 4.0 / 12.0).abs() < 1e-12);
        assert!((psi.get("B").unwrap() - 8.0 / 12.0).abs() < 1e-12);
        assert_eq!(s.negative_factors.count, 1);
        assert_eq!(s.negative_factors.of, 8);
        let female = s.by_group.get("gender").unwrap().get("female").unwrap();
        assert_eq!(female.rows, 2);
        assert!((female.psi.as_ref().unwrap().get("A").unwrap() - 4.0 / 6.0).abs() < 1e-12);
        let j2_male = s
            .by_variant
            .get("j2")
            .unwrap()
            .by_group
            .get("gender")
            .unwrap()
            .get("male")
            .unwrap();
        assert!((j2_male.psi.as_ref().unwrap().get("B").unwrap() - 1.0).abs() < 1e-12);
        for d in [&s.all, female, j2_male] {
            let total: f64 = d.psi.as_ref().unwrap().0.iter().map(|(_, x)| x).sum();
            assert!((total - 1.0).abs() < 1e-12);
        }
        // H_norm(ψ) with an interval over personas: p1's variants together are one unit
        let units = persona_units(&rows, NegativePolicy::Clip);
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].sum, vec![4.0, 2.0]);
        assert_eq!(units[1].sum, vec![0.0, 6.0]);
        let b = probe_metrics::stats::Bootstrap {
            resamples: 200,
            level: 0.95,
            seed: 0,
        };
        let h = entropy_summary(&attrs, &rows, NegativePolicy::Clip, b).unwrap();
        let want = probe_metrics::entropy::normalized_entropy(&[4.0 / 12.0, 8.0 / 12.0]).unwrap();
        assert!((h.all.value - want).abs() < 1e-12);
        assert!(h.all.low <= h.all.value && h.all.value <= h.all.high);
        // one persona per group: resampling it changes nothing
        assert!(
            h.all.high <= 1.0,
            "an entropy interval stays within [0, 1]: {:?}",
            h.all
        );
        let male = h.by_group.get("gender").unwrap().get("male").unwrap();
        assert_eq!((male.value, male.low, male.high), (0.0, 0.0, 0.0));
        let with_entropy = Summary {
            entropy: Some(h),
            ..s.clone()
        };
        let back: Summary =
            serde_json::from_str(&serde_json::to_string(&with_entropy).unwrap()).unwrap();
        let e = back.entropy.unwrap();
        assert!((e.all.value - want).abs() < 1e-12);
        assert_eq!(e.unit, "persona");
        // psi.json reads back as written, in the written order (parties A, B; not sorted)
        let text = serde_json::to_string(&s).unwrap();
        let back: Summary = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.by_variant.0[0].0, "j1");

        // Shift: subtract the run's minimum (−1) everywhere: A = 4 + 2 + 2 + 0 = 8 (weighted:
        // 4·1 + 2·1 + 1·2 + 0·2 = 8), B = 2 + 2 + 6 + 4 = 14 → weighted 2 + 2 + 3·2 + 2·2 = 14.
        let s = summarize(&parties, &attrs, &variants, &rows, NegativePolicy::Shift).unwrap();
        assert!((s.all.psi.as_ref().unwrap().get("A").unwrap() - 8.0 / 22.0).abs() < 1e-12);
        // Softmax: weighted mean of per-row softmaxes.
        let s = summarize(&parties, &attrs, &variants, &rows, NegativePolicy::Softmax).unwrap();
        let sm = |a: f64, b: f64| a.exp() / (a.exp() + b.exp());
        let want = (sm(3.0, 1.0) + sm(1.0, 1.0) + 2.0 * sm(0.0, 2.0) + 2.0 * sm(-1.0, 1.0)) / 6.0;
        assert!((s.all.psi.as_ref().unwrap().get("A").unwrap() - want).abs() < 1e-12);
    }

    #[test]
    fn all_negative_rows_are_counted_not_hidden() {
        let parties = vec!["A".to_string(), "B".to_string()];
        let rows = vec![
            row("p", "j", "x", 1.0, [-1.0, -2.0]),
            row("q", "j", "x", 1.0, [1.0, 0.0]),
        ];
        let s = summarize(&parties, &[], &["j".into()], &rows, NegativePolicy::Clip).unwrap();
        assert_eq!(s.undefined_rows, 1);
        assert_eq!(s.negative_factors.count, 2);
        let only_negative = &rows[..1];
        let s = summarize(
            &parties,
            &[],
            &["j".into()],
            only_negative,
            NegativePolicy::Clip,
        )
        .unwrap();
        assert!(s.all.psi.is_none());
        let mut nan = rows.clone();
        nan[0].factors[0] = f64::NAN;
        assert!(summarize(&parties, &[], &["j".into()], &nan, NegativePolicy::Clip).is_err());
    }
}
