//! MLP coefficients m_i^l = `blocks.{l}.mlp.hook_post` (silu(gate·x̃) ⊙ (up·x̃), x̃ the
//! post-attention-normed input) at the last prompt token, for only the neurons a
//! [`FactorPlan`] needs, streamed into a resumable `probe-cache`.

use probe_cache::{CacheReader, CacheWriter};
use probe_lm::{HookPoint, Model};

use crate::{FactorPlan, LatentError, Result};

/// Cache layout of a plan: one hook point per layer with selected neurons (ascending), its
/// width, and the neurons to keep.
pub struct HookLayout {
    pub hooks: Vec<String>,
    pub dims: Vec<usize>,
    pub columns: Vec<Option<Vec<usize>>>,
}

pub fn hook_layout(plan: &FactorPlan) -> HookLayout {
    let layers = plan.layers();
    HookLayout {
        hooks: layers
            .iter()
            .map(|(l, _)| HookPoint::MlpPost(*l).to_string())
            .collect(),
        dims: layers.iter().map(|(_, n)| n.len()).collect(),
        columns: layers.into_iter().map(|(_, n)| Some(n)).collect(),
    }
}

/// Runs row r's prompt `prompt(r)` for every pending shard of `writer` (whose manifest uses
/// [`hook_layout`]) and stores the plan's coefficients at the prompt's last token.
pub fn collect(
    model: &Model,
    writer: &mut CacheWriter,
    plan: &FactorPlan,
    prompt: &(dyn Fn(usize) -> String + Sync),
    batch_size: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<()> {
    let layout = hook_layout(plan);
    if writer.manifest().hooks != layout.hooks || writer.manifest().dims != layout.dims {
        return Err(LatentError::Input(
            "the cache's hook points do not match the value-vector selection".into(),
        ));
    }
    let tok = model.tokenizer()?;
    let inputs = |row: usize| -> probe_extract::Result<(Vec<u32>, Vec<usize>)> {
        let ids = tok.encode(&prompt(row))?;
        let last = ids.len().checked_sub(1).ok_or_else(|| {
            probe_extract::ExtractError::Input(format!("row {row}: the prompt has no tokens"))
        })?;
        Ok((ids, vec![last]))
    };
    probe_extract::fill_cache(
        model,
        writer,
        &inputs,
        &layout.columns,
        batch_size,
        true,
        progress,
    )
    .map_err(LatentError::from)
}

/// Every row's coefficients in the plan's column order: `[rows × columns]`.
pub fn read(reader: &CacheReader, plan: &FactorPlan) -> Result<Vec<f32>> {
    let layout = hook_layout(plan);
    let rows = reader.manifest().rows.len();
    let width = plan.columns.len();
    let mut out = vec![0f32; rows * width];
    let mut offset = 0;
    for (hook, dim) in layout.hooks.iter().zip(&layout.dims) {
        let (data, d) = reader.read_hook(hook)?;
        if d != *dim {
            return Err(LatentError::Input(format!(
                "{hook}: {d} cached neurons, the selection needs {dim}"
            )));
        }
        for r in 0..rows {
            out[r * width + offset..r * width + offset + d]
                .copy_from_slice(&data[r * d..(r + 1) * d]);
        }
        offset += d;
    }
    if let Some(i) = out.iter().position(|x| !x.is_finite()) {
        return Err(LatentError::Input(format!(
            "non-finite coefficient in row {} (column {:?})",
            i / width,
            plan.columns[i % width]
        )));
    }
    Ok(out)
}
