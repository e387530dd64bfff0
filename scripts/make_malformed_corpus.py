"""Writes tests/corpus/: small malformed inputs for every reader probe has (GGUF, the tokenizer
rebuilt from GGUF metadata, safetensors, config.json, Wahl-o-Mat elections, cells JSONL,
experiment files) and bad numeric flags, with tests/corpus/cases.json saying, per case, the
command to run, the exit code and what the error must name (the file and the field).
tests/corpus.rs runs them all in the normal test suite.

    python3 scripts/make_malformed_corpus.py      # rewrites tests/corpus/ (deterministic)

Placeholders in a case's arguments: {case} (the case's directory), {out} (a fresh temporary
directory), {root} (the workspace root; commands run there). An election case is one
`election.json` (file name → text, a small invented election) that the test unpacks into {out}/e.
"""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "corpus")
CASES = []
shutil.rmtree(CORPUS, ignore_errors=True)  # cases are written as they are declared below


def case(name, files, args, expect, exit=1, absent=()):
    """One case: `files` maps relative paths to bytes (or str) written under its directory;
    `absent`: paths under {out} a failed run must not leave (nothing that looks done)."""
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for rel, data in files.items():
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
    CASES.append({"name": name, "args": args, "exit": exit, "expect": expect, "absent": list(absent)})


# ---------------------------------------------------------------- GGUF
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


class Gguf:
    """A GGUF v3 writer whose every field can be overridden to break it."""

    def __init__(self):
        self.meta = []  # (key, raw bytes of type + value)
        self.tensors = []  # (name, dims, type, data, offset override)
        self.version = 3
        self.n_tensors = None
        self.n_meta = None
        self.magic = b"GGUF"
        self.truncate = None

    def kv(self, key, ty, payload):
        self.meta.append((key, struct.pack("<I", ty) + payload))
        return self

    def u32(self, key, v):
        return self.kv(key, 4, struct.pack("<I", v))

    def f32(self, key, v):
        return self.kv(key, 6, struct.pack("<f", v))

    def string(self, key, v):
        return self.kv(key, 8, gstr(v))

    def strings(self, key, vs):
        return self.kv(key, 9, struct.pack("<IQ", 8, len(vs)) + b"".join(gstr(v) for v in vs))

    def u32s(self, key, vs):
        return self.kv(key, 9, struct.pack("<IQ", 4, len(vs)) + b"".join(struct.pack("<I", v) for v in vs))

    def tensor(self, name, dims, ty=0, data=None, offset=None):
        n = 1
        for d in dims:
            n *= d
        self.tensors.append((name, dims, ty, data if data is not None else bytes(4 * n), offset))
        return self

    def bytes(self):
        out = bytearray(self.magic + struct.pack("<I", self.version))
        out += struct.pack("<Q", len(self.tensors) if self.n_tensors is None else self.n_tensors)
        out += struct.pack("<Q", len(self.meta) if self.n_meta is None else self.n_meta)
        for k, v in self.meta:
            out += gstr(k) + v
        off = 0
        for name, dims, ty, data, override in self.tensors:
            out += gstr(name) + struct.pack("<I", len(dims))
            out += b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", ty, off if override is None else override)
            off += (len(data) + 31) // 32 * 32
        while len(out) % 32:
            out.append(0)
        for *_, data, _ in self.tensors:
            out += data
            while len(out) % 32:
                out.append(0)
        return bytes(out if self.truncate is None else out[: self.truncate])


def llama_meta(g=None, layers=1):
    g = g or Gguf()
    return (
        g.string("general.architecture", "llama")
        .u32("llama.block_count", layers)
        .u32("llama.embedding_length", 8)
        .u32("llama.feed_forward_length", 16)
        .u32("llama.attention.head_count", 2)
        .u32("llama.attention.head_count_kv", 1)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-6)
        .u32("llama.vocab_size", 16)
    )


def llama_gguf():
    return llama_meta().tensor("token_embd.weight", [8, 16])


def gguf_case(name, g, expect, file="model.gguf"):
    case(name, {file: g.bytes() if isinstance(g, Gguf) else g}, ["inspect", "{case}/" + file], [file] + expect)


gguf_case("gguf-empty-file", b"", ["magic"])
g = llama_gguf(); g.magic = b"GGML"
gguf_case("gguf-wrong-magic", g, ["not a GGUF file"])
g = llama_gguf(); g.version = 1
gguf_case("gguf-version-1", g, ["GGUF version 1"])
g = llama_gguf(); g.version = 9
gguf_case("gguf-version-9", g, ["GGUF version 9"])
g = llama_gguf(); g.truncate = 20
gguf_case("gguf-truncated-header", g, ["tensor count", "cannot fit"])
g = llama_gguf(); g.n_tensors = 1 << 62
gguf_case("gguf-tensor-count-huge", g, ["tensor count"])
g = llama_gguf(); g.n_meta = 1 << 62
gguf_case("gguf-metadata-count-huge", g, ["metadata count"])
g = llama_gguf(); g.kv("x", 8, struct.pack("<Q", 1 << 60))
gguf_case("gguf-string-length-huge", g, ["x = 1152921504606846976", "cannot fit"])
g = llama_gguf(); g.meta.insert(0, ("general.name", struct.pack("<I", 99) + b"abcd"))
gguf_case("gguf-unknown-value-type", g, ["general.name", "type 99"])
g = llama_gguf(); g.kv("big.array", 9, struct.pack("<IQ", 4, 1 << 61))
gguf_case("gguf-array-length-huge", g, ["big.array"])
nested = struct.pack("<IQ", 9, 1)
for _ in range(200):
    nested += struct.pack("<IQ", 9, 1)
