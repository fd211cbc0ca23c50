

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
from ogb.utils import smiles2graph
from ogb.utils.features import allowable_features as ogb_vocabulary
from ogb.utils.features import atom_to_feature_vector, bond_to_feature_vector
from rdkit import Chem, rdBase
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.utils import from_rdmol as pyg_from_rdmol
from torch_geometric.utils import from_smiles as pyg_from_smiles
from torch_geometric.utils import scatter

from pyg_plstm.chem import (
    FEATURES,
    MAX_SMILES_ATOMS,
    MolToDAG,
    as_target,
    atom_order,
    count_heavy_atoms,
    from_rdmol,
    from_smiles,
    parse_smiles,
    rdkit_quiet,
    reorder_nodes,
)
from pyg_plstm.chem.convert import _features, _ranked_graph, _reorder
from pyg_plstm.dag import DAGData, ToDAG

# Aromatic, charged, chiral (tetrahedral, ring), cis/trans, salts, ring fusion.
MOLECULES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "c1ccc2ccccc2c1",
    "C[C@H](N)C(=O)O",
    "C[C@@H](O)[C@H](N)C(=O)O",
    "CC(C)C[C@H](C)c1ccc(cc1)[C@@H](C)C(=O)O",
    "F/C=C/Cl",
    "C/C=C\\C(=O)O",
    "O[C@H]1[C@H](O)[C@@H](O)[C@H](O)[C@@H](O)[C@@H]1O",
    "C[C@]12CC[C@H]3[C@@H](CC=C4C[C@@H](O)CC[C@@]34C)[C@@H]1CC[C@@H]2O",
    "CC(=O)[O-].[Na+]",
    "C[N+](C)(C)CCO.[Cl-]",
    "c1ccncc1.Cl",
    "O=S(=O)(O)c1ccc2ccccc2c1",
]

DAG_KEYS = ["x", "edge_index", "edge_attr", "dag_edge_index", "dag_input_edge", "line_index", "edge_level",
            "edge_level_rev", "multitree_mask"]


def assert_same_graph(a: DAGData, b: DAGData) -> None:
    for key in DAG_KEYS:
        assert torch.equal(a[key], b[key]), key


def random_smiles(smiles: str, n: int, seed: int = 0) -> list[str]:
    mol = Chem.MolFromSmiles(smiles)
    rdBase.SeedRandomNumberGenerator(seed)
    return [Chem.MolToSmiles(mol, doRandom=True) for _ in range(n)]


def test_ogb_features_and_layout():
    data = from_smiles("CC(=O)Oc1ccccc1C(=O)O", y=[-1.72])
    assert isinstance(data, DAGData)
    assert data.x.dtype == torch.long and data.x.shape == (13, 9)
    assert data.edge_attr.dtype == torch.long and data.edge_attr.shape == (26, 3)
    assert data.smiles == "CC(=O)Oc1ccccc1C(=O)O"
    assert data.y.dtype == torch.float and data.y.tolist() == [[pytest.approx(-1.72)]]
    # Same multiset of features as OGB's own smiles2graph.
    ref = smiles2graph(data.smiles)
    assert sorted(map(tuple, data.x.tolist())) == sorted(map(tuple, ref["node_feat"].tolist()))
    assert sorted(map(tuple, data.edge_attr.tolist())) == sorted(map(tuple, ref["edge_feat"].tolist()))
    # Edges sorted by (src, dst); the DAG points from lower to higher node index.
    key = data.edge_index[0] * data.num_nodes + data.edge_index[1]
    assert torch.equal(key, key.sort().values)
    assert bool((data.dag_edge_index[0] < data.dag_edge_index[1]).all())
    assert data.dag_edge_index.size(1) == 13


@pytest.mark.parametrize("options", [{}, {"kekulize": True}, {"add_hs": True}, {"features": "pyg"},
                                     {"largest_fragment": True}])
def test_canonical_order_is_invariant_to_smiles_spelling(options):
    conv = MolToDAG(**options)
    for smiles in MOLECULES:
        ref = conv.from_smiles(smiles)
        for variant in random_smiles(smiles, 8):
            assert_same_graph(conv.from_smiles(variant), ref)


