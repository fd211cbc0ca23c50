r"""Pieces shared by the level scan and the parallel form.

Both forms move something along the line graph one topological level at a
time: the level scan the :math:`K \times V` cell states, the parallel form
scalar path weights. :func:`scan_states` and :func:`scan_adjoints` are that
loop (and its transpose for the backward pass) on a buffer in level order, as
laid out by :class:`~pyg_plstm.ops.schedule.LevelSchedule`.
"""
from __future__ import annotations

from torch import Tensor

from pyg_plstm.ops.schedule import LevelSchedule

__all__ = ["outer", "row_times", "times_col", "scan_states", "scan_adjoints", "scan_states_differentiable"]


def outer(a: Tensor, b: Tensor) -> Tensor:
    """Batched outer product ``a b^T`` over the last dimension."""
    return a.unsqueeze(-1) * b.unsqueeze(-2)


def row_times(x: Tensor, m: Tensor) -> Tensor:
    """``x^T m`` per edge and head: ``[E, H, K] x [E, H, K, V] -> [E, H, V]``."""
    e, h, k = x.shape
    v = m.size(-1)
    return (x.reshape(e * h, 1, k) @ m.reshape(e * h, k, v)).view(e, h, v)


def times_col(m: Tensor, y: Tensor) -> Tensor:
    """``m y`` per edge and head: ``[E, H, K, V] x [E, H, V] -> [E, H, K]``."""
    e, h, v = y.shape
    k = m.size(-2)
    # A row vector times m^T is much faster than a batched matrix-vector product here.
    return (y.reshape(e * h, 1, v) @ m.reshape(e * h, k, v).transpose(1, 2)).view(e, h, k)


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
    trailing = (None,) * (buf.dim() - transition.dim())
    for lvl in levels:
        a, b = ptr[lvl], ptr[lvl + 1]
        if a == b:
            continue
        moved = buf.index_select(0, read[a:b]).mul_(transition[(slice(a, b), ...) + trailing])
        # The edges of one level are one contiguous block: accumulate into that
        # block only (index_add_ into the whole buffer costs time in its size).
        e0 = edge_ptr[lvl]
        _accumulate_rows(buf[e0:edge_ptr[lvl + 1]], write[a:b] - e0, moved)


def scan_states(state: Tensor, transition: Tensor, sched: LevelSchedule) -> None:
    r"""In place, levels in increasing order: :math:`C_e \mathrel{+}= \sum_{(e', e)} T_{e'e} C_{e'}`.

    ``state`` is ``[E, H, ...]`` in level order, ``transition`` ``[L, H]`` in
    the schedule's line order.
    """
    _propagate(state, transition, sched.line_src, sched.line_dst, sched.fwd_ptr, sched.edge_ptr,
               range(1, sched.num_levels))


def scan_adjoints(adj: Tensor, transition: Tensor, sched: LevelSchedule) -> None:
    r"""In place, levels in decreasing order: :math:`\bar C_{e'} \mathrel{+}= \sum_{(e', e)} T_{e'e} \bar C_e`
    (the transpose of :func:`scan_states`)."""
    perm = sched.bwd_perm
    _propagate(adj, transition[perm], sched.line_dst[perm], sched.line_src[perm], sched.bwd_ptr,
               sched.edge_ptr, range(sched.num_levels - 2, -1, -1))


def scan_states_differentiable(state: Tensor, transition: Tensor, sched: LevelSchedule) -> Tensor:
    """:func:`scan_states` out of place, recorded by autograd (one buffer per level).

    Used only to differentiate a backward pass again (``create_graph=True``):
    the hand-written backward passes keep no autograd graph of their own.
    """
    trailing = (None,) * (state.dim() - transition.dim())
    for lvl in range(1, sched.num_levels):
        a, b = sched.fwd_ptr[lvl], sched.fwd_ptr[lvl + 1]
        if a == b:
            continue
        moved = state.index_select(0, sched.line_src[a:b]) * transition[(slice(a, b), ...) + trailing]
        state = state.index_add(0, sched.line_dst[a:b], moved)
    return state
