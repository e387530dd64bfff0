"""probe: latent-space interpretability of language models for survey simulation.

    import probe
    m = probe.Model("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    acts = m.run_with_cache(["Wie stimmen Sie ab?"], reduce="last")
    acts["blocks.18.hook_resid_post"].shape      # (1, 576), float32 numpy

Stages (`train`, `vectors`, `scale`, `eval`, `simulate`, `finetune`, `compare`, `report`,
`study`) take the options
of the `probe` command line as keyword arguments and return plain dicts and lists;
`probe.cli([...])` runs any command line in this process. See docs/PYTHON.md.
"""

from ._probe import Model, ProbeError, __version__, metrics, set_progress
from ._probe import cli, compare, eval, finetune, report, scale, simulate, study, train, vectors

__all__ = [
    "Model", "ProbeError", "metrics", "set_progress", "train", "vectors", "scale", "eval",
    "simulate", "finetune", "compare", "report", "study", "cli", "__version__",
]