def test_canonical_order_gives_identical_model_output():
    torch.manual_seed(0)
    atom, bond = AtomEncoder(16), BondEncoder(16)

    def model(batch):
        # A message pass over the DAG with OGB's encoders, then sum pooling.
        h = atom(batch.x)
        src, dst = batch.dag_edge_index
        msg = h[src] * bond(batch.edge_attr[batch.dag_input_edge])
        h = h + scatter(msg, dst, dim=0, dim_size=h.size(0), reduce="sum")
        return scatter(h, batch.batch, dim=0, reduce="sum")

    smiles = "CC(C)C[C@H](C)c1ccc(cc1)[C@@H](C)C(=O)O"
    graphs = [from_smiles(s) for s in [smiles, *random_smiles(smiles, 5, seed=1)]]
    out = model(next(iter(DataLoader(graphs, batch_size=len(graphs)))))
    assert torch.equal(out, out[:1].expand_as(out))


def test_input_order_keeps_atom_order_and_matches_pyg():
    smiles = "OCC(=O)c1ccccc1"
    data = from_smiles(smiles, order="input", features="pyg")
    ref = pyg_from_smiles(smiles)
    assert torch.equal(data.x, ref.x)
    assert torch.equal(data.edge_index, ref.edge_index)
    assert torch.equal(data.edge_attr, ref.edge_attr)
    ogb = from_smiles(smiles, order="input")
    assert torch.equal(ogb.x, torch.from_numpy(smiles2graph(smiles)["node_feat"]))
    # Oriented along the SMILES: the first bond is O(0) -> C(1).
    assert ogb.dag_edge_index[:, 0].tolist() == [0, 1]


def test_bfs_order():
    mol = Chem.MolFromSmiles("CCC(C)CO")
    assert atom_order(mol, "bfs", root=3).tolist() == [4, 2, 1, 0, 3, 5]
    data = from_smiles("CCC(C)CO", order="bfs", root=3)
    rank = atom_order(mol, "bfs", root=3)
    assert torch.equal(data.x[rank], from_smiles("CCC(C)CO", order="input").x)
    # Disconnected atoms are appended after the root's fragment.
    assert atom_order(Chem.MolFromSmiles("[Na+].CC[O-]"), "bfs", root=2).tolist() == [3, 1, 0, 2]
    with pytest.raises(ValueError, match="BFS root 7 is out of range"):
        from_smiles("CCO", order="bfs", root=7)


def test_options_hydrogens_and_kekulize():
    assert from_smiles("CCO", add_hs=True).num_nodes == 9
    benzene = from_smiles("c1ccccc1", kekulize=True)
    bond_types = set(benzene.edge_attr[:, 0].tolist())
    assert bond_types == {0, 1}  # OGB: SINGLE=0, DOUBLE=1, no AROMATIC=3
    assert set(from_smiles("c1ccccc1").edge_attr[:, 0].tolist()) == {3}


def test_from_rdmol_matches_from_smiles():
    for smiles in MOLECULES:
        mol = Chem.MolFromSmiles(smiles)
        assert_same_graph(from_rdmol(mol), from_smiles(smiles))
        # Explicit hydrogen atoms are folded back unless add_hs.
        assert_same_graph(from_rdmol(Chem.AddHs(mol)), from_smiles(smiles))
        assert_same_graph(from_rdmol(Chem.AddHs(mol), add_hs=True), from_smiles(smiles, add_hs=True))
    mol = Chem.MolFromSmiles("c1ccccc1")
    from_rdmol(mol, kekulize=True)
    assert mol.GetBondWithIdx(0).GetIsAromatic()  # the input is not modified
    with pytest.raises(TypeError):
        from_rdmol("CCO")


@pytest.mark.parametrize("smiles, message", [
    ("C1CC", "unclosed ring"),
    ("CC(C", "parenthes"),
    ("N(C)(C)(C)(C)C", "valence"),
    ("c1cccn1(H)", "syntax error"),
    ("CNC(NCCSCc1ncnc1C)=NC#N", "kekulize"),
    ("C C", "without spaces"),
    ("CCé", "ASCII"),
])
def test_bad_smiles_raise_value_error_quoting_them(smiles, message):
    with pytest.raises(ValueError, match=message) as info:
        from_smiles(smiles)
    assert repr(smiles) in str(info.value)


