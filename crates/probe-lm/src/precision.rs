//! `--dtype`: how a model's weights are held and, on a GPU, in which type the forward runs.
//!
//! | `--dtype` | CPU (Flex): matrices held as | CPU compute | GPU: weights and compute |
//! | --- | --- | --- | --- |
//! | `native` (default) | the file's own type: GGUF blocks (Q4_K, …), F16/BF16 halves; f32 stays f32 | f32 | HF: the checkpoint's float type; GGUF: bf16 |
//! | `f32` | f32 (dequantized on load; exact parity work) | f32 | f32 |
//! | `bf16` / `f16` | HF safetensors only: 16-bit halves | f32 | bf16 / f16 |
//!
//! On the CPU, block-stored matrices are multiplied in place by probe's kernels
//! (`kernels::quantized`), so a model takes about its file size in memory; activations, hooks,
//! logits and every number downstream are f32 whatever the storage. On a GPU the forward runs
//! in the chosen type, with RMSNorm statistics, RoPE tables and softmax in f32 as transformers
//! computes them, and hooks and logits handed back as f32.

use burn::tensor::{DType, Device};

use crate::error::{Error, Result};
use crate::weights::GgmlType;

/// The `--dtype` a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DtypeChoice {
    #[default]
    Native,
    F32,
    Bf16,
    F16,
}

pub const DTYPE_CHOICES: &str = "native, f32, bf16, f16";

impl std::str::FromStr for DtypeChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "native" | "auto" => Ok(DtypeChoice::Native),
            "f32" | "float32" | "fp32" => Ok(DtypeChoice::F32),
            "bf16" | "bfloat16" => Ok(DtypeChoice::Bf16),
            "f16" | "float16" | "fp16" | "half" => Ok(DtypeChoice::F16),
            other => Err(Error::Input(format!(
                "unknown --dtype `{other}` (expected one of {DTYPE_CHOICES})"
            ))),
        }
    }
}

impl std::fmt::Display for DtypeChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DtypeChoice::Native => "native",
            DtypeChoice::F32 => "f32",
            DtypeChoice::Bf16 => "bf16",
            DtypeChoice::F16 => "f16",
        })
    }
}

/// Which kind of checkpoint the weights come from (the choices each can take differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Gguf,
    Safetensors,
}

/// How matrices (projections, embeddings) are held on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatrixStorage {
    /// Device tensors of the compute type.
    Dense,
    /// As the file stores them: blocks and halves in place, f32 as dense tensors.
    Native,
    /// Converted to this 16-bit type (F16 or BF16), held as host halves.
    Half(GgmlType),
}

/// The resolved choice for one model on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    /// The float type of activations and of every weight held as a device tensor.
    pub compute: DType,
    pub(crate) matrices: MatrixStorage,
}

impl Precision {
    /// Resolves `choice` for a checkpoint of `kind` whose matrices are mostly stored as
    /// `stored` on `device`; a choice the format cannot take is an error that says why.
    pub fn resolve(
        choice: DtypeChoice,
        kind: SourceKind,
        stored: GgmlType,
        device: &Device,
    ) -> Result<Self> {
        let on_cpu = *device == Device::flex();
        if on_cpu {
            let matrices = match (choice, kind) {
                (DtypeChoice::F32, _) => MatrixStorage::Dense,
                (DtypeChoice::Native, _) => MatrixStorage::Native,
                (DtypeChoice::Bf16 | DtypeChoice::F16, SourceKind::Gguf) => {
                    return Err(Error::Input(format!(
                        "--dtype {choice} is not for GGUF files on the CPU: they keep their own \
                         quantization (--dtype native, the default) or are dequantized \
                         (--dtype f32)"
                    )))
                }
                (DtypeChoice::Bf16, SourceKind::Safetensors) => MatrixStorage::Half(GgmlType::BF16),
                (DtypeChoice::F16, SourceKind::Safetensors) => MatrixStorage::Half(GgmlType::F16),
            };
            return Ok(Precision {
                compute: DType::F32,
                matrices,
            });
        }
        Ok(Precision {
            compute: Self::gpu_compute(choice, kind, stored),
            matrices: MatrixStorage::Dense,
        })
    }

