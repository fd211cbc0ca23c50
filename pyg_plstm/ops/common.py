r"""Pieces shared by the level scan, the parallel and the sparse form.

Each moves something along a line graph one topological level at a time:
the level scan the :math:`K \times V` cell states, the parallel and sparse
forms scalar path weights (:func:`scan_linear`). :func:`scan_states` and
:func:`scan_adjoints` are that loop (and its transpose for the backward pass)
on a buffer in level order, as laid out by :class:`~pyg_plstm.ops.structures.LevelSchedule`.

A transition is a scalar per line edge and head (``[L, H]``), a dense matrix
acting on the key dimension (``[L, H, K, K]``) or a
:class:`~pyg_plstm.ops.householder.Householder` product; :func:`move`,
:func:`select_lines`, :func:`transpose_lines` and :func:`transition_grad`
serve all three, so the loops below do not depend on the kind.
"""
from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

from pyg_plstm.ops.householder import Householder, Lines
from pyg_plstm.ops.structures import LevelSchedule

__all__ = ["direct_term", "outer", "row_times", "times_col", "scan_states", "scan_adjoints",
           "scan_states_differentiable", "scan_linear", "Transition", "is_scalar", "move", "select_lines",
           "transpose_lines", "transition_grad", "transition_parts", "transition_from_parts"]

Transition = Union[Tensor, Householder]


def is_scalar(transition: Transition) -> bool:
    """Whether ``transition`` is one scalar per line edge and head (``[L, H]``)."""
    return isinstance(transition, Tensor) and transition.dim() == 2


def select_lines(transition: Transition, lines: Lines) -> Transition:
    """The transitions of the line edges ``lines`` (an index tensor or a slice)."""
    return transition.select(lines) if isinstance(transition, Householder) else transition[lines]


def transpose_lines(transition: Transition) -> Transition:
    """The transposed transition of every line edge (scalars are their own transpose)."""
    if isinstance(transition, Householder):
        return transition.transpose()
    return transition if is_scalar(transition) else transition.transpose(-1, -2)


def move(states: Tensor, transition: Transition, inplace: bool = False) -> Tensor:
    """``T_j states_j`` for every line edge ``j``: ``states`` is ``[L, H, ...]``
    (``[L, H, K, V]`` for matrix transitions). ``inplace`` lets scalar and
    Householder transitions overwrite ``states`` (a freshly gathered block)."""
    if isinstance(transition, Householder):
        return transition.apply(states, inplace)
    if not is_scalar(transition):
        return transition @ states
    weights = transition[(...,) + (None,) * (states.dim() - 2)]
    return states.mul_(weights) if inplace else states * weights


def transition_grad(adjoint: Tensor, states: Tensor, transition: Transition) -> tuple[Tensor, ...]:
    """Gradients of ``sum_j <adjoint_j, T_j states_j>`` with respect to
    :func:`transition_parts`; ``adjoint`` and ``states`` are gathered per line
    edge, ``[L, H, K, V]``. A scalar transition may overwrite ``adjoint``."""
    if isinstance(transition, Householder):
        return transition.grad(adjoint, states)
    if is_scalar(transition):
        return (adjoint.mul_(states).sum((-2, -1)),)
    return (adjoint @ states.transpose(-1, -2),)


def transition_parts(transition: Transition) -> tuple[Tensor, ...]:
    """The tensors of ``transition``, e.g. to pass them to an autograd function."""
    return tuple(transition) if isinstance(transition, Householder) else (transition,)


def transition_from_parts(parts: tuple[Tensor, ...]) -> Transition:
    """Inverse of :func:`transition_parts`."""
    return Householder(*parts) if len(parts) == len(Householder._fields) else parts[0]


def direct_term(query: Tensor, key: Tensor, value: Tensor, direct: Tensor) -> Tensor:
    r"""The Direct gate's skip at every node, :math:`D_n (\mathbf{q}_n \cdot \mathbf{k}_n) \mathbf{v}_n`,
    added to the state readout by every fast form."""
    return direct[..., None] * (query * key).sum(-1, keepdim=True) * value


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


