import filecmp
import functools
import math
import os
import os.path as osp
import subprocess
import sys
import urllib.error
import urllib.request
import warnings

import numpy as np
import pytest
import torch
import torch_geometric.io.fs
import torch_geometric.transforms as T
from ogb.utils import smiles2graph
from rdkit import Chem
from torch_geometric.loader import DataLoader
from torch_geometric.transforms import BaseTransform

from pyg_plstm.chem import MolToDAG, as_target, from_smiles
from pyg_plstm.dag import DAGData
from pyg_plstm.datasets import (
    FreeSolvDataset,
    MoleculeCSVDataset,
    MoleculeNetDataset,
    OGBMolDataset,
    SolubilityDataset,
    TUDAGDataset,
    load_dataset,
    molecules_from_csv,
    shipped_csv,
)
from pyg_plstm.datasets.processing import DownloadError, options_key
from pyg_plstm.splits import stratified_kfold

from rawdata import OGB_SMILES, SOLUBILITY, make_esol_raw, make_ogb_raw, make_tu_raw, write

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DAG_KEYS = ["x", "edge_index", "edge_attr", "dag_edge_index", "dag_input_edge", "line_index", "edge_level",
            "edge_level_rev", "multitree_mask"]


def assert_same_graph(a, b):
    for key in DAG_KEYS:
        assert torch.equal(a[key], b[key]), key


GOOD_CSV = (
    "smiles,name,y1,y2\n"
    'CCO,ethanol,1.0,2\n'
    'c1ccccc1,"benzene, the ring",-0.5,\n'
    'CC(=O)O,"acetic acid, glacial",nan,3.5\n'
)


# ---------------------------------------------------------------- CSV ingestion

def test_csv_happy_path_quoted_commas_and_missing_targets(tmp_path):
    graphs, report = molecules_from_csv(write(tmp_path / "a.csv", GOOD_CSV), target_cols=["y1", "y2"])
    assert [g.smiles for g in graphs] == ["CCO", "c1ccccc1", "CC(=O)O"]
    y = torch.cat([g.y for g in graphs])
    assert y.shape == (3, 2) and y[0].tolist() == [1.0, 2.0]
    assert math.isnan(y[1, 1]) and math.isnan(y[2, 0])
    assert report["num_missing"] == {"y1": 1, "y2": 1}
    assert report["num_failed"] == 0 and report["rows"] == [0, 1, 2]


def test_csv_missing_column_names_it_and_lists_available(tmp_path):
    path = write(tmp_path / "a.csv", GOOD_CSV)
    with pytest.raises(ValueError, match=r"column 'logS' not found .*\['smiles', 'name', 'y1', 'y2'\]"):
        molecules_from_csv(path, target_cols="logS")
    with pytest.raises(ValueError, match="column 'SMILES' not found"):
        molecules_from_csv(path, smiles_col="SMILES")


def test_csv_bad_smiles_skipped_with_one_warning_or_raised(tmp_path):
    path = write(tmp_path / "a.csv", "smiles,y\nCCO,1\nC1CC,2\nnot_a_smiles,3\nCCN,4\n")
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 rows .*row 1: invalid SMILES 'C1CC'") as record:
        graphs, report = molecules_from_csv(path, target_cols="y")
    assert len(record) == 1
    assert [g.y.item() for g in graphs] == [1.0, 4.0]
    assert report["num_failed"] == 2 and [f["row"] for f in report["failed"]] == [1, 2]
    with pytest.raises(ValueError, match=r"row 1: invalid SMILES 'C1CC'"):
        molecules_from_csv(path, target_cols="y", on_error="raise")


def test_csv_non_numeric_target_names_row_and_column(tmp_path):
    path = write(tmp_path / "a.csv", "smiles,y\nCCO,1\nCCC,abc\nCCN,inf\nCCCC,N/A\n")
    with pytest.raises(ValueError, match=r"row 1: column 'y': 'abc' is not a number"):
        molecules_from_csv(path, target_cols="y", on_error="raise")
    with pytest.warns(UserWarning, match="skipped 2 of 4"):
        graphs, report = molecules_from_csv(path, target_cols="y")
    assert [g.smiles for g in graphs] == ["CCO", "CCCC"] and math.isnan(graphs[1].y.item())
    assert "not a finite number" in report["failed"][1]["error"]


