//! `probe scale --persona <spec>`: every persona × prompt variant through the model, the MLP
//! coefficients of the parties' value vectors at the last token, scaling factors m_p^n and
//! the party distributions ψ, ψ_g, ψ_{j,g}. Resumable and shardable like `probe extract`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_cache::{CacheWriter, Manifest, Row, ShardSplit};
use probe_data::personas::{load_templates, Persona, PersonaTemplate};
use probe_latent::coefficients::{self, hook_layout};
use probe_latent::scale::{row_distributions, summarize, Distribution, Ordered};
use probe_latent::{FactorPlan, NegativePolicy, ScaleRow, Summary};

use super::vectors::{check_same_model, csv_field, VectorsJson};
use crate::common::{progress_bar, sha256_file, ModelArgs, PersonaArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// A `probe vectors` output directory (default: <probes>/vectors of --probes).
    #[arg(long)]
    pub vectors: Option<PathBuf>,
    /// A `probe train` run directory, whose `vectors/` is used when --vectors is not given.
    #[arg(long)]
    pub probes: Option<PathBuf>,
    #[command(flatten)]
    pub grid: PersonaArgs,
    /// Prompt templates (the variants j).
    #[arg(long, default_value = "data/personas/prompts.toml")]
    pub prompts: PathBuf,
    /// Variant ids to use, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Which selection of `probe vectors` is V̂: joint (eq. 8; default), per-layer or iqr.
    #[arg(long, default_value = "joint")]
    pub select: String,
    /// Negative scaling factors: clip (default; = the paper's formula when none are
    /// negative), shift (subtract the run's minimum) or softmax (per row).
    #[arg(long, default_value = "clip")]
    pub negative: String,
    /// Prompts per forward batch; batches follow the prompts' shared prefixes, whose K/V
    /// are computed once per batch.
    #[arg(long, default_value_t = 16, value_parser = crate::common::positive)]
    pub batch_size: usize,
    /// Prompts per shard file.
    #[arg(long, default_value_t = 1024, value_parser = crate::common::positive)]
    pub shard_size: usize,
    /// Fill only shards i with i mod n = k; the job that finds the cache complete writes ψ.
    #[arg(long, default_value = "0/1")]
    pub shard: String,
    /// Output directory (default: <vectors>/../scale-<spec>).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Delete existing output made with other settings instead of refusing.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(args: Args) -> Result<()> {
    let split: ShardSplit = args
        .shard
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--shard {e}"))?;
    let policy = NegativePolicy::parse(&args.negative)?;
    if args.select == "diametric" {
        bail!("--select diametric: the scaling factor needs positively aligned vectors (joint, per-layer or iqr)");
    }
    let vectors_dir = match (&args.vectors, &args.probes) {
        (Some(v), _) => v.clone(),
        (None, Some(p)) => p.join("vectors"),
        (None, None) => bail!("give --vectors <dir> (from `probe vectors`) or --probes <run>"),
    };
    let vectors = VectorsJson::read(&vectors_dir)?;
    let selections = vectors.selections(&args.select)?;
    if selections.iter().all(Vec::is_empty) {
        bail!(
            "{} has no `{}` selection (known: joint, per-layer, iqr)",
            vectors_dir.join(super::vectors::VECTORS_JSON).display(),
            args.select
        );
    }
    let plan = FactorPlan::new(&vectors.parties, &selections)?;

    let spec = args.grid.spec()?;
    let all_templates = load_templates(&args.prompts)?;
    let templates: Vec<PersonaTemplate> = if args.variants.is_empty() {
        all_templates
    } else {
        args.variants
            .iter()
            .map(|id| {
                all_templates
                    .iter()
                    .find(|t| &t.id == id)
                    .cloned()
                    .with_context(|| {
                        format!(
                            "no variant `{id}` in {} (known: {})",
                            args.prompts.display(),
                            all_templates
                                .iter()
                                .map(|t| t.id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })
            })
            .collect::<Result<_>>()?
    };
    spec.check_templates(&templates)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.prompts.display()))?;
    let personas: Vec<Persona> = args.grid.select(&spec)?;

    // Only the blocks up to the last layer with a selected value vector are loaded.
    // (Clamped to the model's depth: vectors of another model are refused just below, by name.)
    let depth = args.model.info()?.config.num_layers;
    let blocks = plan.columns.iter().map(|&(l, _)| l + 1).max().unwrap_or(0);
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .grid
            .persona
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "personas".into());
        vectors_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("scale-{stem}"))
    });
    // an unwritable --out fails now, not after the model has run
    crate::common::check_out_dir(&out)?;
    let model = args.model.load_blocks(Some(blocks.min(depth)))?;
    check_same_model(
        &args.model,
        &model,
        &vectors.model,
        &vectors.model_hash,
        vectors.hidden_size,
        "value vectors",
    )?;

    let n_rows = personas.len() * templates.len();
    let layout = hook_layout(&plan);
    let mut source = std::collections::BTreeMap::new();
    source.insert(
        "vectors_sha256".into(),
        sha256_file(&vectors_dir.join(super::vectors::VECTORS_JSON))?,
    );
    source.insert("select".into(), args.select.clone());
    source.insert(
        "persona_spec_sha256".into(),
        sha256_file(&args.grid.persona)?,
    );
    source.insert("prompts_sha256".into(), sha256_file(&args.prompts)?);
    if let Some(p) = &args.grid.personas {
        source.insert("personas_sha256".into(), sha256_file(p)?);
    }
    // the rendered prompts themselves, so that a changed persona text cannot reuse old rows
    let rendered: Vec<String> = personas
        .iter()
        .flat_map(|p| templates.iter().map(|t| spec.render(t, p)))
        .collect();
    source.insert(
        "inputs_sha256".into(),
        probe_cache::fingerprint_texts(rendered.iter().map(String::as_str)),
    );
    source.insert(
        "neurons".into(),
        plan.columns
            .iter()
            .map(|(l, n)| format!("{l}:{n}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    let manifest = Manifest {
        format_version: probe_cache::FORMAT_VERSION,
        model: args.model.model.display().to_string(),
        model_hash: vectors.model_hash.clone(),
        hooks: layout.hooks.clone(),
        dims: layout.dims.clone(),
        positions: "last-token".into(),
        dtype: "f32".into(),
        label_names: vec![],
        source,
        shard_size: args.shard_size.max(1),
        rows: personas
            .iter()
            .flat_map(|p| {
                templates.iter().map(move |t| Row {
                    id: format!("{}|{}", p.id, t.id),
                    label: None,
                    group: Some(p.id.clone()),
                    meta: Default::default(),
                })
            })
            .collect(),
    };
    let cache_dir = out.join("coefficients");
    let mut writer = CacheWriter::open(&cache_dir, manifest, split, args.overwrite)
        .with_context(|| format!("opening {}", cache_dir.display()))?;
    let pending = writer.pending();
    let pending_rows: usize = pending
        .iter()
        .map(|&i| {
            let (s, e) = writer.manifest().shard_rows(i);
            e - s
        })
        .sum();
    eprintln!(
        "{} personas × {} variants = {n_rows} prompts; {} neurons in {} layers for {} parties \
         ({} selection); {} of {} shards to do → {}",
        personas.len(),
        templates.len(),
        plan.columns.len(),
        layout.hooks.len(),
        vectors.parties.len(),
        args.select,
        pending.len(),
        writer.manifest().n_shards(),
        out.display()
    );
    let bar = progress_bar(pending_rows as u64, "scale");
    let start = Instant::now();
    let tokens_seen = std::sync::atomic::AtomicUsize::new(0);
    let n_templates = templates.len();
    coefficients::collect(
        &model,
        &mut writer,
        &plan,
        // rendered once above, for the manifest's fingerprint (persona-major, variant-minor)
        &|row| rendered[row].clone(),
        args.batch_size,
        &|done, tokens| {
            tokens_seen.store(tokens, std::sync::atomic::Ordering::Relaxed);
            bar.set_position(done as u64);
            let secs = start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "{:.1} prompts/s, {:.0} tok/s",
                done as f64 / secs,
                tokens as f64 / secs
            ));
        },
    )?;
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    let tokens = tokens_seen.load(std::sync::atomic::Ordering::Relaxed);
    if pending_rows > 0 {
        eprintln!(
            "{pending_rows} prompts ({tokens} tokens) in {seconds:.1}s: {:.1} prompts/s, {:.0} tok/s",
            pending_rows as f64 / seconds,
            tokens as f64 / seconds
        );
    }
    if !writer.is_complete()? {
        eprintln!(
            "coefficients incomplete: waiting for other --shard jobs; re-run any job to write ψ"
        );
        return Ok(());
    }

    let reader = writer.into_reader()?;
    let coefficients = coefficients::read(&reader, &plan)?;
    let width = plan.columns.len();
    let negative_coefficients = coefficients.iter().filter(|&&m| m < 0.0).count();
    let rows: Vec<ScaleRow> = (0..n_rows)
        .map(|r| {
            let p = &personas[r / n_templates];
            ScaleRow {
                persona: p.id.clone(),
                variant: templates[r % n_templates].id.clone(),
                values: p.values.clone(),
                weight: p.weight,
                factors: plan.factors(&coefficients[r * width..(r + 1) * width]),
            }
        })
        .collect();
    let attributes: Vec<(String, Vec<String>)> = spec
        .attributes
        .iter()
        .map(|a| {
            (
                a.name.clone(),
                a.values.iter().map(|v| v.id.clone()).collect(),
            )
        })
        .collect();
    let variants: Vec<String> = templates.iter().map(|t| t.id.clone()).collect();
    let summary = summarize(&vectors.parties, &attributes, &variants, &rows, policy)?;
    let sensitivity = probe_latent::scale::policy_sensitivity(&rows);
    // ψ per language of the prompt variants (German and English prompts are not pooled
    // silently): variant → language, then the rows of each language.
    let language_of: std::collections::HashMap<&str, &str> = templates
        .iter()
        .map(|t| (t.id.as_str(), t.language.as_str()))
        .collect();
    let mut languages: Vec<&str> = templates.iter().map(|t| t.language.as_str()).collect();
    languages.sort_unstable();
    languages.dedup();
    let by_language: serde_json::Map<String, serde_json::Value> = languages
        .iter()
        .map(|&lang| {
            let keep = |r: &ScaleRow| language_of.get(r.variant.as_str()) == Some(&lang);
            let psi = probe_latent::scale::psi_over(&rows, policy, keep);
            let n = rows.iter().filter(|r| keep(r)).count();
            let psi = psi.map(|d| {
                vectors
                    .parties
                    .iter()
                    .cloned()
                    .zip(d.into_iter().map(serde_json::Value::from))
                    .collect::<serde_json::Map<String, serde_json::Value>>()
            });
            (lang.to_string(), serde_json::json!({"rows": n, "psi": psi}))
        })
        .collect();
    let policy_sensitivity: serde_json::Map<String, serde_json::Value> = vectors
        .parties
        .iter()
        .enumerate()
        .map(|(p, party)| {
            let psi: serde_json::Map<String, serde_json::Value> = sensitivity
                .psi
                .iter()
                .map(|(policy, d)| {
                    (
                        policy.name().to_string(),
                        serde_json::json!(d.as_ref().map(|d| d[p])),
                    )
                })
                .collect();
            (
                party.clone(),
                serde_json::json!({"negative_share": sensitivity.negative_share[p], "psi": psi}),
            )
        })
        .collect();
    write_rows(&out, &vectors.parties, &rows, policy)?;
    write_summary(
        &out,
        &summary,
        serde_json::json!({
            "vectors": vectors_dir.display().to_string(),
            "select": args.select,
            "k": vectors.k,
            "vector_layers": vectors.layers,
            "persona_spec": args.grid.persona.display().to_string(),
            "personas": personas.len(),
            "variants": variants,
            "negative_coefficients": {"count": negative_coefficients, "of": coefficients.len()},
            "policy_sensitivity": policy_sensitivity,
            "by_language": by_language,
            "this_run": {"prompts": pending_rows, "tokens": tokens, "seconds": seconds},
        }),
    )?;
    print_summary(&summary, negative_coefficients, coefficients.len());
    eprintln!(
        "rows.csv, rows.jsonl, psi.json, psi.csv, psi.cells.jsonl (for `probe compare`) → {}",
        out.display()
    );
    Ok(())
}

