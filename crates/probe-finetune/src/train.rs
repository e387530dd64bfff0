//! The training loop: seeded shuffles per epoch, micro-batches accumulated into optimizer
//! steps, AdamW on the host, validation and early stopping, and checkpoints at step
//! boundaries (adapter, moments, position, history) written atomically. A killed run resumes
//! from its last checkpoint and ends where an uninterrupted run ends: the order, the dropout
//! masks and the updates are functions of the seed and the step.

use probe_util::mix;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use probe_lm::adapter::AdapterConfig;
use probe_lm::layers::lora::set_dropout;
use probe_lm::parallel::{default_workers, run_batches};
use probe_lm::{Batch, HookSpec, Logits, Transformer};
use serde::{Deserialize, Serialize};

use crate::data::Example;
use crate::loss::{option_loss, LetterForms};
use crate::optim::{cosine_lr, AdamW};
use crate::{io_error, FinetuneError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneParams {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub targets: Vec<String>,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub epochs: usize,
    /// Examples per forward and backward pass.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Fraction of the steps spent warming the learning rate up.
    pub warmup_ratio: f64,
    /// λ of the numerical penalty (0: cross-entropy only).
    pub numeric_penalty: f64,
    /// Evaluations without improvement before stopping (0: never stop early).
    pub patience: usize,
    /// Validate every N optimizer steps (0: at each epoch's end).
    pub eval_every: usize,
    /// Checkpoint every N optimizer steps (and at each evaluation).
    pub checkpoint_every: usize,
    /// Stop after this many optimizer steps (the schedule spans them).
    pub max_steps: Option<usize>,
    pub seed: u64,
}

impl Default for FinetuneParams {
    fn default() -> Self {
        FinetuneParams {
            rank: 8,
            alpha: 16.0,
            dropout: 0.05,
            targets: probe_lm::adapter::TARGETS.map(String::from).to_vec(),
            learning_rate: 2e-4,
            weight_decay: 0.0,
            epochs: 1,
            batch_size: 8,
            grad_accum: 1,
            warmup_ratio: 0.05,
            numeric_penalty: 0.0,
            patience: 2,
            eval_every: 0,
            checkpoint_every: 20,
            max_steps: None,
            seed: 0,
        }
    }
}

impl FinetuneParams {
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(FinetuneError::Input(m));
        if self.epochs == 0 || self.batch_size == 0 || self.grad_accum == 0 {
            return bad("epochs, batch size and gradient accumulation must be ≥ 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!("learning rate {} must be > 0", self.learning_rate));
        }
        if !(0.0..1.0).contains(&self.warmup_ratio) {
            return bad(format!(
                "warmup ratio {} must lie in [0, 1)",
                self.warmup_ratio
            ));
        }
        if !(self.numeric_penalty >= 0.0 && self.numeric_penalty.is_finite()) {
            return bad(format!(
                "numeric penalty {} must be ≥ 0",
                self.numeric_penalty
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!("weight decay {} must be ≥ 0", self.weight_decay));
        }
        if self.checkpoint_every == 0 {
            return bad("checkpoint every 0 steps".into());
        }
        if self.max_steps == Some(0) {
            return bad("--max-steps 0 trains nothing".into());
        }
        self.adapter_config().check()?;
        Ok(())
    }

    pub fn adapter_config(&self) -> AdapterConfig {
        AdapterConfig::new(self.rank, self.alpha, self.dropout, self.targets.clone())
    }
}

/// What the loop reports as it goes; the callback may stop it (`Break`) between steps.
#[derive(Debug, Clone)]
pub enum Event {
    Step {
        step: usize,
        total: usize,
        loss: f64,
        lr: f64,
        tokens: usize,
    },
    Validation {
        step: usize,
        loss: f64,
        improved: bool,
    },
    Checkpoint {
        step: usize,
    },
}

/// One optimizer step's or one validation's record (`history.jsonl`, probe-schema's type).
pub use probe_schema::finetune::HistoryRecord as Record;

#[derive(Debug, Clone)]
pub struct Outcome {
    pub steps: usize,
    pub total_steps: usize,
    pub best_step: Option<usize>,
    pub best_validation_loss: Option<f64>,
    pub stopped_early: bool,
    /// The step this run resumed from (0: a fresh start).
    pub resumed_from: usize,
    pub history: Vec<Record>,
    /// Prompt tokens through forward and backward in this run, its seconds, and the seconds
    /// of its training steps alone (without validation and checkpoints).
    pub tokens: usize,
    pub seconds: f64,
    pub step_seconds: f64,
}

/// Everything a checkpoint restores. Floats are stored as their bits: JSON's decimal
/// round trip may move one by an ulp, and a resumed run must continue exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    fingerprint: String,
    step: usize,
    epoch: usize,
    /// Micro-batches of `epoch` already done.
    micro: usize,
    t: u64,
    #[serde(with = "exact")]
    best_loss: Option<f64>,
    best_step: Option<usize>,
    bad_evaluations: usize,
    stopped_early: bool,
    #[serde(with = "exact_history")]
    history: Vec<Record>,
}

/// `Option<f64>` as its bits.
mod exact {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        x.map(f64::to_bits).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(f64::from_bits))
    }
}

