//! The dry-run printer: a planned stage as the `probe` command line that runs the same
//! operation (`probe study --dry-run`, `study.log`, the stage records, and the stage's
//! fingerprint). Flags whose value is the command's default are left out unless the study
//! always states them; `probe-cli`'s tests parse every planned stage's line back and check it
//! gives the planned options exactly.

use std::path::Path;

use probe_cache::ShardSplit;

use super::plan::{Stage, StageOp};
use crate::compare::CompareRequest;
use crate::eval::{EvalOptions, QuestionSource};
use crate::report::ReportRequest;
use crate::scale::ScaleOptions;
use crate::survey::SurveySource;
use crate::vectors::VectorsOptions;
use crate::{ExtractOptions, ModelSpec, PersonaSelection, TrainOptions};

/// A command line under construction.
struct Line(Vec<String>);

impl Line {
    fn word(&mut self, w: impl ToString) -> &mut Self {
        self.0.push(w.to_string());
        self
    }
    fn path(&mut self, p: &Path) -> &mut Self {
        self.word(p.to_string_lossy())
    }
    fn flag(&mut self, name: &str, value: impl ToString) -> &mut Self {
        self.word(format!("--{name}")).word(value)
    }
    fn path_flag(&mut self, name: &str, p: &Path) -> &mut Self {
        self.flag(name, p.to_string_lossy())
    }
    fn switch(&mut self, name: &str, on: bool) -> &mut Self {
        if on {
            self.word(format!("--{name}"));
        }
        self
    }
    fn list(&mut self, name: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.flag(name, values.join(","));
        }
        self
    }
    fn optional_path(&mut self, name: &str, p: &Option<std::path::PathBuf>) -> &mut Self {
        if let Some(p) = p {
            self.path_flag(name, p);
        }
        self
    }
    fn unless<T: PartialEq + ToString>(&mut self, name: &str, value: T, default: T) -> &mut Self {
        if value != default {
            self.flag(name, value);
        }
        self
    }
}

impl Stage {
    /// The `probe` command line (without the program name) that runs the same operation.
    pub fn argv(&self) -> Vec<String> {
        argv(&self.op)
    }
}

/// The command line of `op` (without the program name).
fn argv(op: &StageOp) -> Vec<String> {
    let mut l = Line(Vec::new());
    match op {
        StageOp::Extract(o) => {
            l.word("extract");
            extract(&mut l, o);
        }
        StageOp::Train(o) => train(&mut l, o),
        StageOp::Vectors(o) => vectors(&mut l, o),
        StageOp::Scale(o) => scale(&mut l, o),
        StageOp::Eval(o) => eval(&mut l, o),
        StageOp::Compare(o) => compare(&mut l, o),
        StageOp::Report(o) => report(&mut l, o),
    }
    l.0
}

fn model(l: &mut Line, m: &ModelSpec) {
    l.path(&m.path)
        .flag("device", m.device)
        .flag("dtype", m.dtype)
        .optional_path("tokenizer", &m.tokenizer)
        .switch("fast-decode", m.fast_decode)
        .optional_path("adapter", &m.adapter)
        .switch("merge-adapter", m.merge_adapter);
}

fn extract(l: &mut Line, o: &ExtractOptions) {
    model(l, &o.model);
    l.path_flag("election", &o.election)
        .path_flag("template-file", &o.template_file)
        .flag("layers", &o.layers)
        .flag("positions", &o.positions)
        .flag("cache-dtype", &o.cache_dtype)
        .flag("shard-size", o.shard_size)
        .flag("batch-size", o.batch_size)
        .optional_path("out", &o.out)
        .list("parties", &o.parties)
        .list("templates", &o.templates)
        .unless("seed", o.seed, 0)
        .unless("shard", o.shard, ShardSplit::default())
        .switch("overwrite", o.overwrite);
}

fn train(l: &mut Line, o: &TrainOptions) {
    l.word("train");
    extract(l, &o.extract);
    let p = &o.params;
    let d = probe_train::ProbeParams::default();
    l.flag("folds", p.folds)
        .path_flag("probes-dir", &o.probes_dir);
    if let Some(run) = &o.run {
        l.flag("run", run);
    }
    l.unless("solver", p.solver.to_string(), d.solver.to_string())
        .unless("C", p.c, d.c)
        .unless("cv-seed", p.seed, d.seed)
        .unless("max-iter", p.max_iterations, d.max_iterations)
        .unless("tol", p.tolerance, d.tolerance)
        .switch("no-per-layer", !p.per_layer)
        .switch("no-shared", !p.shared)
        .unless("null-seeds", o.null_seeds, crate::train::DEFAULT_NULL_SEEDS);
}

fn vectors(l: &mut Line, o: &VectorsOptions) {
    l.word("vectors");
    model(l, &o.model);
    let d = VectorsOptions::new(o.model.clone(), &o.probes);
    l.path_flag("probes", &o.probes)
        .flag("k", o.k)
        .unless("probe", o.probe.as_str(), &d.probe)
        .unless("layers", o.layers.as_str(), &d.layers)
        .unless("iqr-c", o.iqr_c, d.iqr_c)
        .unless("top-tokens", o.top_tokens, d.top_tokens)
        .unless("null-random", o.null_random, d.null_random)
        .optional_path("out", &o.out);
}

fn personas(l: &mut Line, p: &PersonaSelection) {
    l.path_flag("persona", &p.spec)
        .optional_path("personas", &p.personas);
    for f in &p.filter {
        l.flag("where", f);
    }
}

