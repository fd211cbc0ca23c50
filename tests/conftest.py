import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

os.environ.setdefault("OUTDATED_IGNORE", "1")
sys.path.insert(0, os.path.dirname(__file__))

# Training helpers (tests/test_train.py, test_cli.py, test_distributed.py, test_examples.py).
SOLUBILITY_CSV = Path(__file__).parent.parent / "data" / "solubility.csv"


@pytest.fixture(autouse=True)
def data_cache_outside_home(tmp_path_factory, monkeypatch):
    """The command line processes data sets into $PYG_PLSTM_DATA, else ~/.cache/pyg_plstm: a test (or a documented
    snippet it runs) that leaves it unset must not write to the user's cache, nor read what another checkout put
    there. One folder per test session, so the tests still share what they processed."""
    monkeypatch.setenv("PYG_PLSTM_DATA", str(tmp_path_factory.getbasetemp() / "data-cache"))


@pytest.fixture
def single_thread():
    """One intra-op thread: much faster for tiny graphs on a small, busy machine (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _molecule_splits(n: int = 40, binary: bool = False) -> dict:
    from pyg_plstm.chem import from_smiles

    frame = pd.read_csv(SOLUBILITY_CSV)
    graphs = []
    for smiles, y in zip(frame.smiles, frame.log_solubility):
        try:
            graphs.append(from_smiles(smiles, y=float(y > -2) if binary else float(y)))
        except ValueError:
            continue
        if len(graphs) == n:
            break
    # Dealt round-robin (the file is sorted by solubility): every split sees both ends of the range.
    return {"train": [g for i, g in enumerate(graphs) if i % 5 < 3], "valid": graphs[3::5], "test": graphs[4::5]}


@pytest.fixture
def molecule_splits():
    """``molecule_splits(n=40, binary=False)``: the first ``n`` valid molecules of the shipped solubility set
    (label log S, or log S > -2 if ``binary``), dealt into train / valid / test (60/20/20)."""
    return _molecule_splits


@pytest.fixture
def tiny_plstm():
    """``tiny_plstm(**overrides)``: ``make_model`` arguments of a small pLSTM for OGB-featurised molecules."""
    def config(**overrides) -> dict:
        return {**dict(name="plstm", in_channels=None, out_channels=1, hidden_channels=16, num_layers=1, heads=2,
                       node_encoder="ogb", edge_encoder="ogb", dropout=0.1), **overrides}

    return config