g = llama_gguf(); g.kv("deep", 9, nested)
gguf_case("gguf-arrays-nested-deep", g, ["deep", "nest"])
g = llama_meta().tensor("token_embd.weight", [])
gguf_case("gguf-tensor-zero-dims", g, ["token_embd.weight", "0 dimensions"])
g = llama_meta().tensor("token_embd.weight", [1, 1, 1, 1, 1])
gguf_case("gguf-tensor-five-dims", g, ["token_embd.weight", "5 dimensions"])
g = llama_meta(); g.tensors.append(("token_embd.weight", [1 << 40, 1 << 40], 0, b"", None))
gguf_case("gguf-tensor-dims-overflow", g, ["token_embd.weight", "overflow"])
# found by fuzzing: a zero dimension passes the element-count overflow check (0 × anything),
# then the memory estimate multiplied the others in another order and overflowed
g = llama_meta(); g.tensors.append(("blk.0.ffn_up.weight", [8, 0, 1 << 63, 1 << 56], 0, b"", None))
gguf_case("gguf-tensor-zero-dim", g, ["blk.0.ffn_up.weight", "dimension of size 0"])
g = llama_meta(); g.tensors.append(("token_embd.weight", [8, 16], 99, bytes(512), None))
gguf_case("gguf-tensor-unknown-type", g, ["token_embd.weight", "99"])
g = llama_meta(); g.tensors.append(("token_embd.weight", [8, 1 << 20], 0, bytes(512), None))
gguf_case("gguf-tensor-beyond-end", g, ["token_embd.weight", "beyond the end"])
g = llama_meta().tensor("a.weight", [4]).tensor("token_embd.weight", [8, 16], offset=16)
gguf_case("gguf-tensor-offset-unaligned", g, ["token_embd.weight", "alignment"])
g = llama_meta().tensor("token_embd.weight", [8, 16]).tensor("token_embd.weight", [8, 16])
gguf_case("gguf-tensor-name-twice", g, ["token_embd.weight", "twice"])
g = llama_gguf().u32("general.alignment", 3)
gguf_case("gguf-alignment-not-power-of-two", g, ["general.alignment"])
g = llama_meta(Gguf(), layers=4_000_000_000).tensor("token_embd.weight", [8, 16])
gguf_case("gguf-block-count-huge", g, ["llama.block_count"])
g = Gguf().u32("llama.block_count", 1).tensor("token_embd.weight", [8, 16])
gguf_case("gguf-no-architecture", g, ["general.architecture"])
g = Gguf().string("general.architecture", "gpt5").tensor("token_embd.weight", [8, 16])
gguf_case("gguf-unknown-architecture", g, ["gpt5"])
g = llama_gguf(); g.meta = [m for m in g.meta if m[0] != "llama.embedding_length"] + [("llama.embedding_length", struct.pack("<II", 4, 0))]
gguf_case("gguf-embedding-length-zero", g, ["hidden_size"])
g = llama_gguf(); g.meta = [m for m in g.meta if m[0] != "llama.attention.head_count"] + [("llama.attention.head_count", struct.pack("<II", 4, 3))]
gguf_case("gguf-heads-do-not-divide", g, ["llama.embedding_length 8 is not a multiple of llama.attention.head_count 3"])
g = llama_meta(); g.tensors.append(("token_embd.weight", [31, 1], 2, bytes(64), None))
gguf_case("gguf-row-not-whole-blocks", g, ["token_embd.weight", "blocks"])


# ---------------------------------------------------------------- tokenizer from GGUF
def byte_level(b):
    printable = lambda x: 33 <= x <= 126 or 0xA1 <= x <= 0xAC or x >= 0xAE
    if printable(b):
        return chr(b)
    return chr(256 + sum(1 for x in range(b) if not printable(x)))


TOKENS = sorted({byte_level(b) for b in range(256)}) + ["ab"]


def tok_gguf(edit):
    g = llama_gguf().string("tokenizer.ggml.model", "gpt2").string("tokenizer.ggml.pre", "default")
    g = edit(g)
    return g


def tok_case(name, g, expect):
    case(name, {"tok.gguf": g.bytes()}, ["inspect", "{case}/tok.gguf", "--save-tokenizer", "{out}/tokenizer.json"], ["tok.gguf"] + expect)


tok_case("tokenizer-no-tokens", tok_gguf(lambda g: g), ["tokenizer.ggml.tokens"])
tok_case("tokenizer-no-merges", tok_gguf(lambda g: g.strings("tokenizer.ggml.tokens", TOKENS)), ["tokenizer.ggml.merges"])
tok_case("tokenizer-merge-without-space", tok_gguf(lambda g: g.strings("tokenizer.ggml.tokens", TOKENS).strings("tokenizer.ggml.merges", ["ab"])), ["merge 0", "`ab`"])
tok_case("tokenizer-unknown-pre", tok_gguf(lambda g: g.strings("tokenizer.ggml.tokens", TOKENS).strings("tokenizer.ggml.merges", ["a b"]).string("tokenizer.ggml.pre", "klingon")), ["klingon"])
tok_case("tokenizer-unknown-model", tok_gguf(lambda g: g.strings("tokenizer.ggml.tokens", TOKENS).string("tokenizer.ggml.model", "t5")), ["`t5`"])
tok_case("tokenizer-token-type-length", tok_gguf(lambda g: g.strings("tokenizer.ggml.tokens", TOKENS).strings("tokenizer.ggml.merges", ["a b"]).u32s("tokenizer.ggml.token_type", [1, 1, 3])), ["tokenizer.ggml.token_type", "3 entries"])
tok_case("tokenizer-tokens-not-strings", tok_gguf(lambda g: g.u32s("tokenizer.ggml.tokens", [1, 2, 3])), ["token 0"])


# model files whose numbers or vocabulary are wrong but parse
g = llama_gguf().u32("llama.context_length", 0)
gguf_case("gguf-context-length-zero", g, ["max_position_embeddings", "context_length"])
g = llama_gguf().u32("tokenizer.ggml.bos_token_id", 99)
gguf_case("gguf-bos-beyond-vocabulary", g, ["bos_token_id 99", "vocabulary of 16"])
tok_case("tokenizer-eos-beyond-vocabulary", tok_gguf(lambda g: g.strings("tokenizer.ggml.tokens", TOKENS).strings("tokenizer.ggml.merges", ["a b"]).u32("tokenizer.ggml.eos_token_id", 9999)), ["eos_token_id 9999"])
raw_tokens = [t.encode() for t in TOKENS[:-1]] + [b"a\xff\xfeb"]
tok_case("tokenizer-token-not-utf8", tok_gguf(lambda g: g.kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, len(raw_tokens)) + b"".join(struct.pack("<Q", len(t)) + t for t in raw_tokens)).strings("tokenizer.ggml.merges", ["a b"])),
         ["tokenizer.ggml.tokens", "not valid UTF-8"])


# a SentencePiece (Gemma) vocabulary: control pieces, the 256 byte pieces, normal pieces that
# each split into two others; "corrupted" flips a letter in a third of the normal pieces
def sp_vocabulary(corrupt=False):
    pieces, types = ["<pad>", "<eos>", "<bos>", "<unk>"], [3, 3, 3, 2]
    for b in range(256):
        pieces.append("<0x%02X>" % b)
        types.append(6)
    normal = list("abcdefgh") + ["\u2581"]
    words = ["ab", "cd", "ef", "gh", "abcd", "efgh", "abcdefgh", "\u2581a", "\u2581ab", "\u2581abcd", "\u2581abcdefgh", "\u2581e", "\u2581ef", "\u2581efgh"]
    for k, w in enumerate(words):
        if corrupt and k % 3 == 2:
            w = w[:-1] + "q"
        normal.append(w)
    pieces += normal
    types += [1] * len(normal)
    return pieces, types


