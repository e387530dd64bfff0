//! The experiment file of `probe study` (TOML): models, the election, probe, persona, prompt
//! evaluation, survey and report settings. Everything is checked before any model is loaded;
//! errors name the key.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Study name (the report's title).
    pub name: String,
    /// Output directory; relative paths are relative to the experiment file's directory's
    /// working directory (where `probe study` runs).
    pub out: PathBuf,
    /// `cpu`, `cuda`, `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// The models' `--dtype` (native, f32, bf16, f16); a model's own `dtype` overrides it.
    #[serde(default = "default_model_dtype")]
    pub dtype: String,
    #[serde(rename = "model")]
    pub models: Vec<ModelEntry>,
    pub election: ElectionConfig,
    #[serde(default)]
    pub probes: ProbeConfig,
    pub personas: Option<PersonaConfig>,
    #[serde(default, rename = "eval")]
    pub evals: Vec<EvalConfig>,
    #[serde(default)]
    pub survey: SurveyConfig,
    #[serde(default)]
    pub report: ReportConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// A GGUF file or an HF model directory.
    pub path: PathBuf,
    /// Display label (default: the file or directory name).
    pub label: Option<String>,
    /// `base` or `instruct`: instruct models get their chat template in `probe eval`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Model family, e.g. `llama-3.1`; base and instruct of one family form a pair.
    pub family: Option<String>,
    /// A `tokenizer.json` when the model directory has none.
    pub tokenizer: Option<PathBuf>,
    /// This model's `--dtype` (default: the experiment's `dtype`).
    pub dtype: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectionConfig {
    /// A Wahl-o-Mat election directory (qual-o-mat layout).
    pub dir: PathBuf,
    /// Parties (names or aliases; default: the six Bundestag parties).
    #[serde(default)]
    pub parties: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Layer range as fractions of the depth, `[from, to]`, each in (0, 1].
    #[serde(default = "default_layers")]
    pub layers: [f64; 2],
    #[serde(default = "default_positions")]
    pub positions: String,
    #[serde(default = "default_template_file")]
    pub template_file: PathBuf,
    /// Template ids (default: all).
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default = "default_folds")]
    pub folds: usize,
    /// Value vectors per party.
    #[serde(default = "default_k")]
    pub k: usize,
    #[serde(default = "default_dtype")]
    pub dtype: String,
    #[serde(default = "default_shard_size")]
    pub shard_size: usize,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonaConfig {
    #[serde(default = "default_persona_spec")]
    pub spec: PathBuf,
    #[serde(default = "default_persona_templates")]
    pub templates: PathBuf,
    /// Variant ids (default: all).
    #[serde(default)]
    pub variants: Vec<String>,
    /// Grid filters, e.g. `["year=2021", "age=18-24,25-34"]`.
    #[serde(default, rename = "where")]
    pub filter: Vec<String>,
    #[serde(default = "default_select")]
    pub select: String,
    #[serde(default = "default_negative")]
    pub negative: String,
    /// Prompts per scale cache shard (the unit of resumption).
    #[serde(default = "default_persona_shard_size")]
    pub shard_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Output name (`eval-<name>`; default from the question set).
    pub name: Option<String>,
    /// A generic question JSONL.
    pub questions: Option<PathBuf>,
    /// An OpinionQA folder.
    pub opinionqa: Option<PathBuf>,
    #[serde(default)]
    pub attributes: Vec<String>,
    #[serde(default)]
    pub question_ids: Vec<String>,
    pub limit: Option<usize>,
    /// The voting question over the study's election and personas.
    #[serde(default)]
    pub vote: bool,
    /// Voting question: a seeded subset of this many personas of the study's grid.
    pub persona_sample: Option<usize>,
    /// Voting question under few-shot steering: the vote by group of another election or
    /// survey to show (a respondent CSV with the survey's columns, or `btw2021`); never the
    /// scored survey.
    pub shots_from: Option<String>,
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    #[serde(default = "default_steerings")]
    pub steering: Vec<String>,
    #[serde(default = "default_n")]
    pub n: usize,
    #[serde(default = "default_temperature")]
    pub temperature: Vec<f32>,
    #[serde(default = "default_shots")]
    pub shots: usize,
    pub prompts: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyConfig {
    /// Respondent-level CSV.
    pub csv: Option<PathBuf>,
    pub answer: Option<String>,
    pub weight: Option<String>,
    #[serde(default)]
    pub attributes: Vec<String>,
    /// A built-in election result (`btw2021`) instead of a survey.
    pub election: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Metrics of the `compare` tables.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<String>,
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    /// Notes shown highlighted at the top of the report (e.g. that the data is fictional).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Figure files beside the HTML: any of svg, png (300 dpi), pdf.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
}

fn default_formats() -> Vec<String> {
    ["svg", "png", "pdf"].map(String::from).to_vec()
}

fn default_model_dtype() -> String {
    "native".into()
}

fn default_device() -> String {
    "cpu".into()
}
fn default_kind() -> String {
    "instruct".into()
}
fn default_layers() -> [f64; 2] {
    [0.6, 0.9]
}
fn default_positions() -> String {
    "last-before-answer".into()
}
fn default_template_file() -> PathBuf {
    "data/templates/probe-prompts.toml".into()
}
fn default_folds() -> usize {
    5
}
fn default_k() -> usize {
    20
}
fn default_dtype() -> String {
    "f32".into()
}
fn default_shard_size() -> usize {
    256
}
fn default_batch() -> usize {
    16
}
fn default_persona_spec() -> PathBuf {
    "data/personas/paper-grid.toml".into()
}
fn default_persona_templates() -> PathBuf {
    "data/personas/prompts.toml".into()
}
fn default_persona_shard_size() -> usize {
    1024
}
fn default_select() -> String {
    "joint".into()
}
fn default_negative() -> String {
    "clip".into()
}
fn default_methods() -> Vec<String> {
    ["logp", "sample", "sequence", "verbalize"]
        .map(String::from)
        .to_vec()
}
fn default_steerings() -> Vec<String> {
    ["none", "persona", "fewshot"].map(String::from).to_vec()
}
fn default_n() -> usize {
    30
}
fn default_temperature() -> Vec<f32> {
    vec![1.0]
}
fn default_shots() -> usize {
    5
}
fn default_metrics() -> Vec<String> {
    vec!["tv".into()]
}
fn default_bootstrap() -> usize {
    1000
}

impl Default for ProbeConfig {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl Default for ReportConfig {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

fn must_exist(key: &str, path: &Path) -> Result<()> {
    // a default data file (data/templates/…, data/personas/…, data/eval/…) is built in
    if !probe_data::defaults::available(path) {
        bail!("{key}: {} does not exist", path.display());
    }
    Ok(())
}

impl Experiment {
    /// Reads and checks an experiment file; nothing is loaded but small data files.
    pub fn load(path: &Path) -> Result<Self> {
        let text = probe_data::read_text(path)?;
        let experiment: Experiment = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        experiment
            .check()
            .with_context(|| format!("{}", path.display()))?;
        Ok(experiment)
    }

    fn check(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            bail!("name: empty");
        }
        if self.models.is_empty() {
            bail!("model: no [[model]] entries");
        }
        let mut labels = std::collections::HashSet::new();
        if self.out.exists() && !self.out.is_dir() {
            bail!("out: {} exists and is not a directory", self.out.display());
        }
        if self.report.bootstrap == 0 {
            bail!("report.bootstrap: 0 (the intervals need at least 1 resample)");
        }
        for (i, m) in self.models.iter().enumerate() {
            must_exist(&format!("model[{i}].path"), &m.path)?;
            crate::files::check_model_path(&m.path, &format!("model[{i}].path"))?;
            crate::files::check_component(&self.label(i), &format!("model[{i}].label"))?;
            if let Some(t) = &m.tokenizer {
                must_exist(&format!("model[{i}].tokenizer"), t)?;
            }
            if !matches!(m.kind.as_str(), "base" | "instruct") {
                bail!("model[{i}].kind: `{}` (known: base, instruct)", m.kind);
            }
            if !labels.insert(self.label(i)) {
                bail!(
                    "model[{i}].label: `{}` is used twice (labels name the output directories)",
                    self.label(i)
                );
            }
        }
        if self.device.parse::<probe_lm::DeviceSpec>().is_err() {
            bail!(
                "device: `{}` (known: cpu, cuda, cuda:N, torch-cpu)",
                self.device
            );
        }
        let dtypes = std::iter::once(("dtype".to_string(), &self.dtype)).chain(
            self.models
                .iter()
                .enumerate()
                .filter_map(|(i, m)| Some((format!("model[{i}].dtype"), m.dtype.as_ref()?))),
        );
        for (key, value) in dtypes {
            if value.parse::<probe_lm::DtypeChoice>().is_err() {
                bail!(
                    "{key}: `{value}` (known: {})",
                    probe_lm::precision::DTYPE_CHOICES
                );
            }
        }
        must_exist("election.dir", &self.election.dir)?;
        let [from, to] = self.probes.layers;
        for (key, x) in [("probes.layers[0]", from), ("probes.layers[1]", to)] {
            if !(x > 0.0 && x <= 1.0) {
                bail!("{key}: {x} lies outside (0, 1] (a fraction of the model's depth)");
            }
        }
        if from > to {
            bail!("probes.layers: [{from}, {to}] runs backwards");
        }
        probe_extract::PositionRule::parse(&self.probes.positions)
            .map_err(|e| anyhow::anyhow!("probes.positions: {e}"))?;
        must_exist("probes.template_file", &self.probes.template_file)?;
        if self.probes.folds < 2 {
            bail!("probes.folds: {} (need ≥ 2)", self.probes.folds);
        }
        if self.probes.k == 0 {
            bail!("probes.k: 0 value vectors");
        }
        if !matches!(self.probes.dtype.as_str(), "f32" | "f16") {
            bail!("probes.dtype: `{}` (known: f32, f16)", self.probes.dtype);
        }
        if self.probes.shard_size == 0 || self.probes.batch_size == 0 {
            bail!("probes.shard_size and probes.batch_size must be ≥ 1");
        }
        if let Some(p) = &self.personas {
            must_exist("personas.spec", &p.spec)?;
            must_exist("personas.templates", &p.templates)?;
            let spec = probe_data::personas::PersonaSpec::load(&p.spec)
                .map_err(|e| anyhow::anyhow!("personas.spec: {e}"))?;
            let filter = probe_data::personas::GridFilter::parse(&p.filter)
                .map_err(|e| anyhow::anyhow!("personas.where: {e}"))?;
            spec.grid(&filter)
                .map_err(|e| anyhow::anyhow!("personas.where: {e}"))?;
            if !matches!(p.select.as_str(), "joint" | "per-layer" | "iqr") {
                bail!(
                    "personas.select: `{}` (known: joint, per-layer, iqr)",
                    p.select
                );
            }
            probe_latent::NegativePolicy::parse(&p.negative)
                .map_err(|e| anyhow::anyhow!("personas.negative: {e}"))?;
            if p.shard_size == 0 {
                bail!("personas.shard_size: must be ≥ 1");
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, e) in self.evals.iter().enumerate() {
            let key = |k: &str| format!("eval[{i}].{k}");
            let sources = [e.questions.is_some(), e.opinionqa.is_some(), e.vote]
                .iter()
                .filter(|x| **x)
                .count();
            if sources != 1 {
                bail!("eval[{i}]: give exactly one of `questions`, `opinionqa` or `vote = true`");
            }
            if let Some(q) = &e.questions {
                must_exist(&key("questions"), q)?;
            }
            if let Some(q) = &e.opinionqa {
                must_exist(&key("opinionqa"), q)?;
            }
            if e.vote && self.personas.is_none() {
                bail!(
                    "{}: the voting question needs a [personas] section",
                    key("vote")
                );
            }
            if let Some(p) = &e.prompts {
                must_exist(&key("prompts"), p)?;
            }
            for m in &e.methods {
                probe_eval::prompts::Method::parse(m)
                    .map_err(|err| anyhow::anyhow!("{}: {err}", key("methods")))?;
            }
            for s in &e.steering {
                probe_eval::prompts::Steering::parse(s)
                    .map_err(|err| anyhow::anyhow!("{}: {err}", key("steering")))?;
            }
            if e.vote && e.steering.iter().any(|s| s == "fewshot") && e.shots_from.is_none() {
                bail!(
                    "{}: few-shot steering of the voting question needs `shots_from` (another election's or survey's vote by group): the scored survey's own groups would put the answer in the prompt",
                    key("shots_from")
                );
            }
            if e.n == 0 || e.n > 200 {
                bail!("{}: {} (1 to 200)", key("n"), e.n);
            }
            crate::files::check_component(&self.eval_name(i), &key("name"))?;
            if !names.insert(self.eval_name(i)) {
                bail!(
                    "{}: `{}` is used twice; give each [[eval]] its own name",
                    key("name"),
                    self.eval_name(i)
                );
            }
        }
        if let Some(csv) = &self.survey.csv {
            must_exist("survey.csv", csv)?;
        }
        if let Some(id) = &self.survey.election {
            if id != "none" && probe_report::builtin::find(id).is_none() {
                bail!("survey.election: unknown election `{id}`");
            }
        }
        for m in &self.report.metrics {
            probe_report::compare::Metric::parse(m)
                .map_err(|e| anyhow::anyhow!("report.metrics: {e}"))?;
        }
        for f in &self.report.formats {
            f.parse::<probe_report::figures::Format>()
                .map_err(|e| anyhow::anyhow!("report.formats: {e}"))?;
        }
        self.check_contents()
    }

    /// What the stages will read, read now (all small files): the election and its parties,
    /// template and variant ids, question files and ids, prompt files, survey columns. A typo
    /// fails `--dry-run`, not the fourth stage after three have run.
    fn check_contents(&self) -> Result<()> {
        let election = probe_data::wahl_o_mat::Election::load(&self.election.dir)
            .map_err(|e| anyhow::anyhow!("election.dir: {e}"))?;
        election
            .select_parties(&self.election.parties)
            .map_err(|e| anyhow::anyhow!("election.parties: {e}"))?;
        let templates = probe_data::probe_prompts::TemplateSet::load(&self.probes.template_file)
            .map_err(|e| anyhow::anyhow!("probes.template_file: {e}"))?;
        templates
            .select(&self.probes.templates)
            .map_err(|e| anyhow::anyhow!("probes.templates: {e}"))?;
        if let Some(p) = &self.personas {
            let all = probe_data::personas::load_templates(&p.templates)
                .map_err(|e| anyhow::anyhow!("personas.templates: {e}"))?;
            let chosen: Vec<probe_data::personas::PersonaTemplate> = if p.variants.is_empty() {
                all.clone()
            } else {
                p.variants
                    .iter()
                    .map(|id| {
                        all.iter().find(|t| &t.id == id).cloned().with_context(|| {
                            format!(
                                "personas.variants: no variant `{id}` in {} (known: {})",
                                p.templates.display(),
                                all.iter()
                                    .map(|t| t.id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        })
                    })
                    .collect::<Result<_>>()?
            };
            let spec = probe_data::personas::PersonaSpec::load(&p.spec)
                .map_err(|e| anyhow::anyhow!("personas.spec: {e}"))?;
            spec.check_templates(&chosen)
                .map_err(|e| anyhow::anyhow!("personas.templates: {e}"))?;
        }
        for (i, e) in self.evals.iter().enumerate() {
            let key = |k: &str| format!("eval[{i}].{k}");
            let set = if let Some(q) = &e.questions {
                Some(
                    probe_eval::questions::QuestionSet::jsonl(q)
                        .map_err(|err| anyhow::anyhow!("{}: {err}", key("questions")))?,
                )
            } else if let Some(dir) = &e.opinionqa {
                for a in &e.attributes {
                    must_exist(&key("attributes"), &dir.join(format!("{a}_data.json")))?;
                }
                None
            } else {
                None
            };
            if let Some(mut set) = set {
                if !e.question_ids.is_empty() {
                    set.select(&e.question_ids)
                        .map_err(|err| anyhow::anyhow!("{}: {err}", key("question_ids")))?;
                }
            }
            if let Some(p) = &e.prompts {
                probe_eval::prompts::Templates::load(p)
                    .map_err(|err| anyhow::anyhow!("{}: {err}", key("prompts")))?;
            }
            if let Some(source) = &e.shots_from {
                if Path::new(source).is_file() {
                    let o = probe_data::respondents::RespondentOptions::new(
                        self.survey.answer.clone().unwrap_or_else(|| "vote".into()),
                    );
                    probe_data::respondents::read_respondents(Path::new(source), &o)
                        .map_err(|err| anyhow::anyhow!("{}: {err}", key("shots_from")))?;
                } else if probe_report::builtin::find(source).is_none() {
                    bail!(
                        "{}: `{source}` is neither a file nor a built-in election result",
                        key("shots_from")
                    );
                }
            }
            if e.limit == Some(0) {
                bail!("{}: 0 questions", key("limit"));
            }
            if let Some(t) = e
                .temperature
                .iter()
                .find(|t| !(t.is_finite() && **t >= 0.0))
            {
                bail!("{}: {t} (must be ≥ 0)", key("temperature"));
            }
        }
        if let Some(csv) = &self.survey.csv {
            let mut o = probe_data::respondents::RespondentOptions::new(
                self.survey.answer.clone().unwrap_or_else(|| "vote".into()),
            );
            o.weight = self.survey.weight.clone();
            if !self.survey.attributes.is_empty() {
                o.attributes = Some(self.survey.attributes.clone());
            }
            probe_data::respondents::read_respondents(csv, &o)
                .map_err(|e| anyhow::anyhow!("survey.csv: {e}"))?;
        }
        Ok(())
    }

    /// The label of model `i`: its `label`, else the file or directory stem.
    pub fn label(&self, i: usize) -> String {
        let m = &self.models[i];
        m.label
            .clone()
            .unwrap_or_else(|| probe_lm::model::model_name(&m.path))
    }

    /// The output name of evaluation `i`.
    pub fn eval_name(&self, i: usize) -> String {
        let e = &self.evals[i];
        if let Some(n) = &e.name {
            return n.clone();
        }
        let stem = |p: &PathBuf| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if let Some(q) = &e.questions {
            stem(q)
        } else if let Some(q) = &e.opinionqa {
            stem(q)
        } else {
            format!("vote-{}", stem(&self.election.dir))
        }
    }

    /// `0.6L..0.9L` for the extract command.
    pub fn layer_spec(&self) -> String {
        let [a, b] = self.probes.layers;
        format!("{a}L..{b}L")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_experiments_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for name in ["demo.toml", "wahl-o-mat-2021.toml"] {
            let path = root.join("examples").join(name);
            let text = std::fs::read_to_string(&path).unwrap();
            let e: Experiment = toml::from_str(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert!(!e.models.is_empty());
            for m in &e.report.metrics {
                probe_report::compare::Metric::parse(m).unwrap();
            }
            if name == "wahl-o-mat-2021.toml" {
                // the source study's seven families, each a base/instruct pair, Gemma among them
                let families: std::collections::BTreeSet<_> =
                    e.models.iter().filter_map(|m| m.family.clone()).collect();
                assert_eq!(families.len(), 7, "{families:?}");
                assert_eq!(e.models.len(), 14);
                assert!(families.contains("gemma-2-9b"));
            }
        }
    }
}
