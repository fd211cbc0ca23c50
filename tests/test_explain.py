"""Attributions of molecular predictions: the atom map, the methods, drawing, faithfulness and the CLI."""
import csv
import importlib.util
import io
import struct
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from rdkit import Chem
from torch_geometric.data import Batch

from pyg_plstm.chem import MolToDAG
from pyg_plstm.cli import main
from pyg_plstm.explain import METHODS, deletion_curve, draw_attributions, explain_molecules, substructure_precision
from pyg_plstm.explain.attribution import OPTIONAL_PACKAGES, ExplainedOutput, atom_baseline
from pyg_plstm.explain.report import SCORE_COLUMNS, shown_prediction
from pyg_plstm.models import make_model
from pyg_plstm.train import load_model

from benchmarks.explain import KNOWN_ANSWER, aromatic_nitrogens, log_solubility, shipped_molecules, train

pytestmark = pytest.mark.usefixtures("single_thread")
#: The methods whose optional package is installed here (all of them in CI: the dev extra has Captum).
INSTALLED = [m for m in METHODS if m not in OPTIONAL_PACKAGES or importlib.util.find_spec(OPTIONAL_PACKAGES[m])]
MOLECULES = ["OC(=O)c1ccncc1", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "[Na+].[O-]C(=O)c1ccccc1", "C[C@H](N)C(=O)O"]


def tiny(name, seed=0):
    torch.manual_seed(seed)
    return make_model(name, None, 1, hidden_channels=16, num_layers=2, heads=2, node_encoder="ogb",
                      edge_encoder="ogb").eval()


@pytest.mark.parametrize("options", [{}, {"order": "input"}, {"order": "bfs"}, {"add_hs": True},
                                     {"largest_fragment": True}, {"kekulize": True, "add_hs": True}])
def test_atom_map_sends_every_node_and_edge_to_its_atom_and_bond(options):
    featurizer = MolToDAG(**options)
    for smiles in MOLECULES + [Chem.AddHs(Chem.MolFromSmiles("CCO"))]:
        graph = featurizer(smiles)
        mol, index = featurizer.atom_map(smiles)
        assert index.shape == (graph.num_nodes,) and len(set(index.tolist())) == graph.num_nodes
        # OGB's first atom feature is the atomic number - 1; the fourth the formal charge + 5.
        atoms = [mol.GetAtomWithIdx(int(i)) for i in index]
        assert graph.x[:, 0].tolist() == [a.GetAtomicNum() - 1 for a in atoms]
        assert graph.x[:, 3].tolist() == [a.GetFormalCharge() + 5 for a in atoms]
        for u, v in graph.edge_index.t().tolist():
            assert mol.GetBondBetweenAtoms(int(index[u]), int(index[v])) is not None
    if options.get("largest_fragment"):  # the sodium has no node
        mol, index = featurizer.atom_map(MOLECULES[2])
        assert 0 not in index.tolist() and mol.GetAtomWithIdx(0).GetSymbol() == "Na"


def _randomised(smiles, seed):
    """A random SMILES of the molecule and, for each of its atoms, the atom of ``Chem.MolFromSmiles(smiles)``."""
    mol = Chem.MolFromSmiles(smiles)
    Chem.rdBase.SeedRandomNumberGenerator(seed)
    text = Chem.MolToSmiles(mol, doRandom=True, canonical=False)
    return text, list(mol.GetPropsAsDict(True, True)["_smilesAtomOutputOrder"])


@pytest.mark.parametrize("name", ["plstm", "gin"])
def test_randomised_smiles_give_every_atom_and_bond_the_same_score(name):
    model = tiny(name)
    for add_hs in (False, True):
        featurizer = MolToDAG(add_hs=add_hs)
        smiles = MOLECULES[1]
        variants = list({text: order for text, order in (_randomised(smiles, seed) for seed in range(20))
                         if text != smiles}.items())[:3]
        assert len(variants) == 3
        reference, *others = explain_molecules(model, [smiles] + [text for text, _ in variants], steps=8,
                                               featurizer=featurizer)
        heavy = Chem.MolFromSmiles(smiles).GetNumAtoms()
        for (_, atom_of), other in zip(variants, others):
            assert other.prediction == pytest.approx(reference.prediction, abs=1e-6)
            assert np.allclose(other.atom_scores[:heavy], reference.atom_scores[atom_of], atol=1e-6)
            for bond in other.mol.GetBonds():
                u, v = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
                if max(u, v) >= heavy:  # a bond to a hydrogen: hydrogens of one atom are interchangeable
                    continue
                same = reference.mol.GetBondBetweenAtoms(atom_of[u], atom_of[v]).GetIdx()
                assert other.bond_scores[bond.GetIdx()] == pytest.approx(reference.bond_scores[same], abs=1e-6)


