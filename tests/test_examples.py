"""Every example runs offline end to end (tiny models, one or two epochs)."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch

from rawdata import OGB_SMILES, SOLUBILITY, make_esol_raw, make_ogb_raw, make_tu_raw

pytestmark = pytest.mark.usefixtures("single_thread")  # one intra-op thread (tests/conftest.py)

EXAMPLES = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "examples")
TINY = ["--heads", "2"]


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", osp.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("gnn", ["plstm", "gin-virtual"])
def test_ogbg_mol_example(tmp_path, capsys, gnn):
    make_ogb_raw(str(tmp_path), OGB_SMILES, np.linspace(-3, 1, len(OGB_SMILES)))
    result = tmp_path / "result.pt"
    argv = ["--dataset", "ogbg-molesol", "--root", str(tmp_path), "--gnn", gnn, "--epochs", "2", "--emb_dim", "8",
            "--num_layer", "1", "--batch_size", "8", "--drop_ratio", "0", "--filename", str(result)] + TINY
    assert example("ogbg_mol").main(argv) == 0
    scores = torch.load(result, weights_only=True)
    assert set(scores) == {"Val", "Test", "Train", "BestTrain"}
    assert all(np.isfinite(v) and v > 0 for v in scores.values())  # RMSE, OGB's metric for molesol
    assert scores["BestTrain"] <= scores["Train"]
    assert f"Test score: {scores['Test']}" in capsys.readouterr().out


def test_moleculenet_example(tmp_path, capsys):
    make_esol_raw(tmp_path, n=16, invalid_row=False)
    out = tmp_path / "out"
    argv = ["--dataset", "esol", "--root", str(tmp_path), "--models", "plstm", "gin", "--seeds", "0", "1",
            "--epochs", "1", "--hidden", "8", "--layers", "1", "--batch-size", "8", "--out", str(out)] + TINY
    assert example("moleculenet").main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["info"]["split"] == "scaffold"
    assert [row["model"] for row in summary["summary"]] == ["plstm", "gin"]
    assert summary["summary"][0]["seeds"] == 2
    assert "| plstm | 2 |" in capsys.readouterr().out
    assert (out / "curves.png").stat().st_size > 0


def test_tu_benchmark_example(tmp_path, capsys):
    smiles = [s for s in SOLUBILITY.smiles[:30] if s not in ("C", "O")][:20]
    make_tu_raw(str(tmp_path), "MUTAG", smiles, [1 if i % 2 else -1 for i in range(len(smiles))])
    out = tmp_path / "out"
    argv = ["--dataset", "MUTAG", "--root", str(tmp_path), "--models", "gin", "plstm", "--folds", "2",
            "--epochs", "2", "--hidden", "8", "--layers", "1", "--batch-size", "8", "--out", str(out)] + TINY
    assert example("tu_benchmark").main(argv) == 0
    results = json.loads((out / "summary.json").read_text())["results"]
    assert [r["model"] for r in results] == ["gin", "plstm"]
    for r in results:
        curves = np.array(r["curves"])
        assert curves.shape == (2, 2) and ((0 <= curves) & (curves <= 1)).all()
        # The reported accuracy is the fold mean at the epoch with the best mean curve.
        assert r["accuracy"]["mean"] == pytest.approx(curves.mean(0).max())
    assert "| gin |" in capsys.readouterr().out


def test_tu_benchmark_authors_protocol(tmp_path, capsys):
    smiles = [s for s in SOLUBILITY.smiles[:45] if s not in ("C", "O")][:36]
    labels = [1 if i % 3 else -1 for i in range(len(smiles))]
    make_tu_raw(str(tmp_path), "MUTAG", smiles, labels)
    tu = example("tu_benchmark")
    y = torch.tensor([int(v == 1) for v in labels])
    folds = tu.authors_folds(y, 3, 42)
    for fold in folds:
        parts = [fold[name].tolist() for name in ("train", "valid", "test")]
        assert sorted(sum(parts, [])) == list(range(len(y)))  # a partition
        assert len(parts[0]) == int(tu.AUTHORS_TRAIN_FRACTION * (len(parts[0]) + len(parts[1])))
        assert len(parts[1]) == 3 and y[fold["valid"]].sum() == 2  # stratified: the 2:1 class ratio kept
    assert all(torch.equal(a["test"], b["test"]) for a, b in zip(folds, tu.authors_folds(y, 3, 42)))

    out = tmp_path / "out"
    argv = ["--protocol", "authors", "--dataset", "MUTAG", "--root", str(tmp_path), "--models", "plstm", "gin",
            "--folds", "3", "--epochs", "2", "--hidden", "8", "--layers", "1", "--batch-size", "8",
            "--out", str(out)] + TINY
    assert tu.main(argv) == 0
    results = json.loads((out / "summary.json").read_text())["results"]
    assert [r["model"] for r in results] == ["plstm", "gin"]
    for r in results:
        curves = np.array(r["curves"])  # test accuracy after every epoch
        assert curves.shape == (3, 2)
        # Every fold reports its test accuracy at its own best-validation epoch.
        assert r["fold_accuracy"] == [curves[k, epoch - 1] for k, epoch in enumerate(r["best_epoch"])]
        assert r["accuracy"]["mean"] == pytest.approx(np.mean(r["fold_accuracy"]))
    plstm = json.loads((out / "plstm" / "fold0" / "result.json").read_text())
    assert plstm["model_config"]["p_normalize"] == "in" and plstm["model_config"]["pooling"] == "mean"
    assert plstm["model_config"]["hidden_channels"] == 8 and plstm["config"]["warmup_epochs"] == 0
    assert len(plstm["result"]["best"]["valid"]) > 0 and "test" in plstm["result"]["best"]
    assert "authors protocol" in capsys.readouterr().out


def test_add_plstm_to_your_model_example(capsys):
    assert example("add_plstm_to_your_model").main(["--molecules", "24", "--epochs", "2", "--hidden", "8"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2