def gemma_gguf(corrupt=False):
    pieces, types = sp_vocabulary(corrupt)
    g = Gguf().string("general.architecture", "gemma3")
    for k, v in [("block_count", 1), ("embedding_length", 8), ("feed_forward_length", 16), ("attention.head_count", 2),
                 ("attention.head_count_kv", 1), ("attention.key_length", 4), ("attention.value_length", 4), ("context_length", 64)]:
        g.u32("gemma3." + k, v)
    g.f32("gemma3.attention.layer_norm_rms_epsilon", 1e-6)
    g.string("tokenizer.ggml.model", "llama").strings("tokenizer.ggml.tokens", pieces).u32s("tokenizer.ggml.token_type", types)
    g.kv("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, len(pieces)) + b"".join(struct.pack("<f", -float(i)) for i in range(len(pieces))))
    g.u32("tokenizer.ggml.bos_token_id", 2).u32("tokenizer.ggml.eos_token_id", 1)
    return g.tensor("token_embd.weight", [8, len(pieces)])


tok_case("tokenizer-sentencepiece-corrupted", gemma_gguf(corrupt=True), ["normal pieces cannot be split", "corrupted"])


# ---------------------------------------------------------------- safetensors + config.json
CONFIG = {
    "model_type": "llama", "vocab_size": 16, "hidden_size": 8, "intermediate_size": 16,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True, "hidden_act": "silu",
}
SHAPES = [
    ("model.embed_tokens.weight", [16, 8]), ("model.norm.weight", [8]),
    ("model.layers.0.input_layernorm.weight", [8]), ("model.layers.0.post_attention_layernorm.weight", [8]),
    ("model.layers.0.self_attn.q_proj.weight", [8, 8]), ("model.layers.0.self_attn.k_proj.weight", [4, 8]),
    ("model.layers.0.self_attn.v_proj.weight", [4, 8]), ("model.layers.0.self_attn.o_proj.weight", [8, 8]),
    ("model.layers.0.mlp.gate_proj.weight", [16, 8]), ("model.layers.0.mlp.up_proj.weight", [16, 8]),
    ("model.layers.0.mlp.down_proj.weight", [8, 16]),
]


def safetensors(shapes=SHAPES, edit=None, dtype="F32"):
    header, data = {}, bytearray()
    for i, (name, shape) in enumerate(shapes):
        n = 1
        for d in shape:
            n *= d
        raw = b"".join(struct.pack("<f", ((i * 7 + j * 13) % 17 - 8) / 100) for j in range(n))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if edit:
        edit(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(data)


RUN = ["run-with-cache", "{case}", "--ids", "1,2,3", "--hooks", "blocks.0.hook_resid_post", "--out", "{out}/x.safetensors"]


def st_case(name, st, expect, config=None, extra=None):
    files = {"config.json": json.dumps(config or CONFIG), "model.safetensors": st}
    files.update(extra or {})
    case(name, files, RUN, expect)


st_case("safetensors-empty-file", b"", ["model.safetensors"])
st_case("safetensors-header-length-huge", struct.pack("<Q", 1 << 40) + b"{}", ["model.safetensors"])
st_case("safetensors-header-not-json", struct.pack("<Q", 8) + b"{not js}", ["model.safetensors"])
st_case("safetensors-shape-disagrees-with-offsets", safetensors(edit=lambda h: h["model.layers.0.mlp.up_proj.weight"].update(shape=[16, 9])), ["model.safetensors", "model.layers.0.mlp.up_proj.weight", "shape [16, 9]"])
st_case("safetensors-entry-missing-from-header", safetensors(edit=lambda h: h.pop("model.layers.0.self_attn.k_proj.weight")), ["model.safetensors", "model.layers.0.self_attn.v_proj.weight", "missing from the header"])
st_case("safetensors-unknown-dtype", safetensors(edit=lambda h: h["model.norm.weight"].update(dtype="F12")), ["model.safetensors", "model.norm.weight", "F12"])
st_case("safetensors-offsets-beyond-data", safetensors(edit=lambda h: h["model.layers.0.mlp.down_proj.weight"].update(data_offsets=[0, 1 << 30])), ["model.safetensors", "model.layers.0.mlp.down_proj.weight"])
st_case("safetensors-required-tensor-missing", safetensors([s for s in SHAPES if "q_proj" not in s[0]]), ["model.layers.0.self_attn.q_proj.weight", "missing"])
st_case("safetensors-tensor-wrong-shape", safetensors([(n, [8, 7] if "o_proj" in n else s) for n, s in SHAPES]), ["model.layers.0.self_attn.o_proj.weight", "shape"])
st_case("safetensors-unsupported-dtype", safetensors([(n, s) for n, s in SHAPES], dtype="I32"), ["I32"])
case("safetensors-index-names-missing-file", {"config.json": json.dumps(CONFIG), "model.safetensors.index.json": json.dumps({"weight_map": {"model.norm.weight": "model-00001-of-00002.safetensors"}})}, RUN, ["model-00001-of-00002.safetensors"])
case("safetensors-index-not-json", {"config.json": json.dumps(CONFIG), "model.safetensors.index.json": "{weight_map"}, RUN, ["model.safetensors.index.json", "shard index"])
case("safetensors-index-maps-tensor-its-file-lacks", {"config.json": json.dumps(CONFIG), "model.safetensors": safetensors(), "model.safetensors.index.json": json.dumps({"weight_map": {"model.norm.weight": "model.safetensors", "lm_head.weight": "model.safetensors"}})}, RUN, ["model.safetensors.index.json", "lm_head.weight"])
case("safetensors-index-escapes-directory", {"config.json": json.dumps(CONFIG), "model.safetensors.index.json": json.dumps({"weight_map": {"model.norm.weight": "../../etc/passwd"}})}, RUN, ["model.safetensors.index.json", "../../etc/passwd"])


def cfg_case(name, edit, expect):
    c = dict(CONFIG)
    edit(c)
    case(name, {"config.json": json.dumps(c), "model.safetensors": safetensors()}, RUN, ["config"] + expect)


case("config-not-json", {"config.json": "{\"hidden_size\": ", "model.safetensors": safetensors()}, RUN, ["config.json", "not a valid config.json"])
cfg_case("config-hidden-size-missing", lambda c: c.pop("hidden_size"), ["hidden_size"])
cfg_case("config-hidden-size-zero", lambda c: c.update(hidden_size=0), ["hidden_size"])
cfg_case("config-heads-zero", lambda c: c.update(num_attention_heads=0), ["num_attention_heads"])
cfg_case("config-heads-do-not-divide", lambda c: c.update(num_attention_heads=3), ["hidden_size 8 is not a multiple of num_attention_heads 3"])
cfg_case("config-unknown-model-type", lambda c: c.update(model_type="gpt5"), ["gpt5"])
cfg_case("config-layers-huge", lambda c: c.update(num_hidden_layers=10**12), ["config.json", "num_hidden_layers is 1000000000000"])
cfg_case("config-vocab-size-string", lambda c: c.update(vocab_size="sixteen"), ["config.json", "`vocab_size` = \"sixteen\""])
cfg_case("config-unknown-activation", lambda c: c.update(hidden_act="swish2"), ["swish2"])
cfg_case("config-unknown-rope-scaling", lambda c: c.update(rope_scaling={"rope_type": "warp", "factor": 2.0}), ["warp"])


# ---------------------------------------------------------------- Wahl-o-Mat elections
def election(edit=None):
    e = {
        "overview": {"title": "Mini 2099", "date": "2099-01-01"},
        "party": [{"id": 0, "name": "SA", "longname": "Soziale Allianz"}, {"id": 1, "name": "ÖU", "longname": "Ökologische Union"}],
        "statement": [{"id": 0, "label": "Lohn", "text": "Der Lohn soll steigen."}, {"id": 1, "label": "Tempo", "text": "Ein Tempolimit soll gelten."}],
        "answer": [{"id": 0, "message": "Stimme zu"}, {"id": 1, "message": "Stimme nicht zu"}, {"id": 2, "message": "Neutral"}],
        "opinion": [{"id": i, "party": p, "statement": s, "answer": (p + s) % 3, "comment": i} for i, (p, s) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)])],
        "comment": [{"id": i, "text": "Begründung %d." % i} for i in range(4)],
    }
    if edit:
        edit(e)
    return {"%s.json" % k: json.dumps(v, ensure_ascii=False) for k, v in e.items() if v is not None}


