r"""What the operator forms derive from a DAG's structure, host work cached on
the :class:`~pyg_plstm.DAG` (:meth:`~pyg_plstm.DAG.memo`) so that the layers of a
model sharing one DAG build each piece once:

* :class:`LevelSchedule`: edges and line edges sorted by topological level
  (the level scan, the parallel form's gates, the sparse form's pair scan);
* :class:`ParallelLayout`: the padding of a batch into dense blocks (parallel form);
* :class:`Reachability`: the reachable (edge, source node) pairs (sparse form).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pyg_plstm.dag import DAG
from pyg_plstm.dag.graph import csr, ranges
from pyg_plstm.ops.cost import MAX_SPARSE_PAIRS, estimated_node_pairs

__all__ = ["LevelSchedule", "ParallelLayout", "Reachability", "level_schedule", "parallel_layout", "reachability",
           "sort_levels"]


@dataclass(frozen=True)
class LevelSchedule:
    """Level-sorted order of a DAG's edges and line edges (reusable across layers).

    Attributes:
        edge_perm: ``[E]`` original edge ids in level order.
        edge_pos: ``[E]`` position of each original edge in that order.
        line_perm: ``[L]`` line edges ordered by the level of the edge they feed.
        line_src: ``[L]`` position (level order) of the feeding edge, in ``line_perm`` order.
        line_dst: ``[L]`` position (level order) of the fed edge, in ``line_perm`` order.
        fwd_ptr: line-edge block boundaries per level of the fed edge (host list).
        bwd_perm: ``[L]`` indices into ``line_perm`` order, grouped by level of the feeding edge.
        bwd_ptr: block boundaries of ``bwd_perm`` per level (host list).
        edge_ptr: edge block boundaries per level (host list): the edges of level
            ``l`` are positions ``edge_ptr[l] .. edge_ptr[l+1]-1``.
    """

    edge_perm: Tensor
    edge_pos: Tensor
    line_perm: Tensor
    line_src: Tensor
    line_dst: Tensor
    fwd_ptr: list[int]
    bwd_perm: Tensor
    bwd_ptr: list[int]
    edge_ptr: list[int]

    @property
    def num_levels(self) -> int:
        return len(self.fwd_ptr) - 1


def level_schedule(dag: DAG) -> LevelSchedule:
    """The level order of ``dag`` (built once per DAG view, then cached on it)."""
    return dag.memo("level_schedule", lambda: sort_levels(dag.line_index, dag.edge_level))


def sort_levels(line_index: Tensor, edge_level: Tensor) -> LevelSchedule:
    """Sort the states (``edge_level``: one level per state) and their links
    (``line_index``: pairs of states) by level, so each level is a contiguous slice."""
    return _sorted_levels(line_index.cpu().numpy(), edge_level.cpu().numpy().astype(np.int64, copy=False),
                          edge_level.device)


def _sorted_levels(line_index: np.ndarray, edge_level: np.ndarray, device: torch.device) -> LevelSchedule:
    # Host work on small index arrays: NumPy's calls cost a fraction of torch's (stable sorts agree).
    num_edges = edge_level.size
    num_levels = int(edge_level.max()) + 1 if num_edges else 0
    edge_perm, edge_ptr = csr(edge_level, num_levels)
    edge_pos = np.empty_like(edge_perm)
    edge_pos[edge_perm] = np.arange(num_edges)
    line_perm, fwd_ptr = csr(edge_level[line_index[1]], num_levels)
    src_pos, dst_pos = edge_pos[line_index[0]][line_perm], edge_pos[line_index[1]][line_perm]
    bwd_perm, bwd_ptr = csr(edge_level[line_index[0]][line_perm], num_levels)
    return LevelSchedule(*(_as_tensor(a, device) for a in (edge_perm, edge_pos, line_perm, src_pos, dst_pos)),
                         fwd_ptr.tolist(), _as_tensor(bwd_perm, device), bwd_ptr.tolist(), edge_ptr.tolist())


def _as_tensor(array: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)


@dataclass(frozen=True)
class ParallelLayout:
    """Padding of a batch of DAGs into dense per-graph blocks, for the parallel form.

    Attributes:
        num_graphs: ``B``, the number of dense blocks.
        max_nodes: ``N_max``, the side of each block.
        node_local: ``[N]`` position of each node within its graph.
        node_slot: ``[N]`` row of each node in the flattened ``[B * N_max]`` blocks.
    """

    num_graphs: int
    max_nodes: int
    node_local: Tensor
    node_slot: Tensor


def parallel_layout(dag: DAG) -> ParallelLayout:
    """The dense-block layout of ``dag``'s graphs (cached on the DAG)."""
    return dag.memo("parallel_layout", lambda: _layout(dag), nodes_only=True)


def _layout(dag: DAG) -> ParallelLayout:
    batch = dag.batch.long()
    first = dag.ptr[:-1]
    local = torch.arange(dag.num_nodes, device=batch.device) - first[batch]
    return ParallelLayout(dag.num_graphs, dag.max_graph_nodes, local, batch * dag.max_graph_nodes + local)


