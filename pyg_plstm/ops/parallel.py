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
with the level scan's loops, ``N_max`` scalars per edge and head instead of
``K * V`` (the backward pass is the adjoint scan). Row :math:`n` of
:math:`G^\top` is :math:`\sum_{e \in \mathrm{in}(n)} M_e A_e`; it is padded into
dense blocks together with ``q, k, v``, and the rest is attention-like
matrix products on ``[B, H, N_max, N_max]``.

Memory is :math:`O(B H N_{\max}^2 + E H N_{\max})` for ``B`` graphs of at most
``N_max`` nodes: padding makes one large graph expensive for the whole batch,
so use this form only where :func:`prefer_parallel` says so.

:math:`G` could also come from a dense triangular solve of :math:`(I - T)`
over the edges of each graph in level order (``O(B H E_max^2)`` memory). On
128 ESOL molecules (``N_max`` 31-33, ``E_max`` 34-36, 19-24 levels; ``H = 4``,
``K = V = 24``, float32, forward + backward, same dense tail) the solve took
13-15 ms against 8.5-9.6 ms for the level propagation with 2 threads, and
30-34 ms against 17-20 ms in CPU time with one thread; the level scan itself
took 20-33 ms and 23-30 ms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from pyg_plstm.functional import _check_operands, schedule_for
from pyg_plstm.ops.level_scan import LevelSchedule, _scan_adjoints, _scan_states

__all__ = ["MAX_PARALLEL_NODES", "ParallelSchedule", "parallel_schedule", "plstm_dag_parallel", "prefer_parallel"]


@dataclass(frozen=True)
class ParallelSchedule:
    """Padding layout of a batch of DAGs for the parallel form (reusable across layers).

    Attributes:
        levels: level order of the edges and line edges.
        num_graphs: ``B``, the number of dense blocks.
        max_nodes: ``N_max``, the side of each block.
        node_local: ``[N]`` position of each node within its graph.
        node_slot: ``[N]`` row of each node in the flattened ``[B * N_max]`` blocks.
    """

    levels: LevelSchedule
    num_graphs: int
    max_nodes: int
    node_local: Tensor
    node_slot: Tensor


class _GateScan(torch.autograd.Function):
    r"""Path sums :math:`A = P^\top A_0` of per-edge gate vectors, in level order.

    Linear in ``start``, so the backward pass is the adjoint scan; only the
    final gates are kept (autograd through the loop would store every level).
    """

    @staticmethod
    def forward(ctx, start: Tensor, transition: Tensor, sched: LevelSchedule) -> Tensor:  # type: ignore[override]
        gates = start.clone()
        _scan_states(gates, transition, sched)
        ctx.save_for_backward(transition, gates)
        ctx.sched = sched
        return gates

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        transition, gates = ctx.saved_tensors
        sched: LevelSchedule = ctx.sched
        adj = grad.clone()
        _scan_adjoints(adj, transition, sched)
        grad_transition = (adj[sched.line_dst] * gates[sched.line_src]).sum((-2, -1))
        return adj, grad_transition, None


def _check_batch(batch: Tensor, num_nodes: int, device: torch.device, validate: bool) -> None:
    if not isinstance(batch, Tensor) or batch.is_floating_point() or batch.is_complex() or batch.dtype == torch.bool:
        raise ValueError(f"`batch` must be an integer tensor, got {getattr(batch, 'dtype', type(batch).__name__)}")
    if batch.shape != (num_nodes,):
        raise ValueError(f"`batch` must have shape [{num_nodes}] (one graph id per node), got {list(batch.shape)}")
    if batch.device != device:
        raise ValueError(f"`batch` is on {batch.device} but the operands are on {device}")
    if not validate or not num_nodes:
        return
    if int(batch[0]) < 0:
        raise ValueError(f"`batch` holds negative graph ids ({int(batch[0])})")
    drops = batch[1:] < batch[:-1]
    if bool(drops.any()):
        i = int(drops.nonzero()[0]) + 1
        raise ValueError(
            f"the nodes of each graph must be contiguous and graphs in order (as in a PyG Batch), but "
            f"`batch` goes from {int(batch[i - 1])} to {int(batch[i])} at node {i}")