def test_no_rdkit_noise_and_log_state_restored(capfd):
    before = rdBase.LogStatus()
    for bad in ["C1CC", "N(C)(C)(C)(C)C", "Ic1c(nc(c1I)I)I"]:
        with pytest.raises(ValueError):
            from_smiles(bad)
    with rdkit_quiet():
        assert Chem.MolFromSmiles("C1CC") is None
    assert capfd.readouterr().err == ""
    assert rdBase.LogStatus() == before


@pytest.mark.parametrize("smiles", ["", "   ", "[H][H]", "[H+]"])
def test_no_heavy_atoms(smiles):
    with pytest.raises(ValueError, match="empty SMILES|no heavy atoms"):
        from_smiles(smiles)


def test_hydrogen_only_molecule_with_add_hs():
    data = from_smiles("[H][H]", add_hs=True)
    assert data.num_nodes == 2 and data.dag_edge_index.size(1) == 1


@pytest.mark.parametrize("smiles", ["C", "[Na+]", "[Cl-]", "O"])
def test_single_atom_gives_one_node_and_empty_dag(smiles):
    data = from_smiles(smiles)
    assert data.num_nodes == 1
    assert data.edge_index.shape == (2, 0) and data.dag_edge_index.shape == (2, 0)
    assert data.line_index.shape == (2, 0)


def test_fragments_kept_or_largest():
    salt = from_smiles("[Na+].[Cl-]")
    assert salt.num_nodes == 2 and salt.dag_edge_index.size(1) == 0
    acetate = from_smiles("CC(=O)[O-].[Na+]")
    assert acetate.num_nodes == 5 and acetate.dag_edge_index.size(1) == 3
    largest = from_smiles("[Na+].CC(=O)[O-]", largest_fragment=True)
    assert_same_graph(largest, from_smiles("CC(=O)[O-]"))
    # Equal-sized fragments: the choice does not depend on the spelling.
    assert_same_graph(from_smiles("[Na+].[Cl-]", largest_fragment=True),
                      from_smiles("[Cl-].[Na+]", largest_fragment=True))


def test_large_molecule_and_max_atoms():
    chain = "C" * 1000
    data = from_smiles(chain)
    assert data.num_nodes == 1000 and data.dag_edge_index.size(1) == 999
    # Canonical ranks number a chain from both ends inwards; input order runs end to end.
    assert int(data.edge_level.max()) == 499
    assert int(from_smiles(chain, order="input").edge_level.max()) == 998
    with pytest.raises(ValueError, match="1000 heavy atoms, more than the limit of 500"):
        from_smiles(chain, max_atoms=500)
    with pytest.raises(ValueError, match="9 atoms, more than max_atoms=8"):
        from_smiles("CCO", add_hs=True, max_atoms=8)


def test_targets():
    assert from_smiles("CCO").get("y") is None
    y = from_smiles("CCO", y=[1.5, None, float("nan")]).y
    assert y.shape == (1, 3) and y[0, 0] == 1.5 and math.isnan(y[0, 1]) and math.isnan(y[0, 2])
    assert from_smiles("CCO", y=2).y.shape == (1, 1)
    assert from_smiles("CCO", y=torch.tensor([1, 0])).y.dtype == torch.float


def test_batching():
    graphs = [from_smiles(s, y=[float(i)]) for i, s in enumerate(MOLECULES)]
    batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
    assert batch.y.shape == (len(graphs), 1)
    assert batch.line_index.max() < batch.dag_edge_index.size(1)
    assert batch.smiles == MOLECULES


def test_parse_smiles_and_option_validation():
    assert parse_smiles("  CCO  ").GetNumAtoms() == 3
    with pytest.raises(TypeError):
        parse_smiles(None)
    with pytest.raises(ValueError, match="feature set"):
        MolToDAG(features="morgan")
    with pytest.raises(ValueError, match="atom order"):
        MolToDAG(order="random")


# ---------------------------------------------------------------- features unchanged by the vectorisation

FIXTURE = Path(__file__).parent / "data" / "chem_features.npz"


