#!/usr/bin/env python3
"""Runs every shell and Python code block of README.md, in order, as written, in a fresh clone.

    python3 scripts/readme_examples.py            # what scripts/test.sh runs (sliced, below)
    python3 scripts/readme_examples.py --full     # every command as written, and
                                                  # `bash scripts/demo.sh` twice (manual)
    python3 scripts/readme_examples.py --full --demo-only   # only demo.sh, twice
    python3 scripts/readme_examples.py --list     # the blocks and what happens to each

The clone is `git clone` of this checkout's committed HEAD into a temporary directory; all
blocks run in one bash session there (so `M=...` in one block holds in the next), Python
blocks through `python3` in that session. What the script supplies, and says so when it does:

* `probe` on the PATH: the binary of this checkout's build (`$CARGO_TARGET_DIR` or `target/`),
  standing in for `cargo install --path crates/probe-cli`;
* `models/`: the embedded default model and Gemma 3 270M, linked from this checkout when
  present (else the demo's `scripts/setup.sh` fetches them); `../shared`: linked beside the clone when present;
* offline, `probe data fetch wahl-o-mat YEAR NAME` is replaced by a copy of
  `../shared/data/wahl-o-mat/YEAR-NAME` (the fetch needs the internet);
* Python blocks run where `numpy` and `safetensors` import (else in a venv under
  `target/readme-venv`, made once with pip).

Commands that repeat what a test already runs at full size (`SLICES` below: the real 2025
election through train → vectors → scale, and the OpinionQA / vote evaluations) run, without
`--full`, on a smaller slice: the README's own command with a documented flag narrowed (one
prompt template and one layer, one prompt variant, two questions by log-p and sampling, three
personas). This
checks the example for drift — it must still parse, run and feed the next command — without
re-timing work the tests do at size (`tests/cli_train.rs`, `tests/cli_latent.rs`,
`tests/cli_eval.rs`).
A slice whose pattern no longer matches the README fails the run: the example changed, so the
slice must be looked at again. `--full` runs every command exactly as written.

A block right after `<!-- readme-examples: skip (reason) -->` is not run (a SLURM array, a CUDA
build). Without `--full`, `bash scripts/demo.sh` (a cold release build of the clone: the
demo's study itself is tests/cli_report.rs) and `bash scripts/test.sh` (the suite that runs
this) are not run either. Exit status: 0 when every block that runs succeeds.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_MARK = re.compile(r"<!--\s*readme-examples:\s*skip\s*\((.*?)\)\s*-->")
FENCE = re.compile(r"^```(\w+)?\s*$")


# (the command it applies to, the edits that narrow it: (pattern, replacement, why)); the
# pattern of every edit must match the README's command, so a changed example is noticed.
SLICES = [
    (r"^probe train \$M --election \.\./shared/data/wahl-o-mat/2025-deutschland$",
     [(r"$", " --templates de-quiz --layers 22",
       "one template and one layer of the real election (tests/cli_train.rs trains every "
       "shared election so)")]),
    (r"^probe scale \$M --probes probes/\S+ .*--variants ",
     [(r"--variants \S+", "--variants de-stimme",
       "one prompt variant of the five (tests/cli_latent.rs scales 40 personas × 5 variants)")]),
    (r"^probe eval \$M --opinionqa ",
     [(r"--limit 10\b", "--limit 2 --methods logp,sample",
       "two questions of ten, the two methods that need no generation, every steering; "
       "sequence and verbalize generate in the coin example next and in tests/cli_eval.rs")]),
    (r"^probe eval \$M --vote ",
     [(r"--persona-sample 12\b", "--persona-sample 3",
       "three personas of twelve (tests/cli_eval.rs asks the demo election's voting "
       "question of three)")]),
]


def logical_lines(code: str):
    """The block's lines with backslash continuations joined (one command per entry)."""
    out, pending = [], ""
    for text in code.splitlines():
        if text.rstrip().endswith("\\") and "#" not in text:
            pending += text.strip()[:-1].rstrip() + " "
            continue
        out.append(pending + text.strip() if pending else text)
        pending = ""
    if pending:
        out.append(pending)
    return out


def slice_command(command: str):
    """(the sliced command, the reasons) when a slice applies, else None. A slice whose command
    matches but one of whose edits does not is drift: SystemExit names it."""
    for pattern, edits in SLICES:
        if not re.search(pattern, command):
            continue
        reasons = []
        for edit, replacement, why in edits:
            if not re.search(edit, command):
                raise SystemExit(f"readme: the slice `{edit}` no longer matches the README's "
                                 f"`{command}`: the example changed; update SLICES")
            command = re.sub(edit, replacement, command, count=1)
            reasons.append(why)
        return command, reasons
    return None


