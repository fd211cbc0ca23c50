r"""Level-scan pLSTM operator: one sequential step per topological level.

Edges are renumbered so that every level is a contiguous block, and line
edges are grouped by the level of the edge they feed. The source terms of all
edges are formed at once; then, level by level, each edge's state receives
:math:`\sum T_{e'e} C_{e'}` from its (already final) predecessors with one
gather and one ``index_add_``. Marks are read out for all edges at once.

The backward pass is written by hand: the state adjoints
:math:`\bar C_{e'} = M_{e'} q \bar y^\top + \sum_{(e', e)} T_{e'e} \bar C_e`
are scanned over the levels in reverse, then every gate gradient is one
batched contraction. Autograd through the scan would have to keep a copy of
the state buffer per level; here only the final states are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


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


def _block_ptr(sorted_levels: Tensor, num_levels: int) -> list[int]:
    counts = torch.bincount(sorted_levels, minlength=num_levels)
    return [0] + torch.cumsum(counts, 0).tolist()


def level_schedule(line_index: Tensor, edge_level: Tensor) -> LevelSchedule:
    """Sort edges and line edges by level once, so each level is a contiguous slice."""
    num_edges = edge_level.numel()
    edge_level = edge_level.long()
    edge_perm = torch.sort(edge_level, stable=True).indices
    edge_pos = torch.empty_like(edge_perm)
    edge_pos[edge_perm] = torch.arange(num_edges, device=edge_perm.device)
    num_levels = int(edge_level.max()) + 1 if num_edges else 0

    src_pos, dst_pos = edge_pos[line_index[0]], edge_pos[line_index[1]]
    dst_level = edge_level[line_index[1]]
    line_perm = torch.sort(dst_level, stable=True).indices
    src_pos, dst_pos = src_pos[line_perm], dst_pos[line_perm]
    fwd_ptr = _block_ptr(dst_level[line_perm], num_levels)

    src_level = edge_level[line_index[0]][line_perm]
    bwd_perm = torch.sort(src_level, stable=True).indices
    bwd_ptr = _block_ptr(src_level[bwd_perm], num_levels)
    edge_ptr = _block_ptr(edge_level[edge_perm], num_levels)
    return LevelSchedule(edge_perm, edge_pos, line_perm, src_pos, dst_pos, fwd_ptr, bwd_perm, bwd_ptr, edge_ptr)


def _row_times(x: Tensor, m: Tensor) -> Tensor:
    """``x^T m`` per edge and head: ``[E, H, K] x [E, H, K, V] -> [E, H, V]``."""
    e, h, k = x.shape
    v = m.size(-1)
    return torch.bmm(x.reshape(e * h, 1, k), m.reshape(e * h, k, v)).view(e, h, v)


def _times_col(m: Tensor, y: Tensor) -> Tensor:
    """``m y`` per edge and head: ``[E, H, K, V] x [E, H, V] -> [E, H, K]``."""
    e, h, v = y.shape
    k = m.size(-2)
    # A row vector times m^T is much faster than a batched matrix-vector product here.
    return torch.bmm(y.reshape(e * h, 1, v), m.reshape(e * h, k, v).transpose(1, 2)).view(e, h, k)


def _outer(a: Tensor, b: Tensor) -> Tensor:
    return a.unsqueeze(-1) * b.unsqueeze(-2)


# Below this many elements, index_put_(accumulate=True) beats index_add_ on CPU
# (measured with torch 2.13, one thread: 3-6 us vs 25-40 us for 0.5k-8k elements;
# index_add_ wins from ~32k elements on, 7 us vs 56 us).
_SMALL_SCATTER = 16_384


def _accumulate_rows(block: Tensor, index: Tensor, rows: Tensor) -> None:
    """``block[index[i]] += rows[i]`` (indices may repeat)."""
    if block.is_cuda or rows.numel() >= _SMALL_SCATTER:
        block.index_add_(0, index, rows)
    else:
        block.index_put_((index,), rows, accumulate=True)


def _propagate(buf: Tensor, transition: Tensor, read: Tensor, write: Tensor, ptr: list[int],
               edge_ptr: list[int], levels: range) -> None:
    """In place, level by level: ``buf[write[j]] += transition[j] * buf[read[j]]``
    for the line edges ``j`` of block ``ptr[l] .. ptr[l+1]``, which all write
    into the edges of level ``l``."""
    for lvl in levels:
        a, b = ptr[lvl], ptr[lvl + 1]
        if a == b:
            continue
        moved = buf.index_select(0, read[a:b]).mul_(transition[a:b, :, None, None])
        # The edges of one level are one contiguous block: accumulate into that
        # block only (index_add_ into the whole buffer costs time in its size).
        e0 = edge_ptr[lvl]
        _accumulate_rows(buf[e0:edge_ptr[lvl + 1]], write[a:b] - e0, moved)


def _scan_states(state: Tensor, transition: Tensor, sched: LevelSchedule) -> None:
    """In place: add transported predecessor states, levels in increasing order."""
    _propagate(state, transition, sched.line_src, sched.line_dst, sched.fwd_ptr, sched.edge_ptr,
               range(1, sched.num_levels))


def _scan_adjoints(adj: Tensor, transition: Tensor, sched: LevelSchedule) -> None:
    """In place: propagate state adjoints back along the line edges, levels in decreasing order."""
    perm = sched.bwd_perm
    _propagate(adj, transition[perm], sched.line_dst[perm], sched.line_src[perm], sched.bwd_ptr,
               sched.edge_ptr, range(sched.num_levels - 2, -1, -1))


class _LevelScan(torch.autograd.Function):
    """Inputs are already in level order; returns per-node outputs of the state path."""

    @staticmethod
    def forward(ctx, query, key, value, source, transition, mark, src, dst, sched):  # type: ignore[override]
        k_src, v_src = key.index_select(0, src), value.index_select(0, src)
        state = _outer(source.unsqueeze(-1) * k_src, v_src)
        _scan_states(state, transition, sched)
        read = _row_times(query.index_select(0, dst), state)
        out = value.new_zeros(value.shape).index_add_(0, dst, mark.unsqueeze(-1) * read)
        ctx.save_for_backward(query, key, value, source, transition, mark, src, dst, state, read)
        ctx.sched = sched
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        query, key, value, source, transition, mark, src, dst, state, read = ctx.saved_tensors
        sched: LevelSchedule = ctx.sched
        q_dst, g_dst = query.index_select(0, dst), grad_out.index_select(0, dst)
        k_src, v_src = key.index_select(0, src), value.index_select(0, src)

        adj = _outer(mark.unsqueeze(-1) * q_dst, g_dst)
        _scan_adjoints(adj, transition, sched)

        grad_mark = (read * g_dst).sum(-1)
        grad_query = query.new_zeros(query.shape).index_add_(
            0, dst, mark.unsqueeze(-1) * _times_col(state, g_dst))
        adj_k = _row_times(k_src, adj)
        grad_source = (adj_k * v_src).sum(-1)
        grad_value = value.new_zeros(value.shape).index_add_(0, src, source.unsqueeze(-1) * adj_k)
        grad_key = key.new_zeros(key.shape).index_add_(
            0, src, source.unsqueeze(-1) * _times_col(adj, v_src))

        grad_transition = None
        if ctx.needs_input_grad[4]:
            moved = adj.index_select(0, sched.line_dst).mul_(state.index_select(0, sched.line_src))
            grad_transition = moved.sum((-2, -1))
        return grad_query, grad_key, grad_value, grad_source, grad_transition, grad_mark, None, None, None


@torch.no_grad()
def edge_states(key: Tensor, value: Tensor, source: Tensor, transition: Tensor, dag_edge_index: Tensor,
                sched: LevelSchedule) -> Tensor:
    """The cell states ``C_e`` ``[E, H, K, V]`` of every DAG edge (original edge order), for inspection."""
    src = dag_edge_index[0, sched.edge_perm]
    state = _outer(source[sched.edge_perm].unsqueeze(-1) * key.index_select(0, src), value.index_select(0, src))
    _scan_states(state, transition[sched.line_perm], sched)
    return state[sched.edge_pos]


def plstm_dag_level_scan(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Tensor,
    mark: Tensor,
    direct: Tensor,
    dag_edge_index: Tensor,
    sched: LevelSchedule,
) -> Tensor:
    """Level-scan form; see :func:`pyg_plstm.functional.plstm_dag` for the semantics."""
    ei = dag_edge_index[:, sched.edge_perm]
    out = _LevelScan.apply(
        query, key, value, source[sched.edge_perm], transition[sched.line_perm],
        mark[sched.edge_perm], ei[0], ei[1], sched)
    return out + direct[..., None] * (query * key).sum(-1, keepdim=True) * value
