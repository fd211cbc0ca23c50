"""DAG preparation (orientation, line graph, levels, multitree pruning), the
:class:`DAG` structure (views, caches, batch, input-edge map, validation),
ToDAG / DAGData batching and storage."""
from __future__ import annotations

import dataclasses
import itertools
import resource

import networkx as nx
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data, InMemoryDataset
from torch_geometric.loader import DataLoader

from pyg_plstm.dag import (
    DAG,
    DAGCollater,
    DAGData,
    DAGLoader,
    RandomPruning,
    ToDAG,
    edge_levels,
    get_dag,
    line_graph,
    multitree_mask,
    node_depth,
    orient,
    prepare_dag,
    repruned,
)
from pyg_plstm.dag.prepare import prepare_numbered_graph, prepare_union, split_union
from pyg_plstm.functional import plstm_dag, prepare_structure

from graphs import chain, diamond_stack, is_multitree, operands_for, random_dag, tailed_diamond, undirected

STRUCTURE = ("edge_index", "line_index", "edge_level", "edge_level_rev", "multitree_mask", "input_edge", "batch")


def edge_set(ei):
    return set(map(tuple, ei.t().tolist()))


def assert_same_structure(a: DAG, b: DAG) -> None:
    for name in STRUCTURE:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert (a.num_nodes, a.num_graphs) == (b.num_nodes, b.num_graphs)


# Orientation --------------------------------------------------------------

def test_orient_by_node_index_and_by_order():
    ei = undirected([(0, 1), (1, 2), (2, 0)])
    dag, _, _ = orient(ei, 3)
    assert edge_set(dag) == {(0, 1), (1, 2), (0, 2)}
    dag, _, _ = orient(ei, 3, order=torch.tensor([2, 0, 1]))
    assert edge_set(dag) == {(1, 2), (1, 0), (2, 0)}


def test_order_ties_broken_by_node_index():
    dag, _, _ = orient(undirected([(0, 1), (1, 2)]), 3, order=torch.tensor([5.0, 5.0, 1.0]))
    assert edge_set(dag) == {(0, 1), (2, 1)}


def test_directed_acyclic_input_is_kept():
    ei = torch.tensor([[3, 2, 1], [2, 1, 0]])
    dag, _, kept = orient(ei, 4)
    assert edge_set(dag) == {(3, 2), (2, 1), (1, 0)}
    assert sorted(kept.tolist()) == [0, 1, 2]


@pytest.mark.parametrize("edges,on_cycle", [
    ([(0, 1), (1, 2), (2, 0)], {0, 1, 2}),
    ([(0, 1), (1, 2), (2, 3), (3, 1), (4, 0)], {1, 2, 3}),
])
def test_directed_cycle_names_a_node_on_it(edges, on_cycle):
    with pytest.raises(ValueError, match="cycle through node") as info:
        orient(torch.tensor(edges).t(), 5)
    node = int(str(info.value).split("node ")[1].split(";")[0])
    assert node in on_cycle


def test_self_loops_dropped_and_duplicates_keep_first_attr():
    ei = torch.tensor([[0, 0, 1, 0, 1, 1], [0, 1, 0, 1, 2, 1]])
    attr = torch.arange(6.0).view(-1, 1)
    dag, dag_attr, kept = orient(ei, 3, edge_attr=attr, directed=False)
    assert edge_set(dag) == {(0, 1), (1, 2)}
    rows = {tuple(e): float(a) for e, a in zip(dag.t().tolist(), dag_attr.view(-1))}
    assert rows == {(0, 1): 1.0, (1, 2): 4.0}
    assert torch.equal(attr[kept], dag_attr)


def test_edge_attr_follows_orientation():
    ei = undirected([(0, 1), (2, 1)])
    attr = torch.tensor([[10.0], [20.0], [10.0], [20.0]])
    dag, dag_attr, _ = orient(ei, 3, edge_attr=attr)
    assert {tuple(e): float(a) for e, a in zip(dag.t().tolist(), dag_attr.view(-1))} == {(0, 1): 10.0, (1, 2): 20.0}


@pytest.mark.parametrize("ei,msg", [
    (torch.tensor([[0, 5], [1, 0]]), r"column 1 = \(5, 0\) points outside the graph's 3 nodes"),
    (torch.tensor([[0, -1], [1, 0]]), r"column 1 = \(-1, 0\) points outside"),
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), "must hold integer node indices, got dtype torch.float32"),
    (torch.tensor([[True], [False]]), "must hold integer node indices, got dtype torch.bool"),
    (torch.tensor([0, 1, 2]), r"shape \[2, num_edges\], got \[3\]"),
    (torch.tensor([[0], [1]], device="meta"), "`edge_index` is on the meta device"),
])
def test_bad_edge_index(ei, msg):
    with pytest.raises(ValueError, match=msg):
        orient(ei, 3)
    with pytest.raises(ValueError, match=msg):
        prepare_dag(ei, 3)
    with pytest.raises(ValueError, match=msg):
        ToDAG()(Data(edge_index=ei, num_nodes=3))


def test_edge_attr_length_mismatch():
    with pytest.raises(ValueError, match="`edge_attr` has 3 rows but `edge_index` has 4 edges"):
        orient(chain(3), 3, edge_attr=torch.zeros(3, 2))
    with pytest.raises(ValueError, match="`edge_attr` has 3 rows"):
        ToDAG()(Data(edge_index=chain(3), edge_attr=torch.zeros(3, 2), num_nodes=3))