/// The history with every float as its bits: `[step, epoch, train, validation, lr]`.
mod exact_history {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Record;

    type Bits = (usize, usize, Option<u64>, Option<u64>, u64);

    pub fn serialize<S: Serializer>(h: &[Record], s: S) -> Result<S::Ok, S::Error> {
        h.iter()
            .map(|r| {
                (
                    r.step,
                    r.epoch,
                    r.train_loss.map(f64::to_bits),
                    r.validation_loss.map(f64::to_bits),
                    r.lr.to_bits(),
                )
            })
            .collect::<Vec<Bits>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Record>, D::Error> {
        Ok(Vec::<Bits>::deserialize(d)?
            .into_iter()
            .map(|(step, epoch, t, v, lr)| Record {
                step,
                epoch,
                train_loss: t.map(f64::from_bits),
                validation_loss: v.map(f64::from_bits),
                lr: f64::from_bits(lr),
            })
            .collect())
    }
}

/// Host copies of the adapters: per adapted projection `A` then `B` (burn layout).
struct Adapters {
    shapes: Vec<[usize; 2]>,
    values: Vec<Vec<f32>>,
}

impl Adapters {
    fn read(transformer: &mut Transformer) -> Result<Self> {
        let (mut shapes, mut values) = (Vec::new(), Vec::new());
        for (_, linear) in transformer.projections_mut() {
            let Some(lora) = &linear.lora else { continue };
            for t in [lora.a.val(), lora.b.val()] {
                let [r, c] = t.dims();
                shapes.push([r, c]);
                values.push(
                    t.into_data()
                        .try_to_vec::<f32>()
                        .map_err(|e| FinetuneError::Input(format!("reading an adapter: {e:?}")))?,
                );
            }
        }
        Ok(Adapters { shapes, values })
    }

    /// Puts `values` into the model; with `grad`, as leaves whose gradients the backward
    /// pass keeps (returned in the same order).
    fn write(
        &self,
        transformer: &mut Transformer,
        values: &[Vec<f32>],
        grad: bool,
    ) -> Vec<Tensor<2>> {
        let device = transformer.device();
        let mut leaves = Vec::new();
        let mut k = 0;
        for (_, linear) in transformer.projections_mut() {
            let Some(lora) = linear.lora.as_mut() else {
                continue;
            };
            for slot in [&mut lora.a, &mut lora.b] {
                let t: Tensor<2> =
                    Tensor::from_data(TensorData::new(values[k].clone(), self.shapes[k]), &device);
                let param = Param::from_tensor(t).set_require_grad(grad);
                leaves.push(param.val());
                *slot = param;
                k += 1;
            }
        }
        leaves
    }
}

/// The checkpoint folder's files.
fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn tensors_path(dir: &Path) -> PathBuf {
    dir.join("state.safetensors")
}

/// What the adapters learn from: the letters' token forms and the examples of both splits.
pub struct TrainingData<'a> {
    pub forms: &'a LetterForms,
    pub train: &'a [Example],
    pub validation: &'a [Example],
}

