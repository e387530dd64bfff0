//! `scale`: every persona × prompt variant through the model, the MLP coefficients of the
//! parties' value vectors at the last token, scaling factors m_p^n and the party
//! distributions ψ, ψ_g, ψ_{j,g} (arXiv 2502.16280). Resumable and shardable like `extract`.

mod write;

pub use write::{load_rows, scopes, RowRecord};

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use probe_cache::{CacheWriter, Manifest, Row, ShardSplit};
use probe_data::personas::{load_templates, Persona, PersonaTemplate};
use probe_latent::coefficients::{self, hook_layout};
use probe_latent::scale::summarize;
use probe_latent::{FactorPlan, NegativePolicy, ScaleRow, Summary};

use crate::files::{check_out_dir, sha256_file};
use crate::model::{check_same_model, ModelSpec};
use crate::personas::PersonaSelection;
use crate::progress::{note, progress_bar};
use crate::vectors::VECTORS_JSON;

/// Options of [`scale`]; `ScaleOptions::new(model, vectors_dir)` has the CLI's defaults.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    pub model: ModelSpec,
    /// A `vectors` output directory.
    pub vectors: PathBuf,
    /// Which personas (default: the paper's whole grid).
    pub personas: PersonaSelection,
    /// Prompt templates (the variants j).
    pub prompts: PathBuf,
    /// Variant ids to use (empty: all).
    pub variants: Vec<String>,
    /// Which selection is V̂: `joint` (eq. 8), `per-layer` or `iqr`.
    pub select: String,
    /// Negative scaling factors: `clip`, `shift` or `softmax`.
    pub negative: String,
    /// Prompts per forward batch.
    pub batch_size: usize,
    /// Prompts per shard file.
    pub shard_size: usize,
    /// This job's shards `k/n`; the job that finds the cache complete writes ψ.
    pub shard: ShardSplit,
    /// Output directory (default `<vectors>/../scale-<spec>`).
    pub out: Option<PathBuf>,
    /// Delete existing output made with other settings instead of refusing.
    pub overwrite: bool,
}

impl ScaleOptions {
    pub fn new(model: ModelSpec, vectors: impl Into<PathBuf>) -> Self {
        ScaleOptions {
            model,
            vectors: vectors.into(),
            personas: PersonaSelection::default(),
            prompts: PathBuf::from("data/personas/prompts.toml"),
            variants: Vec::new(),
            select: "joint".into(),
            negative: "clip".into(),
            batch_size: 16,
            shard_size: 1024,
            shard: ShardSplit::default(),
            out: None,
            overwrite: false,
        }
    }
}

/// ψ of a finished `scale` directory, read back from its `psi.json`. The file's objects have
/// sorted keys; each distribution comes back in the order of `parties` (groups and variants
/// stay sorted).
pub fn load_psi(dir: &Path) -> Result<Summary> {
    let path = dir.join("psi.json");
    if !path.is_file() {
        anyhow::bail!("{} is missing (run `probe scale` first)", path.display());
    }
    let mut summary: Summary = probe_schema::read(&path)?;
    let parties = summary.parties.clone();
    let in_party_order = |d: &mut probe_latent::scale::Distribution| {
        if let Some(psi) = &mut d.psi {
            psi.0
                .sort_by_key(|(p, _)| parties.iter().position(|q| q == p));
        }
    };
    in_party_order(&mut summary.all);
    let groups = |g: &mut probe_latent::scale::Ordered<probe_latent::scale::Ordered<_>>| {
        for (_, values) in &mut g.0 {
            for (_, d) in &mut values.0 {
                in_party_order(d);
            }
        }
    };
    groups(&mut summary.by_group);
    for (_, v) in &mut summary.by_variant.0 {
        in_party_order(&mut v.all);
        groups(&mut v.by_group);
    }
    Ok(summary)
}

/// ψ and how it was made; `summary` is `None` while other shard jobs are pending.
#[derive(Debug)]
pub struct ScaleOutcome {
    pub dir: PathBuf,
    pub summary: Option<Summary>,
    /// Coefficients m_i below zero, of all.
    pub negative_coefficients: usize,
    pub coefficients: usize,
}

