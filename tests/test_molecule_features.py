"""Molecule-level features: RDKit values, descriptor files, the training-split scaler, the models' readout,
predict round trips and refusals."""
import csv
import io
import json

import numpy as np
import pytest
import torch
from rdkit import Chem, RDLogger
from rdkit.Chem import Descriptors, rdMolDescriptors

from pyg_plstm.chem.features import MoleculeFeaturizer
from pyg_plstm.cli import main
from pyg_plstm.datasets.descriptors import DescriptorTable, MoleculeFeatures
from pyg_plstm.models import make_model
from pyg_plstm.nn import Standardize
from pyg_plstm.train import TrainConfig, fit
from pyg_plstm.train.data import prepare_data
from pyg_plstm.train.inference import Predictor
from pyg_plstm.train.metrics import Task

pytestmark = pytest.mark.usefixtures("single_thread")
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "OC(=O)c1ccccc1C(=O)O", "C1CCCCC1N",
          "CCCCCCCC", "Clc1ccc(Cl)cc1", "[Na+].[Cl-]", "O=C1NC(=O)C(N1)(c1ccccc1)c1ccccc1"]
TINY = ["--hidden", "8", "--layers", "1", "--heads", "2", "--batch-size", "8", "--no-progress", "--epochs", "2"]


def test_features_equal_rdkit_on_a_fixed_list():
    featurizer = MoleculeFeaturizer(("morgan_count", "morgan_bits", "rdkit2d"), radius=2, size=64)
    names = [name for name, _ in Descriptors.descList]
    assert featurizer.dim == 128 + len(names) and featurizer.columns[128:] == names
    RDLogger.DisableLog("rdApp.*")  # the older fingerprint API warns that it is deprecated
    for smiles in SMILES:
        mol = Chem.MolFromSmiles(smiles)
        counts = np.zeros(64)
        for bit, count in rdMolDescriptors.GetHashedMorganFingerprint(mol, 2, nBits=64).GetNonzeroElements().items():
            counts[bit] = count
        bits = np.array(list(rdMolDescriptors.GetMorganFingerprintAsBitVect(mol, 2, nBits=64)), dtype=float)
        descriptors = np.array([fn(mol) for _, fn in Descriptors.descList], dtype=float)
        descriptors[~np.isfinite(descriptors)] = np.nan
        np.testing.assert_array_equal(featurizer(mol), np.concatenate([counts, bits, descriptors]))
    RDLogger.EnableLog("rdApp.*")


def test_unknown_or_repeated_feature_names_are_refused(capsys, tmp_path):
    with pytest.raises(ValueError, match=r"unknown molecule feature\(s\) \['maccs'\]"):
        MoleculeFeaturizer(("morgan_count", "maccs"))
    with pytest.raises(ValueError, match="once"):
        MoleculeFeaturizer(("rdkit2d", "rdkit2d"))
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--molecule-features", "maccs", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "invalid choice: 'maccs'" in capsys.readouterr().err


