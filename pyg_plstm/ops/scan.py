r"""Level-scan pLSTM operator: one sequential step per topological level.

Edges are renumbered so that every level is a contiguous block, and line
edges are grouped by the level of the edge they feed. The source terms of all
edges are formed at once; then, level by level, each edge's state receives
:math:`\sum T_{e'e} C_{e'}` from its (already final) predecessors with one
gather and one ``index_add_``. Marks are read out for all edges at once.
Transitions may be scalars, dense :math:`K \times K` matrices or
:class:`~pyg_plstm.ops.householder.Householder` products (applied to the
states without forming the matrices).

The backward pass is written by hand: the state adjoints
:math:`\bar C_{e'} = M_{e'} q \bar y^\top + \sum_{(e', e)} T_{e'e}^\top \bar C_e`
are scanned over the levels in reverse, then every gate gradient is one
batched contraction (:func:`~pyg_plstm.ops.common.transition_grad` for the
transitions). Autograd through the scan would have to keep a copy of
the state buffer per level; here only the final states are kept.

Second derivatives (``create_graph=True``: gradient penalties, meta-learning,
influence functions) are exact: a backward pass that is itself to be
differentiated recomputes the state path with autograd-recorded operations
(one state buffer per level) and differentiates that.
"""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_plstm.dag import DAG
from pyg_plstm.ops.common import (
    Transition,
    direct_term,
    outer,
    row_times,
    scan_adjoints,
    scan_states,
    scan_states_differentiable,
    select_lines,
    times_col,
    transition_from_parts,
    transition_grad,
    transition_parts,
)
from pyg_plstm.ops.structures import LevelSchedule, level_schedule

__all__ = ["plstm_scan", "edge_states"]

# The differentiable inputs of _LevelScan, in order; the transition's tensors follow.
_GATED = 5  # query, key, value, source, mark


def _start_states(key: Tensor, value: Tensor, source: Tensor, src: Tensor) -> Tensor:
    """``S_e k_s v_s^T`` of every edge ``e = (s -> .)``: its state before the line edges feed it."""
    return outer(source.unsqueeze(-1) * key.index_select(0, src), value.index_select(0, src))


def _state_path(query: Tensor, key: Tensor, value: Tensor, source: Tensor, mark: Tensor, transition: Transition,
                src: Tensor, dst: Tensor, sched: LevelSchedule) -> Tensor:
    """The operator without its direct term, in autograd-recorded operations (inputs in level order)."""
    state = scan_states_differentiable(_start_states(key, value, source, src), transition, sched)
    read = row_times(query.index_select(0, dst), state)
    return value.new_zeros(value.shape).index_add(0, dst, mark.unsqueeze(-1) * read)


class _LevelScan(torch.autograd.Function):
    """Inputs are already in level order; returns per-node outputs of the state path.

    The transition (any kind of :mod:`~pyg_plstm.ops.common`) comes last, as
    its tensors (:func:`~pyg_plstm.ops.common.transition_parts`).
    """

    @staticmethod
    def forward(ctx, src, dst, sched, query, key, value, source, mark, *parts):  # type: ignore[override]
        transition = transition_from_parts(parts)
        state = _start_states(key, value, source, src)
        scan_states(state, transition, sched)
        read = row_times(query.index_select(0, dst), state)
        out = value.new_zeros(value.shape).index_add_(0, dst, mark.unsqueeze(-1) * read)
        ctx.save_for_backward(src, dst, query, key, value, source, mark, state, read, *parts)
        ctx.sched = sched
        return out

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        if torch.is_grad_enabled():
            return _differentiable_backward(ctx, grad_out)
        src, dst, query, key, value, source, mark, state, read, *parts = ctx.saved_tensors
        transition = transition_from_parts(tuple(parts))
        sched: LevelSchedule = ctx.sched
        q_dst, g_dst = query.index_select(0, dst), grad_out.index_select(0, dst)
        k_src, v_src = key.index_select(0, src), value.index_select(0, src)

        adj = outer(mark.unsqueeze(-1) * q_dst, g_dst)
        scan_adjoints(adj, transition, sched)

        grad_mark = (read * g_dst).sum(-1)
        grad_query = query.new_zeros(query.shape).index_add_(
            0, dst, mark.unsqueeze(-1) * times_col(state, g_dst))
        adj_k = row_times(k_src, adj)
        grad_source = (adj_k * v_src).sum(-1)
        grad_value = value.new_zeros(value.shape).index_add_(0, src, source.unsqueeze(-1) * adj_k)
        grad_key = key.new_zeros(key.shape).index_add_(
            0, src, source.unsqueeze(-1) * times_col(adj, v_src))

        needed = ctx.needs_input_grad[3 + _GATED:]
        grad_parts = [None] * len(parts)
        if any(needed):
            grads = transition_grad(adj.index_select(0, sched.line_dst), state.index_select(0, sched.line_src),
                                    transition)
            grad_parts = [grad if need else None for grad, need in zip(grads, needed)]
        return (None, None, None, grad_query, grad_key, grad_value, grad_source, grad_mark, *grad_parts)


def _differentiable_backward(ctx, grad_out: Tensor) -> tuple:
    """The backward pass as a function autograd can differentiate again."""
    src, dst, *inputs = ctx.saved_tensors
    inputs = inputs[:_GATED] + inputs[_GATED + 2:]  # without the saved state and read-out
    needed = ctx.needs_input_grad[3:]
    wanted = [t for t, need in zip(inputs, needed) if need]
    gated, parts = inputs[:_GATED], tuple(inputs[_GATED:])
    out = _state_path(*gated, transition_from_parts(parts), src, dst, ctx.sched)
    grads = iter(torch.autograd.grad(out, wanted, grad_out, create_graph=True, allow_unused=True))
    return (None, None, None, *(next(grads) if need else None for need in needed))


@torch.no_grad()
def edge_states(key: Tensor, value: Tensor, source: Tensor, transition: Transition, dag: DAG) -> Tensor:
    """The cell states ``C_e`` ``[E, H, K, V]`` of every DAG edge (``dag`` edge order), for inspection."""
    sched = level_schedule(dag)
    src = dag.edge_index[0, sched.edge_perm]
    state = _start_states(key, value, source[sched.edge_perm], src)
    scan_states(state, select_lines(transition, sched.line_perm), sched)
    return state[sched.edge_pos]


def plstm_scan(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Transition,
    mark: Tensor,
    direct: Tensor,
    dag: DAG,
) -> Tensor:
    """Level-scan form; see :func:`pyg_plstm.functional.plstm_dag` for the semantics.

    ``transition`` may be of any kind (scalar, dense matrix or
    :class:`~pyg_plstm.ops.householder.Householder`)."""
    sched = level_schedule(dag)
    ei = dag.edge_index[:, sched.edge_perm]
    out = _LevelScan.apply(
        ei[0], ei[1], sched, query, key, value, source[sched.edge_perm], mark[sched.edge_perm],
        *transition_parts(select_lines(transition, sched.line_perm)))
    return out + direct_term(query, key, value, direct)