@pytest.mark.parametrize("prepare", ["prepare_dag", "ToDAG", "DAG", "node_depth"])
def test_too_many_nodes_are_refused_before_any_allocation(prepare):
    """One edge on 2^31 + 5 nodes would need 16 GiB per int64 node array: refused up front."""
    n = 2**31 + 5
    ei = torch.tensor([[0], [1]])
    build = {
        "prepare_dag": lambda: prepare_dag(ei, n),
        "ToDAG": lambda: ToDAG()(Data(edge_index=ei, num_nodes=n)),
        "DAG": lambda: DAG(ei, torch.zeros(2, 0, dtype=torch.long), n),
        "node_depth": lambda: node_depth(ei, n),
    }[prepare]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ValueError, match=r"`num_nodes` = 2147483653 exceeds the 2147483647 nodes .* 16 GiB"):
        build()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 2**20


@pytest.mark.parametrize("bad", [-1, 2.5, True, torch.tensor(3)])
def test_bad_num_nodes(bad):
    with pytest.raises(ValueError, match="`num_nodes` must be a non-negative integer"):
        prepare_dag(chain(3), bad)


def test_bad_order():
    with pytest.raises(ValueError, match=r"`order` must have one entry per node \(3\), got 2"):
        prepare_dag(chain(3), 3, order=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="`order` contains NaN"):
        prepare_dag(chain(3), 3, order=torch.tensor([1.0, float("nan"), 2.0]))


# Line graph, levels, multitree --------------------------------------------

def test_line_graph_matches_definition():
    g = torch.Generator().manual_seed(0)
    dag = random_dag(12, 0.3, g)
    li = line_graph(dag, 12)
    expected = {(a, b) for a, b in itertools.product(range(dag.size(1)), repeat=2) if dag[1, a] == dag[0, b]}
    assert edge_set(li) == expected and li.size(1) == len(expected)


def test_levels_are_longest_paths_both_ways():
    g = torch.Generator().manual_seed(1)
    dag = random_dag(15, 0.25, g)
    G = nx.DiGraph(dag.t().tolist())
    G.add_nodes_from(range(15))
    depth = {n: max((len(p) - 1 for s in G.nodes for p in nx.all_simple_paths(G, s, n)), default=0) for n in G}
    assert node_depth(dag, 15).tolist() == [depth[n] for n in range(15)]
    assert edge_levels(dag, 15).tolist() == [depth[u] for u in dag[0].tolist()]
    Gr = G.reverse()
    height = {n: max((len(p) - 1 for s in Gr.nodes for p in nx.all_simple_paths(Gr, s, n)), default=0) for n in Gr}
    assert edge_levels(dag, 15, reverse=True).tolist() == [height[w] for w in dag[1].tolist()]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 9), st.floats(0.1, 0.9), st.integers(0, 10_000))
def test_multitree_mask_gives_a_multitree(n, p, seed):
    dag = random_dag(n, p, torch.Generator().manual_seed(seed))
    li = line_graph(dag, n)
    mask = multitree_mask(dag, li, n)
    kept = li[:, mask]
    assert is_multitree(dag.size(1), kept.t().tolist())
    # Only line edges that would create a second path are pruned: every line node with
    # predecessors keeps at least one of them.
    has_pred = torch.zeros(dag.size(1), dtype=torch.bool)
    has_pred[li[1]] = True
    kept_pred = torch.zeros(dag.size(1), dtype=torch.bool)
    kept_pred[kept[1]] = True
    assert torch.equal(has_pred, kept_pred)


def test_multitree_keeps_disjoint_parents_and_prunes_diamonds():
    # 0 -> 2 <- 1, 2 -> 3: both parents of 2 have disjoint ancestries, keep both.
    dag = torch.tensor([[0, 1, 2], [2, 2, 3]])
    li = line_graph(dag, 4)
    assert bool(multitree_mask(dag, li, 4).all())
    # Two stacked diamonds in the DAG are still a multitree in the line graph (the two
    # branches are different line nodes); the third diamond makes a second path.
    ei, n = diamond_stack(2)
    assert bool(prepare_dag(ei, n).multitree_mask.all())
    ei, n = diamond_stack(3)
    d = prepare_dag(ei, n)
    assert 0 < int(d.multitree_mask.sum()) < d.num_line_edges


def test_multitree_invariant_to_edge_permutation():
    ei, n = diamond_stack(3)
    ref = prepare_dag(ei, n)
    perm = torch.randperm(ei.size(1), generator=torch.Generator().manual_seed(3))
    other = prepare_dag(ei[:, perm], n)

    def kept(d):
        return {(tuple(d.edge_index[:, a].tolist()), tuple(d.edge_index[:, b].tolist()))
                for a, b in d.line_index[:, d.multitree_mask].t().tolist()}

    assert kept(ref) == kept(other)


# The DAG structure: views and caches --------------------------------------

