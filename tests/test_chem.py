import os

os.environ.setdefault("OUTDATED_IGNORE", "1")

import math  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder  # noqa: E402
from ogb.utils import smiles2graph  # noqa: E402
from rdkit import Chem, rdBase  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402
from torch_geometric.utils import from_smiles as pyg_from_smiles  # noqa: E402
from torch_geometric.utils import scatter  # noqa: E402

from pyg_plstm.chem import MolToDAG, atom_order, from_rdmol, from_smiles, parse_smiles, rdkit_quiet  # noqa: E402
from pyg_plstm.dag import DAGData  # noqa: E402

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
    with pytest.raises(ValueError, match="max_atoms=500"):
        from_smiles(chain, max_atoms=500)


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