def parallel_schedule(
    dag_edge_index: Tensor,
    line_index: Tensor,
    num_nodes: int,
    batch: Optional[Tensor] = None,
    edge_level: Optional[Tensor] = None,
    validate: bool = True,
) -> ParallelSchedule:
    """Level order (see :func:`~pyg_plstm.functional.schedule_for`) and dense-block slots.

    With ``validate``, also checks that ``batch`` is sorted (nodes of a graph
    contiguous) and that no DAG edge joins two graphs; line edges then cannot
    either, as they join edges that share a node.
    """
    device = dag_edge_index.device
    if batch is None:
        batch = torch.zeros(num_nodes, dtype=torch.long, device=device)
    else:
        _check_batch(batch, num_nodes, device, validate)
    batch = batch.long()
    levels = schedule_for(dag_edge_index, line_index, num_nodes, edge_level, validate)
    src, dst = dag_edge_index.long()
    if validate:
        crossing = batch[src] != batch[dst]
        if bool(crossing.any()):
            j = int(crossing.nonzero()[0])
            raise ValueError(
                f"`dag_edge_index` column {j} = {dag_edge_index[:, j].tolist()} joins graph {int(batch[src[j]])} "
                f"to graph {int(batch[dst[j]])}; every edge must stay within one graph of `batch`")

    counts = torch.bincount(batch)
    num_graphs = counts.numel()
    max_nodes = int(counts.max()) if num_graphs else 0
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(num_nodes, device=device) - first[batch]
    return ParallelSchedule(levels, num_graphs, max_nodes, local, batch * max_nodes + local)


def plstm_dag_parallel(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Tensor,
    mark: Tensor,
    direct: Tensor,
    dag_edge_index: Tensor,
    line_index: Tensor,
    batch: Optional[Tensor] = None,
    edge_level: Optional[Tensor] = None,
    *,
    schedule: Optional[ParallelSchedule] = None,
    validate: bool = True,
) -> Tensor:
    r"""The pLSTM operator in its parallel form, one dense block per graph.

    Same semantics and arguments as :func:`~pyg_plstm.functional.plstm_dag`,
    computed as :math:`y = \big((G + \mathrm{diag}\,D)^\top \odot Q K^\top\big) V`
    per graph and head (see the module docstring). Differentiable by autograd.
    Time and memory grow as :math:`B H N_{\max}^2`; see :func:`prefer_parallel`.

    Args:
        batch: ``[N]`` graph id of every node (PyG's ``batch`` vector; the
            nodes of a graph must be contiguous), ``None`` for a single graph.
        schedule: a precomputed :class:`ParallelSchedule` (from
            :func:`parallel_schedule`) to share across layers; ``batch``,
            ``edge_level`` and validation are then skipped.
        validate: check the structure as :func:`~pyg_plstm.functional.plstm_dag`
            does, plus that ``batch`` is sorted and no edge joins two graphs.

    Returns:
        ``[N, H, V]``.
    """
    _check_operands(query, key, value, source, transition, mark, direct,
                    dag_edge_index, line_index, edge_level)
    if schedule is None:
        schedule = parallel_schedule(dag_edge_index, line_index, query.size(0), batch, edge_level, validate)
    else:
        built = (schedule.node_slot.numel(), schedule.levels.edge_perm.numel(), schedule.levels.line_perm.numel())
        if built != (query.size(0), source.size(0), transition.size(0)):
            raise ValueError(
                f"`schedule` was built for {built[0]} nodes, {built[1]} edges and {built[2]} line edges, but "
                f"the operands have {query.size(0)}, {source.size(0)} and {transition.size(0)}")
    levels = schedule.levels
    num_edges, heads = source.shape
    b, n = schedule.num_graphs, schedule.max_nodes

    src, dst = dag_edge_index[:, levels.edge_perm]
    start = source.new_zeros(num_edges, heads, n, 1)
    start[torch.arange(num_edges, device=source.device), :, schedule.node_local[src], 0] = source[levels.edge_perm]
    gates = _GateScan.apply(start, transition[levels.line_perm], levels)
    # Row n of G^T: the gates of all paths into n, indexed by their source node.
    gating = source.new_zeros(query.size(0), heads, n).index_add_(
        0, dst, mark[levels.edge_perm, :, None] * gates[..., 0])

    k_dim, v_dim = query.size(-1), value.size(-1)
    rows = torch.cat([query, key, value, gating], -1)
    dense = rows.new_zeros(b * n, *rows.shape[1:]).index_copy(0, schedule.node_slot, rows)
    q, k, v, g = dense.view(b, n, heads, rows.size(-1)).transpose(1, 2).split([k_dim, k_dim, v_dim, n], -1)
    out = ((g * (q @ k.transpose(-1, -2))) @ v).transpose(1, 2).reshape(b * n, heads, v_dim)
    return out[schedule.node_slot] + direct[..., None] * (query * key).sum(-1, keepdim=True) * value