def bundle(files):
    """An election as one file, `election.json` (file name → text): tests/corpus.rs unpacks it
    into {out}/e before running, so no Wahl-o-Mat-layout directory is committed."""
    return {"election.json": json.dumps(files, ensure_ascii=False, indent=1)}


AUDIT = ["data", "audit", "{out}/e", "--parties", "SA,ÖU"]


def wom_case(name, edit, expect, file):
    case(name, bundle(election(edit)), AUDIT, [file] + expect)


wom_case("election-statement-file-missing", lambda e: e.update(statement=None), [], "statement.json")
case("election-party-not-json", bundle({**election(), "party.json": "[{\"id\": 0,"}), AUDIT, ["party.json"])
wom_case("election-opinion-unknown-party", lambda e: e["opinion"][0].update(party=9), ["party 9"], "opinion.json")
wom_case("election-opinion-unknown-statement", lambda e: e["opinion"][1].update(statement=7), ["statement 7"], "opinion.json")
wom_case("election-opinion-unknown-answer", lambda e: e["opinion"][2].update(answer=5), ["answer code 5"], "opinion.json")
wom_case("election-statement-id-twice", lambda e: e["statement"][1].update(id=0), ["statement id 0"], "statement.json")
wom_case("election-statement-text-empty", lambda e: e["statement"][0].update(text="  "), ["statement 0", "empty text"], "statement.json")
wom_case("election-opinion-row-missing", lambda e: e["opinion"].pop(3), ["party 1", "statement 1"], "opinion.json")
wom_case("election-opinion-twice", lambda e: e["opinion"].append(dict(e["opinion"][0], id=9)), ["party 0", "statement 0", "twice"], "opinion.json")
wom_case("election-party-id-twice", lambda e: e["party"][1].update(id=0), ["party id 0"], "party.json")
wom_case("election-no-statements", lambda e: e.update(statement=[], opinion=[]), ["no statements"], "opinion.json")


# ---------------------------------------------------------------- cells JSONL
REF = json.dumps({"question": "q", "group": "g", "options": ["a", "b"], "reference": [0.5, 0.5]}) + "\n"


def cells_case(name, predicted, expect):
    case(name, {"ref.jsonl": REF, "pred.jsonl": predicted}, ["compare", "--reference", "{case}/ref.jsonl", "--predicted", "{case}/pred.jsonl"], ["pred.jsonl:1"] + expect)


def cell(**kw):
    c = {"question": "q", "group": "g", "model": "m", "options": ["a", "b"], "predicted": [0.3, 0.7]}
    c.update(kw)
    return json.dumps({k: v for k, v in c.items() if v is not None}) + "\n"


cells_case("cells-not-json", "{\"question\": \"q\",\n", ["JSON"])
cells_case("cells-no-options", cell(options=None), ["options"])
cells_case("cells-counts-overflow", cell(predicted=None, predicted_counts=[1e308, 1e308]), ["predicted_counts", "overflow"])
cells_case("cells-length-mismatch", cell(predicted=[0.2, 0.3, 0.5]), ["predicted"])
cells_case("cells-do-not-sum-to-one", cell(predicted=[0.2, 0.3]), ["predicted"])
cells_case("cells-negative-probability", cell(predicted=[-0.5, 1.5]), ["predicted"])
cells_case("cells-nan", "{\"question\": \"q\", \"options\": [\"a\", \"b\"], \"predicted\": [NaN, 1]}\n", ["`predicted`", "NaN"])
cells_case("cells-option-twice", cell(options=["a", "a"]), ["`a`"])
case("cells-empty-file", {"ref.jsonl": REF, "pred.jsonl": ""}, ["compare", "--reference", "{case}/ref.jsonl", "--predicted", "{case}/pred.jsonl"], ["pred.jsonl", "no cells"])
cells_case("cells-line-not-object", "[1, 2]\n", ["not a JSON object"])
cells_case("cells-counts-negative", cell(predicted=None, predicted_counts=[-1, 3]), ["predicted_counts"])
case("cells-predicted-twice", {"ref.jsonl": REF, "pred.jsonl": cell() + cell()}, ["compare", "--reference", "{case}/ref.jsonl", "--predicted", "{case}/pred.jsonl"], ["appears twice", "question=q"])


