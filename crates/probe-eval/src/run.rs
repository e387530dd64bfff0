//! Running an evaluation: every (question, group, method, steering) unit becomes one
//! distribution cell plus an audit record (prompt, raw outputs, parse outcomes), appended to
//! `units.jsonl` as it finishes so a killed run resumes where it stopped.

use probe_util::ShardSplit;
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use probe_data::cells::Cell;
use probe_lm::chat::ChatTemplate;
use probe_lm::generate::{generate_prefilled, sample, GenerateParams, Rng};
use probe_lm::tokenizer::Tokenizer;
use probe_lm::{Batch, Transformer};
use serde_json::{json, Value};

use crate::logp::OptionTokens;
use crate::parse::{letters, parse_sequence, parse_verbalized};
use crate::prompts::{select_scope_shots, select_shots, Method, Steering, Templates};
use crate::questions::QuestionSet;
use crate::{stable_hash, EvalError, Result};

#[derive(Debug, Clone)]
pub struct EvalParams {
    pub methods: Vec<Method>,
    pub steerings: Vec<Steering>,
    /// Answers per sequence and samples per unit.
    pub n: usize,
    /// Temperatures of the `sample` method: one, or several for a sweep (each its own
    /// method label `sample@T`).
    pub temperatures: Vec<f32>,
    pub top_p: f32,
    /// Few-shot examples per prompt.
    pub shots: usize,
    /// New attempts (sampled, new seed) after an unparsable sequence / verbalization.
    pub retries: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// Wrap prompts in the model's chat template (instruct models).
    pub chat: bool,
    /// `--shard k/n`: this job's slice of the units.
    pub shard: ShardSplit,
}

impl Default for EvalParams {
    fn default() -> Self {
        EvalParams {
            methods: Method::ALL.to_vec(),
            steerings: Steering::ALL.to_vec(),
            n: 30,
            temperatures: vec![1.0],
            top_p: 1.0,
            shots: 5,
            retries: 2,
            batch_size: 8,
            seed: 0,
            chat: true,
            shard: ShardSplit::default(),
        }
    }
}

impl EvalParams {
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(EvalError::Input(m));
        if self.methods.is_empty() || self.steerings.is_empty() {
            return bad("give at least one method and one steering".into());
        }
        if self.n == 0 || self.n > 200 {
            return bad(format!("n = {} must lie in 1..=200", self.n));
        }
        if self.temperatures.is_empty() {
            return bad("give at least one sampling temperature".into());
        }
        if let Some(t) = self
            .temperatures
            .iter()
            .find(|t| !(**t > 0.0 && t.is_finite()))
        {
            return bad(format!("sampling temperature {t} must be > 0"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top-p {} must lie in (0, 1]", self.top_p));
        }
        if self.batch_size == 0 {
            return bad("batch size must be ≥ 1".into());
        }
        let ShardSplit { k, n } = self.shard;
        if n == 0 || k >= n {
            return bad(format!("shard {k}/{n}: need k < n"));
        }
        Ok(())
    }
}

/// One cell to compute.
#[derive(Debug, Clone)]
pub struct Unit {
    pub question: usize,
    pub group: usize,
    pub method: Method,
    pub steering: Steering,
    /// The sampling temperature (`sample` only).
    pub temperature: Option<f32>,
    /// `sample@T` in a temperature sweep, else the method's name.
    pub label: String,
}

impl Unit {
    pub fn key(&self, set: &QuestionSet) -> String {
        let q = &set.questions[self.question];
        let g = &q.groups[self.group];
        format!(
            "{}|{}.{}|{}|{}",
            q.id,
            g.attribute,
            g.group,
            self.label,
            self.steering.name()
        )
    }
}

/// Every unit of the set in a fixed order (method, steering, question, group), then this
/// shard's slice (every n-th).
pub fn units(set: &QuestionSet, params: &EvalParams) -> Vec<Unit> {
    let mut out = Vec::new();
    let sweep = params.temperatures.len() > 1;
    for &method in &params.methods {
        let settings: Vec<(Option<f32>, String)> = match method {
            Method::Sample if sweep => params
                .temperatures
                .iter()
                .map(|&t| (Some(t), format!("sample@{t}")))
                .collect(),
            Method::Sample => vec![(Some(params.temperatures[0]), "sample".into())],
            m => vec![(None, m.name().to_string())],
        };
        for (temperature, label) in settings {
            for &steering in &params.steerings {
                for (qi, q) in set.questions.iter().enumerate() {
                    for (gi, g) in q.groups.iter().enumerate() {
                        // the voting question asks the population unsteered, personas steered
                        if g.persona
                            .as_ref()
                            .is_some_and(|p| p.population != (steering == Steering::None))
                        {
                            continue;
                        }
                        out.push(Unit {
                            question: qi,
                            group: gi,
                            method,
                            steering,
                            temperature,
                            label: label.clone(),
                        });
                    }
                }
            }
        }
    }
    out.into_iter()
        .enumerate()
        .filter(|(i, _)| params.shard.owns(*i))
        .map(|(_, u)| u)
        .collect()
}

/// What the runner needs of a model.
pub struct Runner<'a> {
    pub transformer: &'a Transformer,
    pub tokenizer: &'a Tokenizer,
    pub chat_template: Option<&'a ChatTemplate>,
    pub model_name: String,
    pub templates: &'a Templates,
}