def test_features_bit_identical_to_the_per_atom_implementation():
    # tests/data/chem_features.npz holds x / edge_index / edge_attr of 150
    # molecules (every 16th of both shipped files plus charged, chiral,
    # isotopic, radical, metal and salt cases) under 8 option sets, written by
    # the per-atom (OGB atom_to_feature_vector / PyG from_rdmol) implementation
    # before it was vectorised.
    stored = np.load(FIXTURE, allow_pickle=False)
    index = json.loads(stored["index"].tobytes())
    compared = 0
    for o, options in enumerate(index["options"]):
        conv = MolToDAG(**options)
        nodes = np.cumsum([0, *stored[f"num_nodes{o}"]])
        edges = np.cumsum([0, *stored[f"num_edges{o}"]])
        k = 0
        for smiles, ref in zip(index["smiles"], index["results"][o]):
            if "error" in ref:
                with pytest.raises(ValueError):
                    conv.graph_from_smiles(smiles)
                continue
            data, canonical = conv.graph_from_smiles(smiles, [1.0])
            expected = {
                "x": stored[f"x{o}"][nodes[k]:nodes[k + 1]],
                "edge_index": stored[f"edge_index{o}"][:, edges[k]:edges[k + 1]],
                "edge_attr": stored[f"edge_attr{o}"][edges[k]:edges[k + 1]],
            }
            for key, value in expected.items():
                assert data[key].dtype == torch.long and data[key].is_contiguous(), (smiles, options, key)
                assert torch.equal(data[key], torch.from_numpy(value.astype(np.int64))), (smiles, options, key)
            assert canonical == ref["canonical"] and data.smiles == smiles
            k += 1
            compared += 1
    assert compared == 1197


@pytest.mark.parametrize("smiles, message", [
    ("C[Fe](C)(C)(C)(C)(C)(C)(C)(C)(C)(C)C", "atom 1: degree 12 is outside PyG's feature vocabulary"),
])
def test_pyg_vocabulary_refusal_names_atom_and_property(smiles, message):
    with pytest.raises(ValueError, match=message):
        from_smiles(smiles, features="pyg")
    assert from_smiles(smiles).x[:, 2].max() == 11  # OGB: 'misc' degree


# ---------------------------------------------------------------- size guard (RDKit crashes on huge SMILES)

@pytest.fixture
def rdkit_must_not_parse(monkeypatch):
    """Fails the test if RDKit is asked to read (or write) a molecule of more than 2,000 atoms."""
    parse, write = Chem.MolFromSmiles, Chem.MolToSmiles

    def guarded_parse(text, *args, **kwargs):
        assert len(text) <= MAX_SMILES_ATOMS, "a huge SMILES reached RDKit"
        return parse(text, *args, **kwargs)

    def guarded_write(mol, *args, **kwargs):
        assert mol.GetNumAtoms() <= MAX_SMILES_ATOMS, "a huge molecule reached RDKit"
        return write(mol, *args, **kwargs)

    monkeypatch.setattr(Chem, "MolFromSmiles", guarded_parse)
    monkeypatch.setattr(Chem, "MolToSmiles", guarded_write)


def test_huge_smiles_refused_before_rdkit_reads_it(rdkit_must_not_parse):
    # "C" * 20000 segfaults inside RDKit's SMILES writer (exit 139).
    for options in [{}, {"largest_fragment": True}, {"add_hs": True}, {"largest_fragment": True, "max_atoms": 10}]:
        with pytest.raises(ValueError, match="20000 heavy atoms, more than the limit of 2000") as info:
            from_smiles("C" * 20000, **options)
        assert len(str(info.value)) < 300  # the SMILES is quoted shortened
    with pytest.raises(ValueError, match="20000 heavy atoms, more than the limit of 100 "):
        from_smiles("C" * 20000, max_atoms=100)
    with pytest.raises(ValueError, match="3000 heavy atoms, more than the limit of 2000"):
        from_smiles("c1ccccc1" * 500)
    # max_atoms drives the guard: 150 heavy atoms are refused before parsing at max_atoms=100.
    with pytest.raises(ValueError, match="150 heavy atoms, more than the limit of 100"):
        from_smiles("C(Cl)" * 75, max_atoms=100)
    assert from_smiles("C" * MAX_SMILES_ATOMS).num_nodes == MAX_SMILES_ATOMS


def test_huge_rdkit_molecule_refused_before_rdkit_writes_it(monkeypatch):
    mol = Chem.MolFromSmiles("C" * 2500)
    monkeypatch.setattr(Chem, "MolToSmiles", lambda *a, **k: pytest.fail("a huge molecule reached RDKit"))
    with pytest.raises(ValueError, match="2500 heavy atoms, more than the limit of 2000"):
        from_rdmol(mol)


