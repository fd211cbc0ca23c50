r"""Orientation, line graph and topological levels of a DAG.

* :func:`orient` turns an undirected graph into a DAG by a node ranking
  (``u -> v`` when ``order[u] < order[v]``), or checks a directed one.
* :func:`line_graph` lists the pairs ``(e_in, e_out)`` of DAG edges with
  ``dst(e_in) == src(e_out)``: the paths along which states flow.
* :func:`node_depth` / :func:`edge_levels` give the topological level of every
  edge in the line graph. Edge ``e = (u -> w)`` has level ``depth(u)``, the
  length of the longest path ending in ``u``, so all edges of one level are
  independent and a batch is processed one level at a time.

The work is done with NumPy arrays: per molecule this is several times faster
than issuing the same vectorised operations as torch kernels. The functions
without a docstring'd public role (``as_index_array``, ``peel_depth``, ...) are
shared by the modules of :mod:`pyg_plstm.dag` and not re-exported.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

__all__ = ["orient", "line_graph", "node_depth", "edge_levels"]

# Preparation keeps several int64 arrays of one entry per node: beyond this a
# single array needs 16 GiB, and node ids no longer fit PyG's int32 paths.
MAX_NODES = 2**31 - 1


def check_num_nodes(num_nodes: object) -> int:
    """``num_nodes`` as an int, refused when it is not a non-negative integer or too large to prepare."""
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 0:
        raise ValueError(f"`num_nodes` must be a non-negative integer, got {num_nodes!r}")
    if num_nodes > MAX_NODES:
        raise ValueError(
            f"`num_nodes` = {num_nodes} exceeds the {MAX_NODES} nodes a DAG can be prepared for (preparation keeps "
            f"per-node int64 arrays, {8 * num_nodes / 2**30:.0f} GiB each at this size)")
    return int(num_nodes)


def check_integer_index(edge_index: Tensor, name: str = "edge_index") -> None:
    """Refuse an index tensor that holds floats, complex numbers or booleans (a mask, not indices)."""
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise ValueError(f"`{name}` must hold integer node indices, got dtype {edge_index.dtype}")


def as_index_array(edge_index: Tensor | np.ndarray, name: str = "edge_index") -> np.ndarray:
    if isinstance(edge_index, Tensor):
        if edge_index.device.type == "meta":
            raise ValueError(f"`{name}` is on the meta device (it has no values); materialise it on a real device")
        check_integer_index(edge_index, name)
        edge_index = edge_index.detach().cpu().numpy()
    edge_index = np.asarray(edge_index)
    if edge_index.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must hold integer node indices, got dtype {edge_index.dtype}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"`{name}` must have shape [2, num_edges], got {list(edge_index.shape)}")
    return edge_index.astype(np.int64, copy=False)


def check_node_range(edge_index: np.ndarray, num_nodes: int, name: str = "edge_index") -> None:
    if edge_index.size == 0:
        return
    bad = np.flatnonzero((edge_index < 0).any(0) | (edge_index >= num_nodes).any(0))
    if bad.size:
        e = int(bad[0])
        raise ValueError(
            f"`{name}` column {e} = ({int(edge_index[0, e])}, {int(edge_index[1, e])}) points outside "
            f"the graph's {num_nodes} nodes ({bad.size} such edge(s)); indices must lie in [0, {num_nodes})"
        )


def csr(keys: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids grouped by ``keys`` (stable; keys in ``[0, num_nodes)``) and the group pointer."""
    perm = np.argsort(keys, kind="stable")
    ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=num_nodes), out=ptr[1:])
    return perm, ptr


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions ``starts[i] .. starts[i] + counts[i] - 1`` of every ``i``, one range after the other."""
    ends = np.cumsum(counts)
    return np.repeat(starts - ends + counts, counts) + np.arange(ends[-1] if ends.size else 0)


def expand(ptr: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each entry ``i`` of ``groups``, the positions ``ptr[g] .. ptr[g+1]-1``.

    Returns ``(counts, position)``: ``position`` lists the ranges one after the
    other, ``counts[i]`` is the length of the range of ``groups[i]``.
    """
    starts = ptr[groups]
    counts = ptr[groups + 1] - starts
    return counts, ranges(starts, counts)


def node_rank(order: Optional[Tensor | np.ndarray], num_nodes: int) -> np.ndarray:
    """Strict per-node ranks from any ordering (ties broken by node index)."""
    if order is None:
        return np.arange(num_nodes)
    if isinstance(order, Tensor):
        order = order.detach().cpu().numpy()
    order = np.asarray(order).reshape(-1)
    if order.shape[0] != num_nodes:
        raise ValueError(f"`order` must have one entry per node ({num_nodes}), got {order.shape[0]}")
    if order.dtype.kind == "f" and not np.isfinite(order).all():
        raise ValueError("`order` contains NaN or infinite values")
    rank = np.empty(num_nodes, dtype=np.int64)
    rank[np.lexsort((np.arange(num_nodes), order))] = np.arange(num_nodes)
    return rank