/// Trains adapters on `train` (added to `transformer` fresh, or restored from `checkpoint_dir`),
/// validating on `validation`; leaves the best adapters (lowest validation loss, else the
/// last) in the model. `fingerprint` names the data and settings: a checkpoint of another
/// fingerprint is refused.
pub fn finetune(
    transformer: &mut Transformer,
    data: &TrainingData<'_>,
    params: &FinetuneParams,
    fingerprint: &str,
    checkpoint_dir: &Path,
    progress: &mut dyn FnMut(&Event) -> ControlFlow<()>,
) -> Result<Outcome> {
    params.check()?;
    let (forms, train, validation) = (data.forms, data.train, data.validation);
    if train.is_empty() {
        return Err(FinetuneError::Input(
            "no training example (the train split has no answers)".into(),
        ));
    }
    transformer.add_lora(&params.adapter_config(), params.seed)?;
    transformer.prepare_training();
    let adapters = Adapters::read(transformer)?;
    let sizes: Vec<usize> = adapters.values.iter().map(Vec::len).collect();
    let mut values = adapters.values.clone();
    let mut opt = AdamW::new(&sizes, params.weight_decay);
    let micro_per_epoch = train.len().div_ceil(params.batch_size);
    let steps_per_epoch = micro_per_epoch.div_ceil(params.grad_accum);
    let total = (steps_per_epoch * params.epochs).min(params.max_steps.unwrap_or(usize::MAX));
    let warmup = (params.warmup_ratio * total as f64).round() as usize;
    let mut state = State {
        fingerprint: fingerprint.to_string(),
        step: 0,
        epoch: 0,
        micro: 0,
        t: 0,
        best_loss: None,
        best_step: None,
        bad_evaluations: 0,
        stopped_early: false,
        history: Vec::new(),
    };
    let mut best = values.clone();
    if state_path(checkpoint_dir).is_file() {
        restore(
            checkpoint_dir,
            fingerprint,
            &mut state,
            &mut values,
            &mut best,
            &mut opt,
        )?;
    }
    let resumed_from = state.step;
    let started = Instant::now();
    let mut tokens = 0usize;
    let mut step_seconds = 0.0;
    let mut interrupted = false;
    'epochs: while state.epoch < params.epochs && state.step < total && !state.stopped_early {
        let order = shuffled(train.len(), params.seed, state.epoch);
        let micro_batches: Vec<&[usize]> = order.chunks(params.batch_size).collect();
        while state.micro < micro_batches.len() {
            if state.step >= total {
                break 'epochs;
            }
            // one optimizer step: up to grad_accum micro-batches
            let end = (state.micro + params.grad_accum).min(micro_batches.len());
            let group = &micro_batches[state.micro..end];
            let n_examples: usize = group.iter().map(|m| m.len()).sum();
            let step_started = Instant::now();
            let mut grads: Vec<Vec<f32>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
            let mut loss_sum = 0.0;
            // each micro-batch in two halves, one per core (fixed halves: the sums, and so
            // the run, do not depend on the machine's core count)
            let mut jobs: Vec<(Vec<&Example>, u64)> = Vec::new();
            for (j, micro) in group.iter().enumerate() {
                for (h, half) in micro.chunks(micro.len().div_ceil(2)).enumerate() {
                    let seed =
                        mix(params.seed ^ mix(state.step as u64) ^ ((2 * j + h) as u64) << 40);
                    jobs.push((half.iter().map(|&i| &train[i]).collect(), seed));
                }
            }
            tokens += jobs
                .iter()
                .flat_map(|(b, _)| b.iter().map(|e| e.ids.len()))
                .sum::<usize>();
            let shared: &Transformer = transformer;
            let results =
                run_batches(jobs.len(), default_workers(), |k| {
                    let (batch, seed) = &jobs[k];
                    let mut model = shared.clone();
                    let leaves = adapters.write(&mut model, &values, true);
                    set_dropout(Some(*seed));
                    let result = forward_loss(&model, forms, batch, params.numeric_penalty);
                    set_dropout(None);
                    let (loss, _) = result?;
                    let loss = loss.div_scalar(n_examples as f64);
                    let value = scalar(loss.clone())? * n_examples as f64;
                    let gradients = loss.backward();
                    let mut out = Vec::with_capacity(leaves.len());
                    for leaf in &leaves {
                        let g = leaf.grad(&gradients).ok_or_else(|| {
                            FinetuneError::Input("an adapter received no gradient".into())
                        })?;
                        out.push(g.into_data().try_to_vec::<f32>().map_err(|e| {
                            FinetuneError::Input(format!("reading a gradient: {e:?}"))
                        })?);
                    }
                    Ok::<_, FinetuneError>((value, out))
                });
            for result in results {
                let (value, g) = result?;
                loss_sum += value;
                for (acc, part) in grads.iter_mut().zip(g) {
                    for (a, b) in acc.iter_mut().zip(part) {
                        *a += b;
                    }
                }
            }
            let lr = cosine_lr(params.learning_rate, state.step, warmup, total);
            opt.step(&mut values, &grads, lr);
            step_seconds += step_started.elapsed().as_secs_f64();
            state.micro = end;
            state.step += 1;
            state.t = opt.t;
            let train_loss = loss_sum / n_examples as f64;
            state.history.push(Record {
                step: state.step,
                epoch: state.epoch,
                train_loss: Some(train_loss),
                validation_loss: None,
                lr,
            });
            let mut stop = progress(&Event::Step {
                step: state.step,
                total,
                loss: train_loss,
                lr,
                tokens,
            })
            .is_break();
            let epoch_end = state.micro >= micro_batches.len();
            let evaluate = !validation.is_empty()
                && ((params.eval_every > 0 && state.step.is_multiple_of(params.eval_every))
                    || (params.eval_every == 0 && epoch_end)
                    || state.step == total);
            if evaluate {
                adapters.write(transformer, &values, false);
                let loss = mean_loss(transformer, forms, validation, params)?;
                let improved = state.best_loss.is_none_or(|b| loss < b);
                if improved {
                    state.best_loss = Some(loss);
                    state.best_step = Some(state.step);
                    state.bad_evaluations = 0;
                    best = values.clone();
                } else {
                    state.bad_evaluations += 1;
                    if params.patience > 0 && state.bad_evaluations >= params.patience {
                        state.stopped_early = true;
                    }
                }
                state.history.push(Record {
                    step: state.step,
                    epoch: state.epoch,
                    train_loss: None,
                    validation_loss: Some(loss),
                    lr,
                });
                stop |= progress(&Event::Validation {
                    step: state.step,
                    loss,
                    improved,
                })
                .is_break();
            }
            if epoch_end {
                state.epoch += 1;
                state.micro = 0;
            }
            if evaluate
                || stop
                || state.step.is_multiple_of(params.checkpoint_every)
                || state.step == total
            {
                save(checkpoint_dir, &state, &values, &best, &opt)?;
                let _ = progress(&Event::Checkpoint { step: state.step });
            }
            if stop || probe_lm::interrupt::requested() {
                interrupted = true;
                break 'epochs;
            }
            if state.stopped_early {
                break 'epochs;
            }
            if epoch_end {
                break;
            }
        }
    }
    if interrupted {
        return Err(FinetuneError::Interrupted);
    }
    let keep = if state.best_step.is_some() {
        &best
    } else {
        &values
    };
    adapters.write(transformer, keep, false);
    Ok(Outcome {
        steps: state.step,
        total_steps: total,
        best_step: state.best_step,
        best_validation_loss: state.best_loss,
        stopped_early: state.stopped_early,
        resumed_from,
        history: state.history,
        tokens,
        seconds: started.elapsed().as_secs_f64(),
        step_seconds,
    })
}

