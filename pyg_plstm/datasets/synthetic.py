r"""Synthetic long-range DAG tasks: labels that depend on information many hops away.

Both tasks are built on the same random *layered* graph with ``depth + 1``
layers. Every edge joins consecutive layers, so every path between the two
ends of the graph has exactly ``depth`` edges: a message-passing network needs
``depth`` layers (about ``depth / 2`` when it may pool intermediate nodes of an
undirected graph) to connect them, while one pLSTM layer sees its whole DAG
ancestry.

Every node with in-edges marks exactly one of them (edge feature ``1``, all
other edges ``0``); following marks backwards from any node is a deterministic
walk that ends at a source. Since *every* node marks an edge, the walk that
matters is not visible locally: a node can only tell whether it lies on it by
looking at the whole chain of marks.

``"source_class"`` (gather along a marked path)
    Layer ``depth`` is a single readout node ``t``, the unique sink; layer ``0``
    holds the sources, each with a class in ``[0, num_classes)``. The label is
    the class of the source reached by walking back from ``t`` along marked
    in-edges (a walk of exactly ``depth`` edges).

``"path_end"`` (which branch a marked route takes)
    The mirror image: all edges of ``"source_class"`` reversed, so a single
    start node ``s`` is the unique source, the sinks carry classes, and every
    non-sink node marks exactly one *out*-edge (its pointer). The label is the
    class of the sink reached by following pointers from ``s``: which branch
    the route takes at every junction decides the answer.

Graph kinds: with ``kind="dag"`` every non-readout layer has ``width`` nodes
and every node links to 1 to ``max_degree`` random nodes of the next layer
(plus one extra edge into any node left without a predecessor); with
``kind="tree"`` every node has a single successor (an in-tree towards ``t``,
or an out-tree from ``s``) and the layers shrink from ``width`` nodes to one
by ``width - 1`` merges at random layers.

Node features ``x`` (float, ``num_classes + 1`` columns): the one-hot class of
the class-carrying nodes (zeros elsewhere), then a flag marking ``t`` /
``s``. Edge features ``edge_attr``: ``[E, 1]`` marks. ``y`` is ``[1]``
(long), ``depth`` is ``[1]`` (the walk length). Node ids are shuffled, so they
carry no information. Classes are balanced: graph ``i`` of a data set has
label ``i mod num_classes``, so chance accuracy is ``1 / num_classes``.

Generation is deterministic: graph ``i`` depends only on ``(seed, i)`` and
the size arguments, so a larger data set extends a smaller one with the same
seed. Evaluating at a larger ``depth`` (and ``width``) than used for training
is the extrapolation setting of the pLSTM paper.
"""
from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch_geometric.data import Data

from pyg_plstm.dag import ToDAG

__all__ = ["TASKS", "KINDS", "long_range_graph", "long_range_dataset"]

TASKS = ("source_class", "path_end")
KINDS = ("dag", "tree")

Depth = Union[int, tuple[int, int]]


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")


def _depth_range(depth: Depth) -> tuple[int, int]:
    if isinstance(depth, tuple):
        if len(depth) != 2:
            raise ValueError(f"`depth` must be an int or a (min, max) pair, got {depth!r}")
        lo, hi = depth
        _check_int("depth[0]", lo, 1)
        _check_int("depth[1]", hi, 1)
        if lo > hi:
            raise ValueError(f"`depth` range must have min <= max, got {depth!r}")
        return int(lo), int(hi)
    _check_int("depth", depth, 1)
    return int(depth), int(depth)


def _check_args(task: str, width: int, num_classes: int, kind: str, max_degree: int) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    if kind not in KINDS:
        raise ValueError(f"unknown graph kind {kind!r}; choose one of {KINDS}")
    _check_int("width", width, 1)
    _check_int("num_classes", num_classes, 2)
    _check_int("max_degree", max_degree, 1)


def _layer_sizes(rng: np.random.Generator, depth: int, width: int, kind: str) -> np.ndarray:
    """Nodes per layer ``0 .. depth``; the last layer is the single readout node."""
    if kind == "dag":
        return np.array([width] * depth + [1])
    # A tree whose leaves all sit in layer 0 needs non-increasing layers: width - 1 merges.
    drops = np.bincount(rng.integers(0, depth, size=width - 1), minlength=depth)
    return width - np.concatenate([[0], np.cumsum(drops)])


def _layer_edges(rng: np.random.Generator, lower: np.ndarray, upper: np.ndarray, kind: str,
                 max_degree: int) -> list[tuple[int, int]]:
    """Edges from layer ``lower`` to the next layer ``upper``; every node of
    ``lower`` gets a successor and every node of ``upper`` a predecessor."""
    if kind == "tree":
        # A random surjection: the first len(upper) nodes cover upper, the rest pick freely.
        order = rng.permutation(lower)
        targets = np.concatenate([rng.permutation(upper), rng.choice(upper, size=lower.size - upper.size)])
        return list(zip(order.tolist(), targets.tolist()))
    edges = []
    for u in lower.tolist():
        k = int(rng.integers(1, min(max_degree, upper.size) + 1))
        edges.extend((u, int(w)) for w in rng.choice(upper, size=k, replace=False))
    covered = {w for _, w in edges}
    edges.extend((int(rng.choice(lower)), w) for w in upper.tolist() if w not in covered)
    return edges


