//! Choosing a party's value vectors V̂_n from its cosines.

use serde::{Deserialize, Serialize};

use crate::{CosineTable, LatentError, Result};

/// How V̂_n is chosen from the cosines of one party.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// The k largest cosines over all searched layers and neurons (eq. 8 of the paper).
    Joint { k: usize },
    /// The k largest cosines within each searched layer.
    PerLayer { k: usize },
    /// Outliers: cos > Q3 + c·IQR over all searched layers and neurons (quartiles with
    /// linear interpolation, as numpy's default).
    Iqr { c: f64 },
    /// The k most negative cosines over all layers: vectors that write *against* the party.
    Diametric { k: usize },
}

impl Selection {
    pub fn name(&self) -> &'static str {
        match self {
            Selection::Joint { .. } => "joint",
            Selection::PerLayer { .. } => "per-layer",
            Selection::Iqr { .. } => "iqr",
            Selection::Diametric { .. } => "diametric",
        }
    }

    /// Parses `joint`, `per-layer`, `iqr` or `diametric` with the given k and c.
    pub fn parse(name: &str, k: usize, c: f64) -> Result<Self> {
        let s = match name {
            "joint" => Selection::Joint { k },
            "per-layer" => Selection::PerLayer { k },
            "iqr" => Selection::Iqr { c },
            "diametric" => Selection::Diametric { k },
            other => {
                return Err(LatentError::Input(format!(
                    "unknown selection `{other}` (known: joint, per-layer, iqr, diametric)"
                )))
            }
        };
        s.check()?;
        Ok(s)
    }

    pub fn check(&self) -> Result<()> {
        match *self {
            Selection::Joint { k } | Selection::PerLayer { k } | Selection::Diametric { k }
                if k == 0 =>
            {
                Err(LatentError::Input("k must be at least 1".into()))
            }
            Selection::Iqr { c } if !c.is_finite() || c < 0.0 => Err(LatentError::Input(format!(
                "IQR factor c must be finite and ≥ 0, not {c}"
            ))),
            _ => Ok(()),
        }
    }
}

/// One chosen value vector: `down_proj` column `neuron` of model layer `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Selected {
    pub layer: usize,
    pub neuron: usize,
    pub cos: f32,
}

/// V̂ of party `p` under `mode`, strongest first (most negative first for `Diametric`).
/// Ties are broken by (layer, neuron) so results do not depend on sort internals.
pub fn select(table: &CosineTable, p: usize, mode: Selection) -> Result<Vec<Selected>> {
    mode.check()?;
    if p >= table.parties.len() {
        return Err(LatentError::Input(format!("no party index {p}")));
    }
    let cos = table.party(p);
    let n = table.neurons;
    let entry = |i: usize| Selected {
        layer: table.layers[i / n],
        neuron: i % n,
        cos: cos[i],
    };
    let descending = |a: &usize, b: &usize| cos[*b].total_cmp(&cos[*a]).then(a.cmp(b));
    let top =
        |mut idx: Vec<usize>, k: usize, order: &dyn Fn(&usize, &usize) -> std::cmp::Ordering| {
            let k = k.min(idx.len());
            if k < idx.len() {
                idx.select_nth_unstable_by(k, order);
                idx.truncate(k);
            }
            idx.sort_by(order);
            idx
        };
    let chosen: Vec<usize> = match mode {
        Selection::Joint { k } => top((0..cos.len()).collect(), k, &descending),
        Selection::Diametric { k } => top((0..cos.len()).collect(), k, &|a: &usize, b: &usize| {
            cos[*a].total_cmp(&cos[*b]).then(a.cmp(b))
        }),
        Selection::PerLayer { k } => (0..table.layers.len())
            .flat_map(|l| top((l * n..(l + 1) * n).collect(), k, &descending))
            .collect(),
        Selection::Iqr { c } => {
            let threshold = iqr_threshold(cos, c);
            let idx: Vec<usize> = (0..cos.len())
                .filter(|&i| f64::from(cos[i]) > threshold)
                .collect();
            let len = idx.len();
            top(idx, len, &descending)
        }
    };
    Ok(chosen.into_iter().map(entry).collect())
}

/// Q3 + c·IQR of `values`.
pub fn iqr_threshold(values: &[f32], c: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    sorted.sort_by(f64::total_cmp);
    let q1 = quantile(&sorted, 0.25);
    let q3 = quantile(&sorted, 0.75);
    q3 + c * (q3 - q1)
}

