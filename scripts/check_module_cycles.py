#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a cycle (a ↔ b, or a → b → c → a).

    python3 scripts/check_module_cycles.py [crates/]

Reads every `crates/<crate>/src/**/*.rs` (and `fuzz/`'s none: its own workspace), maps files to
module paths (`lib.rs` the root, `a.rs` or `a/mod.rs` `a`, `a/b.rs` `a::b`), and takes each
`crate::…` and `super::…` path as an edge to the deepest module it names. A module and its own
ancestors or descendants are one unit of the tree (a parent declares its children, children
read their parent's items), so edges between them do not count. Every other edge is lifted to
the two children of the modules' lowest common ancestor that contain its ends
(`a::x::y → a::z` counts as `a::x → a::z`): a cycle through a descendant is a cycle of the
siblings that hold it (`blocks → blocks::tiles → fused::gemm512 → blocks`). Any cycle is
reported with the lines that make it, and the exit status is 1.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH = re.compile(r"\b(crate|super)::((?:\{[^;]*?\}|[\w:*]+))", re.S)


def module_of(src: Path, file: Path) -> tuple:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def expand(body: str) -> list:
    """`a::{b, c::d}` → [['a','b'], ['a','c','d']] (top-level commas only)."""
    body = body.strip()
    if body.startswith("{") and body.endswith("}"):
        inner, depth, item, items = body[1:-1], 0, "", []
        for ch in inner:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(item)
                item = ""
            else:
                item += ch
        items.append(item)
        out = []
        for it in items:
            out.extend(expand(it))
        return out
    head, sep, rest = body.partition("::{")
    if sep:
        return [head.split("::") + p for p in expand("{" + rest)]
    return [[p for p in body.split("::") if p]]


def related(a: tuple, b: tuple) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def lift(a: tuple, b: tuple) -> tuple:
    """The children of a's and b's lowest common ancestor that hold a and b."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[: n + 1], b[: n + 1]


def cycles_in(src: Path) -> list:
    files = {module_of(src, f): f for f in src.rglob("*.rs")}
    modules = set(files)
    edges = {m: {} for m in modules}
    for m, f in files.items():
        text = f.read_text(encoding="utf-8")
        for match in PATH.finditer(text):
            kind, body = match.group(1), match.group(2)
            base = () if kind == "crate" else m[:-1]
            line = text.count("\n", 0, match.start()) + 1
            for path in expand(body):
                full = base + tuple(p.strip() for p in path if p.strip() not in ("", "*", "self"))
                target = max((full[:k] for k in range(len(full), -1, -1) if full[:k] in modules),
                             key=len, default=())
                if not related(m, target):
                    shown = f.relative_to(ROOT) if f.is_relative_to(ROOT) else f
                    a, b = lift(m, target)
                    edges.setdefault(a, {})
                    edges.setdefault(b, {})
                    edges[a].setdefault(b, f"{shown}:{line}")
    # strongly connected components (Tarjan)
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [(comp, edges) for comp in out]


def self_test() -> None:
    """The check finds a planted cycle (a ↔ b through a `use` group), ignores parent ↔ child,
    and finds a cycle that runs through a child (`blocks` → its child `tiles` → `fused::gemm512`
    → `blocks`: the one probe-lm's `layers` had)."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "demo" / "src"
        (src / "p").mkdir(parents=True)
        (src / "lib.rs").write_text("mod a;\nmod b;\nmod p;\n")
        (src / "a.rs").write_text("use crate::{b::Thing, p};\n")
        (src / "b.rs").write_text("pub struct Thing;\nfn f() { crate::a::g(); }\n")
        (src / "p" / "mod.rs").write_text("mod c;\npub use c::X;\n")
        (src / "p" / "c.rs").write_text("use super::*;\npub struct X;\n")
        found = cycles_in(src)
        assert [sorted(c) for c, _ in found] == [[("a",), ("b",)]], found
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lm" / "src"
        (src / "layers" / "blocks").mkdir(parents=True)
        (src / "layers" / "fused").mkdir(parents=True)
        (src / "lib.rs").write_text("mod layers;\n")
        (src / "layers" / "mod.rs").write_text("pub mod blocks;\npub mod fused;\n")
        (src / "layers" / "blocks" / "mod.rs").write_text("mod tiles;\npub struct BlockMatrix;\n")
        (src / "layers" / "blocks" / "tiles.rs").write_text("use crate::layers::fused::gemm512;\n")
        (src / "layers" / "fused" / "mod.rs").write_text("pub mod gemm512;\n")
        (src / "layers" / "fused" / "gemm512.rs").write_text("use crate::layers::blocks::BlockMatrix;\n")
        found = cycles_in(src)
        want = [("layers", "blocks"), ("layers", "fused")]
        assert [sorted(c) for c, _ in found] == [want], found


def main() -> int:
    self_test()
    crates = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "crates"
    found = 0
    for src in sorted(crates.glob("*/src")):
        for comp, edges in cycles_in(src):
            found += 1
            name = lambda m: "::".join(m) or "(crate root)"
            print(f"{src.parent.name}: import cycle among {', '.join(sorted(map(name, comp)))}")
            for a in sorted(comp):
                for b, where in sorted(edges[a].items()):
                    if b in comp:
                        print(f"  {name(a)} → {name(b)}  ({where})")
    if found:
        return 1
    print(f"module imports: no cycles in {len(list(crates.glob('*/src')))} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
