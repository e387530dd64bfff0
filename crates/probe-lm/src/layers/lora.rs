//! LoRA (Hu et al. 2021) on a linear layer: `y = x W + s · drop(x) A B`
//! with `s = alpha / r`. `A` is `[d_in, r]` and `B` `[r, d_out]` in burn's row layout; PEFT
//! stores their transposes (`lora_A.weight` `[r, d_in]`, `lora_B.weight` `[d_out, r]`).
//!
//! Dropout acts only while [`set_dropout`] has given it a seed (training); its masks come from
//! a seeded host RNG (SplitMix64, 16 bits per element, so p is rounded to a multiple of
//! 1/65536) so that a run, and a run resumed from a checkpoint, draw the same masks.

use std::cell::RefCell;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

#[derive(Module, Debug)]
pub struct Lora {
    pub a: Param<Tensor<2>>,
    pub b: Param<Tensor<2>>,
    #[module(skip)]
    pub scale: f64,
    #[module(skip)]
    pub dropout: f64,
}

thread_local! {
    /// The dropout stream of this thread's forward passes; `None`: no dropout (inference).
    static DROPOUT: RefCell<Option<u64>> = const { RefCell::new(None) };
}

/// Turns LoRA dropout on with a seed (training) or off (`None`).
pub fn set_dropout(seed: Option<u64>) {
    DROPOUT.with(|d| *d.borrow_mut() = seed);
}

/// The next dropout mask `[rows, cols]` (values 0 or 1/(1 − p)), `None` when dropout is off.
fn dropout_mask(rows: usize, cols: usize, p: f64, device: &Device) -> Option<Tensor<2>> {
    if p <= 0.0 {
        return None;
    }
    DROPOUT.with(|d| {
        let mut state = d.borrow_mut();
        let seed = state.as_mut()?;
        let keep = (1.0 / (1.0 - p)) as f32;
        // four 16-bit uniforms per draw: p is quantized to 1/65536
        let threshold = (p * 65536.0).round() as u64;
        let n = rows * cols;
        let mut values = Vec::with_capacity(n + 3);
        while values.len() < n {
            let mut rng = probe_util::SplitMix64::from_state(*seed);
            let z = rng.next_u64();
            *seed = rng.state();
            for k in 0..4 {
                let u = (z >> (16 * k)) & 0xFFFF;
                values.push(if u < threshold { 0.0 } else { keep });
            }
        }
        values.truncate(n);
        Some(Tensor::from_data(
            TensorData::new(values, [rows, cols]),
            device,
        ))
    })
}

impl Lora {
    /// `s · drop(x) A B` for `x` `[rows, d_in]`.
    pub fn delta(&self, x: Tensor<2>) -> Tensor<2> {
        let [rows, cols] = x.dims();
        let x = match dropout_mask(rows, cols, self.dropout, &x.device()) {
            Some(mask) => x.mul(mask),
            None => x,
        };
        x.matmul(self.a.val())
            .matmul(self.b.val())
            .mul_scalar(self.scale)
    }

    /// `s · A B`, `[d_in, d_out]`: what merging adds to the weight.
    pub fn product(&self) -> Tensor<2> {
        self.a.val().matmul(self.b.val()).mul_scalar(self.scale)
    }

    pub fn rank(&self) -> usize {
        self.a.val().dims()[1]
    }
}