def long_range_graph(
    task: str,
    depth: int,
    label: int,
    rng: np.random.Generator,
    width: int = 4,
    num_classes: int = 4,
    kind: str = "dag",
    max_degree: int = 2,
) -> Data:
    """One graph of ``task`` (see the module docstring) whose label is ``label``.

    Returns a directed :class:`~torch_geometric.data.Data` (not yet prepared
    with :class:`~pyg_plstm.ToDAG`).
    """
    _check_args(task, width, num_classes, kind, max_degree)
    _check_int("depth", depth, 1)
    if not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
        raise ValueError(f"`label` must be an integer in [0, {num_classes}), got {label!r}")

    sizes = _layer_sizes(rng, depth, width, kind)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    layers = [np.arange(bounds[i], bounds[i + 1]) for i in range(depth + 1)]
    edges = np.array([e for i in range(depth) for e in _layer_edges(rng, layers[i], layers[i + 1], kind,
                                                                    max_degree)]).T
    num_nodes = int(bounds[-1])
    readout = num_nodes - 1

    # Each node with predecessors marks one in-edge uniformly at random.
    marked = np.zeros(edges.shape[1], dtype=bool)
    pointer = np.full(num_nodes, -1)
    for node, columns in _group(edges[1], num_nodes):
        column = int(rng.choice(columns))
        marked[column] = True
        pointer[node] = edges[0, column]
    node = readout
    while pointer[node] >= 0:
        node = pointer[node]
    classes = rng.integers(0, num_classes, size=sizes[0])
    classes[node] = label  # layer 0 holds nodes 0 .. sizes[0] - 1

    x = np.zeros((num_nodes, num_classes + 1), dtype=np.float32)
    x[np.arange(sizes[0]), classes] = 1.0
    x[readout, num_classes] = 1.0
    if task == "path_end":
        edges = edges[::-1]

    perm = rng.permutation(num_nodes)
    x_perm = np.empty_like(x)
    x_perm[perm] = x
    return Data(
        x=torch.from_numpy(x_perm),
        edge_index=torch.from_numpy(perm[edges]).long(),
        edge_attr=torch.from_numpy(marked.astype(np.float32)).unsqueeze(-1),
        y=torch.tensor([label], dtype=torch.long),
        depth=torch.tensor([depth], dtype=torch.long),
        num_nodes=num_nodes,
    )


def _group(keys: np.ndarray, num_groups: int) -> list[tuple[int, np.ndarray]]:
    """``(key, columns with that key)`` for every key that occurs, in key order."""
    perm = np.argsort(keys, kind="stable")
    splits = np.cumsum(np.bincount(keys, minlength=num_groups))[:-1]
    return [(k, cols) for k, cols in enumerate(np.split(perm, splits)) if cols.size]


def long_range_dataset(
    task: str,
    num_graphs: int,
    depth: Depth,
    width: int = 4,
    num_classes: int = 4,
    kind: str = "dag",
    max_degree: int = 2,
    seed: int = 0,
    prepare: bool = True,
) -> list[Data]:
    """``num_graphs`` graphs of ``task`` (see the module docstring).

    Args:
        task: ``"source_class"`` or ``"path_end"``.
        num_graphs: number of graphs; graph ``i`` has label ``i % num_classes``.
        depth: walk length, or an inclusive ``(min, max)`` range drawn uniformly per graph.
        width: nodes per layer (``kind="dag"``) or leaves (``kind="tree"``).
        num_classes: number of classes (chance accuracy ``1 / num_classes``).
        kind: ``"dag"`` or ``"tree"``.
        max_degree: largest number of random successors of a node (``"dag"`` only).
        seed: graph ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.
        prepare: return :class:`~pyg_plstm.DAGData` made by
            ``ToDAG(directed=True)`` (edge directions kept) instead of plain ``Data``.
    """
    _check_args(task, width, num_classes, kind, max_degree)
    _check_int("num_graphs", num_graphs, 1)
    _check_int("seed", seed, 0)
    lo, hi = _depth_range(depth)
    to_dag = ToDAG(directed=True) if prepare else None
    graphs = []
    for i in range(num_graphs):
        rng = np.random.default_rng([seed, i])
        graph = long_range_graph(task, int(rng.integers(lo, hi + 1)), i % num_classes, rng, width=width,
                                 num_classes=num_classes, kind=kind, max_degree=max_degree)
        graphs.append(to_dag(graph) if to_dag is not None else graph)
    return graphs

