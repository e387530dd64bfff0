"""Reference side of scripts/bench-finetune: PyTorch + PEFT doing the LoRA training step
`probe finetune` does, on the same model, shapes and threads: SmolLM2-135M-Instruct (the GGUF,
dequantized to f32 by transformers), LoRA r=8, alpha=16 on q/k/v/o/gate/up/down, a batch of
prompts of one length, last-position logits → the option letters' loss (log-sum-exp of each
letter's token forms, softmax over the options, cross-entropy), backward, AdamW.
Prints one JSON line: tokens/s of forward + backward + update.
"""
import json
import os
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

gguf_path, batch, seq, n_steps, threads = (
    sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
torch.set_num_threads(threads)
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(
    os.path.dirname(gguf_path) or ".", gguf_file=os.path.basename(gguf_path), dtype=torch.float32)
config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, task_type="CAUSAL_LM",
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                    "up_proj", "down_proj"])
model = get_peft_model(model, config)
model.train()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4,
                        weight_decay=0.0)
vocab = model.config.vocab_size
gen = torch.Generator().manual_seed(0)
# letters A..G, two token forms each (arbitrary ids: the cost does not depend on which)
forms = torch.arange(100, 114)
spell = torch.zeros(14, 7)
spell[torch.arange(14), torch.arange(14) // 2] = 1.0
batches = []
for _ in range(n_steps + 1):
    ids = torch.randint(0, vocab, (batch, seq), generator=gen)
    # no padding: every token is a real one (probe's batches also carry left padding)
    mask = torch.ones(batch, seq, dtype=torch.long)
    answers = torch.randint(0, 7, (batch,), generator=gen)
    batches.append((ids, mask, answers, int(mask.sum())))


def step(ids, mask, answers):
    logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, :]
    sel = logits[:, forms]
    shift = sel.detach().max(dim=1, keepdim=True).values
    letters = ((sel - shift).exp() @ spell).log() + shift
    loss = torch.nn.functional.cross_entropy(letters, answers, reduction="sum") / len(answers)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


step(*batches[0][:3])  # warm-up
start = time.perf_counter()
tokens = 0
for ids, mask, answers, real in batches[1:]:
    step(ids, mask, answers)
    tokens += real
secs = time.perf_counter() - start
print(json.dumps({"torch_peft_tokens_per_s": tokens / secs, "steps": n_steps, "batch": batch,
                  "seq": seq, "threads": threads, "torch": torch.__version__}))
