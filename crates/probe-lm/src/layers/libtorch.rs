//! Layers that run as transformers' own PyTorch ops on libtorch devices, where burn has no op
//! that rounds the same way (burn has no `rsqrt`; `1 / sqrt` differs in the last bit, which
//! flips bf16 roundings downstream). With these, probe's bf16 forward on libtorch reproduces
//! transformers' bf16 hidden states bit for bit (tests/half_precision.rs, scripts/gpu-check.sh).

use burn::backend::LibTorch;
use burn::tensor::Tensor;

/// transformers' `LlamaRMSNorm.forward`: `h = x.float(); h *= rsqrt(mean(h²) + eps);
/// weight * h.to(x.dtype)`; with `in_f32` Gemma's: `(h * weight.float()).to(x.dtype)` (the
/// weight already holds Gemma's `1 + w`). Both tensors must live on a libtorch device.
pub(crate) fn rms_norm(x: Tensor<3>, weight: Tensor<1>, eps: f64, in_f32: bool) -> Tensor<3> {
    let (x, weight) = (torch(x), torch(weight));
    let kind = x.kind();
    let h = x.to_kind(tch::Kind::Float);
    let variance = h.pow_tensor_scalar(2).mean_dim(-1, true, tch::Kind::Float);
    let h = &h * (variance + eps).rsqrt();
    if in_f32 {
        return burn((h * weight.to_kind(tch::Kind::Float)).to_kind(kind));
    }
    burn(weight * h.to_kind(kind))
}

fn torch<const D: usize>(t: Tensor<D>) -> tch::Tensor {
    t.try_into_primitive::<LibTorch>()
        .expect("a libtorch tensor (the caller checked its device)")
        .tensor
}

fn burn<const D: usize>(t: tch::Tensor) -> Tensor<D> {
    Tensor::from_primitive::<LibTorch>(burn::backend::libtorch::TchTensor::new(t))
}

/// transformers' MLP coefficients `act_fn(gate) * up` (PyTorch's `silu` on the activations'
/// type, then the product).
pub(crate) fn swiglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    burn(torch(gate).silu() * torch(up))
}

/// transformers' GeGLU coefficients: `gelu(gate, approximate="tanh") * up`.
pub(crate) fn geglu(gate: Tensor<3>, up: Tensor<3>) -> Tensor<3> {
    burn(torch(gate).gelu("tanh") * torch(up))
}

/// PyTorch's `scaled_dot_product_attention` on `[batch, heads, seq, head_dim]` queries and
/// `[batch, kv_heads, keys, head_dim]` keys and values (grouped-query attention without
/// repeating K/V). `attend` is `true` where a query may see a key; `None` with `causal` is the
/// plain causal case, which lets PyTorch take its flash kernel, as transformers does for an
/// unpadded batch.
pub(crate) fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    attend: Option<Tensor<4, burn::tensor::Bool>>,
    causal: bool,
    scale: Option<f64>,
) -> Tensor<4> {
    let mask = attend.map(|m| {
        m.try_into_primitive::<LibTorch>()
            .expect("a libtorch tensor (the caller checked its device)")
            .tensor
    });
    let gqa = q.dims()[1] != k.dims()[1];
    burn(tch::Tensor::scaled_dot_product_attention(
        &torch(q),
        &torch(k),
        &torch(v),
        mask.as_ref(),
        0.0,
        causal,
        scale,
        gqa,
    ))
}