fn write_rows(
    out: &Path,
    parties: &[String],
    rows: &[ScaleRow],
    policy: NegativePolicy,
) -> Result<()> {
    let factors: Vec<Vec<f64>> = rows.iter().map(|r| r.factors.clone()).collect();
    let dists = row_distributions(&factors, policy);
    let mut csv = String::from("persona,variant");
    if let Some(first) = rows.first() {
        for (a, _) in &first.values {
            csv.push(',');
            csv.push_str(&csv_field(a));
        }
    }
    csv.push_str(",weight");
    for p in parties {
        csv.push_str(&format!(",m:{}", csv_field(p)));
    }
    for p in parties {
        csv.push_str(&format!(",p:{}", csv_field(p)));
    }
    csv.push('\n');
    let mut jsonl = String::new();
    for (r, (_, dist)) in rows.iter().zip(&dists) {
        csv.push_str(&csv_field(&r.persona));
        csv.push(',');
        csv.push_str(&csv_field(&r.variant));
        for (_, v) in &r.values {
            csv.push(',');
            csv.push_str(&csv_field(v));
        }
        csv.push_str(&format!(",{}", r.weight));
        for m in &r.factors {
            csv.push_str(&format!(",{m:.6e}"));
        }
        for p in 0..parties.len() {
            match dist {
                Some(d) => csv.push_str(&format!(",{:.6}", d[p])),
                None => csv.push(','),
            }
        }
        csv.push('\n');
        let line = serde_json::json!({
            "persona": r.persona,
            "variant": r.variant,
            "attributes": Ordered(r.values.clone()),
            "weight": r.weight,
            "factors": Ordered(parties.iter().cloned().zip(r.factors.iter().copied()).collect()),
            "distribution": dist.as_ref().map(|d| Ordered(parties.iter().cloned().zip(d.iter().copied()).collect())),
        });
        jsonl.push_str(&line.to_string());
        jsonl.push('\n');
    }
    probe_cache::write_atomic(&out.join("rows.csv"), csv.as_bytes())?;
    probe_cache::write_atomic(&out.join("rows.jsonl"), jsonl.as_bytes())?;
    Ok(())
}

