r"""The slow, obviously correct pLSTM operator on a DAG: the reference every form is tested against.

Per head, for every DAG edge ``e = (u -> w)`` visited in topological order:

.. math::
    C_e = \sum_{(e', e) \in \mathcal{L}} T_{e'e} C_{e'} + S_e\, k_u v_u^\top,
    \qquad
    y_n = \sum_{e:\,\mathrm{dst}(e) = n} M_e\, C_e^\top q_n + D_n (q_n^\top k_n)\, v_n.

:math:`T_{e'e}` is a scalar or a :math:`K \times K` matrix per line edge and
head (a :class:`~pyg_plstm.ops.householder.Householder` transition is
materialised here).
"""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_plstm.dag import DAG, node_depth
from pyg_plstm.ops.householder import Householder

__all__ = ["plstm_reference"]


def plstm_reference(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Tensor | Householder,
    mark: Tensor,
    direct: Tensor,
    dag: DAG,
) -> Tensor:
    """One edge at a time, in plain Python; differentiable through autograd
    (to any order). It uses nothing of the DAG but its edges and line edges:
    the topological order is recomputed here, independently of the levels
    the fast forms rely on."""
    num_nodes = query.size(0)
    if isinstance(transition, Householder):
        transition = transition.matrices()
    scalar = transition.dim() == 2
    src, dst = dag.edge_index.tolist()
    depth = node_depth(dag.edge_index.cpu().numpy(), num_nodes)
    predecessors: list[list[tuple[int, int]]] = [[] for _ in src]
    for j, (e_in, e_out) in enumerate(dag.line_index.t().tolist()):
        predecessors[e_out].append((j, e_in))

    states: dict[int, Tensor] = {}
    for e in sorted(range(len(src)), key=lambda e: depth[src[e]]):
        u = src[e]
        state = source[e, :, None, None] * key[u, :, :, None] * value[u, :, None, :]
        for j, e_in in predecessors[e]:
            state = state + (transition[j, :, None, None] * states[e_in] if scalar else transition[j] @ states[e_in])
        states[e] = state

    incoming: list[list[int]] = [[] for _ in range(num_nodes)]
    for e, w in enumerate(dst):
        incoming[w].append(e)
    outputs = []
    for n in range(num_nodes):
        y = direct[n, :, None] * (query[n] * key[n]).sum(-1, keepdim=True) * value[n]
        for e in incoming[n]:
            y = y + mark[e, :, None] * torch.einsum("hk,hkv->hv", query[n], states[e])
        outputs.append(y)
    if not outputs:
        return value.new_zeros(value.shape)
    return torch.stack(outputs)