def test_csv_blank_rows_short_rows_and_duplicates(tmp_path):
    text = "smiles,y\nCCO,1\n\n,\n  ,  \nOCC,2\nCCO\nc1ccccc1,3\n"
    graphs, report = molecules_from_csv(write(tmp_path / "a.csv", text), target_cols="y")
    assert [g.smiles for g in graphs] == ["CCO", "OCC", "CCO", "c1ccccc1"]
    assert report["num_blank"] == 2
    assert math.isnan(graphs[2].y.item())  # the short row has no target cell
    assert report["num_duplicates"] == 2  # OCC and the second CCO are ethanol again
    assert report["duplicates"][0] == {"row": 3, "first_row": 0, "smiles": "CCO"}


def test_csv_encodings(tmp_path):
    text = "smiles,name,y\nCCO,éthanol,1\n"
    latin = write(tmp_path / "latin.csv", text, encoding="latin-1")
    with pytest.warns(UserWarning, match="not valid UTF-8; read it as latin-1"):
        graphs, _ = molecules_from_csv(latin, target_cols="y")
    assert len(graphs) == 1
    with pytest.raises(ValueError, match=r"cannot decode .*latin\.csv as utf-8"):
        molecules_from_csv(latin, target_cols="y", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown encoding"):
        molecules_from_csv(latin, encoding="no-such-codec")
    bom = write(tmp_path / "bom.csv", "\ufeff" + text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(molecules_from_csv(bom, target_cols="y")[0]) == 1


def test_a_csv_with_a_nul_byte_is_refused_naming_the_line_and_utf16_files_are_read(tmp_path):
    # pandas before 3.0 (the one Python 3.10 gets) cut the cell at the NUL: 'C\x00C' was read as methane.
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"smiles,y\nCCO,1\nC\x00C,2\nCCC,3\n")
    for on_error in ("skip", "raise"):
        with pytest.raises(ValueError, match=r"nul\.csv: line 3 holds a NUL byte"):
            molecules_from_csv(str(nul), target_cols="y", on_error=on_error)
    # UTF-16 text is full of NUL bytes; with its encoding named it is read as usual.
    wide = write(tmp_path / "wide.csv", "smiles,y\nCCO,1\nCCC,3\n", encoding="utf-16")
    graphs, _ = molecules_from_csv(wide, target_cols="y", encoding="utf-16")
    assert [g.smiles for g in graphs] == ["CCO", "CCC"]
    with pytest.raises(ValueError, match="NUL byte.*UTF-16"):
        molecules_from_csv(wide, target_cols="y")


def test_csv_malformed_files(tmp_path):
    with pytest.raises(ValueError, match="is empty"):
        molecules_from_csv(write(tmp_path / "empty.csv", ""))
    with pytest.raises(ValueError, match="no molecule left out of 0 rows"):
        molecules_from_csv(write(tmp_path / "header.csv", "smiles,y\n"))
    with pytest.raises(ValueError, match="cannot parse .* as CSV"):
        molecules_from_csv(write(tmp_path / "wide.csv", "smiles,y\nCCO,1\nCCO,1,2,3\n"))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no molecule left out of 2 rows .2 failed"):
        molecules_from_csv(write(tmp_path / "bad.csv", "smiles\nXx\nC1CC\n"))
    with pytest.raises(FileNotFoundError):
        molecules_from_csv(str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="on_error"):
        molecules_from_csv(write(tmp_path / "a.csv", GOOD_CSV), on_error="ignore")


# ---------------------------------------------------------------- CSV data set

def test_csv_dataset_processing_cache_and_reprocessing(tmp_path, monkeypatch):
    csv = write(tmp_path / "a.csv", GOOD_CSV)
    root = str(tmp_path / "ds")
    ds = MoleculeCSVDataset(root, csv, "smiles", ["y1", "y2"])
    assert len(ds) == 3 and isinstance(ds[0], DAGData) and ds[1].y.shape == (1, 2)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.y.shape == (3, 2) and batch.num_graphs == 3

    # Same options: loaded, not processed again.
    def fail(self):
        raise AssertionError("re-processed although nothing changed")

    with monkeypatch.context() as m:
        m.setattr(MoleculeCSVDataset, "process", fail)
        again = MoleculeCSVDataset(root, csv, "smiles", ["y1", "y2"])
    assert again.key == ds.key and torch.equal(again[1].x, ds[1].x)

    # Any change of the options or of the file: processed again, in its own directory.
    other = MoleculeCSVDataset(root, csv, "smiles", ["y1", "y2"], featurizer=MolToDAG(order="input"))
    assert other.key != ds.key
    assert torch.equal(other[0].x, from_smiles("CCO", order="input").x)
    assert MoleculeCSVDataset(root, csv, "smiles", ["y1"]).key not in (ds.key, other.key)
    dropped = MoleculeCSVDataset(root, csv, "smiles", ["y1", "y2"], pre_transform=_drop_smiles)
    assert dropped.key != ds.key and "smiles" not in dropped[0]
    assert MoleculeCSVDataset(root, csv, "smiles", ["y1", "y2"], pre_filter=lambda d: d.num_nodes > 3).key \
        != MoleculeCSVDataset(root, csv, "smiles", ["y1", "y2"], pre_filter=lambda d: d.num_nodes > 2).key
    write(tmp_path / "a.csv", GOOD_CSV + "CCCC,butane,4,4\n")
    assert len(MoleculeCSVDataset(root, csv, "smiles", ["y1", "y2"])) == 4
    assert len(os.listdir(osp.join(root, "processed"))) == 7


def _drop_smiles(data):
    del data.smiles
    return data


# Processing killed outright (kill -9) in the middle of writing the processed graphs.
KILLED_SAVE = """
import os, signal, sys, torch
from pyg_plstm.datasets import MoleculeCSVDataset

def killed(obj, f, *args, **kwargs):
    f = open(f, "wb") if isinstance(f, (str, os.PathLike)) else f
    f.write(b"half a data set")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = killed
MoleculeCSVDataset(sys.argv[1], sys.argv[2], "smiles", ["y1", "y2"])
"""


def test_processing_killed_or_failing_mid_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    csv, root = write(tmp_path / "a.csv", GOOD_CSV), tmp_path / "ds"
    killed = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(root), csv], timeout=120, capture_output=True,
                            env={**os.environ, "OUTDATED_IGNORE": "1"})
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    (processed,) = (root / "processed").iterdir()
    assert len(list(processed.iterdir())) == 1  # the kill's half-written temporary file, under another name
    ds = MoleculeCSVDataset(str(root), csv, "smiles", ["y1", "y2"])  # never read: processed again
    assert len(ds) == 3 and sorted(os.listdir(processed)) == ["data.pt", "report.json"]

    def failing(obj, f, *args, **kwargs):
        f.write(b"half a data set")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(OSError, match="No space left"):
        MoleculeCSVDataset(str(root), csv, "smiles", ["y1", "y2"], force_reload=True)
    assert sorted(os.listdir(processed)) == ["data.pt", "report.json"]