@pytest.mark.parametrize("name", ["gin", "gat", "gin-virtual"])
def test_integrated_gradients_are_complete(name):
    model = tiny(name, seed=1)
    result = explain_molecules(model, MOLECULES[1:2], steps=128)
    output = ExplainedOutput(model)
    data = Batch.from_data_list([r.graph for r in result])
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    with torch.no_grad():
        full = output(data)
        nodes = output.encode(data)
        with output.encoded_nodes(atom_baseline(nodes, data.batch)):
            no_atoms = output(data)
        set_masks(output, torch.zeros(data.edge_index.size(1)), data.edge_index, apply_sigmoid=False)
        no_bonds = output(data)
        clear_masks(output)
    for k, r in enumerate(result):
        assert r.prediction == pytest.approx(float(full[k]), abs=1e-5)
        assert r.atom_scores.sum() == pytest.approx(float(full[k] - no_atoms[k]), rel=0.03, abs=1e-3)
        assert np.nansum(r.bond_scores) == pytest.approx(float(full[k] - no_bonds[k]), rel=0.03, abs=1e-3)


def test_methods_on_smiles_molecules_and_prepared_graphs():
    model = tiny("plstm")
    model.train()
    hooks = dict(model.node_encoder._forward_hooks)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    featurizer = MolToDAG(order="input")
    graphs = [featurizer(s) for s in MOLECULES]
    for method in INSTALLED:
        options = dict(featurizer=featurizer, steps=4, epochs=3)
        from_smiles = explain_molecules(model, MOLECULES, method, batch_size=3, **options)
        # Other batches: the model is explained in eval mode (BatchNorm on its running statistics) throughout,
        # so no score depends on which molecules share a batch.
        from_graphs = explain_molecules(model, graphs, method, batch_size=2, **options)
        for a, b in zip(from_smiles, from_graphs):
            assert a.prediction == pytest.approx(b.prediction, abs=1e-6)
            assert np.allclose(a.atom_scores, b.atom_scores, atol=1e-6, equal_nan=True)
            assert np.allclose(a.bond_scores, b.bond_scores, atol=1e-6, equal_nan=True)
            assert a.signed == (method in ("integrated_gradients", "captum_integrated_gradients"))
            assert np.isfinite(a.atom_scores).all() and np.isfinite(a.bond_scores).all()
            if a.signed:  # every bond carries messages in one direction of the DAG at least
                assert (a.bond_scores != 0).all()
            if not a.signed:
                assert (a.atom_scores >= 0).all() and (a.bond_scores >= 0).all()
        if method == METHODS[0]:
            first = from_smiles
    # After GNNExplainer (whose mask PyG leaves registered as a parameter slot) gradients still reach the bonds.
    from_smiles = explain_molecules(model, MOLECULES, **options)
    assert all(np.allclose(a.bond_scores, c.bond_scores, atol=1e-6) for a, c in zip(from_smiles, first))
    from_mols = explain_molecules(model, [Chem.MolFromSmiles(s) for s in MOLECULES], **options)
    assert all(np.allclose(a.atom_scores, c.atom_scores, atol=1e-6) for a, c in zip(from_smiles, from_mols))
    # Nothing of the model changed: mode, hooks, explain masks.
    assert model.training and dict(model.node_encoder._forward_hooks) == hooks
    assert all(torch.equal(b, buffers[name]) for name, b in model.named_buffers())  # e.g. BatchNorm statistics
    assert all(getattr(m, "_edge_mask", None) is None and "_edge_mask" not in m._parameters for m in model.modules())
    # A graph without SMILES: node and edge scores only.
    bare = graphs[0].clone()
    del bare.smiles
    result = explain_molecules(model, [bare], featurizer=featurizer)[0]
    assert result.mol is None and result.node_scores.shape == (bare.num_nodes,)
    assert result.edge_scores.shape == (bare.edge_index.size(1),)
    with pytest.raises(ValueError, match="molecule 0: the graph is not what the featurizer"):
        explain_molecules(model, [MolToDAG()(MOLECULES[0]).clone()], featurizer=featurizer)
    with pytest.raises(ValueError, match="unknown target 'logS'"):
        explain_molecules(model, MOLECULES, target="logS", target_names=["log_solubility"])
    with pytest.raises(ValueError, match="`method` must be one of"):
        explain_molecules(model, MOLECULES, method="shap")
    with pytest.raises(ValueError, match="invalid SMILES 'C1CC'"):
        explain_molecules(model, ["C1CC"])
    with pytest.raises(ValueError, match="device 'meta' is not supported"):  # the model would lose its weights
        explain_molecules(model, MOLECULES, device="meta")
    assert all(p.device.type == "cpu" for p in model.parameters())


