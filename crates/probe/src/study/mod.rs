//! `study`: extract → train → vectors → scale → eval → compare → report for every model of
//! an experiment file, then one cross-model report.
//!
//! Each stage is one library operation with typed options built from the experiment
//! ([`plan`]), run by calling the library. A stage is reused when its fingerprint (SHA-256 over
//! its options, serialized as the `probe` command line that runs them ([`Stage::argv`], which
//! `probe-cli`'s tests parse back into the same options), the contents of the data files it
//! reads and the fingerprints of the stages it builds on) equals the one recorded when it last
//! finished (`<out>/stages/*.json`); a killed stage resumes through the operation's own resume
//! (cache shards, `units.jsonl`).

mod argv;
mod experiment;
mod plan;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;
use sha2::{Digest, Sha256};

pub use experiment::Experiment;
pub use plan::{plan, Stage, StageKind, StageOp};

use crate::progress::note;

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct StudyOptions {
    /// The experiment file (TOML; see examples/demo.toml).
    pub experiment: PathBuf,
    /// Run the stages up to this one.
    pub stage: StageKind,
    /// This job's slice k/n of the shardable stages.
    pub shard: probe_cache::ShardSplit,
}

impl StudyOptions {
    pub fn new(experiment: impl Into<PathBuf>) -> Self {
        StudyOptions {
            experiment: experiment.into(),
            stage: StageKind::Report,
            shard: probe_cache::ShardSplit::default(),
        }
    }

    /// The experiment and the stages up to `stage`, without running anything.
    pub fn plan(&self) -> Result<(Experiment, Vec<Stage>)> {
        let experiment = Experiment::load(&self.experiment)?;
        let stages = plan(&experiment)?
            .into_iter()
            .filter(|st| st.kind <= self.stage)
            .collect();
        Ok((experiment, stages))
    }
}

/// What a study run did.
#[derive(Debug, Clone)]
pub struct StudyOutcome {
    pub out: PathBuf,
    pub ran: usize,
    pub reused: usize,
}

/// SHA-256 of a file's or a directory's contents (files sorted by path, recursively). Model
/// checkpoints (GGUF files, safetensors) are fingerprinted by size and modification time:
/// hashing tens of GB on every run would cost minutes.
fn hash_input(h: &mut Sha256, path: &Path) -> Result<()> {
    if let Some(text) = probe_data::defaults::embedded(path) {
        // the built-in copy of a default data file: its contents, like any other input
        h.update(path.to_string_lossy().as_bytes());
        h.update(text.as_bytes());
        return Ok(());
    }
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            hash_input(h, &entry)?;
        }
        return Ok(());
    }
    h.update(path.to_string_lossy().as_bytes());
    let big = matches!(
        path.extension().and_then(|x| x.to_str()),
        Some("gguf" | "safetensors" | "bin" | "pt")
    );
    if big {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.update(format!("{}:{mtime}", meta.len()).as_bytes());
    } else {
        h.update(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    }
    Ok(())
}

fn marker_path(out: &Path, id: &str) -> PathBuf {
    out.join("stages")
        .join(format!("{}.json", id.replace('/', "__")))
}