def test_standardize_fits_finite_values_and_maps_non_finite_to_the_mean():
    x = torch.tensor([[1.0, 5.0, float("nan")], [3.0, 5.0, float("nan")], [float("inf"), 5.0, float("nan")]],
                     dtype=torch.float64)
    scaler = Standardize(3).fit(x)
    assert scaler.mean.tolist() == [2.0, 5.0, 0.0] and scaler.std.tolist() == [1.0, 1.0, 1.0]
    out = scaler(torch.tensor([[4.0, float("nan"), 7.0], [float("-inf"), 6.0, float("nan")]]))
    assert out.tolist() == [[2.0, 0.0, 7.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="3 features"):
        scaler(torch.zeros(2, 4))


def write_descriptors(path, smiles, key="smiles", gap=None):
    rows = [[key, "logp_mine", "charge_mine"]]
    for i, s in enumerate(smiles):
        rows.append([str(i) if key == "row" else s, f"{0.5 * i:.3f}", f"{-i}"])
    if gap is not None:
        rows[gap + 1][2] = "nan"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    return path


def test_descriptor_file_keyed_by_canonical_smiles_or_row(tmp_path):
    # The file spells ethanol "OCC"; the data set "CCO".
    table = DescriptorTable(str(write_descriptors(tmp_path / "d.csv", ["OCC", "c1ccccc1O"])), "smiles")
    np.testing.assert_array_equal(table.lookup("CCO", 7), [0.0, 0.0])
    np.testing.assert_array_equal(table.lookup("Oc1ccccc1", 0), [0.5, -1.0])
    with pytest.raises(ValueError, match=r"molecule 'CCN' \(row 3\) is not in descriptor file"):
        table.lookup("CCN", 3)
    by_row = DescriptorTable(str(write_descriptors(tmp_path / "r.csv", ["x", "y"], key="row")), "row")
    np.testing.assert_array_equal(by_row.lookup("anything", 1), [0.5, -1.0])
    features = MoleculeFeatures(MoleculeFeaturizer(("morgan_bits",), 1, 16), table)
    assert features.dim == 18 and features.columns[-2:] == ["logp_mine", "charge_mine"]
    np.testing.assert_array_equal(features("CCO", 0)[-2:], [0.0, 0.0])


def test_descriptor_file_gaps_duplicates_and_bad_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"row 1, column 'charge_mine': 'nan' is not a finite number"):
        DescriptorTable(str(write_descriptors(tmp_path / "d.csv", ["CCO", "CCN"], gap=1)))
    with pytest.raises(ValueError, match="occurs twice"):
        DescriptorTable(str(write_descriptors(tmp_path / "d.csv", ["CCO", "OCC"])))
    with pytest.raises(ValueError, match="row 0: invalid SMILES"):
        DescriptorTable(str(write_descriptors(tmp_path / "d.csv", ["C1CC"])))
    with pytest.raises(ValueError, match="column 'smiles' not found"):
        DescriptorTable(str(write_descriptors(tmp_path / "d.csv", ["0"], key="row")))


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory):
    from conftest import SOLUBILITY_CSV

    tmp = tmp_path_factory.mktemp("features")
    lines = SOLUBILITY_CSV.read_text().splitlines(keepends=True)
    (tmp / "mols.csv").write_text("".join(lines[:41]))
    smiles = [row["smiles"] for row in csv.DictReader(io.StringIO("".join(lines[:41])))]
    return tmp, smiles


def test_dataset_features_equal_the_featurizer_and_the_file_and_enter_the_processed_key(csv_data):
    tmp, smiles = csv_data
    write_descriptors(tmp / "desc.csv", smiles)
    kwargs = dict(csv=tmp / "mols.csv", target_cols=["log_solubility"], split="random")
    data = prepare_data(None, tmp / "data", molecule_features=["morgan_bits", "rdkit2d"], fp_size=32,
                        descriptors=tmp / "desc.csv", **kwargs)
    plain = prepare_data(None, tmp / "data", **kwargs)
    assert data.dataset.processed_dir != plain.dataset.processed_dir
    assert "molecule_dim" not in plain.encoders and "molecule_features" not in plain.meta
    featurizer = MoleculeFeaturizer(("morgan_bits", "rdkit2d"), 2, 32)
    assert data.encoders["molecule_dim"] == featurizer.dim + 2 == data.meta["molecule_features"]["dim"]
    table = {s: (0.5 * i, -i) for i, s in enumerate(smiles)}
    for graph in data.dataset[:5]:
        expected = np.concatenate([featurizer(Chem.MolFromSmiles(graph.smiles)), table[graph.smiles]])
        np.testing.assert_array_equal(graph.molecule_features.numpy()[0], expected)
    parallel = prepare_data(None, tmp / "data_par", molecule_features=["morgan_bits", "rdkit2d"], fp_size=32,
                            descriptors=tmp / "desc.csv", num_workers=2, **kwargs)
    torch.testing.assert_close(parallel.dataset._data.molecule_features, data.dataset._data.molecule_features,
                               equal_nan=True, rtol=0, atol=0)


def test_a_descriptor_file_missing_molecules_is_refused(csv_data):
    tmp, smiles = csv_data
    write_descriptors(tmp / "short.csv", smiles[:-1])
    with pytest.raises(ValueError, match=r"molecule '.*' \(row 39\) is not in descriptor file .*short.csv"):
        prepare_data(None, tmp / "data", csv=tmp / "mols.csv", target_cols=["log_solubility"],
                     descriptors=tmp / "short.csv")
    with pytest.raises(ValueError, match="apply to CSV files"):
        prepare_data("ogbg-molhiv", tmp / "data", molecule_features=["rdkit2d"])