@pytest.mark.parametrize("name", ["gin", "plstm"])
def test_captum_integrated_gradients_are_complete_from_zero(name):
    pytest.importorskip("captum")
    model = tiny(name, seed=2)
    result = explain_molecules(model, MOLECULES[:2], "captum_integrated_gradients", steps=64)
    output = ExplainedOutput(model)
    data = Batch.from_data_list([r.graph for r in result])
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    with torch.no_grad():
        full = output(data)
        set_masks(output, torch.zeros(data.edge_index.size(1)), data.edge_index, apply_sigmoid=False)
        with output.encoded_nodes(torch.zeros_like(output.encode(data))):
            nothing = output(data)
        clear_masks(output)
    for k, r in enumerate(result):
        assert r.signed and np.isfinite(r.atom_scores).all() and np.isfinite(r.bond_scores).all()
        # Captum scales atoms and bonds together: the scores of both add up to the change from zero.
        total = r.atom_scores.sum() + r.bond_scores.sum()
        assert total == pytest.approx(float(full[k] - nothing[k]), rel=0.03, abs=1e-4)
        assert abs(float(full[k] - nothing[k])) > 1e-3  # the scores have something to add up to


def test_a_method_without_its_optional_package_says_what_to_install(monkeypatch, counter, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "captum", None)  # as if captum were not installed
    with pytest.raises(ImportError, match=r'needs the optional package \'captum\': pip install "pyg-plstm\[captum\]"'):
        explain_molecules(tiny("gin"), MOLECULES[:1], "captum_integrated_gradients")
    code, _, err = run(["explain", "--checkpoint", str(counter[0]), "--smiles", MOLECULES[0], "--out",
                        str(tmp_path / "out"), "--method", "captum_integrated_gradients"], capsys)
    assert code == 2 and "needs the optional package 'captum'" in err


def _png_size(image: bytes):
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", image[16:24])


def test_drawing_png_svg_and_grid(tmp_path):
    results = explain_molecules(tiny("gin"), MOLECULES, steps=4)
    png = draw_attributions(results[0], tmp_path / "one.png", size=(300, 250))
    assert _png_size(png) == (300, 250 + 56) and (tmp_path / "one.png").read_bytes() == png
    pixels = imread(io.BytesIO(png))[..., :3]
    colours = np.unique(pixels.reshape(-1, 3).round(2), axis=0)
    assert pixels.std() > 0.05 and len(colours) > 50  # drawn and coloured, not blank
    svg = draw_attributions(results, image_format="svg", columns=3, size=(200, 150))
    root = ET.fromstring(svg)
    assert root.get("width").startswith("600") and root.get("height").startswith(str(2 * 150 + 56))
    assert _png_size(draw_attributions(results, image_format="png", columns=2, size=(200, 150))) == (400, 356)
    with pytest.raises(ValueError, match="unknown image format 'jpg'"):
        draw_attributions(results, tmp_path / "grid.jpg")
    with pytest.raises(ValueError, match="2 captions for 4 molecules"):
        draw_attributions(results, captions=["a", "b"])


