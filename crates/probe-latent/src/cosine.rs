//! Cosines between probe directions and MLP value vectors, as matrix products.

use burn::tensor::{Device, Tensor, TensorData};
use probe_train::LoadedProbes;

use crate::{LatentError, Result};

/// Which trained probe gives a party's direction w_n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeChoice {
    /// The probe trained on all hooked layers at once: one direction valid in every layer,
    /// which is what a joint scan over layers compares against.
    Shared,
    /// Per party, the per-layer probe with the best cross-validated balanced accuracy.
    Best,
    /// The per-layer probe of this hook (`blocks.22.hook_resid_post` or just `22`).
    Hook(String),
}

impl ProbeChoice {
    pub fn parse(s: &str) -> Self {
        match s {
            "shared" => ProbeChoice::Shared,
            "best" => ProbeChoice::Best,
            other => ProbeChoice::Hook(other.to_string()),
        }
    }
}

/// A party's probe direction in raw activation space (weights / scaler std).
#[derive(Debug, Clone)]
pub struct PartyDirection {
    pub party: String,
    /// `shared` or the hook of the per-layer probe used.
    pub source: String,
    pub direction: Vec<f32>,
}

/// The directions of every party of a `probe train` run.
pub fn probe_directions(
    probes: &LoadedProbes,
    choice: &ProbeChoice,
) -> Result<Vec<PartyDirection>> {
    let report = &probes.json.report;
    let mut out = Vec::with_capacity(report.parties.len());
    for (p, party) in report.parties.iter().enumerate() {
        let (source, probe) = match choice {
            ProbeChoice::Shared => {
                let probe = probes.shared.get(p).ok_or_else(|| {
                    LatentError::Input(
                        "this run has no shared probes (trained with --no-shared); choose \
                         --probe best or a layer"
                            .into(),
                    )
                })?;
                ("shared".to_string(), probe)
            }
            ProbeChoice::Best => {
                let best = report
                    .per_layer
                    .iter()
                    .filter(|r| &r.party == party)
                    .max_by(|a, b| {
                        a.mean
                            .balanced_accuracy
                            .total_cmp(&b.mean.balanced_accuracy)
                    })
                    .ok_or_else(|| {
                        LatentError::Input(format!(
                            "no per-layer probe scores for `{party}` (trained with --no-per-layer?)"
                        ))
                    })?;
                let h = report
                    .hooks
                    .iter()
                    .position(|h| h == &best.hook)
                    .ok_or_else(|| {
                        LatentError::Input(format!("report names unknown hook {}", best.hook))
                    })?;
                (best.hook.clone(), per_layer(probes, p, h)?)
            }
            ProbeChoice::Hook(name) => {
                let h = report
                    .hooks
                    .iter()
                    .position(|h| {
                        h == name
                            || h.strip_prefix("blocks.").and_then(|r| r.split('.').next())
                                == Some(name)
                    })
                    .ok_or_else(|| {
                        LatentError::Input(format!(
                            "no probe for `{name}` (the run has: shared, best, {})",
                            report.hooks.join(", ")
                        ))
                    })?;
                (report.hooks[h].clone(), per_layer(probes, p, h)?)
            }
        };
        let direction: Vec<f32> = probe.direction().iter().map(|&x| x as f32).collect();
        let norm = direction.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return Err(LatentError::Input(format!(
                "the {source} probe of `{party}` has a zero or non-finite direction"
            )));
        }
        out.push(PartyDirection {
            party: party.clone(),
            source,
            direction,
        });
    }
    Ok(out)
}

fn per_layer(probes: &LoadedProbes, party: usize, hook: usize) -> Result<&probe_train::Probe> {
    probes
        .per_layer
        .get(party)
        .and_then(|v| v.get(hook))
        .ok_or_else(|| LatentError::Input("this run has no per-layer probes".into()))
}

/// Value vectors per matrix product in the scan.
const ROWS_PER_BLOCK: usize = 2048;

/// cos θ of every (party, layer, neuron): `cos[(party * layers + layer_index) * neurons + i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CosineTable {
    pub parties: Vec<String>,
    /// Model layer of each layer index.
    pub layers: Vec<usize>,
    pub neurons: usize,
    pub cos: Vec<f32>,
}

impl CosineTable {
    /// All cosines of one party, `[layer_index * neurons + neuron]`.
    pub fn party(&self, p: usize) -> &[f32] {
        let n = self.layers.len() * self.neurons;
        &self.cos[p * n..(p + 1) * n]
    }
}

