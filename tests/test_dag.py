import itertools

import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data, InMemoryDataset
from torch_geometric.loader import DataLoader

from graphs import chain, diamond_stack, is_multitree, random_dag, undirected
from pyg_plstm.dag import (
    DAGData, ToDAG, edge_levels, get_dag, line_graph, multitree_mask, node_depth, orient, prepare_dag,
)


def edge_set(ei):
    return set(map(tuple, ei.t().tolist()))


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
    (torch.tensor([[0, 5], [1, 0]]), "points outside"),
    (torch.tensor([[0, -1], [1, 0]]), "points outside"),
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), "integer node indices"),
    (torch.tensor([0, 1, 2]), r"shape \[2, num_edges\]"),
])
def test_bad_edge_index(ei, msg):
    with pytest.raises(ValueError, match=msg):
        orient(ei, 3)


def test_edge_attr_length_mismatch():
    with pytest.raises(ValueError, match="edge_attr"):
        orient(chain(3), 3, edge_attr=torch.zeros(3, 2))


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
    assert 0 < int(d.multitree_mask.sum()) < d.line_index.size(1)


def test_multitree_invariant_to_edge_permutation():
    ei, n = diamond_stack(3)
    ref = prepare_dag(ei, n)
    perm = torch.randperm(ei.size(1), generator=torch.Generator().manual_seed(3))
    other = prepare_dag(ei[:, perm], n)
    key = lambda d: {(tuple(d.edge_index[:, a].tolist()), tuple(d.edge_index[:, b].tolist()))
                     for a, b in d.line_index[:, d.multitree_mask].t().tolist()}
    assert key(ref) == key(other)


def test_reverse_is_the_flipped_dag():
    ei, n = diamond_stack(2)
    d = prepare_dag(ei, n)
    r = d.reverse()
    assert torch.equal(r.edge_index, d.edge_index.flip(0))
    assert edge_set(r.line_index) == edge_set(line_graph(r.edge_index, n))
    assert torch.equal(r.edge_level, edge_levels(r.edge_index, n))
    assert torch.equal(r.reverse().edge_index, d.edge_index)


def test_to_dag_keeps_attributes_and_does_not_mutate():
    data = Data(x=torch.randn(4, 3), edge_index=chain(4), edge_attr=torch.randn(6, 2), y=torch.tensor([1.0]),
                order=torch.tensor([3, 2, 1, 0]))
    before = {k: v.clone() for k, v in data.to_dict().items()}
    out = ToDAG()(data)
    assert isinstance(out, DAGData)
    for k, v in before.items():
        assert torch.equal(data[k], v) and torch.equal(out[k], v)
    assert edge_set(out.dag_edge_index) == {(3, 2), (2, 1), (1, 0)}
    assert out.dag_edge_attr.shape == (3, 2)
    assert "ToDAG" in repr(ToDAG())


def test_get_dag_without_preparation_is_explained():
    with pytest.raises(ValueError, match="ToDAG"):
        get_dag(Data(x=torch.randn(3, 1), edge_index=chain(3)))


def _graphs():
    g = torch.Generator().manual_seed(5)
    ds, dn = diamond_stack(2)
    out = []
    for ei, n in [(chain(5), 5), (ds, dn), (undirected(random_dag(7, 0.4, g).t().tolist()), 7), (torch.zeros(2, 0, dtype=torch.long), 3)]:
        out.append(Data(x=torch.randn(n, 2, generator=g), edge_index=ei, num_nodes=n))
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


def test_batching_increments_line_index_by_dag_edges():
    graphs = [ToDAG()(d) for d in _graphs()]
    batch = Batch.from_data_list(graphs)
    offset = 0
    parts = []
    for g in graphs:
        parts.append(g.line_index + offset)
        offset += g.dag_edge_index.size(1)
    assert torch.equal(batch.line_index, torch.cat(parts, 1))
    assert torch.equal(batch.edge_level, torch.cat([g.edge_level for g in graphs]))
    loader = DataLoader(graphs, batch_size=4)
    assert torch.equal(next(iter(loader)).line_index, batch.line_index)


def test_prepare_then_batch_equals_batch_then_prepare():
    from pyg_plstm.functional import plstm_dag
    from graphs import random_operands

    raw = _graphs()
    per_graph = get_dag(Batch.from_data_list([ToDAG()(d) for d in raw]))
    whole = get_dag(ToDAG()(Batch.from_data_list(raw)))
    for name in ("edge_index", "line_index", "edge_level", "edge_level_rev", "multitree_mask"):
        assert torch.equal(getattr(per_graph, name), getattr(whole, name)), name
    ops = random_operands(per_graph.num_nodes, per_graph.num_edges, per_graph.line_index.size(1),
                          generator=torch.Generator().manual_seed(0), requires_grad=False)
    a = plstm_dag(*ops, per_graph.edge_index, per_graph.line_index, per_graph.edge_level)
    b = plstm_dag(*ops, whole.edge_index, whole.line_index)
    assert torch.equal(a, b)


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
    assert stored is not None
    again = _Prepared(str(tmp_path))
    assert len(again) == len(graphs)
    for a, b in zip(ds, again):
        assert isinstance(b, DAGData)
        assert torch.equal(a.line_index, b.line_index)
    batch = Batch.from_data_list(list(again))
    assert torch.equal(batch.line_index, Batch.from_data_list([ToDAG()(d) for d in graphs]).line_index)