fn write_summary(out: &Path, summary: &Summary, run: serde_json::Value) -> Result<()> {
    let mut json = serde_json::to_value(summary)?;
    json["run"] = run;
    probe_cache::write_atomic(
        &out.join("psi.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    // Long format: one line per (scope, variant, attribute, value, party); and the same
    // distributions as `probe compare` cells (method=latent), one per scope.
    let mut csv = String::from("variant,attribute,value,party,psi,rows,weight\n");
    let mut cells = String::new();
    let mut push = |variant: &str, attr: &str, value: &str, d: &Distribution| {
        if let Some(psi) = &d.psi {
            let cell = probe_data::cells::Cell {
                labels: [
                    ("method", "latent"),
                    ("variant", variant),
                    ("attribute", attr),
                    ("value", value),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                options: psi.0.iter().map(|(p, _)| p.clone()).collect(),
                predicted: Some(psi.0.iter().map(|(_, x)| *x).collect()),
                reference: None,
                weight: Some(d.weight),
                ordinal: None,
                origin: None,
            };
            cells.push_str(&cell.to_json().to_string());
            cells.push('\n');
            for (party, x) in &psi.0 {
                csv.push_str(&format!(
                    "{},{},{},{},{x:.6},{},{}\n",
                    csv_field(variant),
                    csv_field(attr),
                    csv_field(value),
                    csv_field(party),
                    d.rows,
                    d.weight
                ));
            }
        }
    };
    push("all", "all", "all", &summary.all);
    for (attr, values) in &summary.by_group.0 {
        for (value, d) in &values.0 {
            push("all", attr, value, d);
        }
    }
    for (variant, v) in &summary.by_variant.0 {
        push(variant, "all", "all", &v.all);
        for (attr, values) in &v.by_group.0 {
            for (value, d) in &values.0 {
                push(variant, attr, value, d);
            }
        }
    }
    probe_cache::write_atomic(&out.join("psi.csv"), csv.as_bytes())?;
    probe_cache::write_atomic(&out.join("psi.cells.jsonl"), cells.as_bytes())?;
    Ok(())
}

fn print_summary(summary: &Summary, negative_coefficients: usize, coefficients: usize) {
    let fmt = |d: &Distribution| match &d.psi {
        Some(psi) => psi
            .0
            .iter()
            .map(|(p, x)| format!("{p} {:.3}", x))
            .collect::<Vec<_>>()
            .join("  "),
        None => "undefined (every factor ≤ 0)".into(),
    };
    println!("ψ (all {} rows): {}", summary.all.rows, fmt(&summary.all));
    for (attr, values) in &summary.by_group.0 {
        for (value, d) in &values.0 {
            println!("  ψ[{attr}={value}]: {}", fmt(d));
        }
    }
    for (variant, v) in &summary.by_variant.0 {
        println!("  ψ_j[{variant}]: {}", fmt(&v.all));
    }
    println!(
        "negative: {} of {} coefficients m_i; {} of {} scaling factors m_p^n (--negative {}); {} rows with no positive factor",
        negative_coefficients,
        coefficients,
        summary.negative_factors.count,
        summary.negative_factors.of,
        summary.negative,
        summary.undefined_rows
    );
}