    /// The compute type on a GPU (every choice is possible there).
    pub fn gpu_compute(choice: DtypeChoice, kind: SourceKind, stored: GgmlType) -> DType {
        match choice {
            DtypeChoice::F32 => DType::F32,
            DtypeChoice::Bf16 => DType::BF16,
            DtypeChoice::F16 => DType::F16,
            DtypeChoice::Native => match (kind, stored) {
                (SourceKind::Safetensors, GgmlType::F16) => DType::F16,
                (SourceKind::Safetensors, GgmlType::F32) => DType::F32,
                // BF16 checkpoints, and GGUF blocks (no GPU kernels for them: dequantized to
                // bf16, whose range, unlike f16's, cannot overflow on large activations).
                _ => DType::BF16,
            },
        }
    }

    /// Plain f32 tensors everywhere (what probe did before `--dtype`).
    pub fn f32_dense() -> Self {
        Precision {
            compute: DType::F32,
            matrices: MatrixStorage::Dense,
        }
    }

    /// Forces the compute type (a library option for checking the GPU code path on the CPU:
    /// burn's CPU backend runs bf16 and f16 by rounding f32 results).
    pub fn with_compute(mut self, compute: DType) -> Self {
        self.compute = compute;
        if compute != DType::F32 {
            self.matrices = MatrixStorage::Dense;
        }
        self
    }

    /// How a matrix stored as `stored` is held: `None` for a dense device tensor, else the
    /// host storage type.
    pub(crate) fn block_type(&self, stored: GgmlType) -> Option<GgmlType> {
        match self.matrices {
            MatrixStorage::Dense => None,
            MatrixStorage::Native => (stored != GgmlType::F32).then_some(stored),
            MatrixStorage::Half(half) => Some(half),
        }
    }

    /// The 16-bit type the weights are rounded to, if any: the compute type in half
    /// precision, the matrices' half type under `--dtype bf16` / `f16` on the CPU. Vectors
    /// (norms, biases) are rounded to it too, as `model.to(dtype)` rounds every parameter.
    pub fn weight_rounding(&self) -> Option<DType> {
        match (self.compute, self.matrices) {
            (DType::BF16 | DType::F16, _) => Some(self.compute),
            (_, MatrixStorage::Half(GgmlType::BF16)) => Some(DType::BF16),
            (_, MatrixStorage::Half(GgmlType::F16)) => Some(DType::F16),
            _ => None,
        }
    }

    /// Bytes per element of the compute type.
    pub fn compute_bytes(&self) -> usize {
        self.compute.size()
    }

    pub fn describe(&self) -> String {
        let compute = dtype_name(self.compute);
        match self.matrices {
            MatrixStorage::Dense => format!("{compute} weights, {compute} compute"),
            MatrixStorage::Native => format!("weights as stored, {compute} compute"),
            MatrixStorage::Half(h) => format!("{} weights, {compute} compute", h.name()),
        }
    }
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dtype_names() {
        assert_eq!("BF16".parse::<DtypeChoice>().unwrap(), DtypeChoice::Bf16);
        assert_eq!(
            "native".parse::<DtypeChoice>().unwrap(),
            DtypeChoice::Native
        );
        let err = "int4".parse::<DtypeChoice>().unwrap_err().to_string();
        assert!(err.contains("native, f32, bf16, f16"), "{err}");
    }

    #[test]
    fn cpu_choices_per_format() {
        let cpu = Device::flex();
        let p = Precision::resolve(DtypeChoice::Native, SourceKind::Gguf, GgmlType::Q4_1, &cpu)
            .unwrap();
        assert_eq!(p.compute, DType::F32);
        assert_eq!(p.block_type(GgmlType::Q4_1), Some(GgmlType::Q4_1));
        assert_eq!(p.block_type(GgmlType::F32), None);
        let err = Precision::resolve(DtypeChoice::Bf16, SourceKind::Gguf, GgmlType::Q4_1, &cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not for GGUF"), "{err}");
        let p = Precision::resolve(
            DtypeChoice::F16,
            SourceKind::Safetensors,
            GgmlType::BF16,
            &cpu,
        )
        .unwrap();
        assert_eq!(p.block_type(GgmlType::BF16), Some(GgmlType::F16));
        assert_eq!(p.block_type(GgmlType::F32), Some(GgmlType::F16));
        let p =
            Precision::resolve(DtypeChoice::F32, SourceKind::Gguf, GgmlType::Q4_1, &cpu).unwrap();
        assert_eq!(p, Precision::f32_dense());
    }
}
