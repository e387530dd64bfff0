//! `probe vectors`: each party's MLP value vectors (columns of `down_proj`) ranked by cosine
//! with its probe direction — joint top-k over layers, top-k per layer, IQR outliers and the
//! most negative — with the tokens each one promotes.

use std::path::PathBuf;

use anyhow::Result;
use probe::vectors::{VectorsJson, VectorsOptions};
use probe_latent::null::Verdict;

use crate::common::ModelArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A `probe train` run directory (holding probes.json and probes.safetensors).
    #[arg(long)]
    pub probes: PathBuf,
    /// Which probe gives each party's direction: shared (trained on all cached layers; the
    /// default), best (per party, the per-layer probe with the best CV balanced accuracy) or
    /// a hook / layer index of a per-layer probe.
    #[arg(long, default_value = "shared")]
    pub probe: String,
    /// Layers whose value vectors are searched: `probed` (default: the layers the probes were
    /// trained on, as the paper searches them), `all`, indices or fractions (0.6L..0.9L).
    #[arg(long, default_value = "probed")]
    pub layers: String,
    /// Value vectors per party in the joint, per-layer and diametric selections.
    #[arg(long, short, default_value_t = 20, value_parser = crate::common::positive)]
    pub k: usize,
    /// IQR outliers: cos > Q3 + c·IQR.
    #[arg(long = "iqr-c", default_value_t = 2.5)]
    pub iqr_c: f64,
    /// Tokens shown per vector (vocabulary projection).
    #[arg(long, default_value_t = 10)]
    pub top_tokens: usize,
    /// Vectors per party printed (joint selection).
    #[arg(long, default_value_t = 5)]
    pub print: usize,
    /// Random directions in the chance test of each party's selection (0 skips it).
    #[arg(long, default_value_t = 200)]
    pub null_random: usize,
    /// Output directory (default: <probes>/vectors).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

impl Args {
    pub fn options(&self) -> Result<VectorsOptions> {
        Ok(VectorsOptions {
            model: self.model.spec()?,
            probes: self.probes.clone(),
            probe: self.probe.clone(),
            layers: self.layers.clone(),
            k: self.k,
            iqr_c: self.iqr_c,
            top_tokens: self.top_tokens,
            null_random: self.null_random,
            out: self.out.clone(),
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let outcome = probe::vectors::vectors(&args.options()?)?;
    let json = &outcome.vectors;
    print_summary(json, args.print);
    eprintln!(
        "{} parties × {} layers × {} neurons scanned in {:.2}s; {} vectors → {}",
        json.parties.len(),
        json.layers.len(),
        json.neurons,
        outcome.scan_seconds,
        json.vectors.len(),
        outcome.dir.display()
    );
    Ok(())
}

fn print_summary(json: &VectorsJson, per_party: usize) {
    for c in &json.chance {
        let fmt = |t: &Option<probe_latent::null::ChanceTest>| match t {
            Some(t) => format!(
                "z {:+.1}, p {:.3} (null {:.3} ± {:.3}, n {})",
                t.z, t.p, t.mean, t.sd, t.n
            ),
            None => "-".into(),
        };
        let observed = c
            .random
            .as_ref()
            .or(c.shuffled.as_ref())
            .map_or(f64::NAN, |t| t.observed);
        println!(
            "{}: top-{} mean cos {observed:.3}; vs random directions {}; vs label-shuffled probes {}",
            c.party,
            json.k,
            fmt(&c.random),
            fmt(&c.shuffled)
        );
        let smallest_null = [&c.random, &c.shuffled]
            .into_iter()
            .flatten()
            .map(|t| t.n)
            .min()
            .unwrap_or(0);
        match c.verdict {
            Verdict::Above => {}
            Verdict::NotAbove => eprintln!(
                "warning: {}'s value-vector selection is not above chance (p ≥ 0.05 against a null): its vectors and the ψ built on them may reflect no party signal",
                c.party
            ),
            Verdict::Undetermined => eprintln!(
                "warning: {}'s value-vector selection is {}: a null is too small to give p < 0.05 (run `probe train --null-seeds 20` or more)",
                c.party,
                c.verdict.describe(smallest_null)
            ),
        }
    }
    for (p, party) in json.parties.iter().enumerate() {
        let count = |mode: &str| {
            json.vectors
                .iter()
                .filter(|r| r.party == *party && r.mode == mode)
                .count()
        };
        println!(
            "{party} (probe {}; IQR outliers: {} above cos {:.3})",
            json.probe_sources[p],
            count("iqr"),
            json.iqr_thresholds[p]
        );
        for r in json
            .vectors
            .iter()
            .filter(|r| r.party == *party && r.mode == "joint")
            .take(per_party)
        {
            println!(
                "  #{:<2} L{:<2} n{:<6} cos {:+.3}  {}",
                r.rank,
                r.layer,
                r.neuron,
                r.cos,
                r.tokens
                    .iter()
                    .take(8)
                    .map(|t| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    /// The flag's default is the library's: `probed`.
    #[test]
    fn layers_default_to_the_probed_ones() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::Args,
        }
        let cli = Cli::parse_from(["x", "model.gguf", "--probes", "p"]);
        assert_eq!(cli.args.layers, "probed");
    }
}
