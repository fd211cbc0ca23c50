r"""Everything the operator forms derive from a DAG's structure: level
schedules, the parallel form's padding layout, the measured rule that picks a
form, and the validation of structure and operands.

All of it is cached on the :class:`~pyg_plstm.DAG` (:meth:`~pyg_plstm.DAG.memo`),
so the layers of a model that share one DAG build each piece once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pyg_plstm.checks import check_device
from pyg_plstm.dag import DAG
from pyg_plstm.ops.householder import Householder

__all__ = [
    "FORMS", "MAX_PARALLEL_NODES", "PARALLEL_MEMORY_LIMIT", "LevelSchedule", "ParallelLayout", "Reachability",
    "check_operands", "check_structure", "choose_form", "level_schedule", "parallel_layout", "parallel_memory",
    "dense_form_costs", "reachability", "sort_levels", "estimated_node_pairs", "form_costs", "MAX_SPARSE_PAIRS",
]

FORMS = ("auto", "scan", "parallel", "sparse", "reference")


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
    return dag.memo("level_schedule", lambda: sort_levels(dag.line_index, dag.edge_level))


def sort_levels(line_index: Tensor, edge_level: Tensor) -> LevelSchedule:
    """Sort the states (``edge_level``: one level per state) and their links
    (``line_index``: pairs of states) by level, so each level is a contiguous slice."""
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
    def num_links(self) -> int:
        return self.link_line.numel()

    @property
    def num_node_pairs(self) -> int:
        return self.node_pair_source.numel()


def reachability(dag: DAG) -> Reachability:
    """The pair structure of ``dag`` (host work, built once per DAG view and cached)."""
    return dag.memo("reachability", lambda: _reachability(dag))


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
    num_edges, num_levels = src.size, dag.num_levels
    # Pairs are created level by level; the pairs of one edge are contiguous: first[e] .. first[e] + count[e].
    first = np.zeros(num_edges, dtype=np.int64)
    count = np.zeros(num_edges, dtype=np.int64)
    pair_edge, pair_source, link_from, link_to, link_line = [], [], [], [], []
    edges_by_level = np.argsort(level, kind="stable")
    edge_ptr = np.searchsorted(level[edges_by_level], np.arange(num_levels + 1))
    lines_by_level = np.argsort(level[line_dst], kind="stable")
    line_ptr = np.searchsorted(level[line_dst][lines_by_level], np.arange(num_levels + 1))
    total = 0
    for lvl in range(num_levels):
        edges = edges_by_level[edge_ptr[lvl]:edge_ptr[lvl + 1]]
        lines = lines_by_level[line_ptr[lvl]:line_ptr[lvl + 1]]
        feeders = line_src[lines]
        repeats = count[feeders]
        inherited = np.repeat(first[feeders] - np.cumsum(repeats) + repeats, repeats) + np.arange(repeats.sum())
        cand_edge = np.concatenate([edges, np.repeat(line_dst[lines], repeats)])
        cand_source = np.concatenate([src[edges], np.concatenate(pair_source)[inherited] if inherited.size
                                      else np.zeros(0, dtype=np.int64)])
        keys = cand_edge * dag.num_nodes + cand_source
        unique, slot = np.unique(keys, return_inverse=True)
        new_edge, new_source = unique // dag.num_nodes, unique % dag.num_nodes
        pair_edge.append(new_edge)
        pair_source.append(new_source)
        edge_ids, edge_start, edge_count = np.unique(new_edge, return_index=True, return_counts=True)
        first[edge_ids], count[edge_ids] = total + edge_start, edge_count
        link_from.append(inherited)
        link_to.append(total + slot[edges.size:])
        link_line.append(np.repeat(lines, repeats))
        total += unique.size

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    pair_edge_a, pair_source_a = cat(pair_edge), cat(pair_source)
    links = np.stack([cat(link_from), cat(link_to)])
    # The self pair (e, src(e)) of every edge: its source is the edge's own tail.
    self_pair = np.flatnonzero(pair_source_a == src[pair_edge_a])
    self_pair = self_pair[np.argsort(pair_edge_a[self_pair], kind="stable")]
    node_keys = pair_source_a * dag.num_nodes + dst[pair_edge_a]
    node_pairs, pair_node_pair = np.unique(node_keys, return_inverse=True)

    def as_tensor(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)

    levels = sort_levels(as_tensor(links), as_tensor(level[pair_edge_a]))
    return Reachability(as_tensor(pair_edge_a), as_tensor(pair_source_a), as_tensor(self_pair),
                        as_tensor(cat(link_line)), levels, as_tensor(pair_node_pair),
                        as_tensor(node_pairs // dag.num_nodes), as_tensor(node_pairs % dag.num_nodes))


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


def check_operands(query: Tensor, key: Tensor, value: Tensor, source: Tensor, transition: Tensor | Householder,
                   mark: Tensor, direct: Tensor, dag: DAG) -> None:
    """Raise ``ValueError`` naming the operand whose type, dtype, device or shape does not fit ``dag``.

    ``transition`` is ``[L, H]`` (scalars), ``[L, H, K, K]`` (matrices) or a
    :class:`~pyg_plstm.ops.householder.Householder` of ``[L, H]``,
    ``[L, H, n_h, K]`` and ``[L, H, n_h]`` tensors with ``n_h >= 1``.
    """
    if not isinstance(dag, DAG):
        raise ValueError(f"`dag` must be a pyg_plstm.DAG (e.g. from get_dag or prepare_dag), got {type(dag).__name__}")
    householder = isinstance(transition, Householder)
    if not householder and not isinstance(transition, Tensor):
        raise ValueError("`transition` must be a torch.Tensor ([L, H] or [L, H, K, K]) or a "
                         f"pyg_plstm.ops.Householder, got {type(transition).__name__}")
    parts = ({f"transition.{field}": t for field, t in zip(Householder._fields, transition)} if householder
             else {"transition": transition})
    named = {"query": query, "key": key, "value": value, "source": source, **parts, "mark": mark, "direct": direct}
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
    check_device("query", query.device, dag=dag.edge_index)
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
    lines = dag.num_line_edges
    if householder:
        scale, direction, beta = transition
        if scale.shape != (lines, h):
            raise _shape_error("transition.scale", f"[{lines}, {h}] (one row per line edge)", scale)
        if direction.dim() != 4 or direction.shape[:2] != (lines, h) or direction.size(-1) != k:
            raise _shape_error("transition.direction", f"[{lines}, {h}, n_h, {k}] (n_h reflections of the key "
                               "dimension per line edge)", direction)
        if direction.size(2) < 1:
            raise ValueError("`transition.direction` holds no reflections (n_h = 0); pass the scalar "
                             "`transition.scale` as the transition instead")
        if beta.shape != direction.shape[:3]:
            raise _shape_error("transition.beta", f"{list(direction.shape[:3])} (one per reflection)", beta)
    elif transition.shape not in ((lines, h), (lines, h, k, k)):
        raise _shape_error("transition", f"[{lines}, {h}] (one row per line edge) or [{lines}, {h}, {k}, {k}] "
                           "(a matrix on the key dimension per line edge)", transition)


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


def dense_form_costs(num_edges: int, num_graphs: int, max_nodes: int, key_dim: int,
                     value_dim: int) -> dict[str, float]:
    r"""Estimated forward + backward time (ns, CPU) of the level scan and of
    :func:`~pyg_plstm.ops.parallel.plstm_parallel` on a batch of these sizes.

    A measured cost model: the level scan moves a :math:`K \times V` state per
    DAG edge, the parallel form fills :math:`B` padded
    :math:`N_{\max} \times N_{\max}` blocks, so the parallel form is the
    cheaper when

    .. math::
        B\, N_{\max}^2\, (20 + K + V) < 15\, E\, K V
        \quad\text{and}\quad N_{\max} \le 256,

    i.e., for batches of equal-sized graphs, up to about 27 nodes per graph
    at ``K = V = 8``, 74 at 16, 127 at 24 and 183 at 32 (measured: 25-30,
    ~75 and ~130 for the first three). Padding (one large graph among small
    ones) moves the balance towards the scan; heads cancel (both forms are
    linear in ``H``). Above :data:`MAX_PARALLEL_NODES` the parallel form is
    left out, keeping large graphs off the quadratic memory whatever the head
    size. Measured on CPU only: on a GPU the per-level kernel launches of the
    scan should favour the parallel form further.

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
    costs = {"scan": _SCAN_NS_PER_STATE_ENTRY * num_edges * key_dim * value_dim}
    if max_nodes <= MAX_PARALLEL_NODES:
        padded = num_graphs * max_nodes**2 * (_COST_OFFSET + key_dim + value_dim)
        costs["parallel"] = _SCAN_NS_PER_STATE_ENTRY / _COST_RATIO * padded
    return costs


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