/// Counts of what happened, for the summary (`this_run.tally`) and the progress bar.
pub use probe_schema::eval::Tally;

impl Runner<'_> {
    fn prompt_ids(&self, text: &str, params: &EvalParams) -> Result<(String, Vec<u32>)> {
        crate::simulate::encode_prompt(self.tokenizer, self.chat_template, params.chat, text)
    }

    /// Runs `todo` in batches; `done` receives each finished unit's record.
    pub fn run(
        &self,
        set: &QuestionSet,
        todo: &[Unit],
        params: &EvalParams,
        mut done: impl FnMut(Value, &Tally) -> Result<()>,
    ) -> Result<Tally> {
        params.check()?;
        let mut tally = Tally::default();
        // render every prompt first, then batch by method and similar length, so left padding
        // wastes little and generation lengths are alike
        let mut prepared: Vec<(usize, String, Vec<u32>, usize)> = Vec::with_capacity(todo.len());
        for (i, u) in todo.iter().enumerate() {
            let q = &set.questions[u.question];
            let g = &q.groups[u.group];
            let empty = Vec::new();
            let similar = set.similar.get(&q.id).unwrap_or(&empty);
            let shots = if u.steering == Steering::Fewshot && g.persona.is_some() {
                let population = set.scopes.iter().find(|s| s.attribute == "all");
                select_scope_shots(
                    q,
                    g,
                    &set.scopes,
                    population.map(|s| s.distribution.as_slice()),
                    params.shots,
                )
            } else if u.steering == Steering::Fewshot {
                select_shots(q, g, similar, &set.pool, params.shots)
            } else {
                vec![]
            };
            let text = self
                .templates
                .render(u.method, u.steering, q, g, &shots, params.n)?;
            let (rendered, ids) = self.prompt_ids(&text, params)?;
            prepared.push((i, rendered, ids, shots.len()));
        }
        prepared.sort_by_key(|p| (todo[p.0].method, p.2.len()));
        for same_method in prepared.chunk_by(|a, b| todo[a.0].method == todo[b.0].method) {
            let method = todo[same_method[0].0].method;
            for batch in same_method.chunks(params.batch_size) {
                let units: Vec<&Unit> = batch.iter().map(|p| &todo[p.0]).collect();
                let prompts: Vec<(String, Vec<u32>, usize)> = batch
                    .iter()
                    .map(|p| (p.1.clone(), p.2.clone(), p.3))
                    .collect();
                tally.prompt_tokens += prompts.iter().map(|p| p.1.len()).sum::<usize>();
                let records = match method {
                    Method::Logp | Method::Sample => {
                        self.next_token(set, &units, &prompts, method, params, &mut tally)?
                    }
                    Method::Sequence | Method::Verbalize => {
                        self.generated(set, &units, &prompts, method, params, &mut tally)?
                    }
                };
                for r in records {
                    tally.units += 1;
                    done(r, &tally)?;
                }
            }
        }
        Ok(tally)
    }

    fn cell(&self, set: &QuestionSet, u: &Unit, predicted: Option<Vec<f64>>) -> Cell {
        let q = &set.questions[u.question];
        let g = &q.groups[u.group];
        let mut labels = BTreeMap::new();
        for (k, v) in [
            ("model", self.model_name.as_str()),
            ("method", u.label.as_str()),
            ("steering", u.steering.name()),
            ("dataset", set.dataset.as_str()),
            ("question", q.id.as_str()),
        ] {
            if !v.is_empty() {
                labels.insert(k.to_string(), v.to_string());
            }
        }
        match &g.persona {
            // personas pool by attribute value in the report, as `probe scale`'s rows do
            Some(p) if !p.population => {
                labels.insert("persona".into(), g.group.clone());
            }
            // the population of a year: the report's scope `year=2021`, or everyone when the
            // set asks only one population
            Some(p) => {
                // `QuestionSet::vote` puts the populations first
                let populations = q
                    .groups
                    .iter()
                    .take_while(|g| g.persona.as_ref().is_some_and(|p| p.population))
                    .count();
                if populations == 1 {
                    labels.insert("group".into(), g.group.clone());
                } else if let [(attribute, value)] = p.values.as_slice() {
                    labels.insert("attribute".into(), attribute.clone());
                    labels.insert("value".into(), value.clone());
                } else if !p.values.is_empty() {
                    labels.insert("group".into(), g.group.clone());
                }
            }
            None => {
                for (k, v) in [("attribute", &g.attribute), ("group", &g.group)] {
                    if !v.is_empty() {
                        labels.insert(k.to_string(), v.clone());
                    }
                }
            }
        }
        Cell {
            labels,
            options: q.options.clone(),
            predicted,
            reference: g.reference().map(<[f64]>::to_vec),
            weight: Some(g.weight),
            ordinal: q.ordinal.clone(),
            origin: None,
        }
    }

    /// A unit's record; `samples`: the answers its distribution counts (`sample`, `sequence`),
    /// kept as the cell's `samples` label so that scoring can state the discretization floor.
    fn record(
        &self,
        set: &QuestionSet,
        u: &Unit,
        predicted: Option<Vec<f64>>,
        samples: Option<usize>,
        audit: Value,
    ) -> Value {
        let mut cell = self.cell(set, u, predicted);
        if let (Some(n), Some(_)) = (samples, &cell.predicted) {
            cell.labels.insert("samples".into(), n.to_string());
        }
        json!({"key": u.key(set), "cell": cell.to_json(), "ok": cell.predicted.is_some(), "audit": audit})
    }

    fn next_token(
        &self,
        set: &QuestionSet,
        units: &[&Unit],
        prompts: &[(String, Vec<u32>, usize)],
        method: Method,
        params: &EvalParams,
        tally: &mut Tally,
    ) -> Result<Vec<Value>> {
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.1.clone()).collect();
        let batch = Batch::left_padded(&ids, self.tokenizer.pad_token_id())
            .map_err(|e| EvalError::Model(e.to_string()))?;
        let (logits, _) = self
            .transformer
            .prefill(&batch)
            .map_err(|e| EvalError::Model(e.to_string()))?;
        let rows = logits
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| EvalError::Model(format!("reading logits: {e:?}")))?;
        let vocab = rows.len() / units.len();
        let mut out = Vec::new();
        // the letters' token ids depend only on the number of options
        let mut by_count: BTreeMap<usize, OptionTokens> = BTreeMap::new();
        for ((u, p), row) in units.iter().zip(prompts).zip(rows.chunks_exact(vocab)) {
            let n_options = set.questions[u.question].options.len();
            let tokens = match by_count.entry(n_options) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(OptionTokens::new(self.tokenizer, &letters(n_options))?)
                }
            };
            tally.attempts += 1;
            match method {
                Method::Logp => {
                    let (dist, mass) = tokens.distribution(row).map_err(|e| {
                        EvalError::Model(format!(
                            "question `{}`: {e}",
                            set.questions[u.question].id
                        ))
                    })?;
                    out.push(self.record(
                        set,
                        u,
                        Some(dist),
                        None,
                        json!({"prompt": p.0, "shots": p.2, "letter_mass": mass}),
                    ));
                }
                _ => {
                    let gp = GenerateParams {
                        temperature: u.temperature.unwrap_or(1.0),
                        top_p: params.top_p,
                        ..GenerateParams::default()
                    };
                    let mut rng = Rng::new(params.seed ^ stable_hash(&u.key(set)));
                    let mut counts = vec![0usize; n_options];
                    let mut invalid = 0;
                    for _ in 0..params.n {
                        let t = sample(row, &gp, &mut rng);
                        match tokens.ids.iter().position(|forms| forms.contains(&t)) {
                            Some(i) => counts[i] += 1,
                            None => invalid += 1,
                        }
                    }
                    tally.invalid_answers += invalid;
                    let valid: usize = counts.iter().sum();
                    let dist = (valid > 0)
                        .then(|| counts.iter().map(|&c| c as f64 / valid as f64).collect());
                    if dist.is_none() {
                        tally.failed_units += 1;
                    }
                    out.push(self.record(
                        set,
                        u,
                        dist,
                        Some(valid),
                        json!({"prompt": p.0, "shots": p.2, "counts": counts, "invalid": invalid,
                               "temperature": u.temperature, "top_p": params.top_p}),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn generated(
        &self,
        set: &QuestionSet,
        units: &[&Unit],
        prompts: &[(String, Vec<u32>, usize)],
        method: Method,
        params: &EvalParams,
        tally: &mut Tally,
    ) -> Result<Vec<Value>> {
        let max_new_tokens = match method {
            Method::Sequence => 2 * params.n + 16,
            _ => 24 + 8 * set.questions[units[0].question].options.len().max(4),
        };
        let mut results: Vec<Option<Vec<f64>>> = vec![None; units.len()];
        let mut audits: Vec<Vec<Value>> = vec![Vec::new(); units.len()];
        let mut pending: Vec<usize> = (0..units.len()).collect();
        // one prefill for all attempts: a retry decodes on from the prompts' cached keys and
        // values (few-shot prompts are long; their prefill costs more than the decoding)
        let model_err = |e: probe_lm::Error| EvalError::Model(e.to_string());
        let ids: Vec<Vec<u32>> = prompts.iter().map(|p| p.1.clone()).collect();
        let batch = Batch::left_padded(&ids, self.tokenizer.pad_token_id()).map_err(model_err)?;
        let (prefill_logits, prefill_kv) = self.transformer.prefill(&batch).map_err(model_err)?;
        for attempt in 0..=params.retries {
            if pending.is_empty() {
                break;
            }
            // greedy first; retries sample with new seeds
            let gp = GenerateParams {
                max_new_tokens,
                temperature: if attempt == 0 { 0.0 } else { 1.0 },
                seed: params.seed.wrapping_add(attempt as u64),
                stop: vec!["\n\n".into()],
                ..GenerateParams::default()
            };
            let (logits, kv) = if pending.len() == units.len() {
                (prefill_logits.clone(), prefill_kv.clone())
            } else {
                (
                    probe_lm::transformer::select_rows(&prefill_logits, &pending),
                    prefill_kv.select_rows(&pending).map_err(model_err)?,
                )
            };
            let gens =
                generate_prefilled(self.transformer, self.tokenizer, logits, kv, &gp, |_| {})
                    .map_err(model_err)?;
            let mut still = Vec::new();
            for (&i, g) in pending.iter().zip(&gens) {
                tally.attempts += 1;
                tally.generated_tokens += g.token_ids.len();
                let n_options = set.questions[units[i].question].options.len();
                let options = letters(n_options);
                let parsed: std::result::Result<(Vec<f64>, Value), String> = match method {
                    Method::Sequence => parse_sequence(&g.text, &options, params.n)
                        .map(|s| {
                            tally.invalid_answers += s.invalid;
                            let valid = s.valid() as f64;
                            (
                                s.counts.iter().map(|&c| c as f64 / valid).collect(),
                                json!({"counts": s.counts, "invalid": s.invalid, "truncated": s.truncated}),
                            )
                        })
                        .map_err(|e| e.to_string()),
                    _ => parse_verbalized(&g.text, &options)
                        .map(|v| {
                            let info = json!({"raw_sum": v.raw_sum, "percent": v.percent,
                                              "sum_deviation": v.sum_deviation(),
                                              "missing": v.missing, "unknown_keys": v.unknown_keys});
                            (v.distribution, info)
                        })
                        .map_err(|e| e.to_string()),
                };
                match parsed {
                    Ok((dist, info)) => {
                        results[i] = Some(dist);
                        audits[i]
                            .push(json!({"attempt": attempt, "output": g.text, "parsed": info}));
                    }
                    Err(e) => {
                        tally.parse_failures += 1;
                        audits[i].push(json!({"attempt": attempt, "output": g.text, "error": e}));
                        still.push(i);
                    }
                }
            }
            pending = still;
        }
        tally.failed_units += pending.len();
        Ok(units
            .iter()
            .enumerate()
            .map(|(i, u)| {
                self.record(
                    set,
                    u,
                    results[i].take(),
                    (method == Method::Sequence).then_some(params.n),
                    json!({"prompt": prompts[i].0, "shots": prompts[i].2, "attempts": audits[i]}),
                )
            })
            .collect())
    }
}

/// The keys already in `units.jsonl`, keeping only whole lines (a run killed mid-write leaves a
/// partial last line, which is dropped so the file stays valid JSONL).
pub fn resume(path: &Path) -> Result<HashSet<String>> {
    let mut keys = HashSet::new();
    if !path.is_file() {
        return Ok(keys);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| EvalError::Input(format!("{}: {e}", path.display())))?;
    let mut good = String::with_capacity(text.len());
    for line in text.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v["key"].is_string() => {
                keys.insert(v["key"].as_str().unwrap_or_default().to_string());
                good.push_str(line);
                good.push('\n');
            }
            _ => {} // a torn line from a killed run
        }
    }
    if good.len() != text.len() {
        std::fs::write(path, good)
            .map_err(|e| EvalError::Input(format!("{}: {e}", path.display())))?;
    }
    Ok(keys)
}

/// Appends records, one JSON line each, flushed per record. The file is created with the
/// first record: a run that fails before finishing a unit leaves no empty log behind.
pub struct UnitLog {
    file: Option<std::fs::File>,
    pub path: PathBuf,
}

impl UnitLog {
    pub fn open(path: &Path) -> Result<Self> {
        Ok(UnitLog {
            file: None,
            path: path.to_path_buf(),
        })
    }

    pub fn append(&mut self, record: &Value) -> Result<()> {
        let err = |e: std::io::Error| EvalError::Input(format!("{}: {e}", self.path.display()));
        if self.file.is_none() {
            self.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)
                    .map_err(err)?,
            );
        }
        let mut line = record.to_string();
        line.push('\n');
        let file = self.file.as_mut().expect("opened above");
        file.write_all(line.as_bytes())
            .and_then(|_| file.flush())
            .map_err(err)
    }
}