def test_max_atoms_with_largest_fragment_bounds_the_fragment_not_the_mixture():
    mixture = ".".join(["C" * 60, "C" * 30])
    assert from_smiles(mixture, largest_fragment=True, max_atoms=60).num_nodes == 60
    with pytest.raises(ValueError, match="90 heavy atoms, more than the limit of 60"):
        from_smiles(mixture, max_atoms=60)


@pytest.mark.parametrize("smiles", ["[2H]OC([2H])([2H])[2H]", "[Hg]Cl", "[H]C([H])([H])Br", "c1cc[nH]c1",
                                    "[13CH3][C@H](Cl)Br", "*CC*", "[He].[H+].[Ho]", "C1CC%12CC1.C%12"])
def test_count_heavy_atoms_matches_rdkit(smiles):
    mol = Chem.MolFromSmiles(smiles)
    dummies = sum(a.GetAtomicNum() == 0 for a in mol.GetAtoms())
    assert count_heavy_atoms(smiles) == mol.GetNumHeavyAtoms() + dummies


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("options, message", [
    ({"root": -1}, "`root` must be a non-negative integer"),
    ({"root": 1.5}, "`root` must be a non-negative integer"),
    ({"add_hs": "no"}, "`add_hs` must be True or False"),
    ({"kekulize": 1}, "`kekulize` must be True or False"),
    ({"max_atoms": 0}, "`max_atoms` must be a positive integer"),
])
def test_options_are_checked(options, message):
    # add_hs="no" is truthy: it used to add hydrogens silently.
    with pytest.raises(ValueError, match=message):
        MolToDAG(**options)


@pytest.mark.parametrize("y", [float("inf"), [1.0, -math.inf], [1e39], torch.tensor([float("inf")])])
def test_infinite_targets_refused(y):
    # 1e39 is finite in float64 but inf in float32.
    with pytest.raises(ValueError, match="finite float32"):
        from_smiles("CCO", y=y)


def test_target_type_errors():
    with pytest.raises(TypeError, match="got '1.5'"):
        as_target("1.5")  # would have been read as the digits ['1', '.', '5']
    with pytest.raises(ValueError, match="numbers or None"):
        as_target(["a"])


def test_reorder_nodes_refuses_a_rank_that_is_not_a_permutation():
    x, edge_index = torch.arange(6).view(3, 2), torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="permutation of 0 .. 2"):
        reorder_nodes(x, edge_index, None, torch.tensor([0, 0, 1]))  # left a row of torch.empty garbage
    with pytest.raises(ValueError, match="permutation"):
        reorder_nodes(x, edge_index, None, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="node indices outside 0 .. 2"):
        reorder_nodes(x, torch.tensor([[0, 3]]).t(), None, torch.tensor([2, 0, 1]))
    out_x, out_edges, _ = reorder_nodes(x, edge_index, None, torch.tensor([2, 0, 1]))
    assert out_x.tolist() == [[2, 3], [4, 5], [0, 1]] and out_edges.tolist() == [[0, 2], [1, 0]]


# ---------------------------------------------------------------- fast path vs the reference path

def shipped_smiles() -> list[str]:
    out = []
    for name in ("solubility.csv", "freesolv.csv"):
        with open(Path(__file__).parent.parent / "data" / name, newline="") as f:
            out += [row["smiles"] for row in csv.DictReader(f)]
    return out