def _propagate(buf: Tensor, transition: Transition, read: Tensor, write: Tensor, ptr: list[int],
               edge_ptr: list[int], levels: range) -> None:
    """In place, level by level: ``buf[write[j]] += transition[j] buf[read[j]]``
    for the line edges ``j`` of block ``ptr[l] .. ptr[l+1]``, which all write
    into the edges of level ``l``."""
    for lvl in levels:
        a, b = ptr[lvl], ptr[lvl + 1]
        if a == b:
            continue
        moved = move(buf.index_select(0, read[a:b]), select_lines(transition, slice(a, b)), inplace=True)
        # The edges of one level are one contiguous block: accumulate into that
        # block only (index_add_ into the whole buffer costs time in its size).
        e0 = edge_ptr[lvl]
        _accumulate_rows(buf[e0:edge_ptr[lvl + 1]], write[a:b] - e0, moved)


def scan_states(state: Tensor, transition: Transition, sched: LevelSchedule) -> None:
    r"""In place, levels in increasing order: :math:`C_e \mathrel{+}= \sum_{(e', e)} T_{e'e} C_{e'}`.

    ``state`` is ``[E, H, ...]`` in level order (``[E, H, K, V]`` for matrix
    transitions), ``transition`` in the schedule's line order.
    """
    _propagate(state, transition, sched.line_src, sched.line_dst, sched.fwd_ptr, sched.edge_ptr,
               range(1, sched.num_levels))


def scan_adjoints(adj: Tensor, transition: Transition, sched: LevelSchedule) -> None:
    r"""In place, levels in decreasing order: :math:`\bar C_{e'} \mathrel{+}= \sum_{(e', e)} T_{e'e}^\top \bar C_e`
    (the transpose of :func:`scan_states`)."""
    perm = sched.bwd_perm
    _propagate(adj, transpose_lines(select_lines(transition, perm)), sched.line_dst[perm], sched.line_src[perm],
               sched.bwd_ptr, sched.edge_ptr, range(sched.num_levels - 2, -1, -1))


def scan_states_differentiable(state: Tensor, transition: Transition, sched: LevelSchedule) -> Tensor:
    """:func:`scan_states` out of place, recorded by autograd (one buffer per level).

    Used only to differentiate a backward pass again (``create_graph=True``):
    the hand-written backward passes keep no autograd graph of their own.
    """
    for lvl in range(1, sched.num_levels):
        a, b = sched.fwd_ptr[lvl], sched.fwd_ptr[lvl + 1]
        if a == b:
            continue
        moved = move(state.index_select(0, sched.line_src[a:b]), select_lines(transition, slice(a, b)))
        state = state.index_add(0, sched.line_dst[a:b], moved)
    return state


class _LinearScan(torch.autograd.Function):
    r"""Path sums :math:`A = P^\top A_0` of per-state vectors, in level order.

    Linear in ``start``, so the backward pass is the adjoint scan; only the
    final gates are kept (autograd through the loop would store every level).
    The backward pass is made of differentiable operations on saved inputs and
    outputs, so second derivatives are exact too.
    """

    @staticmethod
    def forward(ctx, start: Tensor, transition: Tensor, sched: LevelSchedule) -> Tensor:  # type: ignore[override]
        gates = start.clone()
        scan_states(gates, transition, sched)
        ctx.save_for_backward(transition, gates)
        ctx.sched = sched
        return gates

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        transition, gates = ctx.saved_tensors
        sched: LevelSchedule = ctx.sched
        adj = grad.clone()
        scan_adjoints(adj, transition, sched)
        moved = adj[sched.line_dst] * gates[sched.line_src]
        grad_transition = moved.flatten(2).sum(-1) if moved.dim() > 2 else moved
        return adj, grad_transition, None


def scan_linear(start: Tensor, transition: Tensor, sched: LevelSchedule) -> Tensor:
    r"""Out of place and differentiable (to any order): :func:`scan_states` of ``start``.

    ``start`` is ``[S, H, ...]`` in level order, ``transition`` ``[L, H]`` in
    the schedule's line order. Used for scalar path weights (parallel and
    sparse forms), where keeping no per-level copies matters.
    """
    return _LinearScan.apply(start, transition, sched)