def test_processed_files_load_with_weights_only(tmp_path):
    ds = MoleculeCSVDataset(str(tmp_path / "ds"), write(tmp_path / "a.csv", GOOD_CSV), target_cols="y1")
    out = torch.load(ds.processed_paths[0], weights_only=True)
    assert out[2] is DAGData and isinstance(out[0], dict)


def test_csv_dataset_splits(tmp_path):
    rows = SOLUBILITY.iloc[:60]
    csv = tmp_path / "s.csv"
    rows.to_csv(csv, index=False)
    ds = MoleculeCSVDataset(str(tmp_path / "ds"), str(csv), target_cols="log_solubility")
    for method in ("scaffold", "random"):
        split = ds.get_idx_split(method)
        assert sorted(torch.cat(list(split.values())).tolist()) == list(range(len(ds)))
    assert torch.equal(ds.get_idx_split()["test"], ds.get_idx_split("scaffold")["test"])
    with pytest.raises(ValueError, match="no split column"):
        ds.get_idx_split("file")


# ---------------------------------------------------------------- shipped data sets

@pytest.fixture(scope="module")
def solubility(tmp_path_factory):
    with pytest.warns(UserWarning, match="skipped 4 of 1282 rows"):
        return SolubilityDataset(str(tmp_path_factory.mktemp("solubility")))