/// All records of a unit log (none when no unit has finished: no file yet).
pub fn read_records(path: &Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EvalError::Input(format!("{}: {e}", path.display()))),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::questions::{GroupReference, Question};

    fn set() -> QuestionSet {
        let group = |g: &str| GroupReference::new("SEX", g, vec![0.5, 0.5], 1.0);
        let q = |id: &str| Question {
            id: id.into(),
            text: "?".into(),
            options: vec!["a".into(), "b".into()],
            ordinal: None,
            groups: vec![group("Male"), group("Female")],
        };
        let questions = vec![q("q1"), q("q2")];
        QuestionSet {
            dataset: "d".into(),
            pool: questions.clone(),
            questions,
            similar: Default::default(),
            scopes: vec![],
        }
    }

    #[test]
    fn units_cover_every_setting_once_and_shards_partition_them() {
        let s = set();
        let params = EvalParams {
            methods: vec![Method::Logp, Method::Sample],
            steerings: vec![Steering::None, Steering::Persona],
            temperatures: vec![0.5, 2.0],
            ..EvalParams::default()
        };
        let all = units(&s, &params);
        // logp: 2 steerings × 2 questions × 2 groups; sample: × 2 temperatures
        assert_eq!(all.len(), 8 + 16);
        let keys: HashSet<String> = all.iter().map(|u| u.key(&s)).collect();
        assert_eq!(keys.len(), all.len());
        assert!(keys.contains("q2|SEX.Female|sample@2|persona"));
        assert!(keys.contains("q1|SEX.Male|logp|none"));
        let mut sharded: Vec<String> = (0..3)
            .flat_map(|k| {
                units(
                    &s,
                    &EvalParams {
                        shard: ShardSplit { k, n: 3 },
                        ..params.clone()
                    },
                )
                .into_iter()
                .map(|u| u.key(&s))
                .collect::<Vec<_>>()
            })
            .collect();
        sharded.sort();
        let mut expected: Vec<String> = keys.into_iter().collect();
        expected.sort();
        assert_eq!(sharded, expected);
        // one temperature: the method keeps its name
        let one = units(
            &s,
            &EvalParams {
                methods: vec![Method::Sample],
                ..EvalParams::default()
            },
        );
        assert!(one.iter().all(|u| u.label == "sample"));
        assert!(EvalParams {
            temperatures: vec![0.0],
            ..EvalParams::default()
        }
        .check()
        .is_err());
        assert!(EvalParams {
            shard: ShardSplit { k: 3, n: 3 },
            ..EvalParams::default()
        }
        .check()
        .is_err());
    }
}
