"""make_model: every model maps a batch to [num_graphs, out_channels]; edge features, encoders, errors."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from pyg_plstm.baselines import MODEL_NAMES, GNNBaseline, make_model
from pyg_plstm.chem import from_smiles
from pyg_plstm.nn import PLSTMNet
from test_train import single_thread  # noqa: F401  (autouse: one intra-op thread)

SMILES = ["CCO", "c1ccccc1O", "CC(=O)N", "C"]


def batch():
    return Batch.from_data_list([from_smiles(s) for s in SMILES])


def small(name, **kw):
    args = dict(hidden_channels=8, num_layers=2, heads=2, node_encoder="ogb", edge_encoder="ogb")
    return make_model(name, None, 3, **{**args, **kw})


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_every_model_outputs_one_row_per_graph_and_trains(name, pooling):
    torch.manual_seed(0)
    model = small(name, pooling=pooling)
    data = batch()
    x_before = data.x.clone()
    out = model(data)
    assert out.shape == (len(SMILES), 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    # Every parameter (encoders, attention gate, virtual node) takes part.
    assert all(p.grad is not None for p in model.parameters())
    assert torch.equal(data.x, x_before)


def test_factory_builds_the_named_architecture():
    assert isinstance(small("plstm"), PLSTMNet)
    assert small("gin-virtual").virtual_emb is not None and small("gin").virtual_emb is None
    assert len(make_model("gin", 9, 1).convs) == 5  # OGB's depth by default
    assert len(make_model("plstm", 9, 1, hidden_channels=8, heads=2).blocks) == 2


@pytest.mark.parametrize("name", ["gin", "gat", "plstm"])
def test_edge_features_are_used_when_an_edge_encoder_is_given(name):
    torch.manual_seed(0)
    data = batch()
    changed = data.clone()
    changed.edge_attr = torch.zeros_like(data.edge_attr)
    if "dag_edge_attr" in data:
        changed.dag_edge_attr = torch.zeros_like(data.dag_edge_attr)
    with_edges = small(name).eval()
    # pLSTM starts with zero edge-gate weights (the paper's init); move away from it.
    with torch.no_grad():
        for p in with_edges.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert not torch.allclose(with_edges(data), with_edges(changed))
    without = small(name, edge_encoder=None).eval()
    assert torch.allclose(without(data), without(changed))


def test_linear_encoders_take_float_or_integer_features():
    torch.manual_seed(0)
    data = Data(x=torch.randn(4, 5), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), edge_attr=torch.randn(3, 2))
    model = make_model("gin", 5, 2, hidden_channels=8, num_layers=2, edge_dim=2).eval()
    assert isinstance(model, GNNBaseline) and model.edge_encoders is not None
    assert model(data).shape == (1, 2)
    assert make_model("gcn", 9, 1, hidden_channels=8, num_layers=1).eval()(batch()).shape == (4, 1)


def test_clear_errors_for_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="unknown model 'gnn'"):
        make_model("gnn", 9, 1)
    with pytest.raises(ValueError, match="needs a positive number of input channels, got None"):
        make_model("gin", None, 1)
    with pytest.raises(ValueError, match="GAT needs `hidden_channels` \\(10\\) divisible by `heads` \\(4\\)"):
        make_model("gat", 9, 1, hidden_channels=10)
    with pytest.raises(ValueError, match=r"does not take the pLSTM-only argument\(s\) \['block'\]"):
        make_model("gcn", 9, 1, block="PD")
    with pytest.raises(ValueError, match="unknown pooling 'median'"):
        make_model("gin", 9, 1, pooling="median")
    with pytest.raises(ValueError, match="`num_layers` must be a positive integer"):
        make_model("gin", 9, 1, num_layers=0)
    with pytest.raises(ValueError, match="node features have 9 channels but the model was built for 5"):
        make_model("gin", 5, 1)(batch())
    out_of_vocab = Data(x=torch.full((2, 9), 500), edge_index=torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match="column 0 holds values outside OGB's vocabulary"):
        make_model("gin", None, 1, node_encoder="ogb")(out_of_vocab)
    with pytest.raises(ValueError, match="needs integer node features of shape"):
        make_model("gin", None, 1, node_encoder="ogb")(Data(x=torch.randn(2, 9), edge_index=out_of_vocab.edge_index))
    no_edges = batch()
    del no_edges.edge_attr
    with pytest.raises(ValueError, match="built with an edge encoder but the graph has no `edge_attr`"):
        small("gin")(no_edges)
    with pytest.raises(ValueError, match="has no node features"):
        small("gin")(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
