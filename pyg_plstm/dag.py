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
from typing import Any, Optional

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


def node_depth(edge_index: Tensor | np.ndarray, num_nodes: int) -> np.ndarray:
    r"""Longest-path depth of every node: ``0`` for nodes without in-edges,
    else ``1 + max depth`` of its predecessors.

    Computed by frontier peeling (Kahn's algorithm, one vectorised step per
    level, :math:`O(N + E)` work in total).

    Raises:
        ValueError: if the graph has a directed cycle; the message names a node on it.
    """
    edge_index = _as_index_array(edge_index)
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
    if (depth < 0).any():
        node = _find_cycle_node(edge_index, depth < 0)
        raise ValueError(
            f"the directed graph has a cycle through node {node}; pLSTM needs a DAG "
            "(pass directed=False to orient an undirected graph by a node order)"
        )
    return depth


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
    ei = _as_index_array(edge_index)
    _check_node_range(ei, num_nodes)
    if edge_attr is not None and edge_attr.size(0) != ei.shape[1]:
        raise ValueError(
            f"`edge_attr` has {edge_attr.size(0)} rows but `edge_index` has {ei.shape[1]} edges"
        )
    src, dst = ei
    keep = np.flatnonzero(src != dst)
    src, dst = src[keep], dst[keep]
    if directed is None:
        fwd = src * num_nodes + dst
        bwd = dst * num_nodes + src
        directed = not np.isin(fwd, bwd).all()
    if not directed:
        rank = _rank(order, num_nodes)
        flip = rank[src] > rank[dst]
        src, dst = np.where(flip, dst, src), np.where(flip, src, dst)
    key = src * num_nodes + dst
    _, first = np.unique(key, return_index=True)
    first.sort()
    kept = keep[first]
    dag = np.stack([src[first], dst[first]])
    if directed:
        node_depth(dag, num_nodes)
    kept_t = torch.from_numpy(kept)
    dag_attr = None
    if edge_attr is not None:
        dag_attr = edge_attr[kept_t.to(edge_attr.device)]
    device = edge_index.device if isinstance(edge_index, Tensor) else None
    return torch.from_numpy(dag).to(device), dag_attr, kept_t.to(device)


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
    src, dst = ei
    num_edges = src.size
    if depth is None:
        depth = node_depth(ei, num_nodes)
    rank = _rank(order, num_nodes)
    # In-edges of every node, best candidate first.
    in_sorted = np.lexsort((rank[src], -depth[src], dst))
    in_ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(dst, minlength=num_nodes), out=in_ptr[1:])
    out_count = np.bincount(src, minlength=num_nodes)

    in_sorted_l = in_sorted.tolist()
    src_l = src.tolist()
    in_ptr_l = in_ptr.tolist()
    pending_children = out_count.tolist()
    # ancestors[u]: bitset (Python int over edge ids) of line-graph ancestors
    # shared by the out-edges of u; freed once all of u's out-edges are visited.
    ancestors: dict[int, int] = {}
    selected = np.zeros(num_edges, dtype=bool)
    for u in np.argsort(depth, kind="stable").tolist():
        acc = 0
        for e in in_sorted_l[in_ptr_l[u] : in_ptr_l[u + 1]]:
            p = src_l[e]
            anc = ancestors[p] | (1 << e)
            if not acc & anc:
                acc |= anc
                selected[e] = True
            pending_children[p] -= 1
            if pending_children[p] == 0:
                del ancestors[p]
        if pending_children[u]:
            ancestors[u] = acc
    return torch.from_numpy(selected[li[0]]) if li.size else torch.zeros(0, dtype=torch.bool)


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


def prepare_dag(
    edge_index: Tensor,
    num_nodes: int,
    order: Optional[Tensor] = None,
    edge_attr: Optional[Tensor] = None,
    directed: Optional[bool] = None,
) -> DAG:
    """Orientation, line graph, levels (both directions) and multitree mask in one go."""
    dag_ei, dag_attr, _ = orient(edge_index, num_nodes, order, edge_attr, directed)
    ei = dag_ei.cpu().numpy()
    depth = node_depth(ei, num_nodes)
    height = node_depth(ei[::-1].copy(), num_nodes)
    li = line_graph(ei, num_nodes)
    mask = multitree_mask(ei, li, num_nodes, order, depth)
    device = dag_ei.device
    return DAG(
        edge_index=dag_ei,
        line_index=li.to(device),
        edge_level=torch.from_numpy(depth[ei[0]]).to(device),
        edge_level_rev=torch.from_numpy(height[ei[1]]).to(device),
        multitree_mask=mask.to(device),
        edge_attr=dag_attr,
        num_nodes=num_nodes,
    )


class ToDAG(BaseTransform):
    r"""Prepare a graph for pLSTM (functional name: ``to_dag``).

    Orients ``edge_index`` into a DAG (see :func:`orient`) using the node
    ranking in ``data[order_attr]`` when present (node index otherwise) and
    returns a :class:`DAGData` with every attribute of the input plus the
    DAG structure. The input object is not modified.

    Args:
        order_attr: name of the per-node ranking attribute (e.g. canonical
            atom ranks for molecules).
        directed: ``None`` detects undirected input, ``True`` keeps edge
            directions (input must be acyclic), ``False`` orients by order.
    """

    def __init__(self, order_attr: str = "order", directed: Optional[bool] = None) -> None:
        self.order_attr = order_attr
        self.directed = directed

    def forward(self, data: Data) -> DAGData:
        if data.edge_index is None:
            raise ValueError("the graph has no `edge_index`")
        num_nodes = data.num_nodes
        if num_nodes is None:
            raise ValueError("cannot infer the number of nodes; set `num_nodes` or `x`")
        order = getattr(data, self.order_attr, None)
        dag = prepare_dag(data.edge_index, num_nodes, order, data.edge_attr, self.directed)
        out = DAGData(**{k: v for k, v in data.to_dict().items()})
        out.num_nodes = num_nodes
        out.dag_edge_index = dag.edge_index
        if dag.edge_attr is not None:
            out.dag_edge_attr = dag.edge_attr
        out.line_index = dag.line_index
        out.edge_level = dag.edge_level
        out.edge_level_rev = dag.edge_level_rev
        out.multitree_mask = dag.multitree_mask
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(order_attr={self.order_attr!r}, directed={self.directed})"


torch.serialization.add_safe_globals([DAGData])