# ---------------------------------------------------------------- experiment files
EXPERIMENT = """name = "corpus"
out = "{out}/study"

[[model]]
path = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

[election]
dir = "data/demo/wahl-o-mat/2099-demowahl"
parties = ["SA", "ÖU", "FB"]

[probes]
folds = 2
"""


def exp_case(name, text, expect):
    case(name, {"experiment.toml": text}, ["study", "{case}/experiment.toml", "--dry-run"], ["experiment.toml"] + expect)


exp_case("experiment-not-toml", "name = \n", ["TOML"])
exp_case("experiment-unknown-field", EXPERIMENT.replace("folds = 2", "folds = 2\nfoldz = 3"), ["foldz"])
exp_case("experiment-no-name", EXPERIMENT.replace('name = "corpus"\n', ""), ["name"])
exp_case("experiment-layers-outside", EXPERIMENT.replace("folds = 2", "folds = 2\nlayers = [0.5, 1.5]"), ["probes.layers"])
exp_case("experiment-folds-one", EXPERIMENT.replace("folds = 2", "folds = 1"), ["probes.folds"])
exp_case("experiment-unknown-party", EXPERIMENT.replace('"FB"', '"XYZ"'), ["election.parties", "XYZ"])
exp_case("experiment-unknown-template", EXPERIMENT.replace("folds = 2", 'folds = 2\ntemplates = ["nope"]'), ["probes.templates", "nope"])
exp_case("experiment-election-missing", EXPERIMENT.replace("2099-demowahl", "2098-nowahl"), ["election.dir"])
exp_case("experiment-unknown-device", 'device = "tpu"\n' + EXPERIMENT, ["device", "tpu"])
exp_case("experiment-unknown-metric", EXPERIMENT + '\n[report]\nmetrics = ["tv", "emd"]\n', ["report.metrics", "emd"])


# ---------------------------------------------------------------- surveys (codebook + data)
CODEBOOK = """name = "corpus"
title = "A corpus survey"
source = "written for the corpus"
data = "survey.csv"
id = "id"
weight = "w"
missing = ["9"]
persona = "You are {age} years old and {edu}."

[[demographic]]
column = "age"
kind = "number"

[[demographic]]
column = "edu"
kind = "coded"
codes = { "1" = "went to school", "2" = "went to university" }

[[item]]
column = "scale"
kind = "ordinal"
question = "How much?"
options = [{ code = "1", label = "Little" }, { code = "2", label = "Some" }, { code = "3", label = "Much" }]

[[item]]
column = "vote"
kind = "nominal"
question = "Whom?"
options = [{ code = "0", label = "A" }, { code = "1", label = "B" }]
"""
SURVEY_ROWS = [("r%d" % i, str(20 + 3 * i), str(1 + i % 2), str(1 + i % 3), str(i % 2), "1") for i in range(1, 41)]


def survey_csv(rows=SURVEY_ROWS, header="id,age,edu,scale,vote,w"):
    return header + "\n" + "".join(",".join(r) + "\n" for r in rows)


# a survey problem is found before any model loads: the model path need not exist
SIMULATE = ["simulate", "{case}/no-model.gguf", "--survey", "{case}", "--out", "{out}/sim"]
FINETUNE = ["finetune", "{case}/no-model.gguf", "--survey", "{case}", "--out", "{out}/ft"]


def survey_case(name, expect, codebook=CODEBOOK, data=None, args=SIMULATE, file="survey.csv"):
    case(name, {"codebook.toml": codebook, "survey.csv": data if data is not None else survey_csv()}, args, [file] + expect)


dup = list(SURVEY_ROWS)
dup[7] = ("r3",) + dup[7][1:]
survey_case("survey-duplicate-id", ["id `r3`", "line 4"], data=survey_csv(dup))
survey_case("survey-duplicate-id-finetune", ["id `r3`", "line 4"], data=survey_csv(dup), args=FINETUNE)
empty = list(SURVEY_ROWS)
empty[5] = ("",) + empty[5][1:]
survey_case("survey-empty-id", ["empty id", "column `id`"], data=survey_csv(empty))
survey_case("survey-missing-code-is-an-answer", ["missing code `0`", "item `vote`"], codebook=CODEBOOK.replace('missing = ["9"]', 'missing = ["0"]'), file="codebook.toml")
survey_case("survey-duplicate-column", ["column `vote` appears twice"], data=survey_csv([r + (r[4],) for r in SURVEY_ROWS], "id,age,edu,scale,vote,w,vote"))
survey_case("survey-weight-is-an-item", ["weight column `vote`", "item"], codebook=CODEBOOK.replace('weight = "w"', 'weight = "vote"'), file="codebook.toml")
neg = list(SURVEY_ROWS)
neg[2] = (neg[2][0], "-40") + neg[2][2:]
survey_case("survey-age-negative", ["`-40`", "column `age`", "range"], data=survey_csv(neg))
huge = list(SURVEY_ROWS)
huge[2] = (huge[2][0], "1e9") + huge[2][2:]
survey_case("survey-age-huge", ["`1e9`", "column `age`", "range"], data=survey_csv(huge))
unanswered = [r[:3] + ("9",) + r[4:] for r in SURVEY_ROWS]
survey_case("survey-item-unanswered-simulate", ["item `scale`"], data=survey_csv(unanswered))
survey_case("survey-item-unanswered-finetune", ["item `scale`"], data=survey_csv(unanswered), args=FINETUNE)
weightless = [r[:5] + ("0",) for r in SURVEY_ROWS]
survey_case("survey-weights-all-zero", ["weight 0"], data=survey_csv(weightless))
case("respondents-duplicate-column", {"survey.csv": "gender,vote,vote\nf,SA,FB\nm,FB,FB\n", "ref.jsonl": cell()},
     ["compare", "--predicted", "{case}/ref.jsonl", "--survey", "{case}/survey.csv", "--survey-attributes", "vote"], ["survey.csv", "column `vote` appears twice"])
# the survey passes; the model then fails to load, and the run leaves nothing behind
case("valid-survey", {"codebook.toml": CODEBOOK, "survey.csv": survey_csv()},
     ["simulate", "{case}/no-model.gguf", "--survey", "{case}", "--out", "{out}/sim"], ["no-model.gguf"], absent=["sim"])
