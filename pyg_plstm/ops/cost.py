r"""Which form runs: the names ``form`` accepts (:data:`FORMS`), the measured cost
model behind ``form="auto"`` (:func:`choose_form`) and the size limits of the
parallel and sparse forms."""
from __future__ import annotations

import torch

from pyg_plstm.dag import DAG

__all__ = ["FORMS", "MAX_PARALLEL_NODES", "MAX_SPARSE_PAIRS", "PARALLEL_MEMORY_LIMIT", "choose_form",
           "dense_form_costs", "estimated_node_pairs", "form_costs", "parallel_memory"]

# What `form` accepts: "auto" (choose_form below) or one of the forms, each a module of this package.
FORMS = ("auto", "scan", "parallel", "sparse", "reference")


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
