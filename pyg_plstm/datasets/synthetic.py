r"""Synthetic long-range DAG tasks: labels that depend on information many hops away.

Both tasks are built on the same random *layered* graph: layers ``0 ..
depth - 1`` of ``width`` nodes each and a single readout node ``t`` as layer
``depth``. Every edge joins consecutive layers, so every path between the two
ends has exactly ``depth`` edges: a message-passing network needs ``depth``
layers to connect them (about ``depth / 2`` when it may pool intermediate nodes
of an undirected graph), while one pLSTM layer sees its whole DAG ancestry.

Marks (edge feature ``1``; all other edges ``0``) thread ``width`` disjoint
*chains* through the layers: between consecutive layers the marked edges form
a random bijection, and ``t`` marks one of its ``width`` in-edges. Every node
but the sources has exactly one marked in-edge and no two chains merge, so
every chain stays a candidate until its very end: only ``t``'s mark, ``depth``
hops from the sources, decides which chain counts.

``"source_class"`` (gather along a marked path)
    Layer ``0`` holds the sources, each with a class in ``[0, num_classes)``,
    every class on ``width / num_classes`` of them (so the class counts say
    nothing about the label). The label is the class of the source reached
    by walking back from ``t``, the unique sink, along marked in-edges.

``"path_end"`` (which branch a marked route takes)
    The mirror image: all edges of ``"source_class"`` reversed. A start node
    ``s`` is the unique source, the sinks carry the classes, and every non-sink
    node marks exactly one *out*-edge (its pointer). The label is the class of
    the sink reached by following pointers from ``s``: the branch taken at
    ``s`` decides the answer, ``depth`` hops before it can be read.

Graph kinds: with ``kind="tree"`` the graph is the chains alone (joined at
``t``, or fanning out from ``s``), a tree; with ``kind="dag"`` every node
outside the last layer also gets up to ``max_degree - 1`` unmarked edges to
other random nodes of the next layer, so paths branch and rejoin.

Node features ``x`` (float, ``num_classes + 1`` columns): the one-hot class of
the class-carrying nodes (zeros elsewhere), then a flag marking ``t`` /
``s``. Edge features ``edge_attr``: ``[E, 1]`` marks. ``y`` is ``[1]``
(long), ``depth`` is ``[1]`` (the walk length). Node ids are shuffled, so they
carry no information. Classes are balanced: graph ``i`` of a data set has
label ``i mod num_classes``, so chance accuracy is ``1 / num_classes``.

Generation is deterministic: graph ``i`` depends only on ``(seed, i)`` and
the size arguments, so a larger data set extends a smaller one with the same
seed. Evaluating at a larger ``depth`` than used for training is the
extrapolation setting of the pLSTM paper.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Union

import numpy as np
import torch
from torch_geometric.data import Data

from pyg_plstm.dag import ToDAG

__all__ = ["TASKS", "KINDS", "long_range_graph", "long_range_dataset", "marked_walk", "permutations",
           "path_permutation_graph", "path_permutation", "path_parity"]

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


def _check_layout(width: int, kind: str, max_degree: int) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown graph kind {kind!r}; choose one of {KINDS}")
    _check_int("width", width, 1)
    _check_int("max_degree", max_degree, 1)


def _check_args(task: str, width: int, num_classes: int, kind: str, max_degree: int) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {TASKS}")
    _check_layout(width, kind, max_degree)
    _check_int("num_classes", num_classes, 2)
    if width % num_classes:
        raise ValueError(f"`width` ({width}) must be a multiple of `num_classes` ({num_classes}) so that every "
                         "class sits on equally many sources")


def _layer_edges(rng: np.random.Generator, lower: np.ndarray, upper: np.ndarray, kind: str,
                 max_degree: int) -> tuple[list[tuple[int, int]], list[bool]]:
    """Edges from ``lower`` to the next layer ``upper`` (same size) and their marks:
    a random marked bijection, plus unmarked extras for ``kind="dag"``."""
    chain = rng.permutation(upper)
    edges = list(zip(lower.tolist(), chain.tolist()))
    marks = [True] * len(edges)
    if kind == "dag":
        for u, w in zip(lower.tolist(), chain.tolist()):
            others = upper[upper != w]
            extra = min(int(rng.integers(0, max_degree)), others.size)
            edges.extend((u, int(v)) for v in rng.choice(others, size=extra, replace=False))
            marks.extend([False] * extra)
    return edges, marks


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

    edges_np, marked, walk = _marked_chains(rng, depth, width, kind, max_degree)
    readout, node = depth * width, walk[0]  # the source that carries the label
    # Balanced classes on the sources; swapping keeps the arrangement uniform given the label.
    classes = rng.permutation(np.arange(width) % num_classes)
    holder = int(np.flatnonzero(classes == label)[0])
    classes[holder], classes[node] = classes[node], label  # layer 0 holds nodes 0 .. width - 1

    x = np.zeros((readout + 1, num_classes + 1), dtype=np.float32)
    x[np.arange(width), classes] = 1.0
    x[readout, num_classes] = 1.0
    if task == "path_end":
        edges_np = edges_np[::-1]
    return _shuffled_graph(x, edges_np, marked, label, depth, rng)


def _shuffled_graph(x: np.ndarray, edges: np.ndarray, marked: np.ndarray, label: int, depth: int,
                    rng: np.random.Generator) -> Data:
    """The graph with its node ids shuffled (so that no model can read the layout from them)."""
    perm = rng.permutation(x.shape[0])
    x_perm = np.empty_like(x)
    x_perm[perm] = x
    return Data(
        x=torch.from_numpy(x_perm),
        edge_index=torch.from_numpy(perm[edges]).long(),
        edge_attr=torch.from_numpy(marked.astype(np.float32)).unsqueeze(-1),
        y=torch.tensor([label], dtype=torch.long),
        depth=torch.tensor([depth], dtype=torch.long),
        num_nodes=x.shape[0],
    )


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
        width: nodes per layer, a multiple of ``num_classes``.
        num_classes: number of classes (chance accuracy ``1 / num_classes``).
        kind: ``"dag"`` or ``"tree"``.
        max_degree: largest out-degree of a node outside the last layer (``"dag"`` only).
        seed: graph ``i`` is drawn from ``numpy.random.default_rng([seed, i])``.
        prepare: return :class:`~pyg_plstm.DAGData` made by
            ``ToDAG(directed=True)`` (edge directions kept) instead of plain ``Data``.
    """
    _check_args(task, width, num_classes, kind, max_degree)
    return _draw_graphs(num_graphs, depth, num_classes, seed, prepare, lambda d, label, rng: long_range_graph(
        task, d, label, rng, width=width, num_classes=num_classes, kind=kind, max_degree=max_degree))