def test_solubility_dataset(solubility):
    ds = solubility
    assert len(ds) == 1278 and ds.report["num_duplicates"] == 8
    assert ds[0].smiles == "CCCCC" and ds[0].y.item() == pytest.approx(-3.18)
    split = ds.get_idx_split()
    assert len(split["train"]) + len(split["valid"]) == 1025  # the file's train rows
    assert len(split["test"]) == 257 - 4  # the invalid SMILES are all test rows
    assert torch.equal(split["test"], torch.arange(1025, 1278))
    assert set(split["train"].tolist()).isdisjoint(split["valid"].tolist())
    assert len(split["valid"]) == round(0.1 * 1025)
    loaded = load_dataset("solubility", ds.root)
    assert len(loaded) == len(ds) and loaded.key == ds.key


def test_freesolv_dataset(tmp_path):
    ds = FreeSolvDataset(str(tmp_path), featurizer=MolToDAG(features="pyg"))
    assert len(ds) == 642 and ds.report["num_failed"] == 0
    split = ds.get_idx_split()
    assert [len(split[k]) for k in ("train", "valid", "test")] == [513, 64, 65]


def test_shipped_copies_match_repository_data():
    for name in ("solubility", "freesolv"):
        path = shipped_csv(name)
        assert osp.isfile(path)
        repo_copy = osp.join(REPO, "data", f"{name}.csv")
        assert filecmp.cmp(path, repo_copy, shallow=False)
    with pytest.raises(ValueError, match="no shipped data set"):
        shipped_csv("tox21")


def test_load_dataset_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'qm9'"):
        load_dataset("qm9", str(tmp_path))


# ---------------------------------------------------------------- OGB, offline

def test_ogb_offline(tmp_path, monkeypatch):
    labels = np.linspace(-3, 1, len(OGB_SMILES))
    make_ogb_raw(str(tmp_path), OGB_SMILES, labels)
    ds = OGBMolDataset("ogbg-molesol", root=str(tmp_path))
    assert len(ds) == len(OGB_SMILES) and ds.num_tasks == 1
    for i, smiles in enumerate(OGB_SMILES):
        assert ds[i].smiles == smiles
        assert ds[i].y.dtype == torch.float and ds[i].y.item() == pytest.approx(labels[i])
        # OGB's features in canonical order are exactly what from_smiles produces.
        assert_same_graph(ds[i], from_smiles(smiles))
    split = ds.get_idx_split()
    assert split["test"].tolist() == [20, 21, 22] and len(split["train"]) == 17
    out = torch.load(ds.processed_paths[0], weights_only=True)
    assert isinstance(out[0], dict)
    with monkeypatch.context() as m:
        m.setattr(OGBMolDataset, "process", lambda self: pytest.fail("re-processed"))
        assert isinstance(OGBMolDataset("ogbg-molesol", root=str(tmp_path))[0], DAGData)

    raw = OGBMolDataset("ogbg-molesol", root=str(tmp_path), order="input")
    assert torch.equal(raw[0].x, torch.from_numpy(smiles2graph(OGB_SMILES[0])["node_feat"]))
    batch = next(iter(DataLoader(raw[split["train"]], batch_size=8)))
    assert batch.y.shape == (8, 1)
    with pytest.raises(ValueError, match="not an OGB molecule"):
        OGBMolDataset("ogbg-ppa", root=str(tmp_path))


# ---------------------------------------------------------------- MoleculeNet, offline