def blocks(readme: Path):
    """(line, language, code, skip reason or None) of every fenced block."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = (m.group(1) or ""), i + 1
        j = start
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        before = "\n".join(lines[max(0, i - 2):i])
        skip = SKIP_MARK.search(before)
        out.append((start, lang, "\n".join(lines[start:j]), skip.group(1) if skip else None))
        i = j + 1
    return out


def online() -> bool:
    try:
        return subprocess.run(
            ["curl", "-sfI", "--max-time", "5", "https://raw.githubusercontent.com"],
            capture_output=True,
        ).returncode == 0
    except FileNotFoundError:
        return False


def python_for_blocks():
    """A Python with numpy and safetensors, or None (then Python blocks are skipped, said)."""
    probe = "import numpy, safetensors"
    if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0:
        return sys.executable
    venv = target_dir() / "readme-venv"
    py = venv / "bin" / "python3"
    if not py.exists():
        print(f"readme: making {venv} with numpy and safetensors (once)", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)]).returncode == 0 and \
            subprocess.run([str(py), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "numpy", "safetensors"]).returncode == 0
        if not made:
            shutil.rmtree(venv, ignore_errors=True)
            return None
    return str(py)


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="also run scripts/demo.sh (twice)")
    ap.add_argument("--demo-only", action="store_true",
                    help="with --full: only the first block's demo.sh runs (twice)")
    ap.add_argument("--list", action="store_true", help="list the blocks and exit")
    ap.add_argument("--keep", action="store_true", help="keep the clone")
    args = ap.parse_args()

    net = online() if not args.list else True
    standins = {}
    if not net:
        standins[r"^probe data fetch wahl-o-mat (\d+) ([\w-]+)(.*)$"] = (
            r"mkdir -p data/wahl-o-mat && cp -r ../shared/data/wahl-o-mat/\1-\2 data/wahl-o-mat/"
            r"  # readme-examples: offline, a copy stands in for the fetch"
        )
    line_skips = {"bash scripts/test.sh": "the suite that runs this check"}
    if not args.full:
        line_skips["bash scripts/demo.sh"] = (
            "a cold release build of the clone; its study is tests/cli_report.rs (--full runs it)")

    script = ["set -euo pipefail"]
    used_slices = set()
    py = None
    have_shared = (ROOT.parent / "shared").is_dir()
    plan = []
    for line, lang, code, skip in blocks(ROOT / "README.md"):
        if lang not in ("bash", "sh", "python"):
            continue
        if skip:
            plan.append(f"README:{line} {lang}: skipped ({skip})")
            continue
        if args.demo_only and "scripts/demo.sh" not in code:
            plan.append(f"README:{line} {lang}: skipped (--demo-only)")
            continue
        if "../shared" in code and not have_shared:
            plan.append(f"README:{line} {lang}: skipped (reads ../shared, absent here)")
            continue
        if lang == "python":
            py = py or ("python3" if args.list else python_for_blocks())
            if py is None:
                plan.append(f"README:{line} python: skipped (no numpy + safetensors, and pip "
                            "could not install them)")
                continue
        plan.append(f"README:{line} {lang}: run")
        script.append(f"echo \"== README.md line {line} (at ${{SECONDS}} s) ==\" >&2")
        if lang == "python":
            script.append(f"{py} - <<'README_PYTHON_BLOCK'\n{code}\nREADME_PYTHON_BLOCK")
            continue
        for text in logical_lines(code):
            command = text.split("#", 1)[0].strip()
            sliced = None if args.full else slice_command(command)
            if sliced:
                used_slices.add(next(p for p, _ in SLICES if re.search(p, command)))
                plan.append(f"  slice: `{sliced[0]}` ({'; '.join(sliced[1])})")
                script.append(f"echo '   (slice: {sliced[0]})' >&2")
                text = sliced[0]
            if command in line_skips:
                plan.append(f"  not run: `{command}` ({line_skips[command]})")
                script.append(f"echo '   (not run: {command}: {line_skips[command]})' >&2")
                continue
            if command == "bash scripts/demo.sh" and args.full:
                # as written, then with another target directory (the two ways)
                script.append(text)
                script.append("CARGO_TARGET_DIR=$PWD/../other-target bash scripts/demo.sh")
                continue
            for pattern, replacement in standins.items():
                if re.match(pattern, command):
                    plan.append(f"  stand-in: `{command}` (offline)")
                    text = re.sub(pattern, replacement, command)
            script.append(text)
    unused = [p for p, _ in SLICES if p not in used_slices]
    if unused and not args.full and not args.demo_only:
        print("readme: slices that match no README command (the example changed or moved; "
              "update SLICES): " + ", ".join(unused), file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(plan))
        return 0

    binary = target_dir() / "release" / "probe"
    if not binary.is_file():
        print(f"readme: {binary} is missing: build first (cargo build --release -p probe-cli)",
              file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="readme-examples-"))
    clone = work / "probe"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    bin_dir = work / "bin"
    bin_dir.mkdir()
    (bin_dir / "probe").symlink_to(binary)
    # the models scripts/setup.sh fetches (the demo, which the README runs first, calls it)
    for name in ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]:
        model = ROOT / "models" / name
        if model.is_file():
            (clone / "models" / model.name).symlink_to(model)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (work / "shared").symlink_to(shared)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    env.pop("CARGO_TARGET_DIR", None)  # the clone's demo.sh builds as a fresh clone would
    print(f"readme: {len([p for p in plan if p.endswith(': run')])} blocks in {clone}, "
          f"probe = {binary}{'' if net else ', offline'}", flush=True)
    for p in plan:
        print("  " + p, flush=True)
    t = time.time()
    run = subprocess.run(["bash", "-c", "\n".join(script)], cwd=clone, env=env)
    took = time.time() - t
    if run.returncode == 0:
        print(f"readme: every block ran ({took:.0f} s)")
    else:
        print(f"readme: a block failed (exit {run.returncode}) after {took:.0f} s; the clone is "
              f"kept in {clone}", file=sys.stderr)
    if run.returncode == 0 and not args.keep:
        shutil.rmtree(work)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
