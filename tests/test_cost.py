"""pyg_plstm.ops.cost: the parallel form's memory refusal and the measured
rule that picks a form (the forms' values are in test_operator.py)."""
from __future__ import annotations

import resource

import pytest
import torch
from torch_geometric.data import Data

from pyg_plstm.dag import DAG, line_graph
from pyg_plstm.functional import plstm_dag
from pyg_plstm.ops import MAX_PARALLEL_NODES, choose_form, dense_form_costs, plstm_parallel
from pyg_plstm.ops.cost import PARALLEL_MEMORY_LIMIT, parallel_memory

from graphs import batched_dag, binary_tree, chain, operands_for

# The parallel form's memory refusal ---------------------------------------


@pytest.fixture(scope="module", params=["chain", "tree"])
def large_dag(request) -> DAG:
    """A 10^5-node chain or binary tree, built without the (slow) multitree pruning it does not need."""
    n = 10**5
    if request.param == "chain":
        ei = torch.stack([torch.arange(n - 1), torch.arange(1, n)])
    else:
        ei = torch.stack([(torch.arange(1, n) - 1) // 2, torch.arange(1, n)])
    return DAG(ei, line_graph(ei, n), n)


@pytest.mark.parametrize("call", ["plstm_dag", "plstm_parallel"])
def test_forced_parallel_refuses_large_graphs_before_allocating(large_dag, call):
    dag = large_dag
    ops = operands_for(dag, heads=1, k=2, v=2, dtype=torch.float32)
    assert choose_form(dag, 2, 2) == "scan"  # what form="auto" would run
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ValueError, match=r"about \d+\.\d GiB for 1 dense block\(s\) of 100000 x 100000 nodes "
                                         r"\(limit 4 GiB\); use form='scan'"):
        if call == "plstm_dag":
            plstm_dag(*ops, dag, form="parallel")
        else:
            plstm_parallel(*ops, dag)
    # The dense blocks would take hundreds of GiB; the refusal comes before any of it.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 2**20


def test_parallel_memory_limit_sits_between_molecules_and_large_graphs():
    # 512 molecules of up to 47 nodes, H = 4, K = V = 24, float32: well inside the limit.
    assert parallel_memory(6898, 512, 47, 4, 24, 24, 4) < PARALLEL_MEMORY_LIMIT / 20
    # One chain of 3 * 10^4 nodes: over it even with a single head of size 1.
    assert parallel_memory(3 * 10**4, 1, 3 * 10**4, 1, 1, 1, 4) > PARALLEL_MEMORY_LIMIT
    # Linear in the element size (float64 needs twice float32).
    assert parallel_memory(100, 4, 30, 2, 8, 8, 8) == 2 * parallel_memory(100, 4, 30, 2, 8, 8, 4)


# The rule that picks a form -----------------------------------------------

def parallel_is_cheaper(*sizes: int) -> bool:
    costs = dense_form_costs(*sizes)
    return "parallel" in costs and costs["parallel"] < costs["scan"]


@pytest.mark.parametrize("edges,graphs,max_nodes,dim,expected", [
    (1782, 128, 31, 24, True),     # 128 ESOL molecules
    (1824, 128, 64, 24, False),    # the same plus one 64-node tree: padding
    (6898, 512, 47, 24, False),    # 512 molecules pad to their largest
    (12160, 128, 96, 24, True),    # trees of 96 nodes
    (24448, 128, 192, 24, False),  # trees of 192 nodes
    (3968, 128, 32, 8, False),     # small heads: the scan's states are cheap
    (16256, 128, 128, 32, True),
    (0, 4, 10, 24, False),         # no edges: nothing to scan
    (0, 0, 0, 24, False),          # empty batch
])
def test_dense_form_costs_measured_cases(edges, graphs, max_nodes, dim, expected):
    assert parallel_is_cheaper(edges, graphs, max_nodes, dim, dim) is expected


def test_dense_form_costs_caps_graph_size():
    n = MAX_PARALLEL_NODES
    assert parallel_is_cheaper(4 * n, 4, n, 512, 512)
    assert not parallel_is_cheaper(4 * (n + 1), 4, n + 1, 512, 512)
    # For equal-sized graphs the choice flips once, from parallel to scan.
    choices = [parallel_is_cheaper(128 * m, 128, m, 24, 24) for m in range(1, 300)]
    flip = choices.index(False)
    assert all(choices[:flip]) and not any(choices[flip:]) and 100 < flip < 150


@pytest.mark.parametrize("bad", [-1, 2.0, True, None])
def test_dense_form_costs_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="`max_nodes` must be a non-negative int"):
        parallel_is_cheaper(10, 1, bad, 24, 24)


def test_form_choice_counts_the_padding_of_the_batch():
    """One large graph pads every block of the batch: the parallel form stops being the choice."""
    small = [Data(edge_index=chain(8), num_nodes=8) for _ in range(32)]
    padded = small + [Data(edge_index=binary_tree(128), num_nodes=128)]

    def sizes(dag):
        return dag.num_edges, dag.num_graphs, dag.max_graph_nodes, 24, 24

    assert parallel_is_cheaper(*sizes(batched_dag(small)))
    assert not parallel_is_cheaper(*sizes(batched_dag(padded)))  # 33 blocks of 128 x 128
    assert choose_form(batched_dag(padded), 24, 24) != "parallel"
