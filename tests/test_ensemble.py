"""Ensembles: mean/std against a manual average, the error-spread rank correlation, the seed ensembles of `train`
and `predict` over several checkpoints; all of it on a multi-task set with missing labels and molecule features."""
import csv
import io
import json

import numpy as np
import pytest
import torch

from pyg_plstm.cli import main
from pyg_plstm.train.ensemble import PREDICTIONS_FILE, ensemble, error_rank_correlation, load_test_predictions
from pyg_plstm.train.metrics import Task, evaluate

pytestmark = pytest.mark.usefixtures("single_thread")


def test_ensemble_mean_and_std_equal_a_manual_average():
    rng = np.random.default_rng(0)
    members = [rng.normal(size=(5, 2)) for _ in range(3)]
    mean, std = ensemble(members)
    for i in range(5):
        for t in range(2):
            values = [m[i, t] for m in members]
            average = sum(values) / 3
            assert mean[i, t] == pytest.approx(average)
            assert std[i, t] == pytest.approx((sum((v - average) ** 2 for v in values) / 3) ** 0.5)


def test_error_rank_correlation_by_hand():
    labels = np.array([[0.0], [0.0], [0.0], [0.0]])
    mean = np.array([[0.1], [0.4], [-0.2], [0.3]])  # absolute errors rank 1, 4, 2, 3
    assert error_rank_correlation(labels, mean, np.array([[1.0], [4.0], [2.0], [3.0]])) == pytest.approx(1.0)
    assert error_rank_correlation(labels, mean, np.array([[4.0], [1.0], [3.0], [2.0]])) == pytest.approx(-1.0)
    # One swapped pair of four: 1 - 6 * 2 / (4 * 15).
    assert error_rank_correlation(labels, mean, np.array([[2.0], [4.0], [1.0], [3.0]])) == pytest.approx(0.8)
    # A missing label is left out; a constant spread ranks nothing.
    labels[1, 0] = np.nan
    assert error_rank_correlation(labels, mean, np.array([[1.0], [9.0], [2.0], [3.0]])) == pytest.approx(1.0)
    assert np.isnan(error_rank_correlation(labels, mean, np.ones((4, 1))))


@pytest.fixture(scope="module")
def multitask_runs(tmp_path_factory):
    """gin (with rdkit2d features) and ecfp-svr over two seeds on 40 molecules with two targets, the second
    missing for every third molecule."""
    from conftest import SOLUBILITY_CSV

    tmp = tmp_path_factory.mktemp("ensemble")
    rows = list(csv.DictReader(SOLUBILITY_CSV.open()))[:40]
    with (tmp / "multi.csv").open("w") as f:
        f.write("smiles,logS,twice\n")
        for i, row in enumerate(rows):
            second = "" if i % 3 == 0 else f"{2 * float(row['log_solubility']) + 0.1 * (i % 5):.3f}"
            f.write(f"{row['smiles']},{row['log_solubility']},{second}\n")
    argv = ["train", "--csv", str(tmp / "multi.csv"), "--target-col", "logS", "twice", "--split", "random",
            "--model", "gin", "ecfp-svr", "--seeds", "0", "1", "--molecule-features", "rdkit2d", "--fp-size", "128",
            "--root", str(tmp / "data"), "--out", str(tmp / "out"), "--hidden", "8", "--layers", "1",
            "--batch-size", "8", "--epochs", "2", "--warmup-epochs", "0", "--no-progress"]
    assert main(argv) == 0
    return tmp


def test_train_reports_the_seed_ensembles(multitask_runs):
    out = multitask_runs / "out"
    summary = json.loads((out / "summary.json").read_text())
    rows = {row["model"]: row for row in summary["ensembles"]}
    assert set(rows) == {"gin", "ecfp-svr"} and rows["gin"]["seeds"] == [0, 1]
    task = Task("regression", 2)
    saved = [load_test_predictions(out / "gin" / f"seed{s}") for s in (0, 1)]
    labels = saved[0][0]
    assert np.isnan(labels[:, 1]).any() and not np.isnan(labels[:, 0]).any()
    average = (saved[0][1] + saved[1][1]) / 2
    expected = evaluate(task, torch.from_numpy(labels), torch.from_numpy(average))
    assert rows["gin"]["test"] == pytest.approx(expected)
    spread = np.abs(saved[0][1] - saved[1][1]) / 2
    assert rows["gin"]["spearman_error_std"] == pytest.approx(error_rank_correlation(labels, average, spread))
    # The SVM's seeds are the same model: no spread, no ranking.
    assert rows["ecfp-svr"]["spearman_error_std"] is None  # NaN is stored as null
    # Each run's saved test predictions reproduce its recorded test metrics.
    record = json.loads((out / "gin" / "seed1" / "result.json").read_text())
    scored = evaluate(task, torch.from_numpy(labels), torch.from_numpy(saved[1][1]))
    assert scored["rmse"] == pytest.approx(record["result"]["best"]["test"]["rmse"], rel=1e-5)
    assert "Spearman(abs error, std)" in (out / "summary.md").read_text()


def test_predict_over_a_run_folder_averages_its_members(multitask_runs, capsys):
    out = multitask_runs / "out"
    smiles = ["CCO", "c1ccccc1", "C1CC"]
    singles = []
    for seed in (0, 1):
        assert main(["predict", "--checkpoint", str(out / "gin" / f"seed{seed}" / "best.pt"), "--smiles", *smiles,
                     "--allow-invalid"]) == 0
        singles.append(list(csv.DictReader(io.StringIO(capsys.readouterr().out))))
    code = main(["predict", "--checkpoint", str(out / "gin"), "--smiles", *smiles])
    captured = capsys.readouterr()
    assert code == 1 and "ensemble of 2 checkpoints" in captured.err
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert list(rows[0]) == ["row", "smiles", "logS", "twice", "logS_std", "twice_std", "error"]
    for row, first, second in zip(rows[:2], singles[0][:2], singles[1][:2]):
        for target in ("logS", "twice"):
            a, b = float(first[target]), float(second[target])
            assert float(row[target]) == pytest.approx((a + b) / 2)
            assert float(row[f"{target}_std"]) == pytest.approx(abs(a - b) / 2)
    assert rows[2]["logS"] == "" and "unclosed ring" in rows[2]["error"]
    # Mixed members are fine when they predict the same targets; an empty folder is refused.
    code = main(["predict", "--checkpoint", str(out / "gin" / "seed0" / "best.pt"),
                 str(out / "ecfp-svr" / "seed0" / "best.pt"), "--smiles", "CCO"])
    assert code == 0 and "ensemble of 2" in capsys.readouterr().err
    (multitask_runs / "empty").mkdir()
    assert main(["predict", "--checkpoint", str(multitask_runs / "empty"), "--smiles", "CCO"]) == 2
    assert "without any best.pt" in capsys.readouterr().err
    assert (out / "gin" / "seed0" / PREDICTIONS_FILE).is_file()