/// Cosines of each direction with each value vector. `value_vectors` holds, per searched
/// layer, its `[intermediate, hidden]` matrix (one value vector per row). One matrix product
/// per layer: on a 7B model that is 32 products of 14,336 × 4,096 by 4,096 × parties.
pub fn cosine_scan(
    directions: &[PartyDirection],
    value_vectors: &[(usize, Tensor<2>)],
    device: &Device,
) -> Result<CosineTable> {
    let Some(first) = directions.first() else {
        return Err(LatentError::Input("no probe directions".into()));
    };
    if value_vectors.is_empty() {
        return Err(LatentError::Input("no layers to search".into()));
    }
    let hidden = first.direction.len();
    let [neurons, vv_hidden] = value_vectors[0].1.dims();
    for d in directions {
        if d.direction.len() != hidden {
            return Err(LatentError::Input(format!(
                "probe directions disagree in size ({} vs {hidden})",
                d.direction.len()
            )));
        }
    }
    if vv_hidden != hidden {
        return Err(LatentError::Input(format!(
            "the probes have {hidden} dimensions but the model's hidden size is {vv_hidden}: \
             probes from another model?"
        )));
    }
    let parties = directions.len();
    let mut flat = Vec::with_capacity(parties * hidden);
    for d in directions {
        let norm = d.direction.iter().map(|x| x * x).sum::<f32>().sqrt();
        flat.extend(d.direction.iter().map(|x| x / norm));
    }
    // [hidden, parties], unit columns.
    let units: Tensor<2> =
        Tensor::<2>::from_data(TensorData::new(flat, [parties, hidden]), device).transpose();
    let mut per_layer: Vec<Vec<f32>> = Vec::with_capacity(value_vectors.len());
    for (layer, vv) in value_vectors {
        if vv.dims() != [neurons, hidden] {
            return Err(LatentError::Input(format!(
                "layer {layer}: value vectors {:?}, expected [{neurons}, {hidden}]",
                vv.dims()
            )));
        }
        let vv = vv.clone().to_device(device);
        // Row blocks keep the squared copy for the norms small (a 7B layer is 235 MB).
        let mut data = vec![0f32; parties * neurons];
        for start in (0..neurons).step_by(ROWS_PER_BLOCK) {
            let rows = ROWS_PER_BLOCK.min(neurons - start);
            let block = vv.clone().narrow(0, start, rows);
            // [rows, parties]; a zero value vector (pruned neuron) gets cosine 0, not NaN.
            let dots = block.clone().matmul(units.clone());
            let norms = block
                .square()
                .sum_dim(1)
                .sqrt()
                .clamp_min(f32::MIN_POSITIVE);
            let cos = dots
                .div(norms)
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| LatentError::Input(format!("reading cosines: {e:?}")))?;
            for (r, row) in cos.chunks_exact(parties).enumerate() {
                for (p, &c) in row.iter().enumerate() {
                    data[p * neurons + start + r] = c;
                }
            }
        }
        if let Some(bad) = data.iter().position(|x| !x.is_finite()) {
            return Err(LatentError::Input(format!(
                "layer {layer}: non-finite cosine at neuron {} (NaN in the weights?)",
                bad % neurons
            )));
        }
        per_layer.push(data);
    }
    let layers: Vec<usize> = value_vectors.iter().map(|(l, _)| *l).collect();
    let mut cos = Vec::with_capacity(parties * layers.len() * neurons);
    for p in 0..parties {
        for data in &per_layer {
            cos.extend_from_slice(&data[p * neurons..(p + 1) * neurons]);
        }
    }
    Ok(CosineTable {
        parties: directions.iter().map(|d| d.party.clone()).collect(),
        layers,
        neurons,
        cos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(rows: &[[f32; 3]]) -> Tensor<2> {
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 3]), &Device::flex())
    }

    fn direction(party: &str, d: [f32; 3]) -> PartyDirection {
        PartyDirection {
            party: party.into(),
            source: "shared".into(),
            direction: d.to_vec(),
        }
    }

    #[test]
    fn cosines_match_the_definition() {
        let dirs = [
            direction("A", [2.0, 0.0, 0.0]),
            direction("B", [1.0, 1.0, 0.0]),
        ];
        let layers = [
            (
                3,
                tensor(&[[1.0, 0.0, 0.0], [0.0, 5.0, 0.0], [-3.0, 0.0, 0.0]]),
            ),
            (
                7,
                tensor(&[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
            ),
        ];
        let t = cosine_scan(&dirs, &layers, &Device::flex()).unwrap();
        assert_eq!(t.layers, vec![3, 7]);
        assert_eq!(t.neurons, 3);
        let s2 = std::f32::consts::FRAC_1_SQRT_2;
        let s3 = 1.0 / 3f32.sqrt();
        let expected_a = [1.0, 0.0, -1.0, s3, 0.0, 0.0];
        let expected_b = [s2, s2, -s2, 2.0 * s3 * s2, 0.0, -s2];
        for (got, want) in t
            .party(0)
            .iter()
            .zip(expected_a)
            .chain(t.party(1).iter().zip(expected_b))
        {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let dirs = [direction("A", [1.0, 0.0, 0.0])];
        let other = Tensor::<2>::zeros([4, 5], &Device::flex());
        let err = cosine_scan(&dirs, &[(0, other)], &Device::flex()).unwrap_err();
        assert!(
            err.to_string().contains("probes from another model"),
            "{err}"
        );
    }
}
