r"""DAG preparation for pLSTM: orientation, line graph, levels and multitree pruning.

pLSTM keeps its cell states on the edges of a directed acyclic graph. Everything
the operator needs about the structure is computed here once per graph (in a
transform or during dataset processing), never in a forward pass:

* :func:`orient` turns an undirected graph into a DAG by a node ranking
  (``u -> v`` when ``order[u] < order[v]``), or checks a directed one.
* :func:`line_graph` lists the pairs ``(e_in, e_out)`` of DAG edges with
  ``dst(e_in) == src(e_out)``: the paths along which states flow.
* :func:`node_depth` / :func:`edge_levels` give the topological level of every
  edge in the line graph. Edge ``e = (u -> w)`` has level ``depth(u)``, the
  length of the longest path ending in ``u``, so all edges of one level are
  independent and a batch is processed one level at a time.
* :func:`multitree_mask` prunes the line graph to a multitree (at most one
  directed path between any two line-graph nodes) for D-mode.

Internally the work is done with NumPy arrays: per molecule this is several
times faster than issuing the same vectorised operations as torch kernels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

__all__ = [
    "DAG",
    "DAGData",
    "ToDAG",
    "orient",
    "line_graph",
    "node_depth",
    "edge_levels",
    "multitree_mask",
    "prepare_dag",
    "get_dag",
]


def _as_index_array(edge_index: Tensor | np.ndarray, name: str = "edge_index") -> np.ndarray:
    if isinstance(edge_index, Tensor):
        if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
            raise ValueError(f"`{name}` must hold integer node indices, got dtype {edge_index.dtype}")
        edge_index = edge_index.detach().cpu().numpy()
    edge_index = np.asarray(edge_index)
    if edge_index.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must hold integer node indices, got dtype {edge_index.dtype}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"`{name}` must have shape [2, num_edges], got {list(edge_index.shape)}")
    return edge_index.astype(np.int64, copy=False)


def _check_node_range(edge_index: np.ndarray, num_nodes: int, name: str = "edge_index") -> None:
    if edge_index.size == 0:
        return
    bad = np.flatnonzero((edge_index < 0).any(0) | (edge_index >= num_nodes).any(0))
    if bad.size:
        e = int(bad[0])
        raise ValueError(
            f"`{name}` column {e} = ({int(edge_index[0, e])}, {int(edge_index[1, e])}) points outside "
            f"the graph's {num_nodes} nodes ({bad.size} such edge(s)); indices must lie in [0, {num_nodes})"
        )


def _csr(keys: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Edge ids grouped by ``keys`` (stable) and the group pointer."""
    perm = np.argsort(keys, kind="stable")
    ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=num_nodes), out=ptr[1:])
    return perm, ptr