def test_reverse_is_the_flipped_dag():
    ei, n = diamond_stack(2)
    d = prepare_dag(ei, n)
    r = d.reverse()
    assert torch.equal(r.edge_index, d.edge_index.flip(0))
    assert edge_set(r.line_index) == edge_set(line_graph(r.edge_index, n))
    assert torch.equal(r.edge_level, edge_levels(r.edge_index, n))
    assert torch.equal(r.edge_level_rev, d.edge_level)
    assert torch.equal(r.input_edge, d.input_edge)
    assert torch.equal(r.reverse().edge_index, d.edge_index)


def test_views_are_cached():
    ei, n = tailed_diamond()
    dag = prepare_dag(ei, n)
    assert dag.reverse() is dag.reverse()
    assert dag.reverse().reverse() is dag
    assert dag.multitree() is dag.multitree()
    assert dag.multitree().multitree() is dag.multitree()
    assert dag.multitree().reverse().reverse() is dag.multitree()
    assert dag.view("P") is dag and dag.view("P", reverse=True) is dag.reverse()
    assert dag.view("D") is dag.multitree() and dag.view("D", reverse=True) is dag.multitree().reverse()
    assert dag.multitree().num_line_edges < dag.num_line_edges  # the views differ
    with pytest.raises(ValueError, match="`mode` must be one of"):
        dag.view("X")


def test_reverse_keeps_the_forward_pruning():
    ei, n = diamond_stack(3)
    dag = prepare_dag(ei, n)
    assert torch.equal(dag.reverse().multitree().line_index, dag.multitree().reverse().line_index)
    assert torch.equal(dag.reverse().multitree_mask, dag.multitree_mask)
    pruned = dag.multitree()
    assert torch.equal(pruned.line_index, dag.line_index[:, dag.multitree_mask])
    assert bool(pruned.multitree_mask.all()) and pruned.multitree_mask.numel() == pruned.num_line_edges


def test_memo_builds_once_per_key():
    dag = prepare_dag(chain(4), 4)
    calls = []

    def build():
        calls.append(1)
        return object()

    first = dag.memo("something", build)
    assert dag.memo("something", build) is first and len(calls) == 1
    assert dag.reverse().memo("something", build) is not first and len(calls) == 2


@pytest.mark.parametrize("batched", [False, True])
def test_lazily_computed_levels_and_mask_equal_the_prepared_ones(batched):
    g = torch.Generator().manual_seed(2)
    ds, dn = diamond_stack(3)
    graphs = [Data(edge_index=random_dag(9, 0.4, g), num_nodes=9), Data(edge_index=ds, num_nodes=dn)]
    prepared = get_dag(Batch.from_data_list([ToDAG()(d) for d in graphs])) if batched else prepare_dag(ds, dn)
    lazy = DAG(prepared.edge_index, prepared.line_index, prepared.num_nodes,
               batch=prepared.batch if batched else None)
    for name in ("edge_level", "edge_level_rev", "multitree_mask"):
        assert torch.equal(getattr(lazy, name), getattr(prepared, name)), name
        assert getattr(lazy, name) is getattr(lazy, name)  # computed once
    assert lazy.multitree_mask.sum() < lazy.num_line_edges
    assert torch.equal(lazy.reverse().edge_level, prepared.reverse().edge_level)
    assert torch.equal(lazy.multitree().line_index, prepared.multitree().line_index)


def test_single_graph_has_one_graph():
    dag = prepare_dag(chain(5), 5)
    assert dag.num_graphs == 1 and dag.max_graph_nodes == 5
    assert torch.equal(dag.batch, torch.zeros(5, dtype=torch.long))
    assert dag.ptr.tolist() == [0, 5]
    assert "num_nodes=5" in repr(dag) and "num_graphs=1" in repr(dag)


# The DAG structure: validation --------------------------------------------

def _three_graphs():
    """Nodes 0..2 | 3..6 | 7..8 as three graphs, a chain in each."""
    ei = torch.tensor([[0, 1, 3, 4, 5, 7], [1, 2, 4, 5, 6, 8]])
    return ei, line_graph(ei, 9)


@pytest.mark.parametrize("batch,num_graphs,match", [
    (torch.zeros(9), None, "`batch` must be an integer tensor of graph ids, got torch.float32"),
    (torch.zeros(9, dtype=torch.bool), None, "`batch` must be an integer tensor"),
    ([0] * 9, None, "`batch` must be an integer tensor of graph ids, got list"),
    (torch.zeros(8, dtype=torch.long), None, r"`batch` must have shape \[9\] \(one graph id per node\), got \[8\]"),
    (torch.tensor([0, 0, 0, 2, 2, 2, 2, 1, 1]), None, "`batch` goes from 2 to 1 at node 7"),
    (torch.tensor([-1, -1, -1, 0, 0, 0, 0, 1, 1]), None, r"`batch` holds a negative graph id \(-1\)"),
    (torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2]), 2, "`batch` holds graph id 2 but the batch has only 2 graphs"),
    (torch.zeros(9, dtype=torch.long, device="meta"), None, "`batch` is on meta but `edge_index` is on cpu"),
    (torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2]), -1, "`num_graphs` must be a non-negative int, got -1"),
    (torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2]), True, "`num_graphs` must be a non-negative int, got True"),
])
def test_bad_batch_is_refused(batch, num_graphs, match):
    ei, li = _three_graphs()
    with pytest.raises(ValueError, match=match):
        DAG(ei, li, 9, batch=batch, num_graphs=num_graphs)


