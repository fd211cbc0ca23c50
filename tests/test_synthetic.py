"""Synthetic long-range tasks: labels recomputed with networkx, structure, determinism, errors."""
from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from pyg_plstm import DAGData
from pyg_plstm.datasets.synthetic import (
    KINDS,
    TASKS,
    long_range_dataset,
    long_range_graph,
    marked_walk,
    path_parity,
    path_permutation,
    path_permutation_graph,
    permutations,
)


def _digraph(data: Data) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(range(data.num_nodes))
    for (u, v), m in zip(data.edge_index.t().tolist(), data.edge_attr[:, 0].tolist()):
        g.add_edge(u, v, mark=m)
    return g


def _check(data: Data, task: str, kind: str, num_classes: int) -> None:
    """Recompute the label by walking the marks in networkx and check the structure claims."""
    g = _digraph(data)
    assert g.number_of_edges() == data.edge_index.size(1), "duplicate edges"
    assert nx.is_directed_acyclic_graph(g)
    x = data.x
    assert x.shape == (data.num_nodes, num_classes + 1)
    assert set(data.edge_attr.unique().tolist()) <= {0.0, 1.0}
    flagged = x[:, -1].nonzero().flatten().tolist()
    assert len(flagged) == 1
    end = flagged[0]
    depth = int(data.depth)
    # In source_class the walk goes backwards over in-edges; path_end is its mirror image.
    h = g if task == "source_class" else g.reverse()
    assert [n for n in h if h.out_degree(n) == 0] == [end]
    for n in h:
        marks = [h.edges[p, n]["mark"] for p in h.predecessors(n)]
        assert sum(marks) == (1.0 if marks else 0.0), f"node {n} must mark exactly one edge"
    # Classes sit exactly on the walk's possible endpoints, every class equally often.
    sources = {n for n in h if h.in_degree(n) == 0}
    has_class = {n for n in h if x[n, :num_classes].sum() > 0}
    assert has_class == sources
    assert all(x[n, :num_classes].sum() == 1 for n in sources)
    counts = x[sorted(sources), :num_classes].sum(0)
    assert counts.eq(counts[0]).all()
    # Marked chains never merge: each chain from a source stays its own candidate up to the end.
    assert all(sum(h.edges[n, c]["mark"] for c in h.successors(n)) <= 1 for n in h)
    for s in sources:
        node, steps = s, 0
        while True:
            nxt = [c for c in h.successors(node) if h.edges[node, c]["mark"] == 1.0]
            if not nxt:
                break
            node, steps = nxt[0], steps + 1
        assert steps == depth or (steps == depth - 1 and h.has_edge(node, end))
    node, walk = end, [end]
    while h.in_degree(node):
        node = next(p for p in h.predecessors(node) if h.edges[p, node]["mark"] == 1.0)
        walk.append(node)
    assert len(walk) == depth + 1
    assert int(data.y) == int(x[node, :num_classes].argmax())
    # marked_walk gives the same walk as edge columns, in edge direction.
    pairs = [tuple(data.edge_index[:, e].tolist()) for e in marked_walk(data)]
    expected = list(zip(walk[1:], walk[:-1]))[::-1] if task == "source_class" else list(zip(walk, walk[1:]))
    assert pairs == expected
    # Every path between the ends has the same length, so no shortcut exists.
    assert nx.dag_longest_path_length(h) == depth
    assert all(nx.shortest_path_length(h, s, end) == depth for s in sources)
    if kind == "tree":
        assert nx.is_arborescence(h.reverse())
        assert data.edge_attr.sum() == data.num_nodes - len(sources)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("kind", KINDS)
def test_labels_match_networkx_walk(task: str, kind: str) -> None:
    graphs = long_range_dataset(task, 24, (1, 7), width=6, num_classes=3, kind=kind, seed=5, prepare=False)
    for data in graphs:
        _check(data, task, kind, 3)
    assert {int(d.depth) for d in graphs} == set(range(1, 8))


@settings(max_examples=40, deadline=None)
@given(task=st.sampled_from(TASKS), kind=st.sampled_from(KINDS), depth=st.integers(1, 12),
       per_class=st.integers(1, 3), num_classes=st.integers(2, 4), max_degree=st.integers(1, 4),
       label=st.integers(0, 3), seed=st.integers(0, 2**32 - 1))
def test_labels_property(task: str, kind: str, depth: int, per_class: int, num_classes: int, max_degree: int,
                         label: int, seed: int) -> None:
    label %= num_classes
    width = per_class * num_classes
    data = long_range_graph(task, depth, label, np.random.default_rng(seed), width=width,
                            num_classes=num_classes, kind=kind, max_degree=max_degree)
    _check(data, task, kind, num_classes)
    assert int(data.y) == label