@dataclass(frozen=True)
class Reachability:
    r"""Which source nodes can reach which DAG edges, for the sparse form.

    A *pair* :math:`(e, n')` stands for the path weight
    :math:`A_{e n'} = \sum_{e' \in \mathrm{out}(n')} S_{e'} P_{e'e}` of all
    line-graph paths that start at an out-edge of :math:`n'` and end in
    :math:`e`; only pairs with at least one such path are listed. They obey
    :math:`A_{e n'} = [n' = \mathrm{src}(e)]\, S_e + \sum_{(f, e) \in \mathcal{L}}
    T_{fe} A_{f n'}`: a scan over the *pair graph*, whose links
    :math:`(f, n') \to (e, n')` each carry the transition of one line edge.
    A *node pair* :math:`(n', n)` collects the pairs of the edges into
    :math:`n`: :math:`G_{n' n} = \sum_{e \in \mathrm{in}(n)} M_e A_{e n'}`.

    Attributes:
        pair_edge, pair_source: ``[R]`` the edge :math:`e` and node :math:`n'` of each pair.
        self_pair: ``[E]`` the pair :math:`(e, \mathrm{src}(e))` of every edge.
        link_line: ``[R_L]`` the line edge whose transition each pair-graph link carries.
        levels: level schedule of the pair graph (pairs as states, links as line edges).
        pair_node_pair: ``[R]`` the node pair :math:`(n', \mathrm{dst}(e))` each pair adds to.
        node_pair_source, node_pair_target: ``[Q]`` :math:`n'` and :math:`n` of each node pair.
    """

    pair_edge: Tensor
    pair_source: Tensor
    self_pair: Tensor
    link_line: Tensor
    levels: LevelSchedule
    pair_node_pair: Tensor
    node_pair_source: Tensor
    node_pair_target: Tensor

    @property
    def num_pairs(self) -> int:
        return self.pair_edge.numel()

    @property
    def num_node_pairs(self) -> int:
        return self.node_pair_source.numel()


def reachability(dag: DAG) -> Reachability:
    """The pair structure of ``dag`` (host work, built once per DAG view and cached)."""
    return dag.memo("reachability", lambda: _reachability(dag))


def _run_starts(ordered: np.ndarray) -> np.ndarray:
    """True where a run of equal values of the sorted ``ordered`` begins."""
    first = np.empty(ordered.size, dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return first


def _sorted_unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` in a few NumPy calls (it costs most of the host work here)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = _run_starts(ordered)
    inverse = np.empty(keys.size, dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def _reachability(dag: DAG) -> Reachability:
    lower_bound = estimated_node_pairs(dag)
    if lower_bound > MAX_SPARSE_PAIRS:
        raise ValueError(
            f"the sparse form would list at least {lower_bound:,} reachable (source, node) pairs (limit "
            f"{MAX_SPARSE_PAIRS:,}): the DAG is too deep for it; use form='scan' or form='auto'")
    device = dag.edge_index.device
    src, dst = dag.edge_index.cpu().numpy()
    line_src, line_dst = dag.line_index.cpu().numpy()
    level = dag.edge_level.cpu().numpy()
    num_edges, num_levels, num_nodes = src.size, dag.num_levels, dag.num_nodes
    # Pairs are created level by level, sorted by (edge, source) within a level; the pairs of one edge are
    # contiguous: first[e] .. first[e] + count[e]. `sources` holds the source of every pair made so far.
    first = np.zeros(num_edges, dtype=np.int64)
    count = np.zeros(num_edges, dtype=np.int64)
    sources = np.empty(max(2 * num_edges, 16), dtype=np.int64)
    pair_edge, link_from, link_to, link_line = [], [], [], []
    edges_by_level, edge_ptr = csr(level, num_levels)
    lines_by_level, line_ptr = csr(level[line_dst], num_levels)
    total = 0
    for lvl in range(num_levels):
        edges = edges_by_level[edge_ptr[lvl]:edge_ptr[lvl + 1]]
        lines = lines_by_level[line_ptr[lvl]:line_ptr[lvl + 1]]
        if lines.size:
            feeders = line_src[lines]
            repeats = count[feeders]
            inherited = ranges(first[feeders], repeats)
            cand_edge = np.concatenate([edges, np.repeat(line_dst[lines], repeats)])
            cand_source = np.concatenate([src[edges], sources[inherited]])
            unique, slot = _sorted_unique(cand_edge * num_nodes + cand_source)
            new_edge, new_source = np.divmod(unique, num_nodes)
            link_from.append(inherited)
            link_to.append(total + slot[edges.size:])
            link_line.append(np.repeat(lines, repeats))
        else:
            # Only the edges' own pairs, one per edge, in edge order (edges_by_level keeps it).
            new_edge, new_source = edges, src[edges]
        size = new_edge.size
        if total + size > sources.size:
            sources = np.concatenate([sources, np.empty(max(sources.size, size), dtype=np.int64)])
        sources[total:total + size] = new_source
        pair_edge.append(new_edge)
        starts = np.flatnonzero(_run_starts(new_edge))
        first[new_edge[starts]] = total + starts
        count[new_edge[starts]] = np.diff(np.append(starts, size))
        total += size

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    pair_edge_a, pair_source_a = cat(pair_edge), sources[:total]
    links = np.stack([cat(link_from), cat(link_to)])
    # The self pair (e, src(e)) of every edge: its source is the edge's own tail.
    self_pair = np.flatnonzero(pair_source_a == src[pair_edge_a])
    self_pair = self_pair[np.argsort(pair_edge_a[self_pair], kind="stable")]
    node_pairs, pair_node_pair = _sorted_unique(pair_source_a * num_nodes + dst[pair_edge_a])
    levels = _sorted_levels(links, level[pair_edge_a].astype(np.int64, copy=False), device)
    as_tensor = functools.partial(_as_tensor, device=device)
    return Reachability(as_tensor(pair_edge_a), as_tensor(pair_source_a), as_tensor(self_pair),
                        as_tensor(cat(link_line)), levels, as_tensor(pair_node_pair),
                        as_tensor(node_pairs // num_nodes), as_tensor(node_pairs % num_nodes))