def _find_cycle_node(edge_index: np.ndarray, remaining: np.ndarray) -> int:
    """A node on a directed cycle, given the mask of nodes that peeling never reached."""
    src, dst = edge_index
    inside = remaining[src] & remaining[dst]
    pred: dict[int, int] = {}
    for s, d in zip(src[inside].tolist(), dst[inside].tolist()):
        pred.setdefault(d, s)
    # Every remaining node keeps a remaining predecessor, so walking backwards must repeat.
    node = int(np.flatnonzero(remaining)[0])
    seen: set[int] = set()
    while node not in seen:
        seen.add(node)
        node = pred[node]
    return node


# Below this many edges a plain Python pass beats vectorised peeling, whose
# handful of NumPy calls per level cost ~20 us each (molecules: ~110 us vs ~15 us).
SMALL_GRAPH_EDGES = 512


def peel_depth(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """Longest-path depth of every node (Kahn's algorithm); ``-1`` for nodes on or after a cycle."""
    if edge_index.shape[1] <= SMALL_GRAPH_EDGES:
        return _peel_depth_small(edge_index, num_nodes)
    return _peel_depth_vectorised(edge_index, num_nodes)


def _peel_depth_small(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    src, dst = edge_index.tolist()
    indeg = [0] * num_nodes
    successors: list[list[int]] = [[] for _ in range(num_nodes)]
    for s, d in zip(src, dst):
        indeg[d] += 1
        successors[s].append(d)
    depth = [0] * num_nodes
    order = [v for v in range(num_nodes) if indeg[v] == 0]
    for u in order:  # grows while it is read: Kahn's queue
        reach = depth[u] + 1
        for w in successors[u]:
            if depth[w] < reach:
                depth[w] = reach
            indeg[w] -= 1
            if indeg[w] == 0:
                order.append(w)
    out = np.full(num_nodes, -1, dtype=np.int64)
    out[order] = np.asarray(depth, dtype=np.int64)[order]
    return out


def _peel_depth_vectorised(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """Frontier peeling, one vectorised step per level."""
    src, dst = edge_index
    indeg = np.bincount(dst, minlength=num_nodes)
    perm, ptr = csr(src, num_nodes)
    successors = dst[perm]
    depth = np.full(num_nodes, -1, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    level = 0
    while frontier.size:
        depth[frontier] = level
        _, pos = expand(ptr, frontier)
        if not pos.size:
            break
        targets = successors[pos]
        np.subtract.at(indeg, targets, 1)
        frontier = np.unique(targets[indeg[targets] == 0])
        level += 1
    return depth


def cycle_error(edge_index: np.ndarray, depth: np.ndarray,
                 name_node: Callable[[int], str] = lambda node: f"node {node}") -> ValueError:
    node = _find_cycle_node(edge_index, depth < 0)
    return ValueError(
        f"the directed graph has a cycle through {name_node(node)}; pLSTM needs a DAG "
        "(pass directed=False to orient an undirected graph by a node order)"
    )


def node_depth(edge_index: Tensor | np.ndarray, num_nodes: int) -> np.ndarray:
    r"""Longest-path depth of every node: ``0`` for nodes without in-edges,
    else ``1 + max depth`` of its predecessors.

    Computed by frontier peeling (Kahn's algorithm, :math:`O(N + E)` work in
    total): a plain Python pass for graphs of up to :data:`SMALL_GRAPH_EDGES`
    edges, one vectorised NumPy step per level above.

    Raises:
        ValueError: if the graph has a directed cycle; the message names a node on it.
    """
    edge_index = as_index_array(edge_index)
    depth = peel_depth(edge_index, check_num_nodes(num_nodes))
    if (depth < 0).any():
        raise cycle_error(edge_index, depth)
    return depth


def check_directed(directed: object) -> None:
    """``directed`` must be ``None`` (detect per graph), ``True`` or ``False``: a string such as
    ``"false"`` would otherwise count as true."""
    if directed is not None and not isinstance(directed, (bool, np.bool_)):
        raise ValueError(f"`directed` must be None (detect), True or False, got {directed!r}")


def orient_arrays(
    ei: np.ndarray, num_nodes: int, rank: np.ndarray, directed: Optional[bool], node_graph: Optional[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Orientation, self-loop removal and de-duplication on validated arrays.

    With ``node_graph`` (graph id of every node of a disjoint union) and
    ``directed=None``, each graph is detected as directed or undirected on its own.
    Returns ``(dag_edge_index, kept)``.
    """
    src, dst = ei
    keep = np.flatnonzero(src != dst)
    src, dst = src[keep], dst[keep]
    if directed is None:
        symmetric = _is_in(src * num_nodes + dst, dst * num_nodes + src)
        if node_graph is None:
            flippable = np.full(src.size, symmetric.all())
        else:
            one_way = np.bincount(node_graph[src[~symmetric]], minlength=int(node_graph.max(initial=-1)) + 1)
            flippable = one_way[node_graph[src]] == 0
    else:
        flippable = np.full(src.size, not directed)
    flip = flippable & (rank[src] > rank[dst])
    src, dst = np.where(flip, dst, src), np.where(flip, src, dst)
    first = _first_occurrences(src * num_nodes + dst)
    return np.stack([src[first], dst[first]]), keep[first]


def _is_in(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """``np.isin(values, pool)``; a set beats it on small inputs (see :data:`SMALL_GRAPH_EDGES`)."""
    if values.size > SMALL_GRAPH_EDGES:
        return np.isin(values, pool)
    members = set(pool.tolist())
    return np.fromiter((v in members for v in values.tolist()), dtype=bool, count=values.size)


def _first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of every distinct key, in increasing order."""
    if keys.size > SMALL_GRAPH_EDGES:
        _, first = np.unique(keys, return_index=True)
        first.sort()
        return first
    seen: dict[int, int] = {}
    for position, key in enumerate(keys.tolist()):
        seen.setdefault(key, position)
    return np.fromiter(seen.values(), dtype=np.int64, count=len(seen))


def orient(
    edge_index: Tensor,
    num_nodes: int,
    order: Optional[Tensor] = None,
    edge_attr: Optional[Tensor] = None,
    directed: Optional[bool] = None,
) -> tuple[Tensor, Optional[Tensor], Tensor]:
    r"""Turn a graph into a DAG.

    * Undirected input (every edge present in both directions; detected when
      ``directed=None``, forced with ``directed=False``): each edge
      :math:`\{u, v\}` becomes ``u -> v`` when ``order[u] < order[v]``
      (ties broken by node index; ``order`` defaults to the node index).
    * Directed input (``directed=True``, or auto-detected): edges are kept as
      given; a directed cycle raises :class:`ValueError` naming a node on it.

    Self-loops are dropped (a DAG has none). Duplicate edges, i.e. several
    input edges that end up as the same ordered pair, are merged into one:
    the first of them in input order is kept, with its ``edge_attr`` row.

    Returns:
        ``(dag_edge_index, dag_edge_attr, kept)`` where ``kept`` holds, for
        each DAG edge, the column of the input edge it came from.
    """
    check_directed(directed)
    ei = validated_edges(edge_index, num_nodes, edge_attr)
    dag, kept = orient_arrays(ei, num_nodes, node_rank(order, num_nodes), directed, None)
    depth = peel_depth(dag, num_nodes)
    if (depth < 0).any():
        raise cycle_error(dag, depth)
    device = edge_index.device if isinstance(edge_index, Tensor) else None
    kept_t = torch.from_numpy(kept).to(device)
    dag_attr = None if edge_attr is None else edge_attr[kept_t.to(edge_attr.device)]
    return torch.from_numpy(dag).to(device), dag_attr, kept_t


def validated_edges(edge_index: Tensor | np.ndarray, num_nodes: int, edge_attr: Optional[Tensor]) -> np.ndarray:
    """``edge_index`` as an int64 array, after checking its type, shape, node range and ``edge_attr`` rows."""
    ei = as_index_array(edge_index)
    check_node_range(ei, check_num_nodes(num_nodes))
    if edge_attr is not None and edge_attr.size(0) != ei.shape[1]:
        raise ValueError(f"`edge_attr` has {edge_attr.size(0)} rows but `edge_index` has {ei.shape[1]} edges")
    return ei


def line_graph(dag_edge_index: Tensor | np.ndarray, num_nodes: int) -> Tensor:
    r"""Line graph of a DAG: ``line_index[:, j] = (e_in, e_out)`` for every
    pair of DAG edges with ``dst(e_in) == src(e_out)``.

    Vectorised: edges are grouped by source once, then every edge is paired
    with the out-edges of its head by a single ``repeat``.
    """
    ei = as_index_array(dag_edge_index, "dag_edge_index")
    src, dst = ei
    perm, ptr = csr(src, num_nodes)
    counts, pos = expand(ptr, dst)
    return torch.from_numpy(np.stack([np.repeat(np.arange(dst.size), counts), perm[pos]]))


def edge_levels(
    dag_edge_index: Tensor | np.ndarray, num_nodes: int, reverse: bool = False
) -> Tensor:
    r"""Topological level of each DAG edge in the line graph.

    Edge ``e = (u -> w)`` has level ``depth(u)``: its longest chain of
    predecessor edges. With ``reverse=True`` the levels are those of the
    reversed DAG (every edge flipped): ``height(w)``, the longest path from
    ``w`` to a sink.
    """
    ei = as_index_array(dag_edge_index, "dag_edge_index")
    if reverse:
        return torch.from_numpy(node_depth(ei[::-1].copy(), num_nodes)[ei[1]])
    return torch.from_numpy(node_depth(ei, num_nodes)[ei[0]])