def _draw_graphs(num_graphs: int, depth: Depth, num_classes: int, seed: int, prepare: bool,
                 make_graph: Callable[[int, int, np.random.Generator], Data]) -> list[Data]:
    """Graph ``i`` = ``make_graph(walk depth, label i mod num_classes, rng)`` with its own
    ``default_rng([seed, i])`` (so data sets are prefix-stable), optionally prepared by
    ``ToDAG(directed=True)``."""
    _check_int("num_graphs", num_graphs, 1)
    _check_int("seed", seed, 0)
    lo, hi = _depth_range(depth)
    to_dag = ToDAG(directed=True) if prepare else None
    graphs = []
    for i in range(num_graphs):
        rng = np.random.default_rng([seed, i])
        graph = make_graph(int(rng.integers(lo, hi + 1)), i % num_classes, rng)
        graphs.append(to_dag(graph) if to_dag is not None else graph)
    return graphs


def marked_walk(data: Data) -> list[int]:
    """Columns of ``edge_index`` on the walk that defines the label, in the
    direction of the edges (from the labelled source to ``t``, or from ``s``
    to the labelled sink)."""
    src, dst = data.edge_index.tolist()
    flagged = data.x[:, -1].nonzero().flatten()
    if flagged.numel() != 1:
        raise ValueError(f"expected exactly one flagged readout/start node, got {flagged.numel()}")
    marked = [e for e, m in enumerate(data.edge_attr[:, 0].tolist()) if m == 1.0]
    node = int(flagged)
    if node in src:  # path_end: follow pointers forward from s
        step = {src[e]: e for e in marked}
        walk = []
        while node in step:
            walk.append(step[node])
            node = dst[step[node]]
        return walk
    step = {dst[e]: e for e in marked}  # source_class: walk back from t
    walk = []
    while node in step:
        walk.append(step[node])
        node = src[step[node]]
    return walk[::-1]