case("extract-half-dtype-on-gguf", {}, ["extract", "models/SmolLM2-135M-Instruct.Q4_1.gguf", "--dtype", "f16", "--election", "data/demo/wahl-o-mat/2099-demowahl", "--parties", "SA,FB", "--out", "{out}/cache"],
     ["--dtype f16", "GGUF"], absent=["cache"])


# ---------------------------------------------------------------- study plans: names are path components
exp_case("experiment-label-escapes", EXPERIMENT.replace('.gguf"\n', '.gguf"\nlabel = "../../escaped"\n', 1), ["model[0].label", "path component"])
exp_case("experiment-label-absolute", EXPERIMENT.replace('.gguf"\n', '.gguf"\nlabel = "/tmp/escaped"\n', 1), ["model[0].label", "path separator"])
exp_case("experiment-eval-name-escapes", EXPERIMENT + '\n[[eval]]\nname = "../../../evil"\nquestions = "data/eval/coin.jsonl"\n', ["eval[0].name", "path component"])
exp_case("experiment-bootstrap-zero", EXPERIMENT + "\n[report]\nbootstrap = 0\n", ["report.bootstrap"])
exp_case("experiment-model-is-readme", EXPERIMENT.replace("models/SmolLM2-135M-Instruct.Q4_1.gguf", "README.md"), ["model[0].path", "README.md", "not a GGUF"])
exp_case("experiment-model-is-data-folder", EXPERIMENT.replace("models/SmolLM2-135M-Instruct.Q4_1.gguf", "data/demo"), ["model[0].path", "data/demo", "config.json"])
case("experiment-out-is-a-file", {"experiment.toml": EXPERIMENT.replace('out = "{out}/study"', 'out = "README.md"')}, ["study", "{case}/experiment.toml", "--dry-run"], ["out", "README.md", "not a directory"])


# ---------------------------------------------------------------- run folders the report reads
def psi_json(edit=None):
    scope = lambda a, b, n: {"psi": {"SA": a, "FB": b}, "rows": n, "weight": float(n)}
    v = {"parties": ["SA", "FB"], "all": scope(0.25, 0.75, 8),
         "by_group": {"gender": {"female": scope(0.5, 0.5, 4), "male": scope(0.0, 1.0, 4)}},
         "by_variant": {}, "negative": "clip", "negative_factors": {"count": 1, "of": 16},
         "undefined_rows": 0, "run": {"vectors": "run/vectors", "select": "joint", "k": 20,
                                    "persona_spec": "personas.toml", "personas": 8, "variants": ["a"]}}
    if edit:
        edit(v)
    return json.dumps(v)


EST = {"value": 0.1, "low": 0.05, "high": 0.2}


def scores_json(edit=None):
    marg = {"mean_kl": EST, "mean_tv": EST, "kl_smoothing": 1e-4,
            "items": [{"item": 0, "n": 3, "real": [0.5, 0.5], "simulated": [1.0, 0.0], "kl": EST, "tv": EST}]}
    split = {"split": "all", "respondents": 3, "expected": marg,
             "temperatures": [{"temperature": 1.0, "marginals": marg,
                               "agreement": {"items": [{"item": 0, "n": 3, "accuracy": EST, "rmse": None}], "mean_accuracy": EST, "mean_rmse": None},
                               "structure": None, "structure_note": "fewer than two items vary"}]}
    v = {"model": "m", "survey": "corpus", "persona": True, "items": ["vote"], "correlation": "pearson",
         "splits": [split], "baselines": [], "differences": []}
    v = json.loads(json.dumps(v))  # no shared sub-objects: an edit breaks one field
    if edit:
        edit(v)
    return json.dumps(v)


REPORT = ["report", "{case}/run", "--election", "none", "--out", "{out}/report", "--format", "svg", "--bootstrap", "10"]
COMPLETE = json.dumps({"stage": "simulate", "outputs": ["scores.json"]})


def psi_case(name, edit, expect):
    case(name, {"run/scale-personas/psi.json": psi_json(edit)}, REPORT, ["psi.json"] + expect)


def scores_case(name, edit, expect, complete=True):
    files = {"run/simulate-corpus/scores.json": scores_json(edit)}
    if complete:
        files["run/simulate-corpus/complete.json"] = COMPLETE
    case(name, files, REPORT, ["simulate-corpus"] + expect)


def negate(v):
    for scope in [v["all"]] + [s for g in v["by_group"].values() for s in g.values()]:
        scope["psi"] = {p: -x for p, x in scope["psi"].items()}


psi_case("report-psi-negated", negate, ["all.psi", "outside [0, 1]"])
# found by fuzzing (run_json): layers listed backwards overflowed a subtraction in the report
psi_case("report-psi-vector-layers-backwards", lambda v: v["run"].update(vector_layers=[7, 3]), ["run.vector_layers", "ascending"])
psi_case("report-psi-k-zero", lambda v: v["run"].update(k=0), ["run.k"])
psi_case("report-psi-rows-negative", lambda v: v["all"].update(rows=-8), ["all.rows", "-8"])
psi_case("report-psi-share-null", lambda v: v["all"]["psi"].update(SA=None), ["all.psi.SA", "null"])
psi_case("report-psi-share-nan-string", lambda v: v["by_group"]["gender"]["male"]["psi"].update(FB="NaN"), ["by_group.gender.male.psi.FB", "NaN"])
psi_case("report-psi-not-summing-to-one", lambda v: v["all"]["psi"].update(FB=0.5), ["all.psi", "sum to 0.75"])
# the schema (probe-schema): a renamed field, a count written as text, a newer version
psi_case("report-psi-field-renamed", lambda v: v["run"].update(selection=v["run"].pop("select")), ["run", "missing field `select`"])
psi_case("report-psi-count-as-text", lambda v: v["all"].update(rows="8"), ["all.rows", "invalid type: string"])
psi_case("report-psi-newer-version", lambda v: v.update(format_version=9), ["format_version 9 is newer", "up to 1"])
scores_case("report-scores-estimate-null", lambda v: v["splits"][0]["expected"]["mean_kl"].update(value=None), ["scores.json", "splits[0].expected.mean_kl.value", "null"])
scores_case("report-scores-estimate-nan-string", lambda v: v["splits"][0]["expected"]["mean_tv"].update(low="NaN"), ["scores.json", "splits[0].expected.mean_tv.low", "NaN"])
scores_case("report-scores-estimate-empty", lambda v: v["splits"][0]["temperatures"][0]["agreement"].update(mean_accuracy={}), ["scores.json", "agreement.mean_accuracy", "missing field `value`"])
scores_case("report-scores-no-splits", lambda v: v.update(splits=[]), ["scores.json", "nothing was scored"])
scores_case("report-simulate-unfinished", None, ["complete.json", "did not finish"], complete=False)
case("valid-report-psi", {"run/scale-personas/psi.json": psi_json()}, REPORT, [], exit=0)
case("valid-report-scores", {"run/simulate-corpus/scores.json": scores_json(), "run/simulate-corpus/complete.json": COMPLETE}, REPORT, [], exit=0)


