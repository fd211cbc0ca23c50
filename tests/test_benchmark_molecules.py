"""benchmarks.molecules: commands that parse, a record from a real (one-epoch) run, the collected table."""
import csv
import math
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from pyg_plstm.cli import build_parser, main
from pyg_plstm.train import load_model, predict

from benchmarks import molecules as bench

DATA = Path(__file__).resolve().parent.parent / "data" / "moleculeace"


def test_every_command_parses_and_every_set_is_shipped():
    for set_name in bench.SETS:
        for model, arguments in bench.MODELS.items():
            if arguments:
                args = build_parser().parse_args(bench.train_command(set_name, model, 0, Path("out")))
                assert args.seeds == [0] and args.model == [arguments[1]]
    for name in bench.MOLECULEACE:
        with open(DATA / f"{name}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert {"smiles", "y", "cliff_mol", "split"} <= set(rows[0])
        assert {r["split"] for r in rows} == {"train", "test"}


def test_a_record_from_a_one_epoch_run_has_the_cliff_rmse_of_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(bench.ROOT)
    out, data_root = tmp_path / "run", tmp_path / "data"
    command = bench.train_command("CHEMBL4616_EC50", "gin", 0, out)
    assert main([*command, "--epochs", "1", "--hidden", "8", "--layers", "1", "--root", str(data_root)]) == 0
    record = bench._record_from_run("CHEMBL4616_EC50", "gin", 0, out, command[:-2], data_root)
    assert record["model"] == "gin" and record["set"] == "CHEMBL4616_EC50" and record["epochs"] == 1
    assert record["command"].startswith("pyg-plstm train --csv data/moleculeace/CHEMBL4616_EC50.csv")
    # The cliff RMSE, recomputed here from the best checkpoint and the file's flags.
    model, ckpt = load_model(out / "gin" / "seed0" / "best.pt")
    test = bench._prepared("CHEMBL4616_EC50", data_root).splits["test"]
    values = predict(model, test, ckpt.get("target_norm")).view(-1).tolist()
    with open(DATA / "CHEMBL4616_EC50.csv", newline="") as f:
        cliff = {r["smiles"] for r in csv.DictReader(f) if r["cliff_mol"] == "1" and r["split"] == "test"}
    errors = [(v - float(g.y)) ** 2 for v, g in zip(values, test) if g.smiles in cliff]
    assert 0 < len(errors) < len(test)
    assert record["cliff_rmse"] == pytest.approx(math.sqrt(sum(errors) / len(errors)), rel=1e-6)
    assert record["test_rmse"] == pytest.approx(math.sqrt(sum((v - float(g.y)) ** 2 for v, g in zip(values, test))
                                                          / len(test)), rel=1e-5)
    # The kept test values are the checkpoint's predictions and the labels, in test order, rounded.
    assert record["test_labels"] == [round(float(g.y), bench.PREDICTION_DIGITS) for g in test]
    assert record["test_predictions"] == pytest.approx(values, abs=10 ** -bench.PREDICTION_DIGITS)
    assert record["environment"]["torch"] == torch.__version__ and record["environment"]["rdkit"] == version("rdkit")


def test_the_table_gives_mean_and_std_over_seeds_and_the_mean_over_complete_rows():
    records = [{"model": model, "set": set_name, "seed": seed, "test_rmse": value + seed * 0.1,
                "cliff_rmse": None, "train_rmse": 0.5, "best_epoch": 10, "s_per_epoch": 1.0,
                "command": f"pyg-plstm train {model}"}
               for model, value in (("gin", 1.0), ("plstm", 2.0)) for set_name in ("solubility", "freesolv")
               for seed in (0, 1, 2)]
    records = [r for r in records if not (r["model"] == "plstm" and r["set"] == "freesolv" and r["seed"] == 2)]
    table = bench.collect(records)
    assert "| GIN | 1.100 ± 0.100 | 1.100 ± 0.100 | 1.100 |" in table
    assert "2.050 ± 0.071 (n=2)" in table


def test_the_seed_ensemble_row_is_the_mean_prediction_and_ranks_errors_by_the_seeds_spread():
    labels = [0.0, 1.0, 2.0, 3.0]
    seeds = [[0.1, 1.0, 2.5, 2.0], [0.1, 1.2, 1.5, 4.0], [0.1, 0.8, 2.0, 3.0]]
    records = [{"model": "gin", "set": "solubility", "seed": seed, "test_rmse": 1.0, "cliff_rmse": None,
                "train_rmse": 0.5, "best_epoch": 10, "s_per_epoch": 1.0, "command": "pyg-plstm train gin",
                "test_labels": labels, "test_predictions": predictions}
               for seed, predictions in enumerate(seeds)]
    # By hand: the mean is [0.1, 1.0, 2.0, 3.0], so only the first molecule has an error (0.1): RMSE 0.05.
    # The seeds' spread is 0 there and positive elsewhere, so |error| and spread rank opposite ways.
    table = bench.collect(records)
    assert "| GIN | 0.050 (-0.77) | 0.050 |" in table
    # A seed without kept predictions (an older record) leaves the set out of the ensemble if fewer than 2 remain.
    older = [{k: v for k, v in r.items() if k not in ("test_labels", "test_predictions")} for r in records[1:]]
    assert "Seed ensembles" not in bench.collect([records[0], *older])
    with pytest.raises(ValueError, match="different labels"):
        bench.collect([*records[:2], {**records[2], "test_labels": [9.0, 1.0, 2.0, 3.0]}])


def test_records_of_models_this_version_does_not_know_are_kept_and_sorted_last(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "RECORDS", tmp_path / "molecules.json")
    base = {"seed": 0, "test_rmse": 1.0}
    for model, set_name in (("newer-model", "solubility"), ("gin", "newer-set"), ("gin", "freesolv"),
                            ("plstm", "freesolv")):
        bench.save_record({**base, "model": model, "set": set_name})
    order = [(r["model"], r["set"]) for r in bench.load_records()]
    assert order == [("plstm", "freesolv"), ("gin", "freesolv"), ("gin", "newer-set"), ("newer-model", "solubility")]


def test_the_comparison_counts_sets_against_the_best_rival_and_the_fingerprint_baseline():
    # pLSTM 0.8 on both sets; rivals 0.9 / 0.7 on solubility, 1.0 / 0.6 on freesolv; SVR 0.85 and 0.75.
    values = {("plstm", "solubility"): 0.8, ("plstm", "freesolv"): 0.8, ("gin", "solubility"): 0.9,
              ("gin", "freesolv"): 1.0, ("gat", "solubility"): 1.2, ("gat", "freesolv"): 0.6,
              ("chemprop", "solubility"): 1.1, ("chemprop", "freesolv"): 1.3,
              ("ecfp-svr", "solubility"): 0.85, ("ecfp-svr", "freesolv"): 0.75}
    records = [{"model": model, "set": set_name, "seed": seed, "test_rmse": value, "cliff_rmse": None,
                "train_rmse": 0.4 if model == "gin" else 0.5, "best_epoch": 10, "s_per_epoch": 1.0,
                "command": f"pyg-plstm train {model}"}
               for (model, set_name), value in values.items() for seed in (0, 1, 2)]
    table = bench.collect(records)
    assert "| solubility | 0.800 | 0.900 | GIN | – (no kept predictions) | 1.25 |" in table
    assert "| freesolv | 0.800 | 0.600 | GAT | – (no kept predictions) | 1.25 |" in table
    assert "pLSTM is at or below the best rival on 1 of 2 sets" in table
    assert "apart from the best rival on 0 of 0 sets (on 2 of 2 sets a model kept no test predictions)" in table
    assert "mean test RMSE 0.800; pLSTM is below it on 1 of 2 sets." in table


def test_the_comparison_bootstraps_the_difference_to_the_best_rival_from_the_kept_predictions():
    import numpy as np

    from pyg_plstm.train.significance import percentile_interval, rmse_difference_replicates

    rng = np.random.default_rng(0)
    labels = {s: rng.normal(size=60) for s in ("solubility", "freesolv")}
    # pLSTM is far closer to the labels than every rival on solubility, and as close as GAT on freesolv.
    noise = {("plstm", "solubility"): 0.1, ("gin", "solubility"): 0.8, ("gat", "solubility"): 0.9,
             ("chemprop", "solubility"): 1.0, ("plstm", "freesolv"): 0.5, ("gin", "freesolv"): 0.9,
             ("gat", "freesolv"): 0.5, ("chemprop", "freesolv"): 1.0}
    predictions = {key: labels[key[1]] + rng.normal(0, scale, size=(3, 60)) for key, scale in noise.items()}
    records = [{"model": model, "set": set_name, "seed": seed, "cliff_rmse": None, "train_rmse": 0.5, "best_epoch": 1,
                "s_per_epoch": 1.0, "command": f"pyg-plstm train {model}", "test_labels": labels[set_name].tolist(),
                "test_predictions": predictions[model, set_name][seed].tolist(),
                "test_rmse": float(np.sqrt(np.mean((predictions[model, set_name][seed] - labels[set_name]) ** 2)))}
               for (model, set_name) in noise for seed in range(3)]
    table = bench.collect(records)
    difference, replicates = rmse_difference_replicates(labels["freesolv"], predictions["plstm", "freesolv"],
                                                        predictions["gat", "freesolv"],
                                                        replicates=bench.BOOTSTRAP_REPLICATES)
    low, high = percentile_interval(replicates)
    assert low < 0 < high
    assert f"| {difference:+.3f} [{low:+.3f}, {high:+.3f}] |" in table
    assert "tell pLSTM apart from the best rival on 1 of 2 sets: lower on 1, higher on 0." in table
    assert "in the mean over the 2 sets: " in table


def test_the_learning_rate_search_chooses_per_family_by_the_mean_validation_rmse_over_the_sets():
    # pLSTM: 5e-4 wins on validation on average although 2e-3 has the lower test RMSE; GIN: the default.
    valid = {"5e-4": (0.5, 0.8), "1e-3": (0.6, 0.9), "2e-3": (0.7, 0.7)}  # means 0.65, 0.75, 0.70
    records = []
    for family in ("plstm", "gin", "gat"):
        for rate, model in bench.LR_SEARCH[family].items():
            for set_name, value in zip(("solubility", "freesolv"), valid[rate]):
                if family == "gin":
                    value = 0.5 if rate == "1e-3" else 0.9
                records += [{"model": model, "set": set_name, "seed": seed, "valid_rmse": value,
                             "test_rmse": 0.1 if rate == "2e-3" else 0.2, "cliff_rmse": None, "train_rmse": 0.5,
                             "best_epoch": 10, "s_per_epoch": 1.0, "command": f"pyg-plstm train {model}"}
                            for seed in bench.SEEDS]
    by_key = {}
    for r in records:
        by_key.setdefault((r["model"], r["set"]), []).append(r)
    everything = ["5e-4", "1e-3", "2e-3"]
    assert bench.chosen_learning_rates(by_key, ["solubility", "freesolv"]) == {
        "plstm": {"model": "plstm-lr5e-4", "rate": "5e-4", "rates": everything},
        "gin": {"model": "gin", "rate": "1e-3", "rates": everything},
        "gat": {"model": "gat-lr5e-4", "rate": "5e-4", "rates": everything}}
    # A rate missing on one set is left out of its family's choice; a family with fewer than two rates is not
    # chosen at all.
    for model in ("gat-lr2e-3", "gin-lr2e-3", "gin-lr5e-4"):
        del by_key[(model, "freesolv")]
    chosen = bench.chosen_learning_rates(by_key, ["solubility", "freesolv"])
    assert chosen["gat"]["rates"] == ["5e-4", "1e-3"] and "gin" not in chosen
    table = bench.collect([r for r in records if not (r["model"] == "gat-lr2e-3" and r["set"] == "freesolv")])
    assert "| pLSTM, lr 5e-4 | 0.500 ± 0.000 | 0.800 ± 0.000 | 0.650 |" in table
    assert ("Chosen by validation: pLSTM lr 5e-4 (of 5e-4, 1e-3, 2e-3); GIN lr 1e-3 (of 5e-4, 1e-3, 2e-3); "
            "GAT lr 5e-4 (of 5e-4, 1e-3).") in table


def test_the_before_after_figure_draws_only_the_chosen_models(tmp_path):
    records = [{"model": model, "set": "solubility", "seed": 0, "curve": {"loss": [1.0, 0.5], "valid_rmse": [1.0, 0.9]}}
               for model in ("plstm", "gin", "gat")]
    path = tmp_path / "curves.png"
    bench.plot_curves(records, path, ("plstm", "gin"))
    import matplotlib.image

    assert matplotlib.image.imread(str(path)).shape[0] > 100
    with pytest.raises(ValueError, match="no-such-model"):
        bench.plot_curves(records, tmp_path / "other.png", ("plstm", "no-such-model"))


def test_a_fingerprint_baseline_record_comes_from_its_saved_test_predictions(tmp_path, monkeypatch):
    monkeypatch.chdir(bench.ROOT)
    out, data_root = tmp_path / "run", tmp_path / "data"
    command = bench.train_command("CHEMBL4616_EC50", "ecfp-svr", 0, out)
    assert main([*command, "--root", str(data_root)]) == 0
    record = bench._record_from_run("CHEMBL4616_EC50", "ecfp-svr", 0, out, command[:-2], data_root)
    assert record["model"] == "ecfp-svr" and 0 < record["cliff_rmse"] < 5 and 0 < record["test_rmse"] < 5


def test_a_deterministic_model_s_ensemble_has_no_spread_correlation():
    labels, predictions = [0.0, 1.0, 2.0], [0.5, 1.0, 2.0]
    records = [{"model": "ecfp-svr", "set": "solubility", "seed": seed, "test_rmse": 0.5 / math.sqrt(3),
                "cliff_rmse": None, "train_rmse": 0.1, "best_epoch": 1, "s_per_epoch": 1.0,
                "command": "pyg-plstm train ecfp-svr", "test_labels": labels, "test_predictions": predictions}
               for seed in range(3)]
    assert "| ECFP4 + SVR | 0.289 (–) | 0.289 |" in bench.collect(records)


def test_chemprop_gets_the_models_descriptors_standardised_on_the_training_rows():
    import numpy as np
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    with open(DATA / "CHEMBL4616_EC50.csv", newline="") as f:
        smiles = [row["smiles"] for row in csv.DictReader(f)][:40]
    train = list(range(0, 40, 2))
    matrix = bench._chemprop_descriptors(("rdkit2d",), smiles, train)
    # By hand: RDKit's own descriptor values, then the mean and population std of the finite training values.
    names = [name for name, _ in Descriptors.descList]
    values = [Descriptors.CalcMolDescriptors(Chem.MolFromSmiles(s)) for s in smiles]
    raw = np.array([[v[name] for name in names] for v in values], dtype=np.float64)
    raw[~np.isfinite(raw)] = np.nan
    mean, std = np.nanmean(raw[train], 0), np.nanstd(raw[train], 0)
    expected = (raw - np.where(np.isnan(mean), 0, mean)) / np.where((std > 0) & ~np.isnan(std), std, 1)
    expected[~np.isfinite(expected)] = 0
    assert matrix.shape == (40, len(names)) and np.isfinite(matrix).all()
    assert raw[:, names.index("Ipc")].max() > 1e38  # beyond float32, where chemprop's own featurizer overflows
    np.testing.assert_allclose(matrix, expected, rtol=1e-9, atol=1e-9)
    assert bench._chemprop_descriptors((), smiles, train) is None


def test_an_empty_chemprop_prediction_is_refused_naming_the_molecule(tmp_path):
    import sys

    fake = tmp_path / "chemprop"
    fake.write_text(f"#!{sys.executable}\n"
                    "import sys\n"
                    "args = sys.argv[1:]\n"
                    "out = args[args.index('-o') + 1]\n"
                    "assert args[args.index('--descriptors-path') + 1].endswith('rows.npz')\n"
                    "open(out, 'w').write('smiles,y\\nCCO,1.5\\nc1ccccc1,\\n')\n")
    fake.chmod(0o755)
    extra = ["--descriptors-path", str(tmp_path / "rows.npz"), "--no-descriptor-scaling"]
    with pytest.raises(RuntimeError, match=r"no value \(NaN\) for 1 of 2 molecules \(first: 'c1ccccc1'\)"):
        bench._chemprop_predict(str(fake), tmp_path / "best.pt", [("CCO", 1.0), ("c1ccccc1", 2.0)], tmp_path, extra)