# State tracking ------------------------------------------------------------

MAX_DEGREE_PERMUTATIONS = 6  # 720 classes; S_7 would be 5040 one-hot columns per node


def permutations(degree: int) -> list[tuple[int, ...]]:
    """The elements of :math:`S_{degree}` in the order :func:`path_permutation`
    numbers them (``itertools.permutations``, lexicographic; ``0`` is the
    identity). A tuple ``p`` maps ``i`` to ``p[i]``."""
    _check_int("degree", degree, 2)
    if degree > MAX_DEGREE_PERMUTATIONS:
        raise ValueError(f"`degree` must be at most {MAX_DEGREE_PERMUTATIONS} ({math.factorial(degree)} classes "
                         f"would be one-hot encoded on every node), got {degree}")
    return list(itertools.permutations(range(degree)))


def _marked_chains(rng: np.random.Generator, depth: int, width: int, kind: str,
                   max_degree: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The layered graph of :func:`long_range_graph` (edges ``[2, E]``, marks ``[E]``)
    and the marked walk into the readout ``depth * width``, as nodes from layer 0 on."""
    layers = np.arange(depth * width).reshape(depth, width)
    readout = depth * width
    edges, marks = [], []
    for i in range(depth - 1):
        layer_edges, layer_marks = _layer_edges(rng, layers[i], layers[i + 1], kind, max_degree)
        edges += layer_edges
        marks += layer_marks
    chosen = int(rng.integers(width))
    edges += [(int(u), readout) for u in layers[-1]]
    marks += [j == chosen for j in range(width)]
    edges_np, marked = np.array(edges).T, np.array(marks)
    pointer = np.full(readout + 1, -1)
    pointer[edges_np[1, marked]] = edges_np[0, marked]
    walk, node = [], int(pointer[readout])
    while node >= 0:
        walk.append(node)
        node = int(pointer[node])
    return edges_np, marked, walk[::-1]


def path_permutation_graph(
    depth: int,
    label: int,
    rng: np.random.Generator,
    degree: int = 3,
    width: int = 4,
    kind: str = "dag",
    max_degree: int = 2,
) -> Data:
    r"""One graph of :func:`path_permutation` whose label is element ``label``
    of :func:`permutations` ``(degree)``.

    Returns a directed :class:`~torch_geometric.data.Data` (not yet prepared
    with :class:`~pyg_plstm.ToDAG`).
    """
    elements = permutations(degree)
    _check_layout(width, kind, max_degree)
    _check_int("depth", depth, 1)
    num_classes = len(elements)
    if not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
        raise ValueError(f"`label` must be an integer in [0, {num_classes}), got {label!r}")

    edges, marked, walk = _marked_chains(rng, depth, width, kind, max_degree)
    readout = depth * width
    carried = rng.integers(num_classes, size=readout)  # walk and distractor nodes alike
    # Replace the first element by the one that makes the product `label`: given
    # the label, the walk's elements stay uniformly distributed.
    later = np.arange(degree)
    for node in walk[1:]:
        later = np.array(elements[carried[node]])[later]
    inverse = np.empty(degree, dtype=np.int64)
    inverse[later] = np.arange(degree)
    first = inverse[np.array(elements[label])]  # later[first[i]] == label[i]
    carried[walk[0]] = elements.index(tuple(first.tolist()))

    x = np.zeros((readout + 1, num_classes + 1), dtype=np.float32)
    x[np.arange(readout), carried] = 1.0
    x[readout, num_classes] = 1.0
    return _shuffled_graph(x, edges, marked, label, depth, rng)


def path_permutation(
    num_graphs: int,
    depth: Depth,
    degree: int = 3,
    width: int = 4,
    kind: str = "dag",
    max_degree: int = 2,
    seed: int = 0,
    prepare: bool = True,
) -> list[Data]:
    r"""State tracking along a marked walk: compose the permutations it carries.

    The graph is the layered graph of :func:`long_range_graph` (marked chains,
    ``t`` marking one of them; ``kind="tree"`` or ``"dag"``). *Every* node of
    layers ``0 .. depth - 1`` carries an element of the symmetric group
    :math:`S_{degree}` (one-hot over :func:`permutations`); only the
    ``depth`` nodes of the walk that ends in ``t``'s marked in-edge count,
    the others are distractors. With :math:`g_0, \dots, g_{depth-1}` the
    elements along the walk from its source, the label is the index of

    .. math::
        \pi = g_{depth-1} \circ \cdots \circ g_1 \circ g_0, \qquad
        (a \circ b)(i) = a(b(i)),

    a classification over :math:`degree!` classes (``6`` for :math:`S_3`,
    ``120`` for :math:`S_5`). :math:`S_3` is the smallest non-abelian group:
    the order of the walk matters, not only which elements it holds.

    Node features ``x`` (float, ``degree! + 1`` columns): the one-hot element
    (zeros on ``t``), then a flag on ``t``. Edge features ``edge_attr``:
    ``[E, 1]`` marks. ``y`` is ``[1]``, ``depth`` ``[1]``. Node ids are
    shuffled; graph ``i`` has label ``i mod degree!``, drawn from
    ``numpy.random.default_rng([seed, i])`` (deterministic, prefix-stable).

    Args:
        num_graphs: number of graphs.
        depth: walk length (elements on the walk), or an inclusive ``(min, max)`` range.
        degree: :math:`n` of :math:`S_n`, ``2 ..`` :data:`MAX_DEGREE_PERMUTATIONS`.
        width, kind, max_degree, seed, prepare: as for :func:`long_range_dataset`.
    """
    num_classes = len(permutations(degree))
    _check_layout(width, kind, max_degree)
    return _draw_graphs(num_graphs, depth, num_classes, seed, prepare, lambda d, label, rng: path_permutation_graph(
        d, label, rng, degree=degree, width=width, kind=kind, max_degree=max_degree))


def path_parity(
    num_graphs: int,
    depth: Depth,
    width: int = 4,
    kind: str = "dag",
    max_degree: int = 2,
    seed: int = 0,
    prepare: bool = True,
) -> list[Data]:
    """Parity along a marked walk: every node carries a bit, the label is the
    XOR of the bits on the walk (off-walk bits are distractors).

    This is :func:`path_permutation` with ``degree=2``: :math:`S_2` is the
    group of bits under XOR, element ``0`` (identity) the bit ``0`` and
    element ``1`` (the swap) the bit ``1``, so ``x[:, 1]`` is the bit,
    ``x[:, 0]`` its complement (zeros on ``t``) and ``x[:, 2]`` the flag on
    ``t``. Labels alternate ``0, 1`` with the graph index.
    """
    return path_permutation(num_graphs, depth, degree=2, width=width, kind=kind, max_degree=max_degree, seed=seed,
                            prepare=prepare)
