"""Fuzzing the SMILES/CSV ingestion path: any input gives graphs or a ValueError, nothing else."""
import os
import tempfile
import warnings

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdkit import Chem

from pyg_plstm.chem import count_heavy_atoms, from_smiles, rdkit_quiet
from pyg_plstm.dag import DAGData
from pyg_plstm.datasets import molecules_from_csv

SMILES_ALPHABET = "CNOSPFIclnosBrH[]()=#@+-.%/\\0123456789*:$ "
# Lone surrogates cannot be written to a UTF-8 file; everything else may appear.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
SMILES = st.one_of(st.text(SMILES_ALPHABET, max_size=40), TEXT)
TARGET = st.one_of(TEXT, st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["", "nan", "NA", "1e3", " 2.5 ", "-0", "1,5"]))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_graph(data: DAGData) -> None:
    assert isinstance(data, DAGData) and data.num_nodes >= 1
    assert data.dag_edge_index.size(1) * 2 == data.edge_index.size(1)


@settings(FUZZ, max_examples=200)
@given(SMILES)
def test_smiles_gives_graph_or_value_error(smiles):
    try:
        data = from_smiles(smiles)
    except ValueError as e:
        assert str(e)
    else:
        check_graph(data)


@FUZZ
@given(st.lists(st.tuples(SMILES, TARGET), min_size=1, max_size=6), st.sampled_from(["skip", "raise"]))
def test_csv_rows_give_graphs_or_value_error(rows, on_error):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzz.csv")
        with open(path, "w", encoding="utf-8", newline="") as f:
            # Every cell quoted by hand: Python 3.10's csv.writer cannot write a NUL character.
            f.writelines(",".join('"' + cell.replace('"', '""') + '"' for cell in row) + "\r\n"
                         for row in [("smiles", "y"), *rows])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                graphs, report = molecules_from_csv(path, target_cols="y", on_error=on_error)
            except ValueError as e:
                assert str(e)
                return
    for data in graphs:
        check_graph(data)
        assert data.y.shape == (1, 1)
    assert report["num_graphs"] + report["num_failed"] == report["num_rows"] == len(rows) - report["num_blank"]


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_graphs_or_value_error(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "fuzz.csv")
        with open(path, "wb") as f:
            f.write(b"smiles,y\n" + content)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                graphs, _ = molecules_from_csv(path, target_cols="y")
            except ValueError as e:
                assert str(e)
                return
    for data in graphs:
        check_graph(data)


@settings(FUZZ, max_examples=300)
@given(st.text(SMILES_ALPHABET.replace(" ", ""), min_size=1, max_size=40))
def test_heavy_atom_count_in_the_text_matches_rdkit(smiles):
    # The size guard counts atoms in the text before RDKit may see it; the
    # count must equal what RDKit reads (so max_atoms refuses nothing it would accept).
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is not None:
        dummies = sum(a.GetAtomicNum() == 0 for a in mol.GetAtoms())
        assert count_heavy_atoms(smiles) == mol.GetNumHeavyAtoms() + dummies