@pytest.mark.parametrize("kind", KINDS)
def test_layers_and_degrees(kind: str) -> None:
    width, depth, max_degree = 4, 6, 3
    graphs = long_range_dataset("source_class", 10, depth, width=width, max_degree=max_degree, kind=kind,
                                prepare=False)
    out_degrees = []
    for data in graphs:
        g = _digraph(data)
        assert data.num_nodes == width * depth + 1
        out_degrees += [d for _, d in g.out_degree()]
    assert max(out_degrees) == (max_degree if kind == "dag" else 1)


def test_path_end_is_mirror_of_source_class() -> None:
    a = long_range_dataset("source_class", 6, 5, kind="dag", seed=3, prepare=False)
    b = long_range_dataset("path_end", 6, 5, kind="dag", seed=3, prepare=False)
    for da, db in zip(a, b):
        assert torch.equal(da.x, db.x) and torch.equal(da.y, db.y)
        assert torch.equal(da.edge_index.flip(0), db.edge_index)
        assert torch.equal(da.edge_attr, db.edge_attr)


def _same(a: Data, b: Data) -> bool:
    return all(torch.equal(a[k], b[k]) for k in ("x", "edge_index", "edge_attr", "y", "depth"))


def test_deterministic_and_prefix_stable() -> None:
    a = long_range_dataset("source_class", 12, (2, 6), seed=7, prepare=False)
    b = long_range_dataset("source_class", 20, (2, 6), seed=7, prepare=False)
    assert all(_same(x, y) for x, y in zip(a, b))
    c = long_range_dataset("source_class", 12, (2, 6), seed=8, prepare=False)
    assert not all(_same(x, y) for x, y in zip(a, c))


def test_balanced_labels() -> None:
    graphs = long_range_dataset("path_end", 40, 3, num_classes=4, prepare=False)
    assert torch.bincount(torch.cat([d.y for d in graphs])).tolist() == [10, 10, 10, 10]


@pytest.mark.parametrize("task", TASKS)
def test_prepared_dags_keep_directions_and_batch(task: str) -> None:
    graphs = long_range_dataset(task, 8, (3, 5), seed=1)
    for data in graphs:
        assert isinstance(data, DAGData)
        assert torch.equal(data.dag_edge_index, data.edge_index)
        assert torch.equal(data.dag_input_edge, torch.arange(data.edge_index.size(1)))
        assert int(data.edge_level.max()) + 1 == int(data.depth)
    batch = next(iter(DataLoader(graphs, batch_size=8)))
    assert batch.num_graphs == 8 and batch.y.shape == (8,) and batch.depth.shape == (8,)


