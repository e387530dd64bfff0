//! How much memory a model's weights take under each `--dtype`, read from the tensor directory
//! alone (for `probe inspect`, and for refusing a load that cannot fit a GPU before it starts).

use crate::precision::{DtypeChoice, SourceKind};
use crate::weights::GgmlType;

/// One stored tensor, as far as memory is concerned.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    pub ty: GgmlType,
    pub n_elements: u64,
    pub stored_bytes: u64,
    /// The block it belongs to; `None` for the embedding and the output head.
    pub layer: Option<usize>,
    /// The final norm or `lm_head` (not loaded by a hooks-only load).
    pub head: bool,
    pub matrix: bool,
}

impl TensorEntry {
    /// Classifies a tensor by its name (HF or GGUF naming).
    pub fn new(name: &str, ty: GgmlType, shape: &[usize], stored_bytes: u64) -> Self {
        let layer = ["model.layers.", "blk."].iter().find_map(|prefix| {
            name.strip_prefix(prefix)?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        });
        let head = matches!(
            name,
            "lm_head.weight" | "model.norm.weight" | "output.weight" | "output_norm.weight"
        );
        TensorEntry {
            ty,
            // saturating: a shape read from a file may not fit (the readers bound what loads)
            n_elements: shape
                .iter()
                .fold(1u64, |acc, &d| acc.saturating_mul(d as u64)),
            stored_bytes,
            layer,
            head,
            matrix: shape.len() == 2,
        }
    }
}

/// Which tensors a load reads: all, or blocks `0..n` without the head.
fn loaded(t: &TensorEntry, blocks: Option<usize>) -> bool {
    match blocks {
        None => true,
        Some(n) => !t.head && t.layer.is_none_or(|l| l < n),
    }
}

/// Bytes the weights take on the CPU under `choice` (`None`: the format cannot take it).
pub fn cpu_bytes(
    tensors: &[TensorEntry],
    kind: SourceKind,
    choice: DtypeChoice,
    blocks: Option<usize>,
) -> Option<u64> {
    let per = |t: &TensorEntry| -> u64 {
        let f32_bytes = 4 * t.n_elements;
        match choice {
            DtypeChoice::F32 => f32_bytes,
            DtypeChoice::Native if t.matrix && t.ty != GgmlType::F32 => t.stored_bytes,
            DtypeChoice::Native => f32_bytes,
            DtypeChoice::Bf16 | DtypeChoice::F16 if t.matrix => 2 * t.n_elements,
            DtypeChoice::Bf16 | DtypeChoice::F16 => f32_bytes,
        }
    };
    if kind == SourceKind::Gguf && matches!(choice, DtypeChoice::Bf16 | DtypeChoice::F16) {
        return None;
    }
    Some(tensors.iter().filter(|t| loaded(t, blocks)).map(per).sum())
}

/// Bytes the weights take on a GPU computing in `bytes_per_value`-byte floats.
pub fn gpu_bytes(tensors: &[TensorEntry], bytes_per_value: u64, blocks: Option<usize>) -> u64 {
    tensors
        .iter()
        .filter(|t| loaded(t, blocks))
        .map(|t| bytes_per_value * t.n_elements)
        .sum()
}

/// `1.23 GB` (decimal units, as file sizes are usually given).
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.1} kB", b / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_only_loads_skip_later_blocks_and_the_head() {
        let tensors = vec![
            TensorEntry::new("token_embd.weight", GgmlType::Q8_0, &[100, 64], 6800),
            TensorEntry::new("blk.0.ffn_up.weight", GgmlType::Q4_1, &[64, 64], 2560),
            TensorEntry::new("blk.0.attn_norm.weight", GgmlType::F32, &[64], 256),
            TensorEntry::new("blk.1.ffn_up.weight", GgmlType::Q4_1, &[64, 64], 2560),
            TensorEntry::new("output.weight", GgmlType::Q6K, &[100, 256], 21000),
        ];
        let native = |blocks| cpu_bytes(&tensors, SourceKind::Gguf, DtypeChoice::Native, blocks);
        assert_eq!(native(None), Some(6800 + 2560 + 256 + 2560 + 21000));
        assert_eq!(native(Some(1)), Some(6800 + 2560 + 256));
        assert_eq!(
            cpu_bytes(&tensors, SourceKind::Gguf, DtypeChoice::F32, Some(1)),
            Some(4 * (6400 + 4096 + 64))
        );
        assert_eq!(
            cpu_bytes(&tensors, SourceKind::Gguf, DtypeChoice::Bf16, None),
            None
        );
        assert_eq!(
            gpu_bytes(&tensors, 2, Some(2)),
            2 * (6400 + 4096 + 64 + 4096)
        );
        assert_eq!(human_bytes(1_234_000_000), "1.23 GB");
    }
}