@pytest.mark.parametrize("batch,match", [
    (torch.zeros(9), "`batch` must be an integer tensor of graph ids, got torch.float32"),
    (torch.zeros(8, dtype=torch.long), r"`batch` must have shape \[9\] \(one graph id per node\), got \[8\]"),
    (torch.tensor([-1, -1, -1, 0, 0, 0, 0, 1, 1]), "`batch` holds a negative graph id"),
    # Nodes of a graph out of order: the multitree pruning numbers edges per graph and needs them contiguous.
    (torch.tensor([1, 1, 1, 0, 0, 0, 0, 2, 2]), "`batch` goes from 1 to 0 at node 3"),
])
def test_prepare_dag_refuses_a_bad_batch_naming_it(batch, match):
    ei, _ = _three_graphs()
    with pytest.raises(ValueError, match=match):
        prepare_dag(ei, 9, batch=batch)


def test_valid_batch_gives_graph_sizes_and_offsets():
    ei, li = _three_graphs()
    dag = DAG(ei, li, 9, batch=torch.tensor([0, 0, 0, 1, 1, 1, 1, 3, 3]), num_graphs=5)
    assert dag.graph_sizes.tolist() == [3, 4, 0, 2, 0]
    assert dag.ptr.tolist() == [0, 3, 7, 7, 9, 9]
    assert dag.max_graph_nodes == 4 and dag.num_graphs == 5


@pytest.mark.parametrize("kwargs,match", [
    (dict(edge_index=torch.zeros(2, 1)), "`edge_index` must be an integer tensor, got torch.float32"),
    (dict(edge_index=torch.zeros(3, 1, dtype=torch.long)), r"`edge_index` must have shape \[2, \*\], got \[3, 1\]"),
    (dict(line_index=torch.zeros(2, 0, dtype=torch.long, device="meta")),
     "`line_index` is on meta but `edge_index` is on cpu"),
    (dict(edge_level=torch.zeros(5, dtype=torch.long)),
     r"`edge_level` must have shape \[6\] \(one entry per DAG edge\), got \[5\]"),
    (dict(edge_level_rev=torch.zeros(6)), "`edge_level_rev` must be an integer tensor"),
    (dict(input_edge=torch.zeros(6, 1, dtype=torch.long)), r"`input_edge` must have shape \[6\]"),
    (dict(multitree_mask=torch.ones(3, dtype=torch.long)), r"`multitree_mask` must be a bool tensor of shape \[3\]"),
    (dict(multitree_mask=torch.ones(2, dtype=torch.bool)), r"`multitree_mask` must be a bool tensor of shape \[3\]"),
    (dict(multitree_mask=torch.ones(3, dtype=torch.bool, device="meta")),
     "`multitree_mask` is on meta but `edge_index` is on cpu"),
    (dict(input_edge_index=torch.zeros(2, 6, dtype=torch.long, device="meta")),
     "`input_edge_index` is on meta but `edge_index` is on cpu"),
    (dict(num_nodes=-1), "`num_nodes` must be a non-negative integer"),
])
def test_bad_structure_is_refused(kwargs, match):
    ei, li = _three_graphs()
    args = {"edge_index": ei, "line_index": li, "num_nodes": 9, **kwargs}
    with pytest.raises(ValueError, match=match):
        DAG(args.pop("edge_index"), args.pop("line_index"), args.pop("num_nodes"), **args)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16])
def test_index_dtypes_torch_cannot_index_with_are_refused(dtype):
    """torch indexes with int64 and int32 only (a uint8 index even reads as a boolean
    mask): a DAG of other integer types must be refused where it is built, not fail
    inside torch (every form of ``plstm_dag`` raises an IndexError on it today)."""
    ei, li = _three_graphs()
    with pytest.raises(ValueError, match=f"`edge_index`.*{dtype}"):
        DAG(ei.to(dtype), li.to(dtype), 9)


def test_operator_on_a_meta_dag_is_refused_with_a_message():
    """Structure on the meta device has no values to validate or schedule;
    ``plstm_dag`` must say so, not fail in ``Tensor.item()``."""
    ei, li = _three_graphs()
    with pytest.raises(ValueError, match="`edge_index` is on the meta device"):
        DAG(ei.to("meta"), li.to("meta"), 9)


# ToDAG, DAGData, get_dag --------------------------------------------------

def test_to_dag_keeps_attributes_and_does_not_mutate():
    data = Data(x=torch.randn(4, 3), edge_index=chain(4), edge_attr=torch.randn(6, 2), y=torch.tensor([1.0]),
                order=torch.tensor([3, 2, 1, 0]))
    before = {k: v.clone() for k, v in data.to_dict().items()}
    out = ToDAG()(data)
    assert isinstance(out, DAGData)
    for k, v in before.items():
        assert torch.equal(data[k], v) and torch.equal(out[k], v)
    assert edge_set(out.dag_edge_index) == {(3, 2), (2, 1), (1, 0)}
    assert out.edge_attr[out.dag_input_edge].shape == (3, 2)
    assert "dag_edge_attr" not in out
    assert "ToDAG" in repr(ToDAG())