# Forward + backward time per unit of work on CPU (one thread, float32, H = 4;
# fitted to the level-scan / parallel tables above and to these sparse-form
# measurements, scan / parallel / sparse ms: 128 random trees of 16 nodes,
# K = V = 8: 6.7 / 4.3 / 2.6, K = V = 24: 36.9 / 6.4 / 4.7; 128 molecules,
# K = V = 24: 19.5 / 5.7 / 2.0; 1,024 molecules: 287 / 166 / 25; 32 chains of
# 64 nodes, K = V = 24: 15-39 / 11 / 76).
_SCAN_NS_PER_STATE_ENTRY = 35.0  # per E * K * V
_SPARSE_NS_PER_PAIR_ENTRY = 13.0  # per node pair * (K + V + 24)
_SPARSE_PAIR_OFFSET = 24
# The sparse form refuses structures with more reachable pairs than this.
MAX_SPARSE_PAIRS = 2**26


def estimated_node_pairs(dag: DAG) -> int:
    r""":math:`\sum_n \mathrm{depth}(n)`: the number of (ancestor, node) pairs of
    a forest, and a lower bound on it for any DAG; cheap (no host work)."""
    def count() -> int:
        if not dag.num_edges:
            return 0
        depth = torch.zeros(dag.num_nodes, dtype=torch.long, device=dag.edge_index.device)
        depth.scatter_reduce_(0, dag.edge_index[1], dag.edge_level.long() + 1, reduce="amax")
        return int(depth.sum())
    return dag.memo("estimated_node_pairs", count)


