"""Loads a `probe extract` cache into numpy: one [rows, dim] array per hook point, the labels
and the CV groups. Needs only `numpy` and `safetensors`.

    python scripts/read_cache.py out/cache/<name>            # prints a summary
    >>> from read_cache import load_cache; X, y, groups, m = load_cache("out/cache/<name>")
"""
import hashlib
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def load_cache(path):
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    n_rows, size = len(manifest["rows"]), manifest["shard_size"]
    n_shards = -(-n_rows // size)
    if manifest.get("format_version") != 2:
        raise SystemExit(f"{path}: cache format {manifest.get('format_version')}, this script reads 2")
    done = {}
    for name in os.listdir(path):
        if name.startswith("progress-") and name.endswith(".json"):
            for r in json.load(open(os.path.join(path, name)))["shards"]:
                done[r["index"]] = r
    missing = [i for i in range(n_shards) if i not in done]
    if missing:
        raise SystemExit(f"{path}: {len(missing)} of {n_shards} shards unfinished; re-run probe extract")
    for i in range(n_shards):
        with open(os.path.join(path, f"shard-{i:05d}.safetensors"), "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != done[i]["sha256"]:
                raise SystemExit(f"{path}: shard {i} differs from what was recorded when it was written")
    shards = [load_file(os.path.join(path, f"shard-{i:05d}.safetensors")) for i in range(n_shards)]
    rows = np.concatenate([s["row"] for s in shards])
    assert (rows == np.arange(n_rows)).all(), "rows out of order"
    X = {h: np.concatenate([s[h] for s in shards]).astype(np.float32) for h in manifest["hooks"]}
    y = np.array([r["label"] for r in manifest["rows"]])
    groups = np.array([r["group"] for r in manifest["rows"]])
    return X, y, groups, manifest


if __name__ == "__main__":
    X, y, groups, m = load_cache(sys.argv[1])
    print(f"{len(y)} rows, labels {m['label_names']}, positions {m['positions']}, dtype {m['dtype']}")
    for h, a in X.items():
        print(f"  {h}: {a.shape} mean {a.mean():.6f} first {a[0, :4]}")
