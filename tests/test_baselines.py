"""Fingerprint baselines: ECFP bits, the Tanimoto SVM and the node-array forest against RDKit / scikit-learn, and
`pyg-plstm train/predict --model ecfp-svr/ecfp-rf` end to end."""
import csv
import io
import json

import numpy as np
import pytest
import torch
from rdkit import Chem, DataStructs
from rdkit.Chem import rdMolDescriptors
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.svm import SVC, SVR

from pyg_plstm.baselines import ECFPModel, NodeForest, TanimotoSVM, ecfp_config, tanimoto
from pyg_plstm.chem.features import fingerprints
from pyg_plstm.cli import main
from pyg_plstm.train.classical import fit_classical
from pyg_plstm.train.metrics import Task

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "OC(=O)c1ccccc1C(=O)O", "C1CCCCC1N",
          "CCCCCCCC", "Clc1ccc(Cl)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "O=C1NC(=O)C(N1)(c1ccccc1)c1ccccc1"]


def rdkit_bits(smiles, radius=2, size=2048):
    """Morgan bits through RDKit's older bit-vector API, an independent path to the same fingerprint."""
    vector = rdMolDescriptors.GetMorganFingerprintAsBitVect(Chem.MolFromSmiles(smiles), radius, nBits=size)
    array = np.zeros(size)
    DataStructs.ConvertToNumpyArray(vector, array)
    return array, vector


def test_fingerprints_equal_rdkit_and_name_bad_rows():
    bits, errors = fingerprints(SMILES + ["C1CC"], radius=2, size=1024)
    assert list(errors) == [len(SMILES)] and "unclosed ring" in errors[len(SMILES)]
    for row, smiles in enumerate(SMILES):
        np.testing.assert_array_equal(bits[row], rdkit_bits(smiles, 2, 1024)[0])
    assert not bits[-1].any()


def test_tanimoto_equals_rdkit():
    vectors = [rdkit_bits(s)[1] for s in SMILES]
    bits = np.stack([rdkit_bits(s)[0] for s in SMILES])
    expected = np.array([DataStructs.BulkTanimotoSimilarity(v, vectors) for v in vectors])
    np.testing.assert_allclose(tanimoto(bits, bits), expected, rtol=1e-12)
    empty = np.zeros((2, 8))
    assert (tanimoto(empty, empty) == 1).all()  # two empty fingerprints are identical


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    bits = (rng.random((60, 64)) < 0.2).astype(np.uint8)
    y = bits[:, :8] @ rng.normal(size=8) + 0.1 * rng.normal(size=60)
    return bits, y


@pytest.mark.parametrize("classify", [False, True])
def test_tanimoto_svm_equals_sklearn_and_survives_its_state(data, classify):
    bits, y = data
    labels = (y > np.median(y)).astype(float) if classify else y
    machine = TanimotoSVM(C=3.0, epsilon=0.05, classify=classify).fit(bits[:40], labels[:40])
    kernel = tanimoto(bits[:40], bits[:40])
    if classify:
        reference = SVC(C=3.0, kernel="precomputed").fit(kernel, labels[:40].astype(int))
        expected = reference.decision_function(tanimoto(bits[40:], bits[:40]))
    else:
        reference = SVR(C=3.0, epsilon=0.05, kernel="precomputed").fit(kernel, labels[:40])
        expected = reference.predict(tanimoto(bits[40:], bits[:40]))
    np.testing.assert_allclose(machine.decision(bits[40:]), expected, rtol=1e-10, atol=1e-12)
    restored = TanimotoSVM.from_state(machine.state_dict())
    np.testing.assert_array_equal(restored.decision(bits[40:]), machine.decision(bits[40:]))
    assert machine.num_parameters == len(reference.support_) + 1


def test_svc_needs_both_classes(data):
    with pytest.raises(ValueError, match="both classes"):
        TanimotoSVM(classify=True).fit(data[0][:5], np.ones(5))


