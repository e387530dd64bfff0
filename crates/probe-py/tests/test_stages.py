"""The stages from Python equal the CLI's: examples/quickstart.py prints the ψ of
`probe study examples/demo.toml`, and its probes, vectors and ψ files equal the study's."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import probe


@pytest.fixture(scope="module")
def study(cli, root, gguf, tmp_path_factory):
    """The demo study up to ψ, by the CLI, in a fresh output directory."""
    out = tmp_path_factory.mktemp("study")
    text = (root / "examples" / "demo.toml").read_text()
    text = text.replace('out = "out/study-demo"', f'out = "{out}"')
    experiment = out / "demo.toml"
    experiment.write_text(text)
    cli("study", experiment, "--stage", "scale")
    run = out / "smollm2-135m-instruct" / gguf.stem / "run"
    assert (run / "scale-personas" / "psi.json").exists()
    return run


@pytest.fixture(scope="module")
def quickstart(root, tmp_path_factory):
    """examples/quickstart.py's run folder and what it printed. `scripts/test-python.sh` has
    just run it with this wheel in a fresh venv (its README install path) and names that
    output in $PROBE_QUICKSTART (with `stdout.txt`): read, not run a second time."""
    given = os.environ.get("PROBE_QUICKSTART")
    if given and (pathlib.Path(given) / "stdout.txt").is_file():
        out = pathlib.Path(given)
        return out / "SmolLM2-135M-Instruct.Q4_1" / "run", (out / "stdout.txt").read_text()
    out = tmp_path_factory.mktemp("quickstart")
    done = subprocess.run(
        [sys.executable, "examples/quickstart.py", "--out", str(out)],
        cwd=root, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    return out / "SmolLM2-135M-Instruct.Q4_1" / "run", done.stdout


def test_quickstart_prints_the_studys_psi(study, quickstart):
    _, stdout = quickstart
    psi = json.loads((study / "scale-personas" / "psi.json").read_text())["all"]
    line = next(l for l in stdout.splitlines() if l.startswith("ψ (all"))
    printed = dict(re.findall(r"(\S+) (\d\.\d{3})", line.split(":", 1)[1]))
    assert printed == {p: f"{x:.3f}" for p, x in psi["psi"].items()}
    assert f"all {psi['rows']} rows" in line


def test_python_stages_write_what_the_cli_writes(study, quickstart):
    run, _ = quickstart
    ours = json.loads((run / "probes.json").read_text())["report"]
    theirs = json.loads((study / "probes.json").read_text())["report"]
    for key in ["parties", "hooks", "summary", "per_layer", "shared", "null"]:
        assert ours[key] == theirs[key], key
    ours = json.loads((run / "vectors" / "vectors.json").read_text())
    theirs = json.loads((study / "vectors" / "vectors.json").read_text())
    for key in ["parties", "layers", "vectors", "chance", "iqr_thresholds"]:
        assert ours[key] == theirs[key], key
    ours = json.loads((run / "scale-personas" / "psi.json").read_text())
    theirs = json.loads((study / "scale-personas" / "psi.json").read_text())
    for key in ["all", "by_group", "by_variant", "negative_factors", "undefined_rows"]:
        assert ours[key] == theirs[key], key
    assert (run / "scale-personas" / "rows.csv").read_text() == (
        study / "scale-personas" / "rows.csv"
    ).read_text()


def test_stage_errors_are_the_clis(cli, gguf, tmp_path):
    done = cli("vectors", gguf, "--probes", tmp_path / "none", check=False)
    with pytest.raises(probe.ProbeError) as err:
        probe.vectors(str(gguf), str(tmp_path / "none"))
    assert done.stderr.strip() == f"error: {err.value}"


def test_python_study_reuses_what_the_cli_study_finished(study, root):
    experiment = study.parents[2] / "demo.toml"
    done = probe.study(str(experiment), stage="scale")
    assert done["ran"] == 0 and done["reused"] == 4, done
    with pytest.raises(ValueError, match="unknown stage"):
        probe.study(str(experiment), stage="everything")


def test_eval_compare_and_report_equal_the_clis(cli, gguf, tmp_path, quickstart):
    common = ["--questions", "data/eval/coin.jsonl", "--methods", "logp,sample", "--steering", "none", "--n", "5"]
    cli("eval", gguf, *common, "--out", tmp_path / "cli-eval")
    ours = probe.eval(
        str(gguf), questions="data/eval/coin.jsonl", methods=["logp", "sample"], steering=["none"],
        n=5, out=str(tmp_path / "py-eval"),
    )
    assert ours["summary"]["complete"]
    theirs = (tmp_path / "cli-eval" / "eval.cells.jsonl").read_text().splitlines()
    assert [json.dumps(c, sort_keys=True) for c in ours["cells"]] == [
        json.dumps(json.loads(l), sort_keys=True) for l in theirs
    ]
    assert ours["scores"] == json.loads((tmp_path / "cli-eval" / "tv.json").read_text())

    cells = str(tmp_path / "py-eval" / "eval.cells.jsonl")
    cli("compare", "--predicted", cells, "--by", "method", "--baseline", "uniform", "--out", tmp_path / "cli.json")
    rows = probe.compare([cells], by=["method"], baseline=["uniform"])
    written = json.loads((tmp_path / "cli.json").read_text())
    assert written["format_version"] == 1 and rows == written["rows"]
    assert {r["group"]["method"] for r in rows} >= {"logp", "sample"}

    run, _ = quickstart
    report = probe.report([str(run)], survey="data/demo/survey.csv", survey_weight="weight",
                          formats=["svg"], out=str(tmp_path / "report"))
    assert (tmp_path / "report" / "report.html").is_file() and report["runs"] == 1
    with pytest.raises(ValueError, match="question set"):
        probe.eval(str(gguf))


def test_any_command_line_runs_in_process(capfd, gguf):
    probe.cli(["inspect", str(gguf)])
    assert "llama" in capfd.readouterr().out.lower()
    with pytest.raises(probe.ProbeError):
        probe.cli(["inspect", "/nonexistent.gguf"])


def test_ctrl_c_stops_training_between_fits(gguf, quickstart, root, tmp_path):
    run, _ = quickstart
    cache = run.parents[1] / "cache"  # extracted by the quickstart: this call only trains
    script = textwrap.dedent(f"""
        import signal, time, probe
        # A suite started in the background inherits SIGINT ignored, and Python then installs
        # no KeyboardInterrupt handler: install it, as an interactive session has it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        probe.set_progress(False)
        print("ready", flush=True)
        start = time.time()
        try:
            probe.train({str(gguf)!r}, "data/demo/wahl-o-mat/2099-demowahl",
                        parties=["SA", "ÖU", "FB", "LM", "KBP", "HL"], templates=["de-quiz", "en-short"],
                        folds=3, cache={str(cache)!r}, probes_dir={str(tmp_path)!r}, null_seeds=500)
            print("finished", flush=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=root)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(3)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # not left running on the CI machine's cores
        raise
    assert out.strip() == "interrupted", out
    assert time.time() - sent < 15, "training stopped within a few fits"
    assert not any(tmp_path.rglob("probes.json")), "an interrupted run saves nothing"