# ---------------------------------------------------------------- LoRA adapters on the tiny model
ADAPTER_CONFIG = {"r": 2, "lora_alpha": 4, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
                  "peft_type": "LORA", "task_type": "CAUSAL_LM", "bias": "none"}


def adapter_tensors(value=lambda name, j: ((j * 5) % 7 - 3) / 50, extra=()):
    shapes = []
    for proj, d_out in [("q_proj", 8), ("v_proj", 4)]:
        m = f"base_model.model.model.layers.0.self_attn.{proj}"
        shapes += [(m + ".lora_A.weight", [2, 8]), (m + ".lora_B.weight", [d_out, 2])]
    shapes += list(extra)
    header, data = {}, bytearray()
    for name, shape in shapes:
        n = shape[0] * shape[1]
        raw = b"".join(struct.pack("<f", value(name, j)) for j in range(n))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, bytes(data)


def adapter_file(header_data, edit=None):
    header, data = header_data
    if edit:
        edit(header)
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


ADAPTED = RUN + ["--adapter", "{case}/adapter", "--logits", "last"]


def adapter_case(name, st, expect, args=ADAPTED, model=None):
    files = {"config.json": json.dumps(CONFIG), "model.safetensors": model or safetensors(),
             "adapter/adapter_config.json": json.dumps(ADAPTER_CONFIG), "adapter/adapter_model.safetensors": st}
    case(name, files, args, expect)


nan_b = lambda name, j: float("nan") if name.endswith("q_proj.lora_B.weight") and j == 3 else 0.01
adapter_case("adapter-nan-tensor", adapter_file(adapter_tensors(nan_b)), ["adapter_model.safetensors", "q_proj.lora_B.weight", "NaN"])
adapter_case("adapter-nan-tensor-merged", adapter_file(adapter_tensors(nan_b)), ["adapter_model.safetensors", "q_proj.lora_B.weight", "NaN"],
             args=ADAPTED + ["--dtype", "f32", "--merge-adapter"])
adapter_case("adapter-values-overflow", adapter_file(adapter_tensors(lambda name, j: 3e38)), ["blocks.0.hook_resid_post", "first non-finite"])
adapter_case("adapter-layer-not-in-model", adapter_file(adapter_tensors(extra=[("base_model.model.model.layers.99.self_attn.q_proj.lora_A.weight", [2, 8])])),
             ["layers.99.self_attn.q_proj.lora_A.weight", "layer 99", "1 layers"])
adapter_case("adapter-unknown-tensor", adapter_file(adapter_tensors(extra=[("base_model.model.model.layers.0.self_attn.q_proj.lora_C.weight", [2, 8])])),
             ["q_proj.lora_C.weight", "not a LoRA matrix"])
adapter_case("adapter-untargeted-module", adapter_file(adapter_tensors(extra=[("base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", [2, 8])])),
             ["mlp.up_proj.lora_A.weight", "target_modules"])
adapter_case("adapter-header-shape-disagrees", adapter_file(adapter_tensors(), lambda h: h["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"].update(shape=[4, 3])),
             ["adapter_model.safetensors", "v_proj.lora_B.weight", "shape [4, 3]"])
adapter_case("adapter-wrong-shape", adapter_file(adapter_tensors(extra=[]), lambda h: None) if False else adapter_file(adapter_tensors()).replace(b'"shape": [4, 2]', b'"shape": [2, 4]'),
             ["v_proj.lora_B.weight", "[2, 4]"])
case("valid-adapter", {"config.json": json.dumps(CONFIG), "model.safetensors": safetensors(),
                       "adapter/adapter_config.json": json.dumps(ADAPTER_CONFIG), "adapter/adapter_model.safetensors": adapter_file(adapter_tensors())},
     ADAPTED, [], exit=0)


# ---------------------------------------------------------------- non-finite outputs
def nan_weights(header):
    pass


def safetensors_with(name, index, value):
    st = bytearray(safetensors())
    n = struct.unpack("<Q", st[:8])[0]
    header = json.loads(st[8:8 + n])
    start = 8 + n + header[name]["data_offsets"][0] + 4 * index
    st[start:start + 4] = struct.pack("<f", value)
    return bytes(st)


st_case("checkpoint-nan-weight-logits", safetensors_with("model.layers.0.self_attn.q_proj.weight", 5, float("nan")), ["NaN", "blocks.0.hook_resid_post", "first non-finite"])
case("checkpoint-nan-weight-logits-only", {"config.json": json.dumps(CONFIG), "model.safetensors": safetensors_with("model.norm.weight", 2, float("nan"))},
     ["run-with-cache", "{case}", "--ids", "1,2,3", "--logits", "last", "--out", "{out}/x.safetensors"], ["`logits`", "first non-finite"])


# an eval that fails at its first unit (an adapter scaled so the activations overflow): the
# non-finite logits are named, and the failed first run leaves no manifest or empty log behind
def overflowing_smollm2_adapter():
    header, data = {}, bytearray()
    for layer in range(30):
        m = f"base_model.model.model.layers.{layer}.self_attn.q_proj"
        for name, shape in [(m + ".lora_A.weight", [1, 576]), (m + ".lora_B.weight", [576, 1])]:
            raw = struct.pack("<f", 1e19) * (shape[0] * shape[1])
            header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes(data)


case("eval-non-finite-logits-leaves-nothing",
     {"adapter/adapter_config.json": json.dumps({"r": 1, "lora_alpha": 1, "target_modules": ["q_proj"], "peft_type": "LORA", "bias": "none"}),
      "adapter/adapter_model.safetensors": overflowing_smollm2_adapter()},
     ["eval", "models/SmolLM2-135M-Instruct.Q4_1.gguf", "--questions", "data/eval/coin.jsonl", "--methods", "logp", "--steering", "none",
      "--adapter", "{case}/adapter", "--out", "{out}/eval"],
     ["question `coin-", "not finite"], absent=["eval"])
VECTORS_CHANCE = {"party": "SA", "statistic": "mean cosine of the joint top-k", "random": {"observed": 0.13, "n": 200, "mean": 0.136, "sd": 0.003, "z": -1.8, "p": 0.97},
                  "shuffled": {"observed": 0.13, "n": 20, "mean": 0.132, "sd": 0.004, "z": -0.6, "p": 0.71}, "above_chance": False}