def _expand(ptr: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each entry ``i`` of ``groups``, the positions ``ptr[g] .. ptr[g+1]-1``.

    Returns ``(counts, position)``: ``position`` lists the ranges one after the
    other, ``counts[i]`` is the length of the range of ``groups[i]``.
    """
    starts = ptr[groups]
    counts = ptr[groups + 1] - starts
    ends = np.cumsum(counts)
    return counts, np.repeat(starts - ends + counts, counts) + np.arange(ends[-1] if ends.size else 0)


def _rank(order: Optional[Tensor | np.ndarray], num_nodes: int) -> np.ndarray:
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


def _peel(edge_index: np.ndarray, num_nodes: int) -> np.ndarray:
    """Longest-path depth by frontier peeling; ``-1`` for nodes on or after a cycle."""
    src, dst = edge_index
    indeg = np.bincount(dst, minlength=num_nodes)
    perm, ptr = _csr(src, num_nodes)
    successors = dst[perm]
    depth = np.full(num_nodes, -1, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    level = 0
    while frontier.size:
        depth[frontier] = level
        _, pos = _expand(ptr, frontier)
        if not pos.size:
            break
        targets = successors[pos]
        np.subtract.at(indeg, targets, 1)
        frontier = np.unique(targets[indeg[targets] == 0])
        level += 1
    return depth


def _cycle_error(edge_index: np.ndarray, depth: np.ndarray,
                 name_node: Callable[[int], str] = lambda node: f"node {node}") -> ValueError:
    node = _find_cycle_node(edge_index, depth < 0)
    return ValueError(
        f"the directed graph has a cycle through {name_node(node)}; pLSTM needs a DAG "
        "(pass directed=False to orient an undirected graph by a node order)"
    )


def node_depth(edge_index: Tensor | np.ndarray, num_nodes: int) -> np.ndarray:
    r"""Longest-path depth of every node: ``0`` for nodes without in-edges,
    else ``1 + max depth`` of its predecessors.

    Computed by frontier peeling (Kahn's algorithm, one vectorised step per
    level, :math:`O(N + E)` work in total).

    Raises:
        ValueError: if the graph has a directed cycle; the message names a node on it.
    """
    edge_index = _as_index_array(edge_index)
    depth = _peel(edge_index, num_nodes)
    if (depth < 0).any():
        raise _cycle_error(edge_index, depth)
    return depth


def _orient_arrays(
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
        symmetric = np.isin(src * num_nodes + dst, dst * num_nodes + src)
        if node_graph is None:
            flippable = np.full(src.size, symmetric.all())
        else:
            one_way = np.bincount(node_graph[src[~symmetric]], minlength=int(node_graph.max(initial=-1)) + 1)
            flippable = one_way[node_graph[src]] == 0
    else:
        flippable = np.full(src.size, not directed)
    flip = flippable & (rank[src] > rank[dst])
    src, dst = np.where(flip, dst, src), np.where(flip, src, dst)
    _, first = np.unique(src * num_nodes + dst, return_index=True)
    first.sort()
    return np.stack([src[first], dst[first]]), keep[first]


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
    ei = _validated_edges(edge_index, num_nodes, edge_attr)
    dag, kept = _orient_arrays(ei, num_nodes, _rank(order, num_nodes), directed, None)
    depth = _peel(dag, num_nodes)
    if (depth < 0).any():
        raise _cycle_error(dag, depth)
    device = edge_index.device if isinstance(edge_index, Tensor) else None
    kept_t = torch.from_numpy(kept).to(device)
    dag_attr = None if edge_attr is None else edge_attr[kept_t.to(edge_attr.device)]
    return torch.from_numpy(dag).to(device), dag_attr, kept_t


def _validated_edges(edge_index: Tensor | np.ndarray, num_nodes: int, edge_attr: Optional[Tensor]) -> np.ndarray:
    """``edge_index`` as an int64 array, after checking its type, shape, node range and ``edge_attr`` rows."""
    ei = _as_index_array(edge_index)
    _check_node_range(ei, num_nodes)
    if edge_attr is not None and edge_attr.size(0) != ei.shape[1]:
        raise ValueError(f"`edge_attr` has {edge_attr.size(0)} rows but `edge_index` has {ei.shape[1]} edges")
    return ei


def line_graph(dag_edge_index: Tensor | np.ndarray, num_nodes: int) -> Tensor:
    r"""Line graph of a DAG: ``line_index[:, j] = (e_in, e_out)`` for every
    pair of DAG edges with ``dst(e_in) == src(e_out)``.

    Vectorised: edges are grouped by source once, then every edge is paired
    with the out-edges of its head by a single ``repeat``.
    """
    ei = _as_index_array(dag_edge_index, "dag_edge_index")
    src, dst = ei
    perm, ptr = _csr(src, num_nodes)
    counts, pos = _expand(ptr, dst)
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
    ei = _as_index_array(dag_edge_index, "dag_edge_index")
    if reverse:
        return torch.from_numpy(node_depth(ei[::-1].copy(), num_nodes)[ei[1]])
    return torch.from_numpy(node_depth(ei, num_nodes)[ei[0]])


def multitree_mask(
    dag_edge_index: Tensor | np.ndarray,
    line_index: Tensor | np.ndarray,
    num_nodes: int,
    order: Optional[Tensor | np.ndarray] = None,
    depth: Optional[np.ndarray] = None,
) -> Tensor:
    r"""Prune the line graph to a multitree for D-mode.

    A DAG is a multitree iff for every node the ancestor sets (each parent
    included in its own set) of its parents are pairwise disjoint. All
    out-edges of a DAG node ``u`` share the same candidate parents in the line
    graph, the in-edges of ``u``; visiting nodes in topological order, we keep
    an in-edge of ``u`` when its ancestor set is disjoint from those already
    kept. In-edges are tried longest path first (ties: lowest ``order`` rank of
    their source), so the choice depends on the structure and the node order
    only, never on the order in which edges were listed.

    ``depth`` (from :func:`node_depth`) is computed when not given.

    Returns:
        A boolean mask over the columns of ``line_index``.
    """
    ei = _as_index_array(dag_edge_index, "dag_edge_index")
    li = _as_index_array(line_index, "line_index")
    if depth is None:
        depth = node_depth(ei, num_nodes)
    selected = _select_parents(ei, num_nodes, _rank(order, num_nodes), depth, np.arange(ei.shape[1]))
    return torch.from_numpy(selected[li[0]])


def _select_parents(ei: np.ndarray, num_nodes: int, rank: np.ndarray, depth: np.ndarray,
                    bit: np.ndarray) -> np.ndarray:
    """The in-edges kept by :func:`multitree_mask`; ``bit`` labels edges
    injectively within each connected graph (small labels keep bitsets small)."""
    src, dst = ei
    in_sorted = np.lexsort((rank[src], -depth[src], dst))
    in_ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=num_nodes), out=in_ptr[1:])

    in_sorted_l = in_sorted.tolist()
    src_l = src.tolist()
    bit_l = bit.tolist()
    in_ptr_l = in_ptr.tolist()
    pending_children = np.bincount(src, minlength=num_nodes).tolist()
    # ancestors[u]: bitset (Python int over edge labels) of line-graph ancestors
    # shared by the out-edges of u; freed once all of u's out-edges are visited.
    ancestors: dict[int, int] = {}
    selected = np.zeros(src.size, dtype=bool)
    for u in np.argsort(depth, kind="stable").tolist():
        acc = 0
        for e in in_sorted_l[in_ptr_l[u] : in_ptr_l[u + 1]]:
            p = src_l[e]
            anc = ancestors[p] | (1 << bit_l[e])
            if not acc & anc:
                acc |= anc
                selected[e] = True
            pending_children[p] -= 1
            if pending_children[p] == 0:
                del ancestors[p]
        if pending_children[u]:
            ancestors[u] = acc
    return selected


@dataclass(frozen=True)
class DAG:
    r"""The structure :func:`~pyg_plstm.functional.plstm_dag` runs on.

    Attributes:
        edge_index: ``[2, E]`` DAG edges ``src -> dst``.
        line_index: ``[2, L]`` line-graph edges ``(e_in, e_out)``.
        edge_level: ``[E]`` topological level of each edge.
        edge_level_rev: ``[E]`` level of each edge in the reversed DAG.
        multitree_mask: ``[L]`` line edges kept in D-mode.
        edge_attr: ``[E, D]`` features of the DAG edges, if any.
        num_nodes: number of nodes.
    """

    edge_index: Tensor
    line_index: Tensor
    edge_level: Tensor
    edge_level_rev: Tensor
    multitree_mask: Tensor
    edge_attr: Optional[Tensor]
    num_nodes: int

    def reverse(self) -> "DAG":
        """The same DAG with every edge flipped (a cheap view, no recomputation)."""
        return DAG(
            edge_index=self.edge_index.flip(0),
            line_index=self.line_index.flip(0),
            edge_level=self.edge_level_rev,
            edge_level_rev=self.edge_level,
            multitree_mask=self.multitree_mask,
            edge_attr=self.edge_attr,
            num_nodes=self.num_nodes,
        )

    def multitree(self) -> "DAG":
        """Only the line edges kept for D-mode."""
        m = self.multitree_mask
        return DAG(self.edge_index, self.line_index[:, m], self.edge_level, self.edge_level_rev,
                   torch.ones(int(m.sum()), dtype=torch.bool, device=m.device), self.edge_attr,
                   self.num_nodes)

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def num_levels(self) -> int:
        return int(self.edge_level.max()) + 1 if self.edge_level.numel() else 0


class DAGData(Data):
    r"""A :class:`~torch_geometric.data.Data` carrying a prepared DAG.

    Besides the usual attributes it holds ``dag_edge_index``, ``dag_edge_attr``,
    ``line_index``, ``edge_level``, ``edge_level_rev`` and ``multitree_mask``.
    When batched, ``line_index`` is shifted by the number of DAG edges of the
    preceding graphs and levels are concatenated unchanged, so level ``l`` of
    the batch is level ``l`` of every graph in it.
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "line_index":
            return self.dag_edge_index.size(1)
        if key in ("edge_level", "edge_level_rev", "multitree_mask"):
            return 0
        return super().__inc__(key, value, *args, **kwargs)

    def dag(self, reverse: bool = False) -> DAG:
        return get_dag(self, reverse)


def get_dag(data: Data, reverse: bool = False) -> DAG:
    """The :class:`DAG` stored in a (possibly batched) :class:`DAGData`."""
    missing = [k for k in ("dag_edge_index", "line_index", "edge_level", "edge_level_rev", "multitree_mask")
               if getattr(data, k, None) is None]
    if missing:
        raise ValueError(
            f"the graph has no prepared DAG (missing {', '.join(missing)}); apply "
            "pyg_plstm.ToDAG() as a (pre_)transform first"
        )
    dag = DAG(
        edge_index=data.dag_edge_index,
        line_index=data.line_index,
        edge_level=data.edge_level,
        edge_level_rev=data.edge_level_rev,
        multitree_mask=data.multitree_mask,
        edge_attr=getattr(data, "dag_edge_attr", None),
        num_nodes=data.num_nodes,
    )
    return dag.reverse() if reverse else dag


@dataclass
class _Prepared:
    """Prepared structure of a disjoint union of graphs, as NumPy arrays."""

    edge_index: np.ndarray
    kept: np.ndarray
    line_index: np.ndarray
    edge_level: np.ndarray
    edge_level_rev: np.ndarray
    multitree_mask: np.ndarray


def _prepare_union(
    ei: np.ndarray, num_nodes: int, rank: np.ndarray, directed: Optional[bool],
    node_graph: Optional[np.ndarray] = None, name_node: Callable[[int], str] = lambda node: f"node {node}",
) -> _Prepared:
    """Everything :class:`DAG` holds, for graphs that are already validated.

    ``name_node(node)`` names a node in error messages (e.g. with the graph
    of a union it belongs to).
    """
    dag, kept = _orient_arrays(ei, num_nodes, rank, directed, node_graph)
    depth = _peel(dag, num_nodes)
    if (depth < 0).any():
        raise _cycle_error(dag, depth, name_node)
    height = _peel(dag[::-1].copy(), num_nodes)
    line = line_graph(dag, num_nodes).numpy()
    src = dag[0]
    if node_graph is None:
        bit = np.arange(src.size)
    else:
        # Ancestor bitsets never mix graphs, so number edges from 0 within each graph.
        first = np.searchsorted(node_graph[src], node_graph[src], side="left")
        bit = np.arange(src.size) - first
    selected = _select_parents(dag, num_nodes, rank, depth, bit)
    return _Prepared(dag, kept, line, depth[dag[0]], height[dag[1]], selected[line[0]])


def prepare_dag(
    edge_index: Tensor,
    num_nodes: int,
    order: Optional[Tensor] = None,
    edge_attr: Optional[Tensor] = None,
    directed: Optional[bool] = None,
) -> DAG:
    """Orientation, line graph, levels (both directions) and multitree mask in one go."""
    ei = _validated_edges(edge_index, num_nodes, edge_attr)
    prep = _prepare_union(ei, num_nodes, _rank(order, num_nodes), directed)
    device = edge_index.device
    as_t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return DAG(
        edge_index=as_t(prep.edge_index),
        line_index=as_t(prep.line_index),
        edge_level=as_t(prep.edge_level),
        edge_level_rev=as_t(prep.edge_level_rev),
        multitree_mask=as_t(prep.multitree_mask),
        edge_attr=None if edge_attr is None else edge_attr[as_t(prep.kept).to(edge_attr.device)],
        num_nodes=num_nodes,
    )


class ToDAG(BaseTransform):
    r"""Prepare a graph for pLSTM (functional name: ``to_dag``).

    Orients ``edge_index`` into a DAG (see :func:`orient`) using the node
    ranking in ``data[order_attr]`` when present (node index otherwise) and
    returns a :class:`DAGData` with every attribute of the input plus the
    DAG structure. The input object is not modified.

    :meth:`prepare_many` prepares a whole list in one vectorised pass (the
    per-level work is shared by all graphs), which is several times faster
    for data sets of small graphs; results are identical to calling the
    transform on each graph.

    Args:
        order_attr: name of the per-node ranking attribute (e.g. canonical
            atom ranks for molecules).
        directed: ``None`` detects undirected input (per graph), ``True``
            keeps edge directions (input must be acyclic), ``False`` orients
            by order.
    """

    def __init__(self, order_attr: str = "order", directed: Optional[bool] = None) -> None:
        self.order_attr = order_attr
        self.directed = directed

    def forward(self, data: Data) -> DAGData:
        return self._prepare([data], describe_graph=False)[0]

    def prepare_many(self, graphs: Sequence[Data], chunk_size: int = 2048) -> list[DAGData]:
        """:meth:`forward` for every graph of ``graphs``; errors name the graph's position."""
        out: list[DAGData] = []
        for start in range(0, len(graphs), chunk_size):
            out += self._prepare(graphs[start:start + chunk_size], describe_graph=True, offset=start)
        return out

    def _prepare(self, graphs: Sequence[Data], describe_graph: bool, offset: int = 0) -> list[DAGData]:
        where = (lambda g: f"graph {offset + g}: ") if describe_graph else (lambda g: "")
        sizes, index_arrays, ranks = [], [], []
        for g, data in enumerate(graphs):
            if getattr(data, "edge_index", None) is None:
                raise ValueError(f"{where(g)}the graph has no `edge_index`")
            n = data.num_nodes
            if n is None:
                raise ValueError(f"{where(g)}cannot infer the number of nodes; set `num_nodes` or `x`")
            try:
                ei = _validated_edges(data.edge_index, n, data.edge_attr)
                ranks.append(_rank(getattr(data, self.order_attr, None), n))
            except ValueError as err:
                raise ValueError(f"{where(g)}{err}") from None
            sizes.append(n)
            index_arrays.append(ei)
        node_offset = np.zeros(len(graphs) + 1, dtype=np.int64)
        np.cumsum(sizes, out=node_offset[1:])
        total = int(node_offset[-1])
        node_graph = np.repeat(np.arange(len(graphs)), sizes)
        ei = np.concatenate([a + o for a, o in zip(index_arrays, node_offset[:-1])], axis=1) \
            if index_arrays else np.zeros((2, 0), dtype=np.int64)
        # Ranks only ever compare nodes of one graph: offset them to keep each graph's order.
        rank = np.concatenate([r + o for r, o in zip(ranks, node_offset[:-1])]) if ranks else np.zeros(0, np.int64)
        edge_offset = np.zeros(len(graphs) + 1, dtype=np.int64)
        np.cumsum([a.shape[1] for a in index_arrays], out=edge_offset[1:])

        def name_node(node: int) -> str:
            g = int(node_graph[node])
            local = f"node {node - int(node_offset[g])}"
            return f"{local} of graph {offset + g}" if describe_graph else local

        prep = _prepare_union(ei, total, rank, self.directed, node_graph, name_node)
        dag_graph = node_graph[prep.edge_index[0]]
        dag_ptr = np.searchsorted(dag_graph, np.arange(len(graphs) + 1))
        line_ptr = np.searchsorted(dag_graph[prep.line_index[0]], np.arange(len(graphs) + 1))

        out = []
        for g, data in enumerate(graphs):
            e0, e1, l0, l1 = dag_ptr[g], dag_ptr[g + 1], line_ptr[g], line_ptr[g + 1]
            item = DAGData(**data.to_dict())
            item.num_nodes = sizes[g]
            item.dag_edge_index = torch.from_numpy(prep.edge_index[:, e0:e1] - node_offset[g])
            if data.edge_attr is not None:
                kept = torch.from_numpy(prep.kept[e0:e1] - edge_offset[g])
                item.dag_edge_attr = data.edge_attr[kept.to(data.edge_attr.device)]
            item.line_index = torch.from_numpy(prep.line_index[:, l0:l1] - e0)
            item.edge_level = torch.from_numpy(prep.edge_level[e0:e1].copy())
            item.edge_level_rev = torch.from_numpy(prep.edge_level_rev[e0:e1].copy())
            item.multitree_mask = torch.from_numpy(prep.multitree_mask[l0:l1].copy())
            out.append(item)
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(order_attr={self.order_attr!r}, directed={self.directed})"


torch.serialization.add_safe_globals([DAGData])