def test_get_dag_without_preparation_is_explained():
    with pytest.raises(ValueError, match="missing dag_edge_index, dag_input_edge, line_index.*apply pyg_plstm.ToDAG"):
        get_dag(Data(x=torch.randn(3, 1), edge_index=chain(3)))
    with pytest.raises(ValueError, match="get_dag needs a prepared torch_geometric Data/Batch, got int"):
        get_dag(3)


@pytest.mark.parametrize("moved,match", [
    ("edge_index", "`dag_edge_index` is on cpu but `edge_index` is on meta"),
    ("line_index", "`line_index` is on meta but `edge_index` is on cpu"),
    ("multitree_mask", "`multitree_mask` is on meta but `edge_index` is on cpu"),
])
def test_get_dag_refuses_a_graph_whose_structure_is_on_another_device(moved, match):
    # One attribute moved on its own (e.g. `data.edge_index = data.edge_index.to(device)`): the DAG would
    # record an input on another device than its structure, or fail deep inside torch.
    data = ToDAG()(Data(x=torch.randn(4, 2), edge_index=undirected([(0, 1), (1, 2), (2, 3)])))
    data[moved] = torch.empty_like(data[moved], device="meta")
    with pytest.raises(ValueError, match=match):
        get_dag(data)


def test_edges_that_are_no_tensor_and_a_directed_flag_that_is_no_bool_are_refused():
    ei = chain(3)
    with pytest.raises(ValueError, match="`edge_index` must be a tensor of shape \\[2, num_edges\\], got list"):
        prepare_dag(ei.tolist(), 3)
    with pytest.raises(ValueError, match="`edge_index` must be a tensor of shape \\[2, num_edges\\], got list"):
        prepare_dag(ei, 3).check_input(ei.tolist())
    # Any non-empty string is true: "false" would keep the edges as directed.
    for call in (lambda: prepare_dag(ei, 3, directed="false"), lambda: ToDAG(directed="false"),
                 lambda: orient(ei, 3, directed="false")):
        with pytest.raises(ValueError, match="`directed` must be None \\(detect\\), True or False, got 'false'"):
            call()


def _attributed_graph() -> Data:
    """An undirected graph with a self-loop and a duplicate edge; every input column has its own feature."""
    ei = torch.cat([undirected([(0, 1), (1, 2), (0, 2), (2, 3)]), torch.tensor([[3, 1], [3, 0]])], 1)
    return Data(edge_index=ei, edge_attr=torch.arange(ei.size(1), dtype=torch.float).view(-1, 1) * 10,
                num_nodes=4, order=torch.tensor([2, 0, 3, 1]))


def test_input_edge_maps_dag_edges_to_their_input_columns():
    data = _attributed_graph()
    dag_ei, dag_attr, kept = orient(data.edge_index, 4, data.order, data.edge_attr, directed=False)
    dag = prepare_dag(data.edge_index, 4, data.order, directed=False)
    prepared = ToDAG(directed=False)(data)
    assert torch.equal(dag.edge_index, dag_ei) and torch.equal(prepared.dag_edge_index, dag_ei)
    assert torch.equal(dag.input_edge, kept) and torch.equal(prepared.dag_input_edge, kept)
    assert torch.equal(data.edge_attr[dag.input_edge], dag_attr)
    # Each DAG edge is its input column, as given or flipped by the orientation.
    for (u, w), c in zip(dag.edge_index.t().tolist(), dag.input_edge.tolist()):
        assert {u, w} == set(data.edge_index[:, c].tolist())
    assert torch.equal(get_dag(prepared).input_edge, kept)


def _graphs():
    g = torch.Generator().manual_seed(5)
    ds, dn = diamond_stack(2)
    out = []
    for ei, n in [(chain(5), 5), (ds, dn), (undirected(random_dag(7, 0.4, g).t().tolist()), 7),
                  (torch.zeros(2, 0, dtype=torch.long), 3)]:
        out.append(Data(x=torch.randn(n, 2, generator=g), edge_index=ei, num_nodes=n,
                        edge_attr=torch.randn(ei.size(1), 2, generator=g)))
    return out


def test_prepare_many_equals_one_by_one():
    g = torch.Generator().manual_seed(8)
    graphs = _graphs() + [
        Data(edge_index=random_dag(9, 0.4, g), num_nodes=9),  # directed, next to undirected graphs
        Data(x=torch.randn(5, 1), edge_index=chain(5), order=torch.tensor([4, 0, 3, 1, 2])),
        Data(x=torch.randn(4, 1), edge_index=undirected([(0, 1), (1, 2), (2, 3)]),
             edge_attr=torch.arange(6.0).view(-1, 1)),
    ]
    many = ToDAG().prepare_many(graphs, chunk_size=3)
    assert len(many) == len(graphs)
    for a, b in zip(many, (ToDAG()(d) for d in graphs)):
        assert a.keys() == b.keys()
        for k in b.keys():
            assert torch.equal(a[k], b[k]) if isinstance(b[k], torch.Tensor) else a[k] == b[k], k


def test_prepare_many_names_the_bad_graph():
    graphs = _graphs()
    graphs.insert(2, Data(edge_index=torch.tensor([[0, 1, 2], [1, 2, 0]]), num_nodes=3))
    with pytest.raises(ValueError, match="cycle through node [012] of graph 2"):
        ToDAG().prepare_many(graphs)
    graphs[2] = Data(edge_index=torch.tensor([[0, 7], [1, 0]]), num_nodes=3)
    with pytest.raises(ValueError, match="graph 2: `edge_index` column 1"):
        ToDAG().prepare_many(graphs)


