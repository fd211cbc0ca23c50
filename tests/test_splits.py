import os.path as osp

import pandas as pd
import pytest
import torch
from sklearn.model_selection import StratifiedKFold

from pyg_plstm.splits import column_split, murcko_scaffold, random_split, scaffold_split, stratified_kfold

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
FREESOLV = pd.read_csv(osp.join(REPO, "data", "freesolv.csv"))
SOLUBILITY = pd.read_csv(osp.join(REPO, "data", "solubility.csv"))


def assert_partition(split, n):
    parts = [split[k] for k in ("train", "valid", "test")]
    assert all(p.dtype == torch.long for p in parts)
    assert sorted(torch.cat(parts).tolist()) == list(range(n))


def test_random_split_deterministic_disjoint_covering():
    a, b = random_split(101, seed=3), random_split(101, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert_partition(a, 101)
    assert [len(a[k]) for k in ("train", "valid", "test")] == [81, 10, 10]
    assert not torch.equal(random_split(101, seed=4)["test"], a["test"])
    assert_partition(random_split(7, 0.5, 0.5, 0.0), 7)
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(10, 0.8, 0.3, 0.1)


def test_scaffold_split_on_freesolv():
    smiles = FREESOLV.smiles.tolist()
    split = scaffold_split(smiles)
    assert_partition(split, len(smiles))
    again = scaffold_split(smiles)
    assert all(torch.equal(split[k], again[k]) for k in split)
    assert len(split["train"]) <= 0.8 * len(smiles)
    assert len(split["train"]) + len(split["valid"]) <= 0.9 * len(smiles)
    # Every scaffold lies in exactly one part.
    owner = {}
    for part, idx in split.items():
        for i in idx.tolist():
            assert owner.setdefault(murcko_scaffold(smiles[i]), part) == part


def test_scaffold_split_group_order_follows_hu_et_al():
    # Scaffold groups: benzene {0-3}, cyclohexane {4, 5}, pyridine {6, 7},
    # acyclic '' {8, 9}. Largest first, then ties by first index, larger
    # first: benzene, acyclic, pyridine, cyclohexane. With 10 molecules the
    # cuts are 6 (train) and 8 (train + valid).
    smiles = ["c1ccccc1C", "c1ccccc1O", "c1ccccc1N", "c1ccccc1Cl",
              "C1CCCCC1C", "C1CCCCC1O", "c1ccncc1C", "c1ccncc1O", "CCO", "CCC"]
    split = scaffold_split(smiles, 0.6, 0.2, 0.2)
    assert split["train"].tolist() == [0, 1, 2, 3, 8, 9]
    assert split["valid"].tolist() == [6, 7]
    assert split["test"].tolist() == [4, 5]
    assert murcko_scaffold("CCO") == ""


def test_column_split_on_solubility():
    labels = SOLUBILITY.split.tolist()
    split = column_split(labels)
    assert_partition(split, len(labels))
    file_test = [i for i, v in enumerate(labels) if v == "test"]
    assert split["test"].tolist() == file_test
    assert len(split["valid"]) == round(0.1 * (len(labels) - len(file_test)))
    assert all(labels[i] == "train" for i in split["valid"].tolist())
    assert torch.equal(column_split(labels)["valid"], split["valid"])
    assert not torch.equal(column_split(labels, seed=1)["valid"], split["valid"])


def test_column_split_with_valid_labels_and_errors():
    split = column_split(["Train", "VALIDATION", "test", " val ", "training"])
    assert split["train"].tolist() == [0, 4] and split["valid"].tolist() == [1, 3]
    with pytest.raises(ValueError, match="item 1: unknown split label 'holdout'"):
        column_split(["train", "holdout"])


def test_stratified_kfold_matches_sklearn_protocol():
    labels = [0] * 30 + [1] * 20 + [2] * 10
    folds = stratified_kfold(torch.tensor(labels), n_splits=10, seed=0)
    assert len(folds) == 10
    tests = torch.cat([f["test"] for f in folds])
    assert sorted(tests.tolist()) == list(range(60))
    for fold in folds:
        assert set(fold["train"].tolist()).isdisjoint(fold["test"].tolist())
        assert len(fold["train"]) + len(fold["test"]) == 60
        # Every class appears in every test fold in proportion.
        assert torch.bincount(torch.tensor(labels)[fold["test"]], minlength=3).tolist() == [3, 2, 1]
    skf = StratifiedKFold(10, shuffle=True, random_state=0)
    for fold, (_, test) in zip(folds, skf.split(labels, labels)):
        assert fold["test"].tolist() == test.tolist()
    again = stratified_kfold(labels, 10, seed=0)
    assert all(torch.equal(a["test"], b["test"]) for a, b in zip(folds, again))


@pytest.mark.parametrize("call, message", [
    (lambda: random_split(-1), "`num_items` must be an integer >= 0, got -1"),
    (lambda: random_split(10.5), "`num_items` must be an integer >= 0, got 10.5"),
    (lambda: random_split(10, seed=1.5), "`seed` must be an integer >= 0, got 1.5"),
    (lambda: column_split(["train"] * 4, seed=-2), "`seed` must be an integer >= 0, got -2"),
    (lambda: scaffold_split(["CCO", "C1CC"]), r"item 1: invalid SMILES 'C1CC'"),
])
def test_bad_arguments_are_named(call, message):
    # They used to fail inside torch (negative dimension, randperm/manual_seed type errors)
    # or name the SMILES without its position.
    with pytest.raises(ValueError, match=message):
        call()
