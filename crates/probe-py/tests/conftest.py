"""Shared fixtures: the repository root, the `probe` binary, the SmolLM2 GGUF and the
independent references in ../shared/reference (skipped with a notice when absent)."""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
SHARED = pathlib.Path(os.environ.get("PROBE_SHARED", ROOT.parent / "shared"))
GGUF = ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

# the stages resolve data paths (data/demo/..., the default data files) against the working
# directory, as the CLI does: run every test from the repository root
os.chdir(ROOT)


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def gguf():
    if not GGUF.exists():
        pytest.skip(f"{GGUF} absent: run scripts/setup.sh")
    return GGUF


@pytest.fixture(scope="session")
def reference():
    ref = SHARED / "reference"
    if not (ref / "smollm2-135m-prompts.json").exists():
        pytest.skip(f"{ref} absent: no transformers reference to compare with")
    return ref


@pytest.fixture(scope="session")
def probe_bin():
    target = ROOT / os.environ.get("CARGO_TARGET_DIR", "target")
    path = pathlib.Path(os.environ.get("PROBE_BIN", target / "release" / "probe")).absolute()
    if not path.exists():
        pytest.skip(f"{path} absent: cargo build --release -p probe-cli")
    return path


@pytest.fixture(scope="session")
def cli(probe_bin):
    """Runs the CLI from the repository root; returns the completed process."""

    def run(*args, check=True):
        done = subprocess.run(
            [str(probe_bin), *map(str, args)], cwd=ROOT, capture_output=True, text=True
        )
        if check and done.returncode != 0:
            raise AssertionError(f"probe {' '.join(map(str, args))}: {done.stderr}")
        return done

    return run


@pytest.fixture(scope="session")
def model(gguf):
    import probe

    probe.set_progress(False)
    return probe.Model(str(gguf))


@pytest.fixture(scope="session")
def model_f32(gguf):
    import probe

    probe.set_progress(False)
    return probe.Model(str(gguf), dtype="f32")