def test_stage_results_have_flat_records(gguf, quickstart, tmp_path):
    run, _ = quickstart
    trained = probe.train(
        str(gguf), "data/demo/wahl-o-mat/2099-demowahl", parties=["SA", "ÖU", "FB", "LM", "KBP", "HL"],
        templates=["de-quiz", "en-short"], folds=3, cache=str(run.parents[1] / "cache"),
        probes_dir=str(tmp_path), null_seeds=0,
    )
    report = trained["report"]
    assert len(trained["scores"]) == len(report["per_layer"]) + len(report["shared"])
    first = trained["scores"][0]
    assert first["balanced_accuracy"] == report["per_layer"][0]["mean"]["balanced_accuracy"]
    # scale again on the quickstart's vectors: the coefficients are reused
    scaled = probe.scale(
        str(gguf), str(run / "vectors"), variants=["de-stimme", "de-interview", "de-umfrage", "en-vote", "en-survey"],
        where=["age=45-54", "education=abitur", "income=middle", "employment=employed", "year=2021"],
        out=str(run / "scale-personas"),
    )
    lines = (run / "scale-personas" / "psi.csv").read_text().splitlines()[1:]
    assert len(scaled["table"]) == len(lines)
    for record, line in zip(scaled["table"], lines):
        variant, attribute, value, party, psi, rows, weight = line.split(",")
        assert (record["variant"], record["attribute"], record["value"], record["party"]) == (variant, attribute, value, party)
        assert f"{record['psi']:.6f}" == psi and record["rows"] == int(rows)