def assert_identical(a: DAGData, b: DAGData) -> None:
    """Same attributes in the same order, tensors equal with equal dtypes."""
    assert list(a.keys()) == list(b.keys())
    for key in b.keys():
        if isinstance(b[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("features", ["ogb", "pyg"])
def test_ranked_features_equal_the_per_column_reference(features):
    # The one-pass reader against the reference reader (one RDKit call per column and atom) and _reorder.
    step = 2 if features == "ogb" else 8
    with rdkit_quiet():
        mols = [Chem.MolFromSmiles(s) for s in shipped_smiles()[::step]]
    compared = 0
    for mol in mols:
        if mol is None:
            continue
        canonical = Chem.MolToSmiles(mol)
        mol = Chem.MolFromSmiles(canonical)
        rank = atom_order(mol).numpy()
        expected = _reorder(*_features(mol, features), rank)
        # Without the SMILES every getter is read; with it, chirality and bond stereo only where it has them.
        for smiles in (None, canonical):
            for got, want in zip(_ranked_graph(mol, rank, features, smiles), expected):
                assert got.dtype == want.dtype and np.array_equal(got, want)
        compared += 1
    assert compared > 200


def reference_graphs(conv: MolToDAG, smiles: list[str]) -> list:
    """``(ToDAG() of the molecular graph (the general preparation), canonical SMILES)``, or the
    ValueError message, per string."""
    out = []
    for text in smiles:
        try:
            graph, canonical = conv.graph_from_smiles(text, [1.5])
            out.append((ToDAG()(graph), canonical))
        except ValueError as e:
            out.append(str(e))
    return out


@pytest.mark.parametrize("options", [{}, {"features": "pyg"}, {"add_hs": True}, {"kekulize": True},
                                     {"order": "bfs", "root": 1}, {"order": "input", "largest_fragment": True}])
def test_from_smiles_and_convert_many_equal_todag_of_the_graph(options):
    conv = MolToDAG(**options)
    smiles = shipped_smiles()[:: 4 if not options else 40]
    smiles += [v for s in MOLECULES for v in random_smiles(s, 3, seed=2)]
    smiles += ["C1CC", "", "[Xe]", "C" * 3000, "C[Fe](C)(C)(C)(C)(C)(C)(C)(C)(C)(C)C", "[H][H]", "c1cccc1"]
    expected = reference_graphs(conv, smiles)
    many = conv.convert_many(smiles, [[1.5]] * len(smiles))
    assert sum(isinstance(e, str) for e in expected) >= 4
    for k, (text, want, (graph, canonical)) in enumerate(zip(smiles, expected, many)):
        if isinstance(want, str):
            assert graph is None and canonical == want
            with pytest.raises(ValueError) as raised:
                conv.from_smiles(text, 1.5)
            assert str(raised.value) == want
            continue
        assert canonical == want[1]
        assert_identical(graph, want[0])
        if k % 5 == 0:
            assert_identical(conv.from_smiles(text, 1.5), want[0])


def test_convert_many_checks_the_targets():
    with pytest.raises(ValueError, match="got 1 targets for 2 SMILES"):
        MolToDAG().convert_many(["C", "CC"], [1.0])
    (a, _), (b, _) = MolToDAG().convert_many(["CCO", "CCN"])
    assert "y" not in a and torch.equal(b.x, from_smiles("CCN").x)
    [(none, message)] = MolToDAG().convert_many(["CCO"], [float("inf")])
    assert none is None and "finite" in message


def test_the_documented_approximations_of_the_features_hold():
    # OGB's vocabulary sends what it lacks to each column's last entry, 'misc' (as smiles2graph does).
    misc = {name: len(choices) - 1 for name, choices in ogb_vocabulary.items()}
    assert from_smiles("[Fe+7]").x[0, 3] == misc["possible_formal_charge_list"]
    assert from_smiles("*CC", order="input").x[0, 0] == misc["possible_atomic_num_list"]
    assert from_smiles("[Na+]").x[0, 6] == misc["possible_hybridization_list"]
    with pytest.raises(ValueError, match="formal charge 7 is outside PyG's feature vocabulary"):
        MolToDAG(features="pyg")("[Fe+7]")
    # Isotopes are not features; a labelled hydrogen stays a node.
    for features in FEATURES:
        featurize = MolToDAG(features=features)
        assert torch.equal(featurize("[13CH4]").x, featurize("C").x)
        assert featurize("[2H]OC").num_nodes == 3 and featurize("[H]OC").num_nodes == 2


# ---------------------------------------------------------------- against an independent computation

# Stereo (tetrahedral, cis/trans, both on one atom), charges, explicit and isotopic hydrogens, radicals,
# aromatic heterocycles, salts, a metal, dative and quadruple bonds, odd valences.
ODD_MOLECULES = ["[13CH4]", "[2H]OC", "[H]OC", "[CH3]", "[CH2]C", "C->[Fe]", "N#N", "[O-][N+](=O)c1ccccc1",
                 "C[S@](=O)c1ccccc1", "F/C=C(/F)\\C=C\\F", "C[C@H]1CC[C@@H](C)CC1", "CC[C@@](C)(O)/C=C/C",
                 "[NH4+].[Cl-]", "c1cc[nH]c1", "B(O)O", "P(=O)(O)(O)O", "C=C=C", "c1ccc2c(c1)-c1ccccc1-2",
                 "[C@H](F)(Cl)Br", "C1CC1[C@@H]([2H])O", "OC[C@@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O", "C$C"]


def moleculeace_smiles() -> list[str]:
    out = []
    for path in sorted((Path(__file__).parent.parent / "data" / "moleculeace").glob("*.csv")):
        with open(path, newline="") as f:
            out += [row["smiles"] for row in csv.DictReader(f)]
    return out


def independent_graph(smiles: str, features: str, add_hs: bool, kekulize: bool) -> DAGData:
    """The documented result computed without the package's converter: the canonical SMILES read back,
    OGB's or PyG's own per-atom featurisers, nodes renumbered by RDKit's canonical ranks, ToDAG."""
    mol = Chem.MolFromSmiles(Chem.MolToSmiles(Chem.MolFromSmiles(smiles)))
    if add_hs:
        mol = Chem.AddHs(mol)
    if kekulize:
        Chem.Kekulize(mol)
    if features == "ogb":
        x = torch.tensor([atom_to_feature_vector(atom) for atom in mol.GetAtoms()], dtype=torch.long)
        bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), bond_to_feature_vector(b)) for b in mol.GetBonds()]
        edge_index = torch.tensor([[i for i, j, _ in bonds] + [j for i, j, _ in bonds],
                                   [j for i, j, _ in bonds] + [i for i, j, _ in bonds]], dtype=torch.long)
        edge_attr = torch.tensor([f for _, _, f in bonds] * 2, dtype=torch.long).view(-1, 3)
    else:
        graph = pyg_from_rdmol(mol)
        x, edge_index, edge_attr = graph.x, graph.edge_index, graph.edge_attr
    rank = torch.tensor(list(Chem.CanonicalRankAtoms(mol, breakTies=True)), dtype=torch.long)
    edge_index = rank[edge_index].view(2, -1)
    order = sorted(range(edge_index.size(1)), key=lambda e: tuple(edge_index[:, e].tolist()))
    node_of_rank = torch.empty_like(rank)
    node_of_rank[rank] = torch.arange(rank.numel())
    return ToDAG()(Data(x=x[node_of_rank], edge_index=edge_index[:, order], edge_attr=edge_attr[order]))


