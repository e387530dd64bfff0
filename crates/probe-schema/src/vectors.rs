//! `vectors/vectors.json` (`probe vectors`): every selection of MLP value vectors with the
//! tokens each promotes, and the chance tests of the joint selections.

use probe_metrics::permutation::{Verdict, ALPHA};
use serde::{Deserialize, Serialize};

use crate::Artifact;

impl Artifact for VectorsJson {
    const FILE: &'static str = "vectors.json";
    const FORMAT_VERSION: u32 = 1;

    /// Files written before verdicts: a `true` in `above_chance` was p < 0.05 against every
    /// null; otherwise the verdict follows from each null's p and size, as it is computed now
    /// (for a file that has its verdicts this gives them again).
    fn upgrade(&mut self) {
        for c in &mut self.chance {
            if c.above_chance {
                c.verdict = Verdict::Above;
            } else if c.verdict == Verdict::default() {
                c.verdict = Verdict::all(
                    [&c.random, &c.shuffled]
                        .into_iter()
                        .flatten()
                        .map(|t| Verdict::of(t.p, t.n, ALPHA)),
                );
            }
        }
    }
}

/// One selected value vector, as written to vectors.json / vectors.csv.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorRow {
    pub party: String,
    pub mode: String,
    pub rank: usize,
    pub layer: usize,
    pub neuron: usize,
    pub cos: f32,
    pub tokens: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VectorsJson {
    #[serde(default = "crate::one")]
    pub format_version: u32,
    pub model: String,
    pub model_hash: String,
    pub hidden_size: usize,
    pub probes: String,
    pub probe: String,
    pub parties: Vec<String>,
    /// Per party: `shared` or the hook of its per-layer probe.
    pub probe_sources: Vec<String>,
    pub layers: Vec<usize>,
    pub neurons: usize,
    pub k: usize,
    pub iqr_c: f64,
    /// Per party: the IQR threshold Q3 + c·IQR of its cosines.
    pub iqr_thresholds: Vec<f64>,
    pub vectors: Vec<VectorRow>,
    /// Per party: is the joint top-k selection above chance? (Absent in older files.)
    #[serde(default)]
    pub chance: Vec<ChanceRow>,
}

/// One party's selection against chance: the mean cosine of its joint top-k vectors, against
/// the same statistic for random directions and for label-shuffled probes' directions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChanceRow {
    pub party: String,
    pub statistic: String,
    pub random: Option<ChanceTest>,
    pub shuffled: Option<ChanceTest>,
    /// p < 0.05 against every null that was run (`verdict` is `above`).
    pub above_chance: bool,
    /// Above chance, not above, or undetermined where a null was too small for p < 0.05
    /// (older files: read from `above_chance`, a `false` there as undetermined).
    #[serde(default)]
    pub verdict: Verdict,
}

/// The observed statistic against a null sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChanceTest {
    pub observed: f64,
    /// Null sample size, mean and standard deviation.
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    /// (observed − mean) / sd; NaN (`null` in the file) when the null does not vary.
    #[serde(deserialize_with = "crate::nan_if_null")]
    pub z: f64,
    /// (1 + #{null ≥ observed}) / (1 + n): the permutation p-value.
    pub p: f64,
    /// What the test can say at α = `ALPHA` (0.05): a null of n samples cannot give p below
    /// 1/(n + 1), so with n + 1 ≤ 1/α the answer is "undetermined", never "not above".
    /// (Absent in files of older versions: read as undetermined.)
    #[serde(default)]
    pub verdict: Verdict,
}
