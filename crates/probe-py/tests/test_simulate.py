"""`probe simulate`'s scores recomputed independently with numpy and scipy from the table it
wrote (respondents.jsonl) and the survey's own CSV: the marginals' KL and TV (expected and per
temperature), the twins' weighted accuracy and RMSE, and the item x item Pearson matrices with
their distances. The ANES 1996 extract (fetched by scripts/setup.sh) has five valued items plus
the binary vote, so the correlation structure is exercised; skipped with a notice when absent."""

import csv
import json

import numpy as np
import pytest
from scipy import stats

ANES = "data/surveys/anes96"


def codebook_items(root):
    import tomllib

    with open(root / ANES / "codebook.toml", "rb") as f:
        book = tomllib.load(f)
    return book, book["item"]


def smoothed_kl(p, q, eps):
    p = (np.asarray(p) + eps) / (1 + eps * len(p))
    q = (np.asarray(q) + eps) / (1 + eps * len(q))
    return stats.entropy(p, q)


def test_simulate_scores_equal_numpy_and_scipy(cli, gguf, root, tmp_path):
    if not (root / ANES / "anes96.csv").exists():
        pytest.skip(f"{ANES}/anes96.csv absent: run scripts/setup.sh")
    try:
        book, items = codebook_items(root)
    except ModuleNotFoundError:
        pytest.skip("tomllib needs Python 3.11")
    out = tmp_path / "sim"
    cli("simulate", gguf, "--survey", ANES, "--limit", "40", "--temperature", "0.5,1",
        "--bootstrap", "20", "--out", out)
    scores = json.loads((out / "scores.json").read_text())
    records = [json.loads(l) for l in (out / "respondents.jsonl").read_text().splitlines()]
    # the extract has no id column (a respondent's id is its row number) and quotes its header
    with open(root / ANES / "anes96.csv") as f:
        data = [{k.strip("'"): v for k, v in row.items()}
                for row in csv.DictReader(f, delimiter="\t")]
    assert len(data) == 944
    codes = [[o["code"] for o in item["options"]] for item in items]
    real = np.array([[codes[i].index(str(int(float(data[r["index"]][item["column"]]))))
                      for i, item in enumerate(items)] for r in records])
    assert real.tolist() == [[it["real"] for it in r["items"]] for r in records]
    weights = np.ones(len(records))  # the extract is unweighted
    kinds = [item["kind"] for item in items]

    def values(i):
        if kinds[i] == "numeric":
            return np.array([float(c) for c in codes[i]])
        if kinds[i] == "ordinal":
            return np.arange(len(codes[i]), dtype=float)
        return None

    part = scores["splits"][0]
    assert part["split"] == "all" and part["respondents"] == 40
    eps = 1e-4

    def check_marginals(fit, simulated):
        kls, tvs = [], []
        for i in range(len(items)):
            k = len(codes[i])
            a = np.bincount(real[:, i], weights=weights, minlength=k) / weights.sum()
            b = np.average(np.stack([s[i] for s in simulated]), axis=0, weights=weights)
            np.testing.assert_allclose(fit["items"][i]["real"], a, atol=1e-12)
            np.testing.assert_allclose(fit["items"][i]["simulated"], b, atol=1e-12)
            kls.append(smoothed_kl(a, b, eps))
            tvs.append(0.5 * np.abs(a - b).sum())
            np.testing.assert_allclose(fit["items"][i]["kl"]["value"], kls[-1], rtol=1e-9)
            np.testing.assert_allclose(fit["items"][i]["tv"]["value"], tvs[-1], rtol=1e-9)
        np.testing.assert_allclose(fit["mean_kl"]["value"], np.mean(kls), rtol=1e-9)
        np.testing.assert_allclose(fit["mean_tv"]["value"], np.mean(tvs), rtol=1e-9)

    check_marginals(part["expected"], [[np.array(it["p"]) for it in r["items"]] for r in records])
    structures = 0
    for t, temp in enumerate(part["temperatures"]):
        drawn = np.array([[it["sampled"][t] for it in r["items"]] for r in records])
        onehot = [[np.eye(len(codes[i]))[drawn[r, i]] for i in range(len(items))]
                  for r in range(len(records))]
        check_marginals(temp["marginals"], onehot)
        acc, rmse = [], []
        for i in range(len(items)):
            acc.append(np.average(real[:, i] == drawn[:, i], weights=weights))
            got = temp["agreement"]["items"][i]
            np.testing.assert_allclose(got["accuracy"]["value"], acc[-1], rtol=1e-12)
            v = values(i)
            if v is None:
                assert got["rmse"] is None
            else:
                rmse.append(np.sqrt(np.average((v[real[:, i]] - v[drawn[:, i]]) ** 2,
                                               weights=weights)))
                np.testing.assert_allclose(got["rmse"]["value"], rmse[-1], rtol=1e-12)
        np.testing.assert_allclose(temp["agreement"]["mean_accuracy"]["value"], np.mean(acc))
        np.testing.assert_allclose(temp["agreement"]["mean_rmse"]["value"], np.mean(rmse))
        # every item has values or two options here: all six enter the correlation matrices
        structure = temp["structure"]
        if structure is None:  # a constant item among 40 draws: no correlation
            continue
        assert structure["items"] == list(range(len(items)))
        scale = [values(i) if values(i) is not None else np.arange(2.0) for i in range(len(items))]
        r_real = np.corrcoef(np.stack([scale[i][real[:, i]] for i in range(len(items))]))
        r_sim = np.corrcoef(np.stack([scale[i][drawn[:, i]] for i in range(len(items))]))
        n = len(items)
        np.testing.assert_allclose(np.array(structure["real"]).reshape(n, n), r_real, atol=1e-12)
        np.testing.assert_allclose(np.array(structure["simulated"]).reshape(n, n), r_sim,
                                   atol=1e-12)
        structures += 1
        upper = np.triu_indices(n, 1)
        diff = r_real[upper] - r_sim[upper]
        np.testing.assert_allclose(structure["mean_abs_diff"]["value"], np.abs(diff).mean())
        np.testing.assert_allclose(structure["frobenius"]["value"],
                                   np.linalg.norm(r_real - r_sim))
        np.testing.assert_allclose(structure["corr_of_corr"]["value"],
                                   stats.pearsonr(r_real[upper], r_sim[upper])[0])
    assert structures >= 1, "no temperature had a correlation structure to check"
    check_baselines(book, items, codes, data, records, real, scores, out)