/// The summed loss of a batch from one forward pass (last-position logits).
pub fn forward_loss(
    transformer: &Transformer,
    forms: &LetterForms,
    batch: &[&Example],
    numeric_penalty: f64,
) -> Result<(Tensor<1>, Tensor<2>)> {
    let ids: Vec<Vec<u32>> = batch.iter().map(|e| e.ids.clone()).collect();
    // padding never reaches a real token (masked), so its id does not matter
    let padded = Batch::left_padded(&ids, 0)?;
    let out = transformer.forward(&padded, &HookSpec::new(), Logits::Last)?;
    let logits = out
        .logits
        .ok_or_else(|| FinetuneError::Input("the model returned no logits".into()))?;
    let [b, _, v] = logits.dims();
    option_loss(logits.reshape([b, v]), batch, forms, numeric_penalty)
}

/// The mean loss over `examples` (no dropout, no gradients).
pub fn mean_loss(
    transformer: &Transformer,
    forms: &LetterForms,
    examples: &[Example],
    params: &FinetuneParams,
) -> Result<f64> {
    let chunks: Vec<&[Example]> = examples.chunks(params.batch_size.div_ceil(2)).collect();
    let losses = run_batches(chunks.len(), default_workers(), |k| {
        let batch: Vec<&Example> = chunks[k].iter().collect();
        let (loss, _) = forward_loss(transformer, forms, &batch, params.numeric_penalty)?;
        scalar(loss)
    });
    let mut total = 0.0;
    for loss in losses {
        total += loss?;
    }
    Ok(total / examples.len() as f64)
}

