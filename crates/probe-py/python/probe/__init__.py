"""probe: latent-space interpretability of language models for survey simulation.

    import probe
    m = probe.Model("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    acts = m.run_with_cache(["Wie stimmen Sie ab?"], reduce="last")
    acts["blocks.18.hook_resid_post"].shape      # (1, 576), float32 numpy

Stages (`train`, `vectors`, `scale`, `eval`, `simulate`, `finetune`, `compare`, `report`,
`study`) take the options
of the `probe` command line as keyword arguments and return plain dicts and lists;
`probe.cli([...])` runs any command line with the `probe` executable. See docs/PYTHON.md.
"""

from ._probe import Model, ProbeError, __version__, metrics, set_progress
from ._probe import compare, eval, finetune, report, scale, simulate, study, train, vectors

__all__ = [
    "Model", "ProbeError", "metrics", "set_progress", "train", "vectors", "scale", "eval",
    "simulate", "finetune", "compare", "report", "study", "cli", "__version__",
]


def cli(args, *, check=True):
    """Runs one `probe` command line: `probe.cli(["inspect", "m.gguf"])`.

    The `probe` executable is `$PROBE_BIN`, else the first `probe` on PATH (built by `cargo
    build --release -p probe-cli`; this module holds the library, not the command line). Its
    output goes to this process's stdout and stderr. A failure raises `ProbeError` with the
    exit code, unless `check=False`; returns the exit code.
    """
    import os
    import shutil
    import subprocess

    exe = os.environ.get("PROBE_BIN") or shutil.which("probe")
    if exe is None:
        raise ProbeError(
            "no `probe` executable: set PROBE_BIN or put target/release/probe on PATH"
        )
    code = subprocess.run([exe, *map(str, args)]).returncode
    if check and code != 0:
        raise ProbeError(f"probe {' '.join(map(str, args))}: exit code {code}")
    return code