@pytest.fixture(scope="module", params=["gin", "plstm"])
def counter(request, tmp_path_factory):
    """A small model trained (checkpoint written by fit) to count aromatic nitrogens (labels by RDKit) on the
    first 600 shipped solubility molecules, and its molecules."""
    torch.set_num_threads(1)
    graphs = shipped_molecules(aromatic_nitrogens, limit=600)
    return train(request.param, graphs, tmp_path_factory.mktemp("count"), 6, 0, "aromatic nitrogens",
                 pooling="sum"), graphs


def test_known_answer_attributions_find_the_counted_atoms(counter):
    checkpoint, graphs = counter
    model, ckpt = load_model(checkpoint)
    held_out = [g for g in graphs[::5] if float(g.y) > 0]
    assert len(held_out) >= 10
    result = explain_molecules(model, held_out, target="aromatic nitrogens",
                               target_names=ckpt["meta"]["targets"], target_norm=ckpt["target_norm"])
    score = substructure_precision(result, KNOWN_ANSWER)
    assert score.molecules == len(held_out)
    assert score.precision >= 0.8 and score.precision > score.random + 0.5, score
    with pytest.raises(ValueError, match="invalid SMARTS"):
        substructure_precision(result, "n(")
    with pytest.raises(ValueError, match="no molecule has atoms matching"):
        substructure_precision(result, "[U]")


def test_deletion_of_top_attributed_atoms_moves_the_solubility_prediction_most(tmp_path):
    torch.set_num_threads(1)
    graphs = shipped_molecules(log_solubility, limit=300)
    model, ckpt = load_model(train("plstm", graphs, tmp_path, 3, 0, "log_solubility"))
    norm = ckpt["target_norm"]
    attributions = explain_molecules(model, graphs[::5][:40], target_norm=norm, steps=8)
    curve = deletion_curve(model, attributions, target_norm=norm, seed=0)
    assert len(curve.attributed) == len(curve.random) == 5
    assert all(a > r for a, r in zip(curve.attributed, curve.random)) and curve.ratio > 1.5, curve
    with pytest.raises(ValueError, match="`fractions` must lie in"):
        deletion_curve(model, attributions, fractions=[0.0])


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_classifier_shows_its_probability():
    item = explain_molecules(tiny("gin"), MOLECULES[:1], steps=2)[0]
    assert shown_prediction(item, binary=True) == pytest.approx(1 / (1 + np.exp(-item.prediction)))
    assert shown_prediction(item, binary=False) == item.prediction


def test_cli_explain_writes_images_index_and_scores(counter, tmp_path, capsys):
    checkpoint = str(counter[0])
    out = tmp_path / "explained"
    argv = ["explain", "--checkpoint", checkpoint, "--smiles", MOLECULES[0], "C1CC", MOLECULES[1], "--out", str(out),
            "--method", "integrated_gradients", "saliency", "--steps", "4"]
    code, _, err = run(argv, capsys)
    assert code == 1 and "row 1: refused 'C1CC'" in err
    for method in ("integrated_gradients", "saliency"):
        for row in (0, 2):
            assert _png_size((out / method / f"row{row}.png").read_bytes())[0] == 400
            ET.parse(out / method / f"row{row}.svg")
        assert not (out / method / "row1.png").exists()
    index = (out / "index.html").read_text()
    assert "integrated_gradients/row2.png" in index and "refused: invalid SMILES" in index
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SCORE_COLUMNS
    caffeine = Chem.MolFromSmiles(MOLECULES[1])
    mine = [r for r in rows if r["row"] == "2" and r["method"] == "saliency"]
    assert len(mine) == caffeine.GetNumAtoms() + caffeine.GetNumBonds()
    assert [r["symbol"] for r in mine if r["kind"] == "atom"] == [a.GetSymbol() for a in caffeine.GetAtoms()]

    code, _, err = run(argv, capsys)
    assert code == 3 and "is not empty; pass --overwrite" in err
    code, _, _ = run(argv + ["--overwrite", "--allow-invalid", "--format", "svg"], capsys)
    assert code == 0
    code, _, err = run(argv[:-2] + ["--target", "logS", "--overwrite"], capsys)
    assert code == 2 and "unknown target 'logS'" in err
    code, _, err = run(["explain", "--checkpoint", checkpoint, "--smiles", "C", "--out", checkpoint], capsys)
    assert code == 3 and "is a file" in err