/// Linear-interpolation quantile of sorted data (numpy's default `method="linear"`).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One party, layers 4 and 9, 5 neurons each, with cosines chosen by hand.
    fn table() -> CosineTable {
        CosineTable {
            parties: vec!["A".into()],
            layers: vec![4, 9],
            neurons: 5,
            cos: vec![
                0.10, 0.90, -0.80, 0.30, 0.05, // layer 4
                0.70, 0.00, 0.20, -0.95, 0.60, // layer 9
            ],
        }
    }

    fn picks(s: &[Selected]) -> Vec<(usize, usize)> {
        s.iter().map(|s| (s.layer, s.neuron)).collect()
    }

    #[test]
    fn joint_takes_the_global_top_k() {
        let s = select(&table(), 0, Selection::Joint { k: 3 }).unwrap();
        assert_eq!(picks(&s), vec![(4, 1), (9, 0), (9, 4)]);
        assert_eq!(s[0].cos, 0.90);
        // k beyond the table returns everything, sorted.
        assert_eq!(
            select(&table(), 0, Selection::Joint { k: 99 })
                .unwrap()
                .len(),
            10
        );
    }

    #[test]
    fn per_layer_takes_k_from_each_layer() {
        let s = select(&table(), 0, Selection::PerLayer { k: 2 }).unwrap();
        assert_eq!(picks(&s), vec![(4, 1), (4, 3), (9, 0), (9, 4)]);
    }

    #[test]
    fn diametric_takes_the_most_negative() {
        let s = select(&table(), 0, Selection::Diametric { k: 2 }).unwrap();
        assert_eq!(picks(&s), vec![(9, 3), (4, 2)]);
    }

    #[test]
    fn iqr_keeps_the_outliers() {
        // Sorted: -0.95 -0.8 0 0.05 0.1 0.2 0.3 0.6 0.7 0.9; numpy.percentile linear:
        // Q1 = 0.0125 (h = 2.25), Q3 = 0.525 (h = 6.75), IQR = 0.5125.
        let t = iqr_threshold(&table().cos, 0.5);
        assert!((t - (0.525 + 0.5 * 0.5125)).abs() < 1e-6, "{t}");
        let s = select(&table(), 0, Selection::Iqr { c: 0.5 }).unwrap();
        assert_eq!(picks(&s), vec![(4, 1)]); // only 0.9 > 0.78125
        let s = select(&table(), 0, Selection::Iqr { c: 0.1 }).unwrap();
        assert_eq!(picks(&s), vec![(4, 1), (9, 0), (9, 4)]); // > 0.57625
        assert!(select(&table(), 0, Selection::Iqr { c: 2.5 })
            .unwrap()
            .is_empty());
    }

    /// From value vectors to selections: vectors built to have known cosines with the
    /// direction e₁ (v = s·(c, √(1−c²), 0) for arbitrary norms s), searched in two layers.
    #[test]
    fn modes_on_hand_made_value_vectors() {
        use burn::tensor::{Device, Tensor, TensorData};
        let device = Device::flex();
        let layer = |cosines: &[f32], scale: f32| {
            let flat: Vec<f32> = cosines
                .iter()
                .flat_map(|&c| [scale * c, scale * (1.0 - c * c).sqrt(), 0.0])
                .collect();
            Tensor::<2>::from_data(TensorData::new(flat, [cosines.len(), 3]), &device)
        };
        let cos = table().cos;
        let layers = [(4, layer(&cos[..5], 3.0)), (9, layer(&cos[5..], 0.2))];
        let dir = crate::PartyDirection {
            party: "A".into(),
            source: "shared".into(),
            direction: vec![0.5, 0.0, 0.0],
        };
        let t = crate::cosine_scan(&[dir], &layers, &device).unwrap();
        for (got, want) in t.cos.iter().zip(&cos) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        let top3 = select(&t, 0, Selection::Joint { k: 3 }).unwrap();
        assert_eq!(picks(&top3), vec![(4, 1), (9, 0), (9, 4)]);
        let per = select(&t, 0, Selection::PerLayer { k: 1 }).unwrap();
        assert_eq!(picks(&per), vec![(4, 1), (9, 0)]);
        let iqr = select(&t, 0, Selection::Iqr { c: 0.1 }).unwrap();
        assert_eq!(picks(&iqr), vec![(4, 1), (9, 0), (9, 4)]);
        let neg = select(&t, 0, Selection::Diametric { k: 1 }).unwrap();
        assert_eq!(picks(&neg), vec![(9, 3)]);
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(Selection::parse("joint", 0, 2.5).is_err());
        assert!(Selection::parse("iqr", 20, f64::NAN).is_err());
        assert!(Selection::parse("top", 20, 2.5).is_err());
        assert!(select(&table(), 1, Selection::Joint { k: 1 }).is_err());
    }
}