fn scalar(t: Tensor<1>) -> Result<f64> {
    let v = t
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| FinetuneError::Input(format!("reading the loss: {e:?}")))?;
    let x = v.first().copied().unwrap_or(f32::NAN) as f64;
    if !x.is_finite() {
        return Err(FinetuneError::Input(format!(
            "the loss is {x}: lower the learning rate"
        )));
    }
    Ok(x)
}

/// A seeded permutation of `0..n` for one epoch (Fisher–Yates on SplitMix64).
fn shuffled(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = mix(seed ^ mix(epoch as u64 + 1));
    for i in (1..n).rev() {
        s = probe_util::SplitMix64::from_state(s).next_u64();
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    order
}

/// Writes the checkpoint: tensors first, then `state.json`, each replaced atomically, so a
/// kill leaves the previous checkpoint or the new one.
fn save(
    dir: &Path,
    state: &State,
    values: &[Vec<f32>],
    best: &[Vec<f32>],
    opt: &AdamW,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let mut named: BTreeMap<String, &Vec<f32>> = BTreeMap::new();
    for (k, v) in values.iter().enumerate() {
        named.insert(format!("value.{k:05}"), v);
        named.insert(format!("best.{k:05}"), &best[k]);
        named.insert(format!("m.{k:05}"), &opt.m[k]);
        named.insert(format!("v.{k:05}"), &opt.v[k]);
    }
    let bytes: Vec<(String, Vec<u8>, usize)> = named
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                v.len(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(k, b, n)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![*n], b)
                .map(|v| (k.clone(), v))
                .map_err(|e| FinetuneError::Input(format!("checkpoint tensor {k}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, None)
        .map_err(|e| FinetuneError::Input(format!("writing the checkpoint: {e}")))?;
    write_atomic(&tensors_path(dir), &data)?;
    let json = serde_json::to_string_pretty(state)
        .map_err(|e| FinetuneError::Input(format!("writing the checkpoint: {e}")))?;
    write_atomic(&state_path(dir), json.as_bytes())
}

fn restore(
    dir: &Path,
    fingerprint: &str,
    state: &mut State,
    values: &mut [Vec<f32>],
    best: &mut [Vec<f32>],
    opt: &mut AdamW,
) -> Result<()> {
    let path = state_path(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    let saved: State = serde_json::from_str(&text).map_err(|e| {
        FinetuneError::Input(format!(
            "{}: not a checkpoint ({e}); delete the folder to start over",
            path.display()
        ))
    })?;
    if saved.fingerprint != fingerprint {
        return Err(FinetuneError::Input(format!(
            "{} holds a checkpoint of another run (other data or settings); use another --out or --overwrite",
            dir.display()
        )));
    }
    let tpath = tensors_path(dir);
    let bytes = std::fs::read(&tpath).map_err(|e| io_error(&tpath, e))?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        FinetuneError::Input(format!(
            "{}: {e}; delete the folder to start over",
            tpath.display()
        ))
    })?;
    let read = |name: String, into: &mut Vec<f32>| -> Result<()> {
        let view = file.tensor(&name).map_err(|_| {
            FinetuneError::Input(format!("{}: `{name}` is missing", tpath.display()))
        })?;
        if view.shape() != [into.len()] || view.dtype() != safetensors::Dtype::F32 {
            return Err(FinetuneError::Input(format!(
                "{}: `{name}` does not fit this model's adapters",
                tpath.display()
            )));
        }
        for (x, b) in into.iter_mut().zip(view.data().chunks_exact(4)) {
            *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    };
    for k in 0..values.len() {
        read(format!("value.{k:05}"), &mut values[k])?;
        read(format!("best.{k:05}"), &mut best[k])?;
        read(format!("m.{k:05}"), &mut opt.m[k])?;
        read(format!("v.{k:05}"), &mut opt.v[k])?;
    }
    opt.t = saved.t;
    *state = saved;
    Ok(())
}

/// The shared atomic write (a temporary name beside `path`, removed on any error).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    probe_util::write_atomic(path, bytes)
        .map_err(|e| FinetuneError::Input(format!("writing {}: {e}", path.display())))
}

/// The model made ready for training: every weight frozen (only adapters get gradients).
pub fn freeze(transformer: Transformer) -> Transformer {
    transformer.no_grad()
}