@pytest.mark.parametrize("name", ["plstm", "gin"])
def test_models_refuse_graphs_without_their_molecule_features(name, molecule_splits):
    graph = molecule_splits(3)["train"][0]
    model = make_model(name, None, 1, hidden_channels=8, num_layers=1, heads=2, node_encoder="ogb",
                       edge_encoder="ogb", molecule_dim=4)
    with pytest.raises(ValueError, match="trained with 4 molecule-level features"):
        model(graph)
    graph.molecule_features = torch.zeros(1, 3)
    with pytest.raises(ValueError, match=r"shape \[1, 4\]"):
        model(graph)
    graph.molecule_features = torch.zeros(1, 4)
    assert model(graph).shape == (1, 1)


def test_the_scaler_uses_training_rows_only(molecule_splits, tiny_plstm, tmp_path):
    splits = molecule_splits(20)
    rng = np.random.default_rng(0)
    for name, graphs in splits.items():
        for graph in graphs:
            # Valid and test rows far away: any use of them would move the statistics.
            shift = 0.0 if name == "train" else 1e3
            graph.molecule_features = torch.from_numpy(rng.normal(size=(1, 3)) + shift)
    fit(tiny_plstm(molecule_dim=3), Task("regression", 1), splits, TrainConfig(epochs=1, warmup_epochs=0),
        tmp_path, device="cpu")
    train = torch.cat([g.molecule_features for g in splits["train"]]).numpy()
    state = torch.load(tmp_path / "best.pt", weights_only=True)["model"]
    np.testing.assert_allclose(state["molecule_scaler.mean"].numpy(), train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(state["molecule_scaler.std"].numpy(), train.std(0), rtol=1e-12)


@pytest.fixture(scope="module")
def feature_run(csv_data):
    """gin with rdkit2d + Morgan counts + a descriptor file (keyed by row), 40 molecules."""
    tmp, smiles = csv_data
    write_descriptors(tmp / "rows.csv", smiles, key="row")
    argv = ["train", "--csv", str(tmp / "mols.csv"), "--target-col", "log_solubility", "--split", "random",
            "--model", "gin", "--molecule-features", "rdkit2d", "morgan_count", "--fp-size", "64",
            "--descriptors", str(tmp / "rows.csv"), "--descriptors-key", "row", "--root", str(tmp / "data"),
            "--out", str(tmp / "out")] + TINY
    assert main(argv) == 0
    return tmp, smiles


def test_predict_round_trip_equals_the_training_time_forward(feature_run, capsys):
    tmp, smiles = feature_run
    data = prepare_data(None, tmp / "data", csv=tmp / "mols.csv", target_cols=["log_solubility"], split="random",
                        molecule_features=["rdkit2d", "morgan_count"], fp_size=64,
                        descriptors=tmp / "rows.csv", descriptors_key="row")
    test = data.splits["test"]
    rows = [smiles.index(g.smiles) for g in test]
    # predict numbers its SMILES 0..n-1: give it a descriptor file keyed by those rows.
    lines = (tmp / "rows.csv").read_text().splitlines()
    (tmp / "test_rows.csv").write_text("\n".join([lines[0]] + [str(k) + lines[1 + r][lines[1 + r].index(","):]
                                                               for k, r in enumerate(rows)]) + "\n")
    ckpt = tmp / "out" / "gin" / "seed0" / "best.pt"
    predictor = Predictor(ckpt, descriptors=tmp / "test_rows.csv")
    values, errors = predictor([g.smiles for g in test])
    assert errors == {}
    from pyg_plstm.train import load_model, predict

    model, saved = load_model(ckpt)
    expected = predict(model, test, saved["target_norm"]).double().numpy()
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    record = json.loads((tmp / "out" / "gin" / "seed0" / "result.json").read_text())
    labels = np.array([float(g.y) for g in test])
    assert float(np.sqrt(np.mean((values[:, 0] - labels) ** 2))) == pytest.approx(
        record["result"]["best"]["test"]["rmse"], rel=1e-5)


def test_predict_refuses_missing_descriptors_and_reports_molecules_missing_from_them(feature_run, capsys):
    tmp, smiles = feature_run
    ckpt = str(tmp / "out" / "gin" / "seed0" / "best.pt")
    code = main(["predict", "--checkpoint", ckpt, "--smiles", "CCO"])
    err = capsys.readouterr().err
    assert code == 2 and "trained with descriptors from a file" in err and "--descriptors" in err
    code = main(["predict", "--checkpoint", ckpt, "--smiles", "CCO", "CCN", "--descriptors",
                 str(write_descriptors(tmp / "one.csv", ["x"], key="row"))])
    out = capsys.readouterr()
    assert code == 1 and "row 1 is not in descriptor file" in out.err
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert rows[0]["log_solubility"] != "" and rows[1]["log_solubility"] == ""