@pytest.mark.parametrize("features, add_hs, kekulize", [("ogb", False, False), ("pyg", False, False),
                                                        ("ogb", True, False), ("ogb", False, True)])
def test_from_smiles_equals_an_independent_computation(features, add_hs, kekulize):
    convert = MolToDAG(features=features, add_hs=add_hs, kekulize=kekulize)
    smiles = shipped_smiles()[::97] + moleculeace_smiles()[::211] + MOLECULES + ODD_MOLECULES
    smiles += [v for s in MOLECULES + ODD_MOLECULES for v in random_smiles(s, 3, seed=5)]
    compared = 0
    for text in smiles:
        with rdkit_quiet():
            if Chem.MolFromSmiles(text) is None:
                continue
        got, want = convert.from_smiles(text), independent_graph(text, features, add_hs, kekulize)
        for key in DAG_KEYS:
            assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), (text, key)
        compared += 1
    assert compared > 180


@pytest.mark.parametrize("options", [{}, {"add_hs": True}, {"kekulize": True}, {"largest_fragment": True}])
def test_a_canonical_smiles_is_read_once_and_gives_the_graph_of_every_other_spelling(options, monkeypatch):
    import pyg_plstm.chem.convert as convert_module

    reads = []
    parse = Chem.MolFromSmiles
    monkeypatch.setattr(convert_module.Chem, "MolFromSmiles",
                        lambda text, *args, **kwargs: reads.append(text) or parse(text, *args, **kwargs))
    conv = MolToDAG(**options)
    for smiles in MOLECULES + ODD_MOLECULES + ["CC(=O)[O-].[Na+]"]:
        canonical = Chem.MolToSmiles(parse(smiles))
        reads.clear()
        ref = conv.from_smiles(canonical)
        # Reading its own canonical SMILES back would give the same molecule again.
        assert reads == [canonical] or (options.get("largest_fragment") and "." in canonical), reads
        for variant in random_smiles(smiles, 4, seed=3):
            if variant == canonical:
                continue
            reads.clear()
            assert_same_graph(conv.from_smiles(variant), ref)
            assert reads[0] == variant and len(reads) == 2, reads
