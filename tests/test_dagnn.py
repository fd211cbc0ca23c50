"""DAGNN: the level-batched layer against its per-node loop (values and gradients), the model on
architectures and molecules."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from pyg_plstm.dag import ToDAG, get_dag, prepare_dag
from pyg_plstm.models import DAGNN, make_model
from pyg_plstm.nn import DAGNNConv
from pyg_plstm.nn.dagnn import node_schedule

from graphs import family, molecules, prepared_batch, random_dag


def _dags():
    generator = torch.Generator().manual_seed(0)
    for name, edge_index, num_nodes in family(generator):
        yield name, prepare_dag(edge_index, num_nodes)
    yield "dense random", prepare_dag(random_dag(8, 0.6, generator), 8)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_edges", [False, True])
def test_conv_matches_per_node_loop(reverse, with_edges):
    torch.manual_seed(0)
    conv = DAGNNConv(3, 5).double()
    for name, dag in _dags():
        view = dag.reverse() if reverse else dag
        x = torch.randn(dag.num_nodes, 3, dtype=torch.float64, requires_grad=True)
        edge_attr = torch.randn(dag.num_edges, 5, dtype=torch.float64, requires_grad=True) if with_edges else None
        fast = conv(x, view, edge_attr)
        slow = conv.reference(x, view.edge_index, edge_attr)
        torch.testing.assert_close(fast, slow, msg=name)
        weights = torch.randn_like(fast)
        inputs = [x, *conv.parameters()] + ([edge_attr] if with_edges else [])
        grads_fast = torch.autograd.grad((fast * weights).sum(), inputs, allow_unused=True)
        grads_slow = torch.autograd.grad((slow * weights).sum(), inputs, allow_unused=True)
        for a, b in zip(grads_fast, grads_slow):
            if a is None or b is None:
                assert a is None and b is None or dag.num_edges == 0, name
                continue
            torch.testing.assert_close(a, b, msg=name)


def test_sources_get_no_message():
    conv = DAGNNConv(2, 4)
    dag = prepare_dag(torch.tensor([[0, 1], [2, 2]]), 3)
    x = torch.randn(3, 2)
    out = conv(x, dag)
    torch.testing.assert_close(out[:2], conv.gru(x[:2]))


def test_node_schedule_levels():
    # 0 -> 1 -> 3, 0 -> 3, 2 -> 3: node 3 is on level 2 (longest path), 0 and 2 on level 0.
    dag = prepare_dag(torch.tensor([[0, 1, 0, 2], [1, 3, 3, 3]]), 4)
    schedule = node_schedule(dag)
    assert schedule.edge_ptr == [0, 2, 3, 4]
    assert sorted(schedule.edge_perm[:2].tolist()) == [0, 2]
    assert schedule.edge_perm[2:].tolist() == [1, 3]
    assert node_schedule(dag) is schedule  # cached


def _architecture_batch():
    graphs = []
    for edges in ([(0, 1), (1, 2), (0, 2), (2, 3)], [(0, 1), (1, 2), (2, 3)]):
        x = torch.eye(4)
        graphs.append(ToDAG(directed=True)(Data(x=x, edge_index=torch.tensor(edges).t(), y=torch.ones(1, 1))))
    return Batch.from_data_list(graphs)


def test_model_reads_out_sinks_and_sources_per_graph():
    torch.manual_seed(0)
    batch = _architecture_batch()
    model = make_model("dagnn", 4, 1, hidden_channels=8)
    assert isinstance(model, DAGNN) and model.num_layers == 2
    out = model(batch)
    assert out.shape == (2, 1)
    # Each graph on its own gives the same output: no leak between graphs of a batch.
    for g in range(2):
        torch.testing.assert_close(model(Batch.from_data_list([batch.get_example(g)])), out[g:g + 1])
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert "DAGNN(4, 1" in repr(model)


def test_model_runs_on_molecules_with_edge_features():
    torch.manual_seed(0)
    graphs = molecules(3)
    for g in graphs:
        g.x = torch.randn(g.num_nodes, 5)
        g.edge_attr = torch.randn(g.edge_index.size(1), 2)
    batch = prepared_batch(graphs)
    model = make_model("dagnn", 5, 2, hidden_channels=8, edge_dim=2, num_layers=1)
    out = model(batch)
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    # The prepared schedules of the loader give the same result.
    model.prepare_structure(get_dag(batch))
    torch.testing.assert_close(model(batch), out)


def test_model_refuses_bad_arguments():
    with pytest.raises(ValueError, match="hidden_channels"):
        DAGNN(4, 1, hidden_channels=0)
    with pytest.raises(ValueError, match="dropout"):
        DAGNN(4, 1, dropout=1.5)