@pytest.mark.parametrize("classify", [False, True])
def test_node_forest_traversal_equals_sklearn(data, classify):
    bits, y = data
    rng = np.random.default_rng(1)
    # Real-valued columns beside the bits exercise thresholds between arbitrary values.
    x = np.hstack([bits, rng.normal(size=(len(bits), 3))])
    labels = (y > np.median(y)).astype(int) if classify else y
    kind = RandomForestClassifier if classify else RandomForestRegressor
    reference = kind(n_estimators=7, max_features=0.5, random_state=3).fit(x[:40], labels[:40])
    forest = NodeForest(7, 0.5, classify=classify, seed=3).load_sklearn(reference)
    expected = reference.predict_proba(x[40:])[:, 1] if classify else reference.predict(x[40:])
    np.testing.assert_allclose(forest.predict(x[40:]), expected, rtol=1e-12, atol=1e-12)
    restored = NodeForest.from_state(forest.state_dict())
    np.testing.assert_array_equal(restored.predict(x[40:]), forest.predict(x[40:]))
    grown = NodeForest(7, 0.5, classify=classify, seed=3).fit(x[:40], labels[:40].astype(float))
    np.testing.assert_array_equal(grown.predict(x[40:]), forest.predict(x[40:]))
    assert forest.num_parameters == sum(e.tree_.node_count for e in reference.estimators_)


def test_ecfp_model_fits_each_target_on_its_labelled_rows(data):
    bits, y = data
    targets = np.stack([y, -y], 1)
    targets[::3, 1] = np.nan
    for name in ("ecfp-svr", "ecfp-rf"):
        config = {**ecfp_config(name, 2, False), "n_estimators": 5}
        model = ECFPModel(config, C=1.0, seed=0).fit(bits[:40], targets[:40])
        labelled = ~np.isnan(targets[:40, 1])
        alone = ECFPModel({**config, "out_channels": 1}, C=1.0, seed=0).fit(bits[:40][labelled],
                                                                           targets[:40, 1:][labelled])
        np.testing.assert_array_equal(model.predict(bits[40:])[:, 1], alone.predict(bits[40:])[:, 0])
        restored = ECFPModel.from_state(config, model.state_dict())
        np.testing.assert_array_equal(restored.predict(bits[40:]), model.predict(bits[40:]))
    with pytest.raises(ValueError, match="unknown fingerprint model"):
        ecfp_config("ecfp-knn", 1, False)


def test_fit_classical_refuses_multiclass(molecule_splits):
    splits = molecule_splits(10)
    with pytest.raises(ValueError, match="not 3 classes"):
        fit_classical(ecfp_config("ecfp-svr", 3, False), Task("multiclass", 3), splits, 0)


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def ecfp_runs(tmp_path_factory):
    """ecfp-svr and ecfp-rf over two seeds on 60 molecules of the shipped solubility set (random split)."""
    from conftest import SOLUBILITY_CSV

    tmp = tmp_path_factory.mktemp("ecfp")
    lines = SOLUBILITY_CSV.read_text().splitlines(keepends=True)
    (tmp / "mols.csv").write_text("".join(lines[:61]))
    argv = ["train", "--csv", str(tmp / "mols.csv"), "--target-col", "log_solubility", "--split", "random",
            "--model", "ecfp-svr", "ecfp-rf", "--seeds", "0", "1", "--root", str(tmp / "data"),
            "--out", str(tmp / "out"), "--no-progress", "--fp-size", "512"]
    assert main(argv) == 0
    return tmp, argv


def test_ecfp_runs_join_the_summary_like_any_model(ecfp_runs):
    tmp, _ = ecfp_runs
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    rows = {row["model"]: row for row in summary["summary"]}
    assert set(rows) == {"ecfp-svr", "ecfp-rf"}
    for row in rows.values():
        assert row["seeds"] == 2 and {"train", "valid", "test"} <= set(row)
        assert set(row["test"]) == {"rmse", "mae"} and row["seconds_per_epoch"]["mean"] > 0
    # The SVM has no randomness: both seeds give the same model; the forest's seed matters.
    assert rows["ecfp-svr"]["test"]["rmse"]["std"] == 0
    assert rows["ecfp-rf"]["test"]["rmse"]["std"] > 0
    record = json.loads((tmp / "out" / "ecfp-svr" / "seed0" / "result.json").read_text())
    assert record["model_config"]["size"] == 512 and record["config"] == {"seed": 0}
    assert record["result"]["history"][0]["selection"][0]["C"] == 0.1
    assert "ecfp-svr" in (tmp / "out" / "summary.md").read_text()


