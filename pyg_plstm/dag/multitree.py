r"""Pruning the line graph of a DAG to a multitree (D-mode).

A DAG is a multitree iff for every node the ancestor sets (each parent
included in its own set) of its parents are pairwise disjoint, i.e. there is
at most one directed path between any two nodes. D-mode's transitions
:math:`|\tanh(\cdot)| < 1` then bound every path product.

Which multitree is kept depends on the order in which a node's in-edges are
tried (``prune_order``): ``"deepest"`` (ours) prefers long paths,
``"shallowest"`` is the order of the pLSTM authors' code.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from pyg_plstm.checks import check_choice
from pyg_plstm.dag.graph import as_index_array, csr, node_depth, node_rank

__all__ = ["PRUNE_ORDERS", "multitree_mask"]

PRUNE_ORDERS = ("deepest", "shallowest")


def multitree_mask(
    dag_edge_index: Tensor | np.ndarray,
    line_index: Tensor | np.ndarray,
    num_nodes: int,
    order: Optional[Tensor | np.ndarray] = None,
    depth: Optional[np.ndarray] = None,
    prune_order: str = "deepest",
) -> Tensor:
    r"""Prune the line graph to a multitree for D-mode.

    A DAG is a multitree iff for every node the ancestor sets (each parent
    included in its own set) of its parents are pairwise disjoint. All
    out-edges of a DAG node ``u`` share the same candidate parents in the line
    graph, the in-edges of ``u``; visiting nodes in topological order, we keep
    an in-edge of ``u`` when its ancestor set is disjoint from those already
    kept. The in-edges of ``u`` are tried

    * ``prune_order="deepest"``: longest path to their source first (ties:
      lowest ``order`` rank of the source);
    * ``prune_order="shallowest"``: in the order of the pLSTM authors' code,
      which visits the line graph in networkx's topological sort
      (:func:`networkx.topological_sort` of :func:`networkx.line_graph`, DAG
      edges numbered lexicographically by the ``order`` ranks of their
      ``(src, dst)``). That sort lists the edges by the depth of their source,
      shallowest first; within a depth the source whose latest-sorted
      predecessor comes first, then the lowest rank (see
      :func:`authors_topological_rank`).

    Either way the choice depends on the structure and the node order only,
    never on the order in which edges were listed.

    ``depth`` (from :func:`node_depth`) is computed when not given.

    Returns:
        A boolean mask over the columns of ``line_index``.
    """
    ei = as_index_array(dag_edge_index, "dag_edge_index")
    li = as_index_array(line_index, "line_index")
    if depth is None:
        depth = node_depth(ei, num_nodes)
    selected = select_parents(ei, num_nodes, node_rank(order, num_nodes), depth, np.arange(ei.shape[1]),
                              prune_order)
    return torch.from_numpy(selected[li[0]])


def authors_topological_rank(ei: np.ndarray, num_nodes: int, rank: np.ndarray, depth: np.ndarray) -> np.ndarray:
    r"""Position of every node in the topological sort the pLSTM authors'
    pruning follows, as a permutation of ``range(num_nodes)``.

    Their code visits the DAG edges in networkx's topological sort of the line
    graph: Kahn's algorithm generation by generation, starting from the edges
    without predecessors in edge-id order, each next generation in the order
    in which the scan of the previous one frees its edges. An edge
    ``(t -> w)`` is in generation ``depth(t)``, and all out-edges of ``t`` are
    freed together, by the last in-edge of ``t`` in the sort. So the edges are
    sorted by the position of their source in this node order: by depth; at
    depth 0 by rank (the edge ids are lexicographic in the ranks); deeper, by
    the position of the latest-sorted predecessor, then by rank.
    """
    src, dst = ei
    position = np.empty(num_nodes, dtype=np.int64)
    latest = np.full(num_nodes, -1, dtype=np.int64)
    num_depths = int(depth.max(initial=-1)) + 1
    nodes_by_depth, node_ptr = csr(depth, num_depths)
    edges_by_depth, edge_ptr = csr(depth[dst], num_depths)
    for d in range(node_ptr.size - 1):
        edges = edges_by_depth[edge_ptr[d]:edge_ptr[d + 1]]
        np.maximum.at(latest, dst[edges], position[src[edges]])
        nodes = nodes_by_depth[node_ptr[d]:node_ptr[d + 1]]
        position[nodes[np.lexsort((rank[nodes], latest[nodes]))]] = np.arange(node_ptr[d], node_ptr[d + 1])
    return position


def select_parents(ei: np.ndarray, num_nodes: int, rank: np.ndarray, depth: np.ndarray,
                    bit: np.ndarray, prune_order: str = "deepest") -> np.ndarray:
    """The in-edges kept by :func:`multitree_mask`; ``bit`` labels edges
    injectively within each connected graph (small labels keep bitsets small)."""
    check_choice("prune_order", prune_order, PRUNE_ORDERS)
    src, dst = ei
    if prune_order == "deepest":
        in_sorted = np.lexsort((rank[src], -depth[src], dst))
    else:
        in_sorted = np.lexsort((authors_topological_rank(ei, num_nodes, rank, depth)[src], dst))
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