# Measured forward + backward time in ms, level scan / parallel form (CPU,
# float32, one thread, CPU time of interleaved runs on a shared machine;
# H = 4, K = V = 24 unless noted; 128 graphs per batch):
#
#   nodes/graph    random trees     chains
#        16          47 / 8          51 / 8
#        32          98 / 22        115 / 23
#        48         149 / 43        182 / 44
#        64         202 / 69        249 / 70
#        96         334 / 153       325 / 148
#       128         450 / 416       516 / 518
#       192         786 / 1351      748 / 1399
#       256        1230 / 2577     1003 / 2451
#       512        2533 / 10156    1966 / 9221
#
#   ESOL molecules (N_max 31-33, 13 nodes on average): 23-30 / 17-20
#   127 molecules + one tree of m nodes: m = 32: 33 / 15, 48: 23 / 29,
#       64: 17 / 41, 128: 18 / 265
#   512 molecules (N_max 47): 143 / 174;  32 molecules: 5.6 / 4.6
#   trees, K = V = 8:  32: 12 / 15,  64: 24 / 60
#          K = V = 16: 32: 29 / 17,  64: 66 / 54,  128: 181 / 447
#          K = V = 32: 128: 874 / 488;  K = V = 64: 96: 3171 / 348, 128: 4107 / 567
#
# The scan costs ~E K V (a state per edge), the parallel form
# ~B N_max^2 (c + K + V) (padded blocks); the constants below put every
# measured crossover on the right side.
_COST_OFFSET = 20
_COST_RATIO = 15
# Never pad beyond this, whatever the head size: memory is O(B H N_max^2).
MAX_PARALLEL_NODES = 256


def prefer_parallel(num_edges: int, num_graphs: int, max_nodes: int, key_dim: int, value_dim: int) -> bool:
    r"""Whether :func:`plstm_dag_parallel` is expected to beat the level scan.

    A measured cost rule (forward + backward on CPU): the level scan moves a
    :math:`K \times V` state per DAG edge, the parallel form fills
    :math:`B` padded :math:`N_{\max} \times N_{\max}` blocks. It picks the
    parallel form when

    .. math::
        B\, N_{\max}^2\, (20 + K + V) < 15\, E\, K V
        \quad\text{and}\quad N_{\max} \le 256,

    i.e., for batches of equal-sized graphs, up to about 27 nodes per graph
    at ``K = V = 8``, 74 at 16, 127 at 24 and 183 at 32 (measured: 25-30,
    ~75 and ~130 for the first three). Padding (one large graph among small
    ones) moves the balance towards the scan; heads cancel (both forms are
    linear in ``H``). The cap keeps large graphs off the quadratic memory
    whatever the head size. Measured on CPU only: on a GPU the per-level
    kernel launches of the scan should favour the parallel form further.

    Args:
        num_edges: ``E``, DAG edges in the batch.
        num_graphs: ``B``, graphs in the batch (dense blocks).
        max_nodes: ``N_max``, nodes of the largest graph.
        key_dim, value_dim: ``K`` and ``V``, the per-head sizes.
    """
    sizes = {"num_edges": num_edges, "num_graphs": num_graphs, "max_nodes": max_nodes,
             "key_dim": key_dim, "value_dim": value_dim}
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"`{name}` must be a non-negative int, got {size!r}")
    if max_nodes > MAX_PARALLEL_NODES:
        return False
    cost_parallel = num_graphs * max_nodes**2 * (_COST_OFFSET + key_dim + value_dim)
    return cost_parallel < _COST_RATIO * num_edges * key_dim * value_dim