fn recorded_fingerprint(out: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(marker_path(out, id)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["fingerprint"].as_str().map(str::to_string)
}

/// A time as ISO 8601 in UTC with milliseconds, e.g. `2026-11-30T20:51:07.250Z` (the civil
/// date from the day count by Howard Hinnant's `civil_from_days`).
fn iso8601_utc(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Appends lines stamped with ISO 8601 UTC times to `study.log` (and mirrors them to stderr).
struct StudyLog {
    file: std::fs::File,
}

impl StudyLog {
    fn open(out: &Path) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let path = out.join("study.log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(StudyLog { file })
    }

    fn line(&mut self, message: &str) {
        let now = iso8601_utc(std::time::SystemTime::now());
        let _ = writeln!(self.file, "{now} {message}");
        let _ = self.file.flush();
        note(format_args!("study: {message}"));
    }
}

/// Runs the study's stages up to `options.stage`: each is reused when its fingerprint equals
/// the recorded one, else run; finished stages are recorded in `<out>/stages/`.
pub fn run(options: &StudyOptions) -> Result<StudyOutcome> {
    let args = options;
    let split = args.shard;
    let (experiment, selected) = options.plan()?;
    let out = &experiment.out;
    let mut log = StudyLog::open(out)?;
    log.line(&format!(
        "start {} ({} models, {} stages up to {:?}, shard {}/{})",
        args.experiment.display(),
        experiment.models.len(),
        selected.len(),
        args.stage,
        split.k,
        split.n
    ));
    std::fs::write(
        out.join("experiment.toml"),
        std::fs::read(&args.experiment)?,
    )
    .with_context(|| format!("writing {}", out.join("experiment.toml").display()))?;
    let started = Instant::now();
    let mut fingerprints: std::collections::HashMap<String, String> = Default::default();
    let (mut ran, mut reused) = (0, 0);
    for (n, st) in selected.iter().enumerate() {
        let mut h = Sha256::new();
        let argv = st.argv();
        // the options, minus the ones that do not change results
        let relevant: Vec<&String> = argv.iter().filter(|a| *a != "--overwrite").collect();
        h.update(serde_json::to_vec(&relevant)?);
        for input in &st.inputs {
            hash_input(&mut h, input)?;
        }
        for dep in &st.after {
            h.update(fingerprints.get(dep).map_or("", String::as_str).as_bytes());
        }
        let fingerprint: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        fingerprints.insert(st.id.clone(), fingerprint.clone());
        let position = format!("[{}/{}]", n + 1, selected.len());
        if recorded_fingerprint(out, &st.id).as_deref() == Some(fingerprint.as_str()) {
            log.line(&format!("{position} {} reused", st.id));
            reused += 1;
            continue;
        }
        let sharded = split.n > 1;
        if sharded && !st.kind.shardable() {
            bail!(
                "stage {} is not finished and cannot be sharded; run `probe study {} --stage {:?}` (without --shard) first",
                st.id,
                args.experiment.display(),
                st.kind
            )
        }
        let mut op = st.op.clone();
        if sharded {
            op.set_shard(split);
        }
        log.line(&format!(
            "{position} {} started: probe {}",
            st.id,
            argv.join(" ")
        ));
        let t = Instant::now();
        op.run().with_context(|| format!("stage {}", st.id))?;
        let seconds = t.elapsed().as_secs_f64();
        ran += 1;
        if sharded {
            log.line(&format!(
                "{position} {} shard {}/{} finished in {seconds:.1} s; the stage is complete once every shard ran (then `probe study` without --shard merges)",
                st.id, split.k, split.n
            ));
            return Ok(StudyOutcome {
                out: out.clone(),
                ran,
                reused,
            });
        }
        let marker = marker_path(out, &st.id);
        std::fs::create_dir_all(marker.parent().expect("in stages/"))?;
        probe_cache::write_atomic(
            &marker,
            serde_json::to_string_pretty(&json!({
                "stage": st.id, "fingerprint": fingerprint, "seconds": seconds,
                "argv": argv,
            }))?
            .as_bytes(),
        )?;
        log.line(&format!("{position} {} finished in {seconds:.1} s", st.id));
    }
    log.line(&format!(
        "done in {:.1} s: {ran} stages run, {reused} reused",
        started.elapsed().as_secs_f64()
    ));
    Ok(StudyOutcome {
        out: out.clone(),
        ran,
        reused,
    })
}

#[cfg(test)]
mod log_tests {
    /// Reference values from Python: `datetime.fromtimestamp(t, timezone.utc).isoformat()`.
    #[test]
    fn timestamps_are_iso_8601_utc() {
        let at = |secs: u64, millis: u64| {
            super::iso8601_utc(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + millis),
            )
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_000_000_000, 0), "2001-09-09T01:46:40.000Z");
        assert_eq!(at(1_796_064_667, 250), "2026-11-30T18:51:07.250Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }
}
