r"""Parallel (quadratic) pLSTM form for batches of small DAGs.

Unrolling the recursion of :func:`~pyg_plstm.functional.plstm_dag` gives, per
graph and head (paper Eq. 7),

.. math::
    y_n = \sum_{n'} G_{n'n}\, (q_n \cdot k_{n'})\, v_{n'} + D_n\, (q_n \cdot k_n)\, v_n,
    \qquad
    G_{n'n} = \sum_{e' \in \mathrm{out}(n')} \sum_{e \in \mathrm{in}(n)} S_{e'}\, P_{e'e}\, M_e,

with :math:`P = (I - T)^{-1}` the path sums over the line graph. No
:math:`K \times V` state is ever formed: the gates
:math:`A_{e,n'} = \sum_{e' \in \mathrm{out}(n')} S_{e'} P_{e'e}` are propagated
with the level scan's loops (:mod:`pyg_plstm.ops.common`), ``N_max`` scalars per edge and head instead of
``K * V`` (the backward pass is the adjoint scan). Row :math:`n` of
:math:`G^\top` is :math:`\sum_{e \in \mathrm{in}(n)} M_e A_e`; it is padded into
dense blocks together with ``q, k, v``, and the rest is attention-like
matrix products on ``[B, H, N_max, N_max]``.

Memory is :math:`O(B H N_{\max}^2 + E H N_{\max})` for ``B`` graphs of at most
``N_max`` nodes: padding makes one large graph expensive for the whole batch,
so ``form="auto"`` takes it only where :func:`~pyg_plstm.ops.cost.form_costs` rates it
cheapest; it refuses layouts beyond :data:`~pyg_plstm.ops.cost.PARALLEL_MEMORY_LIMIT`.
Why the gates are propagated level by level rather than by a dense triangular solve of
:math:`(I - T)`: the documentation's *Performance* results.
"""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_plstm.dag import DAG
from pyg_plstm.ops.common import direct_term, scan_linear
from pyg_plstm.ops.cost import PARALLEL_MEMORY_LIMIT, parallel_memory
from pyg_plstm.ops.structures import level_schedule, parallel_layout

__all__ = ["plstm_parallel"]


def plstm_parallel(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Tensor,
    mark: Tensor,
    direct: Tensor,
    dag: DAG,
) -> Tensor:
    r"""The pLSTM operator in its parallel form, one dense block per graph of ``dag.batch``.

    Same semantics and arguments as :func:`~pyg_plstm.functional.plstm_dag`,
    computed as :math:`y = \big((G + \mathrm{diag}\,D)^\top \odot Q K^\top\big) V`
    per graph and head (see the module docstring). Time and memory grow as
    :math:`B H N_{\max}^2`.

    Raises:
        ValueError: if the dense blocks would need more than
            :data:`~pyg_plstm.ops.cost.PARALLEL_MEMORY_LIMIT` bytes.
    """
    levels, layout = level_schedule(dag), parallel_layout(dag)
    num_edges, heads = source.shape
    b, n = layout.num_graphs, layout.max_nodes
    k_dim, v_dim = query.size(-1), value.size(-1)
    needed = parallel_memory(num_edges, b, n, heads, k_dim, v_dim, query.element_size())
    if needed > PARALLEL_MEMORY_LIMIT:
        raise ValueError(
            f"the parallel form would need about {needed / 2**30:.1f} GiB for {b} dense block(s) of "
            f"{n} x {n} nodes (limit {PARALLEL_MEMORY_LIMIT / 2**30:.0f} GiB); use form='scan' (linear memory) "
            "or form='auto' for large graphs")

    src, dst = dag.edge_index[:, levels.edge_perm]
    start = source.new_zeros(num_edges, heads, n, 1)
    start[torch.arange(num_edges, device=source.device), :, layout.node_local[src], 0] = source[levels.edge_perm]
    gates = scan_linear(start, transition[levels.line_perm], levels)
    # Row n of G^T: the gates of all paths into n, indexed by their source node.
    gating = source.new_zeros(query.size(0), heads, n).index_add(
        0, dst, mark[levels.edge_perm, :, None] * gates[..., 0])

    rows = torch.cat([query, key, value, gating], -1)
    dense = rows.new_zeros(b * n, *rows.shape[1:]).index_copy(0, layout.node_slot, rows)
    q, k, v, g = dense.view(b, n, heads, rows.size(-1)).transpose(1, 2).split([k_dim, k_dim, v_dim, n], -1)
    out = ((g * (q @ k.transpose(-1, -2))) @ v).transpose(1, 2).reshape(b * n, heads, v_dim)
    return out[layout.node_slot] + direct_term(query, key, value, direct)