def test_batching_shifts_line_index_by_dag_edges_and_input_edge_by_input_edges():
    graphs = [ToDAG()(d) for d in _graphs()]
    batch = Batch.from_data_list(graphs)
    dag_edges = np.cumsum([0] + [g.dag_edge_index.size(1) for g in graphs])
    input_edges = np.cumsum([0] + [g.edge_index.size(1) for g in graphs])
    assert input_edges[-1] != dag_edges[-1]  # the two offsets differ, so a mix-up shows
    assert torch.equal(batch.line_index, torch.cat([g.line_index + int(o) for g, o in zip(graphs, dag_edges)], 1))
    assert torch.equal(batch.dag_input_edge,
                       torch.cat([g.dag_input_edge + int(o) for g, o in zip(graphs, input_edges)]))
    assert torch.equal(batch.edge_attr[batch.dag_input_edge],
                       torch.cat([g.edge_attr[g.dag_input_edge] for g in graphs]))
    assert torch.equal(batch.edge_level, torch.cat([g.edge_level for g in graphs]))
    assert torch.equal(batch.multitree_mask, torch.cat([g.multitree_mask for g in graphs]))
    loader = DataLoader(graphs, batch_size=4)
    first = next(iter(loader))
    assert torch.equal(first.line_index, batch.line_index)
    assert torch.equal(first.dag_input_edge, batch.dag_input_edge)


def test_get_dag_of_a_batch_carries_the_batch():
    empty = Data(x=torch.zeros(0, 2), edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0,
                 edge_attr=torch.zeros(0, 2))
    graphs = [ToDAG()(d) for d in [_graphs()[0], empty, _graphs()[1], empty]]  # gap and trailing empty graph
    batch = Batch.from_data_list(graphs)
    dag = get_dag(batch)
    assert torch.equal(dag.batch, batch.batch)
    assert dag.num_graphs == 4 == batch.num_graphs  # more than batch.max() + 1
    assert torch.equal(dag.ptr, batch.ptr)
    assert dag.graph_sizes.tolist() == [5, 0, 7, 0] and dag.max_graph_nodes == 7
    assert torch.equal(dag.input_edge, batch.dag_input_edge)
    assert torch.equal(dag.edge_index, batch.dag_edge_index)


def _mixed_raw() -> list[Data]:
    """Undirected graphs (one with pruned line edges, one without edges), a directed one and one without nodes."""
    g = torch.Generator().manual_seed(4)
    tailed, n = tailed_diamond()
    graphs = [(tailed, n), (random_dag(8, 0.4, g), 8), (torch.zeros(2, 0, dtype=torch.long), 0)]
    return _graphs() + [Data(x=torch.randn(n, 2, generator=g), edge_index=ei, num_nodes=n,
                             edge_attr=torch.randn(ei.size(1), 2, generator=g)) for ei, n in graphs]


def test_prepare_then_batch_equals_batch_then_prepare():
    raw = _mixed_raw()
    per_graph = get_dag(Batch.from_data_list([ToDAG()(d) for d in raw]))
    union = Batch.from_data_list(raw)
    whole = prepare_dag(union.edge_index, union.num_nodes, batch=union.batch, num_graphs=union.num_graphs)
    assert_same_structure(per_graph, whole)
    assert whole.multitree_mask.sum() < whole.num_line_edges  # the pruning is part of the comparison
    ops = operands_for(per_graph, generator=torch.Generator().manual_seed(0), requires_grad=False)
    for form in ("scan", "parallel"):
        assert torch.equal(plstm_dag(*ops, per_graph, form=form), plstm_dag(*ops, whole, form=form))


def test_to_dag_on_a_whole_batch_equals_batching_prepared_graphs():
    """get_dag reads a Batch prepared as a whole (ToDAG after batching); it must be the
    DAG of the same graphs prepared one by one, also when undirected and directed
    graphs are batched together (ToDAG detects the direction per graph)."""
    raw = _mixed_raw()
    per_graph = get_dag(Batch.from_data_list([ToDAG()(d) for d in raw]))
    whole = get_dag(ToDAG()(Batch.from_data_list(raw)))
    assert_same_structure(per_graph, whole)


class _Prepared(InMemoryDataset):
    def __init__(self, root, graphs=None):
        self._graphs = graphs
        super().__init__(root)
        self.load(self.processed_paths[0])

    @property
    def processed_file_names(self):
        return ["data.pt"]

    def process(self):
        self.save([ToDAG()(d) for d in self._graphs], self.processed_paths[0])


def test_processed_dataset_loads_with_weights_only(tmp_path):
    graphs = _graphs()
    ds = _Prepared(str(tmp_path), graphs)
    stored = torch.load(tmp_path / "processed" / "data.pt", weights_only=True)
    assert isinstance(stored, tuple) and len(stored) > 0
    again = _Prepared(str(tmp_path))  # no graphs: must load what was processed
    assert len(again) == len(graphs)
    for a, b in zip(ds, again):
        assert isinstance(b, DAGData)
        for key in ("dag_edge_index", "dag_input_edge", "line_index", "edge_level", "edge_level_rev",
                    "multitree_mask", "edge_attr"):
            assert torch.equal(a[key], b[key]), key
    fresh = get_dag(Batch.from_data_list([ToDAG()(d) for d in graphs]))
    assert_same_structure(get_dag(Batch.from_data_list(list(again))), fresh)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(0, 120), st.integers(0, 2**31 - 1))