def vectors_json(chance):
    return json.dumps({"format_version": 1, "model": "m.gguf", "model_hash": "0", "hidden_size": 8, "probes": "run",
                       "probe": "shared", "parties": ["SA"], "probe_sources": ["shared"], "layers": [3], "neurons": 16,
                       "k": 20, "iqr_c": 1.5, "iqr_thresholds": [0.1], "vectors": [], "chance": chance})


def probes_json(per_layer_accuracy):
    scores = lambda b: {"accuracy": 0.7, "balanced_accuracy": b, "auc": 0.7, "f1": 0.5, "n": 10}
    params = {"solver": "newton", "c": 1.0, "folds": 2, "seed": 0, "max_iterations": 1000, "tolerance": 1e-4,
              "per_layer": True, "shared": True}
    report = {"params": params, "parties": ["SA"], "hooks": ["blocks.3.hook_resid_post"], "positive_replication": [1],
              "folds": [0, 1], "per_layer": [], "shared": [],
              "summary": [{"hook": "blocks.3.hook_resid_post", "per_layer": scores(per_layer_accuracy), "shared": scores(0.7)}],
              "max_gradient_norm": 0.0, "unconverged_fits": 0, "fits": 2, "seconds": 0.1, "per_layer_seconds": 0.05,
              "shared_seconds": 0.05}
    return json.dumps({"format_version": 1, "model": "m.gguf", "model_hash": "0", "cache": "cache", "positions": "last-before-answer",
                       "data_sha256": "0", "tensors": {}, "report": report})


case("report-vectors-p-null",
     {"run/scale-personas/psi.json": psi_json(),
      "run/vectors/vectors.json": vectors_json([{**VECTORS_CHANCE, "random": {**VECTORS_CHANCE["random"], "p": None}}])},
     REPORT, ["vectors.json", "chance[0].random.p", "null"])
case("report-vectors-p-above-one",
     {"run/scale-personas/psi.json": psi_json(),
      "run/vectors/vectors.json": vectors_json([{**VECTORS_CHANCE, "random": {**VECTORS_CHANCE["random"], "p": 1.5}}])},
     REPORT, ["vectors.json", "chance[0].random.p is 1.5, outside [0, 1]"])
case("valid-report-vectors", {"run/scale-personas/psi.json": psi_json(), "run/vectors/vectors.json": vectors_json([VECTORS_CHANCE])}, REPORT, [], exit=0)
case("report-probes-accuracy-null", {"run/probes.json": probes_json(None)},
     REPORT, ["probes.json", "report.summary[0].per_layer.balanced_accuracy", "null"])
case("report-probes-accuracy-above-one", {"run/probes.json": probes_json(1.25)},
     REPORT, ["probes.json", "report.summary[0].per_layer.balanced_accuracy is 1.25, outside [0, 1]"])
case("valid-report-probes", {"run/probes.json": probes_json(0.6)}, REPORT, [], exit=0)


# ---------------------------------------------------------------- positive controls
# The valid input each family above breaks, accepted: a malformed case fails for its defect,
# not for something the generator got wrong (and the fuzz targets start from these).
good_tok = tok_gguf(lambda g: g.strings("tokenizer.ggml.tokens", TOKENS).strings("tokenizer.ggml.merges", ["a b"]).string(
    "tokenizer.chat_template", "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"))
case("valid-gguf-sentencepiece", {"tok.gguf": gemma_gguf().bytes()}, ["inspect", "{case}/tok.gguf", "--save-tokenizer", "{out}/tokenizer.json"], [], exit=0)
case("valid-gguf", {"model.gguf": good_tok.bytes()}, ["inspect", "{case}/model.gguf", "--save-tokenizer", "{out}/tokenizer.json"], [], exit=0)
case("valid-safetensors", {"config.json": json.dumps(CONFIG), "model.safetensors": safetensors()}, RUN, [], exit=0)
case("valid-election", bundle(election()), AUDIT, [], exit=0)
case("valid-cells", {"ref.jsonl": REF, "pred.jsonl": cell()}, ["compare", "--reference", "{case}/ref.jsonl", "--predicted", "{case}/pred.jsonl"], [], exit=0)


# ---------------------------------------------------------------- numeric flags (clap: exit 2)
def flag_case(name, args, flag):
    case(name, {}, args, [flag], exit=2)


flag_case("flag-compare-bootstrap-zero", ["compare", "--predicted", "x.jsonl", "--bootstrap", "0"], "--bootstrap")
flag_case("flag-report-bootstrap-zero", ["report", "x", "--bootstrap", "0"], "--bootstrap")
flag_case("flag-extract-batch-size-zero", ["extract", "m.gguf", "--batch-size", "0"], "--batch-size")
flag_case("flag-extract-shard-size-zero", ["extract", "m.gguf", "--shard-size", "0"], "--shard-size")
flag_case("flag-scale-shard-size-zero", ["scale", "m.gguf", "--shard-size", "0"], "--shard-size")
flag_case("flag-scale-batch-size-zero", ["scale", "m.gguf", "--batch-size", "0"], "--batch-size")
flag_case("flag-run-with-cache-batch-size-zero", ["run-with-cache", "m.gguf", "--batch-size", "0"], "--batch-size")
flag_case("flag-eval-batch-size-zero", ["eval", "m.gguf", "--batch-size", "0"], "--batch-size")
flag_case("flag-eval-n-not-a-number", ["eval", "m.gguf", "--n", "ten"], "--n")
flag_case("flag-simulate-level-above-one", ["simulate", "m.gguf", "--survey", "s", "--level", "1.5"], "--level")
flag_case("flag-simulate-kl-smoothing-negative", ["simulate", "m.gguf", "--survey", "s", "--kl-smoothing=-1"], "--kl-smoothing")
flag_case("flag-compare-level-zero", ["compare", "--predicted", "x.jsonl", "--level", "0"], "--level")
flag_case("flag-compare-bootstrap-negative", ["compare", "--predicted", "x.jsonl", "--bootstrap=-5"], "--bootstrap")


if __name__ == "__main__":
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    with open(os.path.join(CORPUS, "cases.json"), "w") as f:
        json.dump(CASES, f, indent=1, ensure_ascii=False)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(CORPUS) for n in ns)
    print(f"{len(CASES)} cases, {size / 1024:.0f} KiB in {os.path.relpath(CORPUS, ROOT)}")
