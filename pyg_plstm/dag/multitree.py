r"""Pruning the line graph of a DAG to a multitree (D-mode).

A DAG is a multitree iff for every node the ancestor sets (each parent
included in its own set) of its parents are pairwise disjoint, i.e. there is
at most one directed path between any two nodes. D-mode's transitions
:math:`|\tanh(\cdot)| < 1` then bound every path product.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from pyg_plstm.dag.graph import as_index_array, node_depth, node_rank

__all__ = ["multitree_mask"]


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
    ei = as_index_array(dag_edge_index, "dag_edge_index")
    li = as_index_array(line_index, "line_index")
    if depth is None:
        depth = node_depth(ei, num_nodes)
    selected = select_parents(ei, num_nodes, node_rank(order, num_nodes), depth, np.arange(ei.shape[1]))
    return torch.from_numpy(selected[li[0]])


def select_parents(ei: np.ndarray, num_nodes: int, rank: np.ndarray, depth: np.ndarray,
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