def form_costs(dag: DAG, key_dim: int, value_dim: int) -> dict[str, float]:
    """Estimated forward + backward time (ns, CPU) of each fast form on ``dag``:
    ``scan`` moves a ``K x V`` state per edge, ``parallel`` fills padded
    ``N_max x N_max`` blocks, ``sparse`` touches every reachable node pair
    (estimated by :func:`estimated_node_pairs`). Forms that cannot run on
    ``dag`` (graphs beyond :data:`MAX_PARALLEL_NODES` nodes) are left out."""
    costs = dense_form_costs(dag.num_edges, dag.num_graphs, dag.max_graph_nodes, key_dim, value_dim)
    if "parallel" in costs:
        pairs = estimated_node_pairs(dag)
        costs["sparse"] = _SPARSE_NS_PER_PAIR_ENTRY * pairs * (key_dim + value_dim + _SPARSE_PAIR_OFFSET)
    return costs


def choose_form(dag: DAG, key_dim: int, value_dim: int) -> str:
    """The form ``form="auto"`` runs: the cheapest by :func:`form_costs`.

    Scan and parallel compare as in :func:`dense_form_costs`; the sparse form
    wins on batches of small, tree-like graphs (molecules), the scan on deep
    graphs with many paths and on large graphs.
    """
    costs = form_costs(dag, key_dim, value_dim)
    return min(costs, key=costs.__getitem__)