def test_small_graph_paths_equal_the_vectorised_ones(num_nodes, num_edges, seed):
    """Preparation switches to plain Python below SMALL_GRAPH_EDGES; both paths give the same arrays,
    on cyclic graphs too (-1 for nodes on or after a cycle)."""
    import pyg_plstm.dag.graph as graph

    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes, (2, num_edges), generator=gen).numpy()
    acyclic = ei[:, ei[0] < ei[1]]
    for edges in (ei, acyclic):
        assert np.array_equal(graph._peel_depth_small(edges, num_nodes), graph._peel_depth_vectorised(edges, num_nodes))
    keys = ei[0] * num_nodes + ei[1]
    rev = ei[1] * num_nodes + ei[0]
    assert np.array_equal(graph._is_in(keys, rev), np.isin(keys, rev))
    _, first = np.unique(keys, return_index=True)
    assert np.array_equal(graph._first_occurrences(keys), np.sort(first))


def test_repruned_reverse_is_a_multitree_of_the_reversed_dag():
    """The reversed view keeps the forward pruning; repruned() prunes the reversed DAG itself."""
    edge_index, n = diamond_stack(3)
    dag = prepare_dag(edge_index, n)
    own = repruned(dag.reverse())
    assert repruned(dag.reverse()) is own
    expected = prepare_dag(dag.edge_index.flip(0), n, directed=True)
    assert torch.equal(own.edge_index, expected.edge_index)

    def kept(view):  # the kept line edges as (edge, edge) pairs of node pairs, independent of numbering
        ei = view.edge_index.t().tolist()
        return {(tuple(ei[a]), tuple(ei[b])) for a, b in view.multitree().line_index.t().tolist()}

    assert kept(own) == kept(expected)
    assert kept(own) != kept(dag.reverse())  # diamonds prune differently in the two directions
    assert is_multitree(own.num_edges, own.multitree().line_index.t().tolist())


def test_random_pruning_draws_valid_multitrees_without_mutating():
    edge_index, n = diamond_stack(4)
    data = ToDAG()(Data(edge_index=edge_index, num_nodes=n))
    before = data.multitree_mask.clone()
    transform = RandomPruning(torch.Generator().manual_seed(0))
    masks = {tuple(transform(data).multitree_mask.tolist()) for _ in range(20)}
    assert torch.equal(data.multitree_mask, before)
    assert len(masks) > 1  # the choice among equally deep parents varies
    for mask in masks:
        kept = data.line_index[:, torch.tensor(mask)]
        assert is_multitree(data.dag_edge_index.size(1), kept.t().tolist())
    again = RandomPruning(torch.Generator().manual_seed(0))
    assert torch.equal(again(data).multitree_mask, RandomPruning(torch.Generator().manual_seed(0))(data).multitree_mask)
    with pytest.raises(ValueError, match="needs a prepared graph"):
        RandomPruning()(Data(edge_index=edge_index, num_nodes=n))


def test_numbered_graph_equals_the_general_preparation():
    # Random simple undirected graphs given as both directions sorted by (src, dst): the one-pass
    # preparation of pLSTM's molecule path must equal the general orientation by node index.
    rng = np.random.default_rng(3)
    compared = 0
    for n in [1, 2, 3, 5, 9, 14, 30, 60]:
        for density in [0.5, 1, 2, 4]:
            pairs = {(int(min(a, b)), int(max(a, b))) for a, b in rng.integers(0, n, (int(density * n), 2)) if a != b}
            ends = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2).T
            both = np.concatenate([ends, ends[::-1]], axis=1)
            ei = both[:, np.lexsort((both[1], both[0]))]
            fast = prepare_numbered_graph(ei, n)
            [reference] = split_union(prepare_union(ei, n, np.arange(n), False), np.zeros(n, dtype=np.int64),
                                      np.array([0, n]), np.array([0, ei.shape[1]]))
            assert list(fast) == list(reference)
            for key, value in reference.items():
                assert fast[key].dtype == value.dtype and fast[key].shape == value.shape, key
                assert torch.equal(fast[key], value), key
            compared += bool(len(pairs))
    assert compared >= 25


def test_a_pickled_dag_keeps_its_input_check():
    import pickle

    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    dag = prepare_dag(edge_index, 3)
    edge_index.add_(0)  # in place: a version the pickled copy does not carry
    with pytest.raises(ValueError, match="modified in place since"):
        dag.check_input(edge_index)
    # Stale before pickling: stale after it too.
    stale = pickle.loads(pickle.dumps(dag))
    with pytest.raises(ValueError, match="modified in place since"):
        stale.check_input(stale.input_edge_index)
    fresh = pickle.loads(pickle.dumps(prepare_dag(edge_index, 3)))
    fresh.check_input(fresh.input_edge_index)  # a copy with a new version counter is not stale
    fresh.input_edge_index.add_(0)
    with pytest.raises(ValueError, match="modified in place since"):
        fresh.check_input(fresh.input_edge_index)


