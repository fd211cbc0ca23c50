"""NeuralArchitectures (enas6): decoding against lines decoded by hand, refusal of malformed lines,
the literature split, the shipped copies, and --dataset enas6 through prepare_data."""
import filecmp
import random
from pathlib import Path

import pytest
import torch

from pyg_plstm.datasets import NeuralArchitectures, dataset_class
from pyg_plstm.datasets.architectures import NUM_NODE_TYPES, architecture_graph, decode_architecture
from pyg_plstm.datasets.molecules import shipped_file

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "neural_architectures" / "final_structures6.txt"
# Line 1 of the shipped file.
FIRST = "[[1], [4, 0], [5, 0, 0], [0, 1, 1, 1], [2, 1, 1, 1, 1], [3, 0, 0, 0, 0, 1]], 0.7302"


def test_first_shipped_line_decoded_by_hand():
    assert SHIPPED.read_text().splitlines()[0] == FIRST
    num_nodes, edges, types, accuracy = decode_architecture(FIRST)
    # Input 0 (type 0), layers 1..6 (operation + 2), output 7 (type 1).
    assert num_nodes == 8 and types == [0, 3, 6, 7, 2, 4, 5, 1] and accuracy == 0.7302
    # Chain i -> i + 1; layer 3 (node 4) also reads nodes 0, 1, 2; layer 4 (node 5) nodes 0..3;
    # layer 5 (node 6) node 4; the last layer feeds the output.
    expected = {(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 4), (2, 4), (4, 5), (0, 5), (1, 5), (2, 5), (3, 5),
                (5, 6), (4, 6), (6, 7)}
    assert set(edges) == expected and len(edges) == len(expected)


def test_small_line_as_a_graph():
    graph = architecture_graph("[[5], [0, 1]], 0.5")
    # Nodes: input, layer 0 (type 7), layer 1 (type 2), output; edges 0->1, 1->2, skip 0->2, 2->3.
    assert graph.x.shape == (4, NUM_NODE_TYPES)
    assert graph.x.argmax(1).tolist() == [0, 7, 2, 1] and graph.x.sum().item() == 4
    assert graph.edge_index.t().tolist() == [[0, 1], [1, 2], [0, 2], [2, 3]]
    assert graph.y.tolist() == [[0.5]]


@pytest.mark.parametrize("line, why", [
    ("[[1], [4, 0]] 0.7", "not a Python literal"),
    ("__import__('os').system('true')", "not a Python literal"),
    ("[[1], [4, 0]]", "expected"),
    ("[[1], [4, 0]], 'high'", "accuracy"),
    ("[[1], [4, 0]], float('nan')", "not a Python literal"),
    ("[[1], [4]], 0.7", "layer 1 must be a list"),
    ("[[6], [4, 0]], 0.7", "operation type 6"),
    ("[[1], [4, 2]], 0.7", "skip flags"),
    ("[], 0.7", "non-empty"),
])
def test_malformed_lines_are_refused(line, why):
    with pytest.raises(ValueError, match=why):
        decode_architecture(line)


def test_a_malformed_line_in_a_file_names_its_number(tmp_path):
    path = tmp_path / "archs.txt"
    path.write_text(f"{FIRST}\n{FIRST}\n[[1], [9, 0]], 0.7\n")
    with pytest.raises(ValueError, match=r"archs.txt, line 3: layer 1: the operation type 9"):
        NeuralArchitectures(str(tmp_path / "root"), str(path), log=False)
    path.write_text(f"{FIRST}\n\n{FIRST}\n")
    with pytest.raises(ValueError, match=r"archs.txt, line 2: not a Python literal"):
        NeuralArchitectures(str(tmp_path / "root"), str(path), log=False)
    path.write_text("\n")
    with pytest.raises(ValueError, match="holds no architectures"):
        NeuralArchitectures(str(tmp_path / "root"), str(path), log=False)


def _small_set(tmp_path, lines):
    path = tmp_path / "archs.txt"
    path.write_text("\n".join(SHIPPED.read_text().splitlines()[:lines]) + "\n")
    return NeuralArchitectures(str(tmp_path / "root"), str(path), log=False)


def test_dataset_keeps_the_dag_as_it_is(tmp_path):
    dataset = _small_set(tmp_path, 5)
    assert len(dataset) == 5 and dataset[0].num_nodes == 8
    assert torch.equal(dataset[0].dag_edge_index, dataset[0].edge_index)  # no orientation heuristic
    assert dataset[0].x.argmax(1).tolist() == [0, 3, 6, 7, 2, 4, 5, 1]
    assert dataset.y.view(-1)[:2].tolist() == pytest.approx([0.7302, 0.7234])


def test_literature_split(tmp_path):
    dataset = _small_set(tmp_path, 60)
    split = dataset.get_idx_split(frac_valid=0.0, burn_in=10)
    order = list(range(50))
    random.Random(0).shuffle(order)  # D-VAE shuffles the lines after the burn-in
    assert split["train"].tolist() == sorted(i + 10 for i in order[:45])
    assert split["test"].tolist() == sorted(i + 10 for i in order[45:])
    assert split["valid"].numel() == 0
    carved = dataset.get_idx_split(frac_valid=0.2, seed=1, burn_in=10)
    assert torch.equal(carved["test"], split["test"]) and carved["valid"].numel() == 9
    assert sorted(carved["train"].tolist() + carved["valid"].tolist()) == split["train"].tolist()
    random_split = dataset.get_idx_split("random", seed=3)
    assert sum(v.numel() for v in random_split.values()) == 60 and min(random_split["train"]) < 10
    with pytest.raises(ValueError, match="unknown split method"):
        dataset.get_idx_split("scaffold")
    with pytest.raises(ValueError, match="burn_in"):
        dataset.get_idx_split(burn_in=60)


def test_shipped_copies_and_name():
    assert filecmp.cmp(shipped_file("final_structures6.txt", "neural_architectures"), SHIPPED, shallow=False)
    assert len(SHIPPED.read_text().splitlines()) == 20020
    assert (SHIPPED.parent / "LICENSE-D-VAE").is_file()
    assert dataset_class("ENAS6") == (NeuralArchitectures, ())


def test_prepare_data_enas6_uses_the_literature_split(tmp_path, monkeypatch):
    from pyg_plstm.train import data as train_data

    dataset = _small_set(tmp_path, 1100)
    monkeypatch.setattr("pyg_plstm.datasets.load_dataset", lambda name, root, **kwargs: dataset)
    prepared = train_data.prepare_data("enas6", tmp_path)
    assert prepared.meta["split"] == "literature" and prepared.task.type == "regression"
    assert prepared.meta["sizes"] == {"train": 81, "valid": 9, "test": 10}
    assert prepared.encoders == {"in_channels": NUM_NODE_TYPES, "edge_dim": None, "node_encoder": "linear",
                                 "edge_encoder": None}
    with pytest.raises(ValueError, match="atom-order applies to molecule sets"):
        train_data.prepare_data("enas6", tmp_path, atom_order="bfs")