def test_node_ids_carry_no_position() -> None:
    # The readout node is the last one before shuffling; after it, its id varies.
    ends = {int(d.x[:, -1].nonzero()) for d in long_range_dataset("source_class", 20, 4, prepare=False)}
    assert len(ends) > 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(task="nope"), "unknown task"),
        (dict(kind="grid"), "unknown graph kind"),
        (dict(depth=0), "depth"),
        (dict(depth=(5, 3)), "min <= max"),
        (dict(depth=(1, 2, 3)), "pair"),
        (dict(width=0), "width"),
        (dict(num_classes=1), "num_classes"),
        (dict(max_degree=0), "max_degree"),
        (dict(width=6, num_classes=4), "multiple"),
        (dict(num_graphs=0), "num_graphs"),
        (dict(seed=-1), "seed"),
        (dict(depth=2.5), "depth"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    args = dict(task="source_class", num_graphs=2, depth=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        long_range_dataset(**args)


def test_bad_label() -> None:
    with pytest.raises(ValueError, match="label"):
        long_range_graph("source_class", 3, 4, np.random.default_rng(0), num_classes=4)


# State tracking: path_permutation / path_parity -----------------------------

def _walk_elements(data: Data, num_classes: int) -> list[int]:
    """Element indices on the marked walk into the flagged node, from its source,
    found in networkx; checks the claims about features and marks on the way."""
    g = _digraph(data)
    assert nx.is_directed_acyclic_graph(g)
    assert data.x.shape == (data.num_nodes, num_classes + 1)
    (end,) = data.x[:, -1].nonzero().flatten().tolist()
    assert [n for n in g if g.out_degree(n) == 0] == [end]
    one_hot = data.x[:, :num_classes]
    assert one_hot[end].sum() == 0
    assert all(one_hot[n].sum() == 1 for n in g if n != end), "every other node carries one element"
    for n in g:
        marks = [g.edges[p, n]["mark"] for p in g.predecessors(n)]
        assert sum(marks) == (1.0 if marks else 0.0)
    node, walk = end, []
    while g.in_degree(node):
        node = next(p for p in g.predecessors(node) if g.edges[p, node]["mark"] == 1.0)
        walk.append(node)
    assert len(walk) == int(data.depth)
    assert nx.dag_longest_path_length(g) == int(data.depth)
    return [int(one_hot[n].argmax()) for n in reversed(walk)]


def _compose(degree: int, indices: list[int]) -> int:
    """Index of g_last o ... o g_first, with the permutations enumerated here."""
    elements = list(itertools.permutations(range(degree)))
    product = tuple(range(degree))
    for index in indices:
        g = elements[index]
        product = tuple(g[product[i]] for i in range(degree))
    return elements.index(product)


@pytest.mark.parametrize("degree", [3, 5])
@pytest.mark.parametrize("kind", KINDS)
def test_permutation_labels_match_networkx_walk(degree: int, kind: str) -> None:
    num_classes = math.factorial(degree)
    graphs = path_permutation(30, (1, 6), degree=degree, width=3, kind=kind, seed=4, prepare=False)
    for data in graphs:
        assert int(data.y) == _compose(degree, _walk_elements(data, num_classes))
        if kind == "tree":
            assert nx.is_arborescence(_digraph(data).reverse())
    assert [int(d.y) for d in graphs] == [i % num_classes for i in range(30)]
    assert {int(d.depth) for d in graphs} == set(range(1, 7))


def test_permutation_order_matters() -> None:
    """S_3 is not abelian: for some graphs the walk composed in the other order gives another label."""
    graphs = path_permutation(30, (3, 5), degree=3, seed=2, prepare=False)
    swapped = [_compose(3, _walk_elements(d, 6)[::-1]) != int(d.y) for d in graphs]
    assert any(swapped)
    assert permutations(3)[0] == (0, 1, 2) and len(permutations(5)) == 120


@pytest.mark.parametrize("kind", KINDS)
def test_parity_is_the_xor_of_the_walk_bits(kind: str) -> None:
    graphs = path_parity(40, (1, 8), width=5, kind=kind, seed=1, prepare=False)
    for data in graphs:
        bits = _walk_elements(data, 2)  # element 1 (the swap) is the bit 1
        assert int(data.y) == sum(bits) % 2
    assert torch.bincount(torch.cat([d.y for d in graphs])).tolist() == [20, 20]
    # Distractors: off-walk nodes carry both bits, so counting ones over the graph says nothing by itself.
    totals = {int(d.x[:, 1].sum()) % 2 == int(d.y) for d in graphs}
    assert totals == {True, False}


@settings(max_examples=30, deadline=None)
@given(degree=st.integers(2, 4), kind=st.sampled_from(KINDS), depth=st.integers(1, 10), width=st.integers(1, 4),
       max_degree=st.integers(1, 3), label=st.integers(0, 23), seed=st.integers(0, 2**32 - 1))
def test_permutation_labels_property(degree: int, kind: str, depth: int, width: int, max_degree: int, label: int,
                                     seed: int) -> None:
    label %= math.factorial(degree)
    data = path_permutation_graph(depth, label, np.random.default_rng(seed), degree=degree, width=width, kind=kind,
                                  max_degree=max_degree)
    num_classes = math.factorial(degree)
    elements = _walk_elements(data, num_classes)
    assert int(data.y) == label == _compose(degree, elements)
    assert data.num_nodes == depth * width + 1
    # marked_walk finds the same walk as edge columns.
    nodes = [data.edge_index[0, e].item() for e in marked_walk(data)]
    assert [int(data.x[n, :num_classes].argmax()) for n in nodes] == elements


def test_state_tracking_deterministic_and_prepared() -> None:
    a = path_permutation(10, (2, 5), seed=7, prepare=False)
    b = path_permutation(16, (2, 5), seed=7, prepare=False)
    assert all(_same(x, y) for x, y in zip(a, b))
    c = path_permutation(10, (2, 5), seed=8, prepare=False)
    assert not all(_same(x, y) for x, y in zip(a, c))
    prepared = path_parity(6, 4, seed=3)
    for data in prepared:
        assert isinstance(data, DAGData)
        assert torch.equal(data.dag_edge_index, data.edge_index)
        assert int(data.edge_level.max()) + 1 == 4


@pytest.mark.parametrize("kwargs, match", [
    (dict(degree=1), "degree"),
    (dict(degree=7), "at most 6"),
    (dict(kind="grid"), "unknown graph kind"),
    (dict(width=0), "width"),
    (dict(depth=0), "depth"),
    (dict(max_degree=0), "max_degree"),
    (dict(num_graphs=0), "num_graphs"),
])
def test_state_tracking_bad_arguments(kwargs: dict, match: str) -> None:
    args = dict(num_graphs=2, depth=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        path_permutation(**args)
    with pytest.raises(ValueError, match="label"):
        path_permutation_graph(3, 6, np.random.default_rng(0), degree=3)
