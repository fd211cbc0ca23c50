"""What is specific to the forms beyond their values (those are in
test_operator.py): the parallel form's memory refusal, the measured rule that
picks a form, and the schedules and layouts cached on the DAG."""
from __future__ import annotations

import resource
from collections import Counter

import pytest
import torch
from torch_geometric.data import Data

from pyg_plstm.dag import DAG, line_graph, prepare_dag
from pyg_plstm.functional import plstm_dag
from pyg_plstm.ops import (
    MAX_PARALLEL_NODES,
    choose_form,
    dense_form_costs,
    level_schedule,
    parallel_layout,
    plstm_parallel,
)
from pyg_plstm.ops.cost import PARALLEL_MEMORY_LIMIT, parallel_memory

from graphs import batched_dag, binary_tree, chain, molecules, operands_for, random_dag, undirected

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


# Schedules and layouts cached on the DAG ----------------------------------

class CountingDAG(DAG):
    """A DAG that counts how often each cached piece is built."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.builds: Counter = Counter()

    def memo(self, key, build, **kwargs):
        def counted():
            self.builds[key] += 1
            return build()
        return super().memo(key, counted, **kwargs)


def test_schedule_layout_and_validation_are_built_once_per_dag():
    dag = batched_dag(molecules(4))  # a DAG of a batch, with its batch vector
    counting = CountingDAG(dag.edge_index, dag.line_index, dag.num_nodes, edge_level=dag.edge_level,
                           batch=dag.batch, num_graphs=dag.num_graphs)
    ops = operands_for(counting, requires_grad=False)
    outs = [plstm_dag(*ops, counting, form=form) for form in ("scan", "parallel", "auto", "scan", "parallel")]
    assert counting.builds["level_schedule"] == 1
    assert counting.builds["parallel_layout"] == 1
    assert counting.builds["checked"] == 1
    assert max(counting.builds.values()) == 1
    assert torch.equal(outs[0], outs[3]) and torch.equal(outs[1], outs[4])


def test_views_have_their_own_schedules_and_share_graph_sizes():
    dag = batched_dag([Data(edge_index=undirected([(0, 1), (1, 2), (1, 3), (2, 4), (3, 4), (4, 5)]), num_nodes=6),
                       Data(edge_index=chain(3), num_nodes=3)])
    assert level_schedule(dag) is level_schedule(dag)
    assert parallel_layout(dag) is parallel_layout(dag)
    for view in (dag.reverse(), dag.multitree(), dag.multitree().reverse()):
        assert level_schedule(view) is not level_schedule(dag)
        # What depends on the nodes and the batch only is built once for all views.
        assert view.graph_sizes is dag.graph_sizes
        assert parallel_layout(view) is parallel_layout(dag)
    # The reversed view's schedule is the one of a DAG built from the flipped edges.
    flipped = DAG(dag.edge_index.flip(0), dag.line_index.flip(0), dag.num_nodes)
    ours, fresh = level_schedule(dag.reverse()), level_schedule(flipped)
    for name in ("edge_perm", "edge_pos", "line_perm", "line_src", "line_dst", "bwd_perm"):
        assert torch.equal(getattr(ours, name), getattr(fresh, name)), name
    assert (ours.fwd_ptr, ours.bwd_ptr, ours.edge_ptr) == (fresh.fwd_ptr, fresh.bwd_ptr, fresh.edge_ptr)


def test_level_schedule_is_a_level_order():
    dag = prepare_dag(random_dag(14, 0.3, torch.Generator().manual_seed(6)), 14)
    sched = level_schedule(dag)
    level = dag.edge_level
    assert sched.num_levels == dag.num_levels > 2
    assert torch.equal(sched.edge_pos[sched.edge_perm], torch.arange(dag.num_edges))
    for lvl in range(sched.num_levels):
        block = sched.edge_perm[sched.edge_ptr[lvl]:sched.edge_ptr[lvl + 1]]
        assert bool((level[block] == lvl).all())
        fed = sched.line_dst[sched.fwd_ptr[lvl]:sched.fwd_ptr[lvl + 1]]
        assert bool((level[sched.edge_perm[fed]] == lvl).all())
        feeding = sched.line_src[sched.bwd_perm[sched.bwd_ptr[lvl]:sched.bwd_ptr[lvl + 1]]]
        assert bool((level[sched.edge_perm[feeding]] == lvl).all())
    # Positions of the line edges, in line_perm order, name the edges of line_index.
    li = dag.line_index[:, sched.line_perm]
    assert torch.equal(sched.edge_perm[sched.line_src], li[0])
    assert torch.equal(sched.edge_perm[sched.line_dst], li[1])
    assert sorted(sched.bwd_perm.tolist()) == list(range(dag.num_line_edges))


def test_long_chain_is_sequential_in_depth_only():
    n = 300
    sched = level_schedule(prepare_dag(chain(n), n))
    assert sched.num_levels == n - 1
    assert sched.edge_ptr == list(range(n))


def test_parallel_layout_of_a_batch_with_empty_graphs():
    empty = Data(edge_index=chain(0), num_nodes=0)
    dag = batched_dag([Data(edge_index=chain(4), num_nodes=4), empty, Data(edge_index=chain(5), num_nodes=5), empty])
    layout = parallel_layout(dag)
    assert (layout.num_graphs, layout.max_nodes) == (4, 5)
    assert layout.node_local.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 4]
    assert layout.node_slot.tolist() == [0, 1, 2, 3, 10, 11, 12, 13, 14]
