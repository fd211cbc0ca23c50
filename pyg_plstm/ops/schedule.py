r"""Everything the operator forms derive from a DAG's structure: level
schedules, the parallel form's padding layout, the measured rule that picks a
form, and the validation of structure and operands.

All of it is cached on the :class:`~pyg_plstm.DAG` (:meth:`~pyg_plstm.DAG.memo`),
so the layers of a model that share one DAG build each piece once.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pyg_plstm.dag import DAG

__all__ = [
    "FORMS", "MAX_PARALLEL_NODES", "PARALLEL_MEMORY_LIMIT", "LevelSchedule", "ParallelLayout", "check_operands",
    "check_structure", "choose_form", "level_schedule", "parallel_layout", "parallel_memory", "prefer_parallel",
]

FORMS = ("auto", "scan", "parallel", "reference")


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


def level_schedule(dag: DAG) -> LevelSchedule:
    """The level order of ``dag`` (built once per DAG view, then cached on it)."""
    return dag.memo("level_schedule", lambda: _sort_levels(dag.line_index, dag.edge_level))


def _sort_levels(line_index: Tensor, edge_level: Tensor) -> LevelSchedule:
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


def check_structure(dag: DAG) -> None:
    """Raise ``ValueError`` unless the DAG is consistent: index ranges, line
    edges joining edges that share a node, levels increasing along line edges,
    no edge joining two graphs of the batch. Checked once per DAG view."""
    dag.memo("checked", lambda: _check_structure(dag))


def _check_structure(dag: DAG) -> bool:
    ei, li, n, e = dag.edge_index, dag.line_index, dag.num_nodes, dag.num_edges
    if e and (int(ei.min()) < 0 or int(ei.max()) >= n):
        bad = int(((ei < 0) | (ei >= n)).any(0).nonzero()[0])
        raise ValueError(f"`dag_edge_index` column {bad} = {ei[:, bad].tolist()} points outside the {n} nodes")
    if dag.input_edge is not None and e and int(dag.input_edge.min()) < 0:
        raise ValueError("`input_edge` holds negative edge ids")
    if li.numel():
        if int(li.min()) < 0 or int(li.max()) >= e:
            bad = int(((li < 0) | (li >= e)).any(0).nonzero()[0])
            raise ValueError(f"`line_index` column {bad} = {li[:, bad].tolist()} refers to an edge outside [0, {e})")
        joined = ei[1, li[0]] == ei[0, li[1]]
        if not bool(joined.all()):
            bad = int((~joined).nonzero()[0])
            a, b = li[:, bad].tolist()
            raise ValueError(
                f"`line_index` column {bad} pairs edge {a} {ei[:, a].tolist()} with edge {b} "
                f"{ei[:, b].tolist()}, which do not share a node (need dst(e_in) == src(e_out))")
        level = dag.edge_level
        ordered = level[li[0]] < level[li[1]]
        if not bool(ordered.all()):
            bad = int((~ordered).nonzero()[0])
            a, b = li[:, bad].tolist()
            raise ValueError(
                f"`edge_level` is not a topological order of the line graph: edge {a} (level "
                f"{int(level[a])}) feeds edge {b} (level {int(level[b])}); is the graph acyclic?")
    if e and dag.num_graphs > 1:
        batch = dag.batch
        crossing = batch[ei[0]] != batch[ei[1]]
        if bool(crossing.any()):
            j = int(crossing.nonzero()[0])
            raise ValueError(
                f"DAG edge {j} = {ei[:, j].tolist()} joins graph {int(batch[ei[0, j]])} to graph "
                f"{int(batch[ei[1, j]])}; every edge must stay within one graph of `batch`")
    return True


def _shape_error(name: str, expected: str, got: Tensor) -> ValueError:
    return ValueError(f"`{name}` must have shape {expected}, got {list(got.shape)}")


def check_operands(query: Tensor, key: Tensor, value: Tensor, source: Tensor, transition: Tensor,
                   mark: Tensor, direct: Tensor, dag: DAG) -> None:
    """Raise ``ValueError`` naming the operand whose type, dtype, device or shape does not fit ``dag``."""
    if not isinstance(dag, DAG):
        raise ValueError(f"`dag` must be a pyg_plstm.DAG (e.g. from get_dag or prepare_dag), got {type(dag).__name__}")
    named = {"query": query, "key": key, "value": value, "source": source,
             "transition": transition, "mark": mark, "direct": direct}
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise ValueError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"`{name}` must be a floating-point tensor, got {t.dtype}")
        if t.dtype != query.dtype:
            raise ValueError(f"`{name}` has dtype {t.dtype} but `query` has {query.dtype}; "
                             "cast all operands to one dtype")
        if t.device != query.device:
            raise ValueError(f"`{name}` is on {t.device} but `query` is on {query.device}")
    if dag.edge_index.device != query.device:
        raise ValueError(f"the DAG is on {dag.edge_index.device} but `query` is on {query.device}")
    if query.dim() != 3:
        raise _shape_error("query", "[N, H, K]", query)
    n, h, k = query.shape
    if n != dag.num_nodes:
        raise ValueError(f"`query` has {n} nodes but the DAG has {dag.num_nodes}")
    if key.shape != query.shape:
        raise _shape_error("key", f"[{n}, {h}, {k}] (like `query`)", key)
    if value.dim() != 3 or value.shape[:2] != (n, h):
        raise _shape_error("value", f"[{n}, {h}, V]", value)
    if direct.shape != (n, h):
        raise _shape_error("direct", f"[{n}, {h}]", direct)
    for name, t in (("source", source), ("mark", mark)):
        if t.shape != (dag.num_edges, h):
            raise _shape_error(name, f"[{dag.num_edges}, {h}] (one row per DAG edge)", t)
    if transition.shape != (dag.num_line_edges, h):
        raise _shape_error("transition", f"[{dag.num_line_edges}, {h}] (one row per line edge)", transition)


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
    r"""Whether :func:`~pyg_plstm.ops.parallel.plstm_parallel` is expected to beat the level scan.

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

# The parallel form refuses to allocate more than this for its dense blocks
# (forced form="parallel" on a large graph would otherwise try tens of GB).
PARALLEL_MEMORY_LIMIT = 4 * 2**30


def parallel_memory(num_edges: int, num_graphs: int, max_nodes: int, heads: int, key_dim: int, value_dim: int,
                    element_size: int) -> int:
    """Bytes of the parallel form's largest buffers: the per-edge gate vectors
    (``E H N_max``), the padded rows (``B N_max H (2K + V + N_max)``) and the
    gated score blocks (``B H N_max^2``)."""
    rows = num_graphs * max_nodes * heads * (2 * key_dim + value_dim + max_nodes)
    return element_size * (num_edges * heads * max_nodes + rows + 2 * num_graphs * heads * max_nodes**2)


def choose_form(dag: DAG, key_dim: int, value_dim: int) -> str:
    """``"parallel"`` or ``"scan"``, by :func:`prefer_parallel` on ``dag``'s graph sizes."""
    parallel = prefer_parallel(dag.num_edges, dag.num_graphs, dag.max_graph_nodes, key_dim, value_dim)
    return "parallel" if parallel else "scan"