@pytest.mark.parametrize("model", ["ecfp-svr", "ecfp-rf"])
def test_ecfp_predict_round_trip_equals_training_time_scores(ecfp_runs, model, capsys):
    """Predicting the training molecules from the checkpoint reproduces the train RMSE the run recorded."""
    from pyg_plstm.train.classical import split_smiles
    from pyg_plstm.train.data import prepare_data

    tmp, argv = ecfp_runs
    data = prepare_data(None, tmp / "data", tmp / "mols.csv", "smiles", ["log_solubility"], None, "random")
    smiles = split_smiles("train", data.splits["train"])
    labels = np.array([float(g.y) for g in data.splits["train"]])
    ckpt = tmp / "out" / model / "seed1" / "best.pt"
    code, out, _ = run(["predict", "--checkpoint", str(ckpt), "--smiles", *smiles], capsys)
    assert code == 0
    predicted = np.array([float(r["log_solubility"]) for r in csv.DictReader(io.StringIO(out))])
    record = json.loads((tmp / "out" / model / "seed1" / "result.json").read_text())
    rmse = float(np.sqrt(np.mean((predicted - labels) ** 2)))
    assert rmse == pytest.approx(record["result"]["best"]["train"]["rmse"], rel=1e-5)
    assert torch.load(ckpt, weights_only=True)["model_config"]["name"] == model


def test_ecfp_runs_refuse_a_second_run_without_resume_and_resume_checks_settings(ecfp_runs, capsys):
    tmp, argv = ecfp_runs
    code, _, err = run(argv, capsys)
    assert code == 3 and "already holds runs" in err and "best.pt" in err
    changed = [a if a != "512" else "256" for a in argv]
    code, _, err = run(changed + ["--resume"], capsys)
    assert code == 2 and "size: checkpoint has 512, this run has 256" in err


def test_ecfp_binary_multitask_with_missing_labels_round_trips_through_predict(tmp_path, capsys):
    """SVC and forest classifiers per target on its labelled molecules; predict gives probabilities whose
    test ROC-AUC is the recorded one."""
    from conftest import SOLUBILITY_CSV
    from sklearn.metrics import roc_auc_score

    from pyg_plstm.train.classical import split_smiles
    from pyg_plstm.train.data import prepare_data

    rows = list(csv.DictReader(SOLUBILITY_CSV.open()))[:60]
    values = np.array([float(row["log_solubility"]) for row in rows])
    middle, upper = np.quantile(values, [0.5, 0.7])
    with (tmp_path / "binary.csv").open("w") as f:
        f.write("smiles,soluble,very,split\n")
        for i, (row, value) in enumerate(zip(rows, values)):
            # Dealt round-robin (the file is sorted by solubility): every split holds both classes.
            split = ["train", "train", "train", "valid", "test"][i % 5]
            very = "" if i % 4 == 1 else int(value > upper)
            f.write(f"{row['smiles']},{int(value > middle)},{very},{split}\n")
    argv = ["train", "--csv", str(tmp_path / "binary.csv"), "--target-col", "soluble", "very", "--split-col",
            "split", "--model", "ecfp-svr", "ecfp-rf", "--fp-size", "256", "--root", str(tmp_path / "data"),
            "--out", str(tmp_path / "out"), "--no-progress"]
    assert run(argv, capsys)[0] == 0
    data = prepare_data(None, tmp_path / "data", tmp_path / "binary.csv", "smiles", ["soluble", "very"], "split")
    test = data.splits["test"]
    labels = np.concatenate([g.y.numpy() for g in test])
    for model in ("ecfp-svr", "ecfp-rf"):
        code, out, _ = run(["predict", "--checkpoint", str(tmp_path / "out" / model / "seed0" / "best.pt"),
                            "--smiles", *split_smiles("test", test)], capsys)
        assert code == 0
        predicted = np.array([[float(r["soluble"]), float(r["very"])] for r in csv.DictReader(io.StringIO(out))])
        assert ((predicted > 0) & (predicted < 1)).all()
        record = json.loads((tmp_path / "out" / model / "seed0" / "result.json").read_text())
        labelled = [~np.isnan(labels[:, t]) for t in range(2)]
        # Targets with one class in the test split are not scored (OGB's rule, the recorded metric's).
        scores = [roc_auc_score(labels[known, t], predicted[known, t]) for t, known in enumerate(labelled)
                  if len(np.unique(labels[known, t])) == 2]
        assert scores
        assert np.mean(scores) == pytest.approx(record["result"]["best"]["test"]["rocauc"])
