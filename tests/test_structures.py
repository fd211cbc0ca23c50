"""pyg_plstm.ops.structures: the level schedules and padding layouts the forms
derive from a DAG, built once per DAG view and cached on it."""
from __future__ import annotations

from collections import Counter

import torch
from torch_geometric.data import Data

from pyg_plstm.dag import DAG, prepare_dag
from pyg_plstm.functional import plstm_dag
from pyg_plstm.ops import level_schedule, parallel_layout

from graphs import batched_dag, chain, molecules, operands_for, random_dag, undirected


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