def test_moleculenet_offline(tmp_path):
    make_esol_raw(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 of 11 rows"):
        ds = MoleculeNetDataset(str(tmp_path), "ESOL")
    assert len(ds) == 10 and isinstance(ds[0], DAGData)
    assert ds[3].y.item() == pytest.approx(SOLUBILITY.log_solubility.iloc[3])
    assert_same_graph(ds[3], from_smiles(SOLUBILITY.smiles.iloc[3]))
    assert ds.report["failed"][0]["row"] == 10
    assert ds.target_cols == ["measured log solubility in mols per litre"]
    assert sorted(torch.cat(list(ds.get_idx_split().values())).tolist()) == list(range(10))
    assert torch.load(ds.processed_paths[0], weights_only=True)[2] is DAGData
    assert len(load_dataset("esol", str(tmp_path))) == 10  # cached, no download


# ---------------------------------------------------------------- TU, offline

def test_tu_offline_and_kfold(tmp_path):
    smiles = [s for s in SOLUBILITY.smiles.iloc[:40] if Chem.MolFromSmiles(s).GetNumBonds() > 0][:20]
    labels = [1 if i % 3 else -1 for i in range(len(smiles))]
    make_tu_raw(str(tmp_path), "MUTAG", smiles, labels)
    ds = TUDAGDataset(str(tmp_path), "MUTAG")
    assert len(ds) == len(smiles) and isinstance(ds[0], DAGData)
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        assert ds[i].num_nodes == mol.GetNumAtoms()
        assert ds[i].dag_edge_index.size(1) == mol.GetNumBonds()
        assert bool((ds[i].dag_edge_index[0] < ds[i].dag_edge_index[1]).all())
    assert ds.y.tolist() == [int(v == 1) for v in labels]
    assert torch.load(ds.processed_paths[0], weights_only=True)[3] is DAGData

    with_attr = TUDAGDataset(str(tmp_path), "MUTAG", use_edge_attr=True)
    g = with_attr[0]
    assert g.edge_attr[g.dag_input_edge].shape == (g.dag_edge_index.size(1), g.edge_attr.size(1))
    assert g.edge_attr.size(1) > 0
    assert load_dataset("mutag", str(tmp_path)).key == ds.key

    folds = stratified_kfold(ds.y, n_splits=5, seed=0)
    assert len(folds) == 5
    batch = next(iter(DataLoader(ds[folds[0]["train"]], batch_size=4)))
    assert batch.num_graphs == 4


# ---------------------------------------------------------------- stale processed data (closures, defaults, state)

FACTOR = 2.0


def make_scale(factor):
    def scale(data):
        data.y = data.y * factor
        return data
    return scale


def scale_by_default(data, factor=3.0):
    data.y = data.y * factor
    return data


def scale_by_global(data):
    data.y = data.y * FACTOR
    return data


class Scale(BaseTransform):  # PyG's default repr, "Scale()", omits the factor
    def __init__(self, factor):
        self.factor = factor

    def forward(self, data):
        data.y = data.y * self.factor
        return data


def test_closures_defaults_globals_and_state_enter_the_processing_key(tmp_path, monkeypatch):
    csv = write(tmp_path / "a.csv", GOOD_CSV)
    root = str(tmp_path / "ds")

    def y0(pre_transform):
        ds = MoleculeCSVDataset(root, csv, target_cols="y1", pre_transform=pre_transform)
        return ds.key, ds[0].y.item()

    # Closures differing only in the captured value: reused without a word before.
    assert y0(make_scale(1.0))[1] == 1.0
    assert y0(make_scale(1000.0))[1] == 1000.0
    assert y0(make_scale(1.0)) == y0(make_scale(1.0))  # same value, same key
    assert y0(scale_by_default)[1] == 3.0
    monkeypatch.setattr(scale_by_default, "__defaults__", (4.0,))
    assert y0(scale_by_default)[1] == 4.0
    assert y0(functools.partial(scale_by_default, factor=5.0))[1] == 5.0
    assert y0(scale_by_global)[1] == 2.0
    monkeypatch.setattr(sys.modules[__name__], "FACTOR", 6.0)
    assert y0(scale_by_global)[1] == 6.0
    assert y0(Scale(7.0))[1] == 7.0
    assert y0(Scale(8.0))[1] == 8.0
    assert y0(T.Compose([Scale(2.0), Scale(4.5)]))[1] == 9.0


def test_unfingerprintable_transform_is_processed_again_each_time(tmp_path, monkeypatch):
    csv = write(tmp_path / "a.csv", GOOD_CSV)
    reference = Chem.MolFromSmiles("CCO")  # RDKit keeps its state in C++: it cannot be fingerprinted

    def same_size(data):
        data.same_size = torch.tensor([data.num_nodes == reference.GetNumAtoms()])
        return data

    calls = []
    process = MoleculeCSVDataset.process
    monkeypatch.setattr(MoleculeCSVDataset, "process", lambda self: calls.append(1) or process(self))
    for expected_calls in (1, 2):
        with pytest.warns(UserWarning, match="processing again, since the processed files cannot be matched to "
                                             "pre_transform: .*rdkit.Chem.rdchem.Mol"):
            ds = MoleculeCSVDataset(str(tmp_path / "ds"), csv, target_cols="y1", pre_transform=same_size)
        assert len(calls) == expected_calls and ds[0].same_size.item()


# ---------------------------------------------------------------- processed files are never unpickled

class Payload:
    """Unpickling this (weights_only=False) creates a directory: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


OGB_LABELS = np.linspace(-3, 1, len(OGB_SMILES))
TU_SMILES = [s for s in SOLUBILITY.smiles.iloc[:40] if Chem.MolFromSmiles(s).GetNumBonds() > 0][:20]
DATASETS = {
    "csv": (lambda root: write(root / "a.csv", GOOD_CSV),
            lambda root: MoleculeCSVDataset(str(root / "ds"), str(root / "a.csv"), target_cols="y1")),
    "moleculenet": (make_esol_raw, lambda root: MoleculeNetDataset(str(root), "ESOL")),
    "ogb": (lambda root: make_ogb_raw(str(root), OGB_SMILES, OGB_LABELS),
            lambda root: OGBMolDataset("ogbg-molesol", root=str(root))),
    "tu": (lambda root: make_tu_raw(str(root), "MUTAG", TU_SMILES, [1, -1] * 10),
           lambda root: TUDAGDataset(str(root), "MUTAG")),
}


def open_quietly(kind, root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return DATASETS[kind][1](root)


@pytest.mark.parametrize("planted", ["data.pt", "pre_transform.pt"])
@pytest.mark.parametrize("kind", DATASETS)
def test_planted_pickle_payload_is_never_executed(tmp_path, kind, planted):
    DATASETS[kind][0](tmp_path)
    first = open_quietly(kind, tmp_path)
    graphs = [first[i] for i in range(len(first))]
    marker = tmp_path / "code_ran"
    # PyG's InMemoryDataset.load falls back to weights_only=False, and its
    # Dataset._process reads pre_transform.pt with weights_only=False.
    torch.save(Payload(marker), osp.join(first.processed_dir, planted))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        again = DATASETS[kind][1](tmp_path)
    assert not marker.exists()
    messages = [str(w.message) for w in record]
    if planted == "data.pt":
        assert any("cannot use the processed files" in m and "never unpickled" in m for m in messages), messages
        assert isinstance(torch.load(again.processed_paths[0], weights_only=True)[0], dict)  # rewritten
    assert len(again) == len(graphs)
    for i, graph in enumerate(graphs):
        assert_same_graph(again[i], graph)


def test_truncated_or_foreign_processed_files_are_processed_again(tmp_path):
    csv = write(tmp_path / "a.csv", GOOD_CSV)
    ds = MoleculeCSVDataset(str(tmp_path / "ds"), csv, target_cols="y1")
    data_pt, report = ds.processed_paths
    for path, content in ((data_pt, b"PK\x03\x04 cut off"), (report, b'{"num_graphs": 3, "smi'),
                          (data_pt, None)):
        if content is None:
            torch.save({"weights": torch.zeros(2)}, path)  # loads safely, but is no data set
        else:
            with open(path, "wb") as f:
                f.write(content)
        with pytest.warns(UserWarning, match=f"cannot use the processed files in .*{ds.key}"):
            again = MoleculeCSVDataset(str(tmp_path / "ds"), csv, target_cols="y1")
        assert len(again) == 3 and again.report["num_graphs"] == 3


def test_no_temporary_files_left_behind(tmp_path):
    ds = MoleculeCSVDataset(str(tmp_path / "ds"), write(tmp_path / "a.csv", GOOD_CSV), target_cols="y1")
    assert sorted(os.listdir(ds.processed_dir)) == ["data.pt", "report.json"]


# ---------------------------------------------------------------- offline downloads

def test_offline_download_names_url_and_folder(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # PyG's and OGB's download_url
    monkeypatch.setattr(torch_geometric.io.fs, "cp", offline)  # TUDataset's download
    for name, url, folder in [("esol", "/delaney-processed.csv", tmp_path / "esol" / "raw"),
                              ("ogbg-molbace", "/bace.zip", tmp_path / "ogbg_molbace"),
                              ("MUTAG", "/MUTAG.zip", tmp_path / "MUTAG" / "raw")]:
        with pytest.raises(DownloadError) as info:
            load_dataset(name, str(tmp_path))
        message = str(info.value)
        assert isinstance(info.value, OSError) and "Temporary failure in name resolution" in message
        assert f"{url} (URLError" in message and "to work offline, put " in message
        assert message.endswith(f"into {folder}"), message


# A MoleculeNet download killed outright (kill -9) halfway through the raw CSV.
KILLED_DOWNLOAD = """
import os, signal, sys
from pyg_plstm.datasets import MoleculeNetDataset

def killed(self):
    with open(os.path.join(self.raw_dir, "delaney-processed.csv"), "w") as f:
        f.write(sys.argv[2])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

MoleculeNetDataset.download = killed
MoleculeNetDataset(sys.argv[1], "ESOL")
"""


def test_a_raw_file_of_a_killed_or_failed_download_is_never_processed(tmp_path, monkeypatch):
    make_esol_raw(tmp_path / "complete", invalid_row=False)
    text = (tmp_path / "complete" / "esol" / "raw" / "delaney-processed.csv").read_text()
    # Cut inside the last SMILES: the truncated file still parses, with a wrong last molecule.
    half = text[:text.rindex(",") + 3]
    root = tmp_path / "root"
    killed = subprocess.run([sys.executable, "-c", KILLED_DOWNLOAD, str(root), half], timeout=120,
                            capture_output=True, env={**os.environ, "OUTDATED_IGNORE": "1"})
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    raw = root / "esol" / "raw"
    assert (raw / "delaney-processed.csv").read_text() == half  # what the kill left

    def download(self):
        write(raw / "delaney-processed.csv", text)

    monkeypatch.setattr(MoleculeNetDataset, "download", download)
    ds = MoleculeNetDataset(str(root), "ESOL")  # downloaded again, not read
    assert len(ds) == 10 and [d.smiles for d in ds] == SOLUBILITY.smiles.iloc[:10].tolist()
    assert sorted(os.listdir(raw)) == ["delaney-processed.csv"]

    # A download that fails midway: its partial file is removed, a file put there by hand is kept.
    def failing(self):
        write(raw / "part.csv.gz", "half")
        raise urllib.error.URLError("connection reset")

    monkeypatch.setattr(MoleculeNetDataset, "download", failing)
    os.remove(raw / "delaney-processed.csv")
    write(raw / "notes.txt", "mine")
    with pytest.raises(DownloadError, match="connection reset"):
        MoleculeNetDataset(str(root), "ESOL", force_reload=True)
    assert sorted(os.listdir(raw)) == ["notes.txt"]


def test_ogb_folder_of_an_older_release_raises_instead_of_prompting(tmp_path):
    make_ogb_raw(str(tmp_path), OGB_SMILES, OGB_LABELS)
    os.remove(tmp_path / "ogbg_molesol" / "RELEASE_v1.txt")
    with pytest.raises(ValueError, match="holds no RELEASE_v1.txt: it is an older OGB release of ogbg-molesol"):
        OGBMolDataset("ogbg-molesol", root=str(tmp_path))  # OGB's own class calls input() here


def test_unknown_benchmark_names(tmp_path):
    with pytest.raises(ValueError, match="unknown MoleculeNet data set 'esoll'"):
        MoleculeNetDataset(str(tmp_path), "esoll")  # an AssertionError in PyG
    with pytest.raises(ValueError, match="unknown OGB data set 'ogbg-molfoo'"):
        OGBMolDataset("ogbg-molfoo", root=str(tmp_path))


# ---------------------------------------------------------------- more careless input

def test_huge_smiles_row_is_skipped_with_its_reason(tmp_path, monkeypatch):
    parse = Chem.MolFromSmiles

    def guarded_parse(text, *args, **kwargs):
        assert len(text) <= 2000, "a huge SMILES reached RDKit (it segfaults on 'C' * 20000)"
        return parse(text, *args, **kwargs)

    monkeypatch.setattr(Chem, "MolFromSmiles", guarded_parse)
    path = write(tmp_path / "a.csv", f"smiles,y\nCCO,1\n{'C' * 20000},2\nCCN,3\n")
    with pytest.warns(UserWarning, match="skipped 1 of 3 rows .*row 1: SMILES 'CCC.*20000 heavy atoms"):
        graphs, report = molecules_from_csv(path, target_cols="y")
    assert [g.smiles for g in graphs] == ["CCO", "CCN"]
    assert report["failed"][0]["row"] == 1 and "more than the limit of 2000" in report["failed"][0]["error"]


def test_csv_header_and_row_shape_mistakes(tmp_path):
    with pytest.raises(ValueError, match=r"names column\(s\) \['y'\] more than once"):
        molecules_from_csv(write(tmp_path / "dup.csv", "smiles,y,y\nCCO,1,2\n"), target_cols="y")
    with pytest.raises(ValueError, match=r"names column\(s\) \['y'\] more than once"):
        molecules_from_csv(write(tmp_path / "dup2.csv", "smiles, y,y \nCCO,1,2\n"), target_cols="y")
    # Every row one cell longer than the header: pandas made the first column the index.
    with pytest.raises(ValueError, match="is a row longer than the header"):
        molecules_from_csv(write(tmp_path / "trail.csv", "smiles,y\nCCO,1.0,\nCCC,2.0,\n"), target_cols="y")


def test_target_beyond_float32_is_a_row_error(tmp_path):
    path = write(tmp_path / "a.csv", "smiles,y\nCCO,1e39\nCCC,-3e38\n")
    with pytest.raises(ValueError, match="row 0: column 'y': '1e39' is outside the float32 range"):
        molecules_from_csv(path, target_cols="y", on_error="raise")


def test_pre_transform_must_return_the_graph(tmp_path):
    def forgets_return(data):
        data.y = data.y * 2

    with pytest.raises(TypeError, match=r"pre_transform returned NoneType for .*a\.csv, row 0"):
        MoleculeCSVDataset(str(tmp_path / "ds"), write(tmp_path / "a.csv", GOOD_CSV), target_cols="y1",
                           pre_transform=forgets_return)


def test_root_that_is_a_file_and_wrong_argument_types(tmp_path):
    csv = write(tmp_path / "a.csv", GOOD_CSV)
    with pytest.raises(NotADirectoryError, match="a.csv is a file"):
        MoleculeCSVDataset(csv, csv, target_cols="y1")
    with pytest.raises(TypeError, match="featurizer must be a pyg_plstm.chem.MolToDAG"):
        MoleculeCSVDataset(str(tmp_path / "ds"), csv, featurizer="ogb")
    with pytest.raises(ValueError, match="`num_workers` must be an integer >= 0"):
        MoleculeCSVDataset(str(tmp_path / "ds"), csv, num_workers=-1)


def test_worker_processes_give_identical_graphs_in_the_same_order(tmp_path):
    rows = SOLUBILITY.iloc[1130:1170]  # includes two of the file's invalid SMILES
    csv = tmp_path / "s.csv"
    rows.to_csv(csv, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial, serial_report = molecules_from_csv(str(csv), target_cols="log_solubility")
        parallel, parallel_report = molecules_from_csv(str(csv), target_cols="log_solubility", num_workers=2)
    assert serial_report == parallel_report and serial_report["num_failed"] == 2
    assert [g.smiles for g in parallel] == [g.smiles for g in serial]
    for a, b in zip(serial, parallel):
        assert list(a.keys()) == list(b.keys())
        for key in a.keys():
            if isinstance(a[key], torch.Tensor):
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_processing_key_is_the_same_in_another_process():
    # A key that changed per process would re-process on every run.
    code = ("import functools, torch_geometric.transforms as T\n"
            "from pyg_plstm.chem import MolToDAG, as_target\n"
            "from pyg_plstm.datasets.processing import options_key\n"
            "print(options_key(featurizer=MolToDAG(order='bfs'), pre_transform=T.Compose([T.NormalizeFeatures(),"
            " T.ToDevice('cpu')]), pre_filter=functools.partial(as_target), labels={'b', 'a', 'c'})[0])\n")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": "123", "OUTDATED_IGNORE": "1"}, check=True)
    here = options_key(featurizer=MolToDAG(order="bfs"),
                       pre_transform=T.Compose([T.NormalizeFeatures(), T.ToDevice("cpu")]),
                       pre_filter=functools.partial(as_target), labels={"b", "a", "c"})
    assert here == (other.stdout.strip(), [])


def test_worker_processes_raise_at_the_first_bad_row(tmp_path):
    path = write(tmp_path / "a.csv", "smiles,y\nCCO,1\nCCN,2\nC1CC,3\nnope,4\n")
    with pytest.raises(ValueError, match=r"a\.csv, row 2: invalid SMILES 'C1CC'"):
        molecules_from_csv(path, target_cols="y", on_error="raise", num_workers=2)