def check_baselines(book, items, codes, data, records, real, scores, out):
    """The baselines beside the model, recomputed: the training split's marginal with numpy,
    the multinomial logistic regression with scikit-learn (C = 1, lbfgs, the four ANES
    demographics standardized), each one's expected marginal over the scored respondents; the
    paired differences name both."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ModuleNotFoundError:
        pytest.skip("scikit-learn is not installed: the baselines' reference is skipped")
    split = json.loads((out / "split.json").read_text())
    # the extract has no id column: a respondent's id is its 1-based row number
    assert all(r["key"] == str(r["index"] + 1) for r in records)
    train = [int(i) - 1 for i in split["train"]]
    columns = [d["column"] for d in book["demographic"]]

    def answer(row, i):
        return codes[i].index(str(int(float(data[row][items[i]["column"]]))))

    names = [b["name"] for b in scores["baselines"]]
    assert names == ["baseline: training marginal", "baseline: logistic regression"], names
    marginal, logistic = (b["splits"][0]["expected"] for b in scores["baselines"])
    x_train = np.array([[float(data[r][c]) for c in columns] for r in train])
    mean, sd = x_train.mean(axis=0), x_train.std(axis=0)
    x_scored = np.array([[float(data[r["index"]][c]) for c in columns] for r in records])
    for i in range(len(items)):
        y = np.array([answer(r, i) for r in train])
        want = np.bincount(y, minlength=len(codes[i])) / len(y)
        np.testing.assert_allclose(marginal["items"][i]["simulated"], want, atol=1e-12)
        np.testing.assert_allclose(marginal["items"][i]["real"], np.bincount(
            real[:, i], minlength=len(codes[i])) / len(real), atol=1e-12)
        # probe's regression is multinomial for every item: with two classes its penalty
        # ½(|w1|² + |w2|²) at the optimum (w1 = −w2 = w/2) is ¼|w|², scikit-learn's binomial
        # fit with C = 2
        c = 2.0 if len(set(y)) == 2 else 1.0
        fit = LogisticRegression(C=c, max_iter=10000, tol=1e-10).fit((x_train - mean) / sd, y)
        proba = np.zeros((len(records), len(codes[i])))
        proba[:, fit.classes_] = fit.predict_proba((x_scored - mean) / sd)
        np.testing.assert_allclose(logistic["items"][i]["simulated"], proba.mean(axis=0),
                                   atol=2e-4)
    versus = {d["versus"] for d in scores["differences"]}
    assert versus == set(names), versus


def test_python_simulate_and_finetune_write_what_the_cli_writes(cli, gguf, tmp_path):
    import probe

    probe.set_progress(False)
    small = ["--survey", "data/demo", "--limit", "4", "--temperature", "0,1", "--bootstrap", "20"]
    cli("simulate", gguf, *small, "--out", tmp_path / "cli-sim")
    got = probe.simulate(str(gguf), "data/demo", limit=4, temperature=[0.0, 1.0], bootstrap=20,
                         out=str(tmp_path / "py-sim"))
    assert got["done"] == got["selected"] == 4
    assert got["scores"] == json.loads((tmp_path / "cli-sim" / "scores.json").read_text())
    assert (tmp_path / "py-sim" / "answers.csv").read_text() == \
        (tmp_path / "cli-sim" / "answers.csv").read_text()

    tune = ["--limit", "4", "--validation-limit", "1", "--max-steps", "2", "--batch-size", "4"]
    cli("finetune", gguf, "--survey", "data/demo", *tune, "--out", tmp_path / "cli-ft")
    got = probe.finetune(str(gguf), "data/demo", limit=4, validation_limit=1, max_steps=2,
                         batch_size=4, out=str(tmp_path / "py-ft"))
    assert got["steps"] == 2 and got["resumed_from"] == 0
    for f in ["adapter_model.safetensors", "adapter_config.json"]:
        assert (tmp_path / "py-ft" / "adapter" / f).read_bytes() == \
            (tmp_path / "cli-ft" / "adapter" / f).read_bytes()
    with pytest.raises(ValueError, match="learning rate"):
        probe.finetune(str(gguf), "data/demo", lr=0.0)