fn scale(l: &mut Line, o: &ScaleOptions) {
    l.word("scale");
    model(l, &o.model);
    l.path_flag("vectors", &o.vectors);
    personas(l, &o.personas);
    l.path_flag("prompts", &o.prompts)
        .flag("select", &o.select)
        .flag("negative", &o.negative)
        .flag("shard-size", o.shard_size)
        .unless("batch-size", o.batch_size, 16)
        .unless("shard", o.shard, ShardSplit::default())
        .optional_path("out", &o.out)
        .list("variants", &o.variants)
        .switch("overwrite", o.overwrite);
}

fn survey(l: &mut Line, s: &SurveySource) {
    let d = SurveySource::default();
    l.optional_path("survey", &s.survey)
        .unless("answer", s.answer.as_str(), &d.answer);
    if let Some(w) = &s.survey_weight {
        l.flag("survey-weight", w);
    }
    l.list("survey-attributes", &s.survey_attributes);
    if let Some(e) = &s.election {
        l.flag("election", e);
    }
}

fn eval(l: &mut Line, o: &EvalOptions) {
    l.word("eval");
    model(l, &o.model);
    match &o.questions {
        QuestionSource::Questions(q) => {
            l.path_flag("questions", q);
        }
        QuestionSource::OpinionQa { dir, attributes } => {
            l.path_flag("opinionqa", dir).list("attribute", attributes);
        }
        QuestionSource::Vote(v) => {
            l.path_flag("vote", &v.election);
            personas(l, &v.personas);
            l.list("parties", &v.parties);
            if let Some(n) = v.persona_sample {
                l.flag("persona-sample", n);
            }
            survey(l, &v.survey);
            if let Some(source) = &v.shots_from {
                l.flag("shots-from", source);
            }
            l.unless(
                "leak-tolerance",
                v.leak_tolerance,
                probe_eval::questions::DEFAULT_LEAK_TOLERANCE,
            );
        }
    }
    let d = EvalOptions::new(o.model.clone(), o.questions.clone());
    let (p, dp) = (&o.params, &d.params);
    l.list("question-ids", &o.question_ids);
    if let Some(n) = o.limit {
        l.flag("limit", n);
    }
    l.optional_path("prompts", &o.prompts)
        .switch("no-chat", !p.chat)
        .flag("methods", join(&p.methods))
        .flag("steering", join(&p.steerings))
        .flag("n", p.n)
        .flag("temperature", join(&p.temperatures))
        .flag("shots", p.shots)
        .unless("top-p", p.top_p, dp.top_p)
        .unless("retries", p.retries, dp.retries)
        .unless("batch-size", p.batch_size, dp.batch_size)
        .unless("seed", p.seed, dp.seed)
        .unless("shard", p.shard, dp.shard)
        .unless("similarity", o.similarity.name(), d.similarity.name())
        .unless("run", o.run.as_str(), &d.run)
        .unless(
            "probes-dir",
            o.probes_dir.to_string_lossy(),
            d.probes_dir.to_string_lossy(),
        )
        .optional_path("out", &o.out)
        .switch("overwrite", o.overwrite);
}

fn compare(l: &mut Line, o: &CompareRequest) {
    l.word("compare");
    for p in &o.predicted {
        l.path_flag("predicted", p);
    }
    for p in &o.reference {
        l.path_flag("reference", p);
    }
    l.optional_path("opinionqa", &o.opinionqa)
        .list("attribute", &o.attributes)
        .switch("keep-refused", o.keep_refused);
    survey(l, &o.survey);
    for b in &o.baselines {
        l.flag("baseline", b.name());
    }
    let c = &o.options;
    let d = probe_report::compare::CompareOptions::default();
    let metrics: Vec<String> = c.metrics.iter().map(|m| m.name().to_string()).collect();
    l.flag("by", c.by.join(","))
        .flag("metrics", metrics.join(","))
        .flag("bootstrap", c.bootstrap)
        .unless("level", c.level, d.level)
        .unless("seed", c.seed, d.seed)
        .unless("kl-smoothing", c.kl_smoothing, d.kl_smoothing)
        .switch("weighted", c.weighted)
        .switch("raw", c.raw)
        .switch("normalize", o.normalize)
        .optional_path("out", &o.out)
        .switch("skip-unmatched", o.skip_unmatched);
    if c.aggregate != probe_report::compare::Aggregate::default_for(c.raw) {
        l.flag("aggregate", c.aggregate.name());
    }
}

fn report(l: &mut Line, o: &ReportRequest) {
    l.word("report");
    for r in &o.runs {
        l.path(r);
    }
    for c in &o.cells {
        l.path_flag("cells", c);
    }
    for r in &o.reference {
        l.path_flag("reference", r);
    }
    survey(l, &o.survey);
    let d = ReportRequest::default();
    l.flag("title", &o.title)
        .flag("bootstrap", o.bootstrap)
        .unless("level", o.level, d.level)
        .unless("seed", o.seed, d.seed)
        .optional_path("out", &o.out);
    for n in &o.notes {
        l.flag("note", n);
    }
    if o.formats != d.formats {
        let formats: Vec<&str> = o.formats.iter().map(|f| f.extension()).collect();
        l.flag("format", formats.join(","));
    }
}

fn join<T: ToString>(xs: &[T]) -> String {
    xs.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}