/// Runs the personas, writes rows and ψ (`rows.csv`, `rows.jsonl`, `psi.json`, `psi.csv`,
/// `psi.cells.jsonl`) to the output directory.
pub fn scale(options: &ScaleOptions) -> Result<ScaleOutcome> {
    let args = options;
    if args.batch_size == 0 || args.shard_size == 0 {
        bail!("--batch-size and --shard-size must be at least 1");
    }
    let split = args.shard;
    let policy = NegativePolicy::parse(&args.negative)?;
    if args.select == "diametric" {
        bail!("--select diametric: the scaling factor needs positively aligned vectors (joint, per-layer or iqr)");
    }
    let vectors_dir = args.vectors.clone();
    let vectors = crate::vectors::read(&vectors_dir)?;
    let selections = crate::vectors::selections(&vectors, &args.select)?;
    if selections.iter().all(Vec::is_empty) {
        bail!(
            "{} has no `{}` selection (known: joint, per-layer, iqr)",
            vectors_dir.join(VECTORS_JSON).display(),
            args.select
        );
    }
    let plan = FactorPlan::new(&vectors.parties, &selections)?;

    let spec = args.personas.load_spec()?;
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
    let personas: Vec<Persona> = args.personas.select(&spec)?;

    // Only the blocks up to the last layer with a selected value vector are loaded.
    // (Clamped to the model's depth: vectors of another model are refused just below, by name.)
    let depth = args.model.info()?.config.num_layers;
    let blocks = plan.columns.iter().map(|&(l, _)| l + 1).max().unwrap_or(0);
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args
            .personas
            .spec
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "personas".into());
        vectors_dir
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!("scale-{stem}"))
    });
    // an unwritable --out fails now, not after the model has run
    check_out_dir(&out)?;
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
        sha256_file(&vectors_dir.join(VECTORS_JSON))?,
    );
    source.insert("select".into(), args.select.clone());
    source.insert(
        "persona_spec_sha256".into(),
        sha256_file(&args.personas.spec)?,
    );
    source.insert("prompts_sha256".into(), sha256_file(&args.prompts)?);
    if let Some(p) = &args.personas.personas {
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
        model: args.model.path.display().to_string(),
        model_hash: vectors.model_hash.clone(),
        hooks: layout.hooks.clone(),
        dims: layout.dims.clone(),
        positions: "last-token".into(),
        dtype: "f32".into(),
        label_names: vec![],
        source,
        shard_size: args.shard_size,
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
    let pending_rows = writer.pending_rows();
    note(format_args!(
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
    ));
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
        note(format_args!(
            "{pending_rows} prompts ({tokens} tokens) in {seconds:.1}s: {:.1} prompts/s, {:.0} tok/s",
            pending_rows as f64 / seconds,
            tokens as f64 / seconds
        ));
    }
    if !writer.is_complete()? {
        note("coefficients incomplete: waiting for other --shard jobs; re-run any job to write ψ");
        return Ok(ScaleOutcome {
            dir: out,
            summary: None,
            negative_coefficients: 0,
            coefficients: 0,
        });
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
    let mut summary = summarize(&vectors.parties, &attributes, &variants, &rows, policy)?;
    // H_norm(ψ) with 95 % intervals over personas (1,000 resamples, seed 0)
    summary.entropy = Some(probe_latent::scale::entropy_summary(
        &attributes,
        &rows,
        policy,
        probe_metrics::stats::Bootstrap {
            resamples: 1000,
            level: 0.95,
            seed: 0,
        },
    )?);
    let (policy_sensitivity, by_language) =
        write::sensitivity_and_languages(&vectors.parties, &templates, &rows, policy);
    write::write_rows(&out, &vectors.parties, &rows, policy)?;
    summary.run = Some(write::ScaleRun {
        vectors: vectors_dir.display().to_string(),
        select: args.select.clone(),
        k: vectors.k,
        vector_layers: vectors.layers.clone(),
        persona_spec: args.personas.spec.display().to_string(),
        personas: personas.len(),
        variants,
        negative_coefficients: Some(probe_latent::scale::Count {
            count: negative_coefficients,
            of: coefficients.len(),
        }),
        policy_sensitivity,
        by_language,
        this_run: Some(probe_schema::psi::ThisRun {
            prompts: pending_rows,
            tokens,
            seconds,
        }),
    });
    write::write_summary(&out, &summary)?;
    Ok(ScaleOutcome {
        dir: out,
        summary: Some(summary),
        negative_coefficients,
        coefficients: coefficients.len(),
    })
}