def test_dag_loader_batches_like_pyg_and_carries_the_prepared_dag():
    from pyg_plstm.chem import from_smiles

    graphs = [from_smiles(s) for s in ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "C", "CCN(CC)CC", "O=C=O"]]
    prepared = []
    expected = list(DataLoader(graphs, batch_size=4))
    for workers in (0, 2):
        loader = DAGLoader(graphs, batch_size=4, num_workers=workers, timeout=60 if workers else 0,
                           prepare=lambda dag: (dag.memo("prepared", lambda: True), prepare_structure(dag, 8, 8)))
        for batch, want in zip(loader, expected):
            assert batch.keys() == want.keys() and batch.num_graphs == want.num_graphs
            for key in want.keys():
                same = torch.equal if isinstance(want[key], torch.Tensor) else lambda a, b: a == b
                assert same(batch[key], want[key]), key
            dag = get_dag(batch)
            assert dag is get_dag(batch) and dag.memo("prepared", lambda: False)
            fresh = get_dag(want)
            assert torch.equal(dag.edge_index, fresh.edge_index) and torch.equal(dag.batch, fresh.batch)
            assert dag.num_graphs == fresh.num_graphs
            assert len(batch.to_data_list()) == batch.num_graphs
            if workers:
                assert _same_structures(dag, prepared[len(prepared) - 2])
                dag.check_input(batch.edge_index)
            prepared.append(dag)
    assert len(prepared) == 4
    with pytest.raises(ValueError, match="pass `prepare` instead of `collate_fn`"):
        DAGLoader(graphs, collate_fn=list)
    with pytest.raises(ValueError, match="`prepare` must be callable"):
        DAGCollater(prepare=3)


def test_dagdata_from_mapping_equals_the_keyword_constructor():
    import pickle
    graph = ToDAG()(Data(x=torch.arange(4).view(4, 1), edge_index=chain(4), y=torch.ones(1, 1)))
    # Data(**kwargs) sets x, edge_index, edge_attr and y first.
    first = ["x", "edge_index", "y"]
    mapping = {**{key: graph[key] for key in first}, "smiles": "CCCC", "num_nodes": 4, "pos": None,
               **{key: graph[key] for key in graph.keys() if key not in first}}
    built, reference = DAGData.from_mapping(mapping), DAGData(**mapping)
    assert list(built.keys()) == list(reference.keys()) and "pos" not in built
    assert pickle.dumps(built) == pickle.dumps(reference)
    batch = Batch.from_data_list([built, reference])
    assert torch.equal(batch.line_index[:, graph.line_index.size(1):], graph.line_index + graph.dag_edge_index.size(1))
    built.x = built.x + 1  # the storage behaves as a constructed graph's
    assert torch.equal(built.x, reference.x + 1) and built.num_nodes == 4


def _same_structures(a, b, seen=None):
    """Whether two (unpickled) DAG caches hold equal values, view by view."""
    seen = set() if seen is None else seen
    if isinstance(a, DAG):
        if id(a) in seen:
            return True
        seen.add(id(a))
        # The version of the recorded input is the receiving process's own (check_input compares them).
        return isinstance(b, DAG) and a.__dict__.keys() == b.__dict__.keys() and all(
            _same_structures(a.__dict__[k], b.__dict__[k], seen) for k in a.__dict__ if k != "_input_version")
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same_structures(getattr(a, f.name), getattr(b, f.name), seen)
                                          for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_structures(a[k], b[k], seen) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_structures(x, y, seen) for x, y in zip(a, b))
    return a == b


def test_a_pickled_prepared_dag_sends_its_caches_packed():
    import io
    import pickle

    from pyg_plstm.chem import from_smiles
    from pyg_plstm.models import make_model

    model = make_model("plstm", 9, 1, hidden_channels=16, block="PD")  # caches on all four views
    collate = DAGCollater(prepare=model.prepare_structure)
    batch = collate([from_smiles(s) for s in ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CCN"]])
    dag = get_dag(batch)
    cached = [dag.view(mode, reverse) for mode in "PD" for reverse in (False, True)]
    assert all(view._memo for view in cached)

    class StorageCounter(pickle.Pickler):
        def __init__(self, file):
            super().__init__(file)
            self.storages = set()

        def persistent_id(self, obj):
            if isinstance(obj, torch.Tensor):
                self.storages.add(obj.untyped_storage().data_ptr())
            return None

    counter = StorageCounter(io.BytesIO())
    counter.dump(batch)
    plain = StorageCounter(io.BytesIO())
    plain.dump(Batch.from_data_list(batch.to_data_list()))
    # Besides the batch's own tensors: one buffer per dtype of the caches (int64, bool) and the DAG's tensors
    # that are not the batch's (none: all of them are).
    assert len(counter.storages) <= len(plain.storages) + 2

    loaded_batch = pickle.loads(pickle.dumps(batch))
    loaded = get_dag(loaded_batch)
    assert _same_structures(dag, loaded)
    # Views stay one object each, the recorded input is the batch's own edge_index again, and a copy
    # is not stale.
    assert loaded.reverse().reverse() is loaded and loaded.view("D", True) is loaded.multitree().reverse()
    assert loaded.input_edge_index is loaded_batch.edge_index and loaded.edge_index is loaded_batch.dag_edge_index
    loaded.check_input(loaded_batch.edge_index)
