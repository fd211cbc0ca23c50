"""The model registry (models/registry.py) and the models it builds: names, defaults, parameters that learn,
edge features, encoders, pooling and the graph-input checks every model shares."""
import inspect
import re

import pytest
import torch
from torch_geometric.data import Batch, Data

import pyg_plstm.models.registry as registry
from pyg_plstm import DAGData, ToDAG
from pyg_plstm.chem import MolToDAG
from pyg_plstm.models import (
    DAGNN,
    MODEL_NAMES,
    POOLINGS,
    GNNBaseline,
    PLSTMNet,
    graph_inputs,
    make_model,
    model_arguments,
    model_names,
)
from pyg_plstm.nn import GraphPooling, LinearEncoder, OGBEncoder, PLSTMBlock, PLSTMConv, make_encoder

SMILES = ["CCO", "c1ccccc1O", "CC(=O)N", "C"]

# Parameters whose gradient is zero in exact arithmetic (so only float noise), with the reason.
ZERO_GRADIENT = [
    # DAGNN's reversed pass: the only atom with two successors (phenol's first ring atom) sees the two
    # mirror-image halves of the ring, whose states are equal, so the attention weights do not matter
    # (tests/test_dagnn.py checks these gradients on asymmetric DAGs).
    r"reverse_convs\.\d+\.score\.weight",
    # Softmax over a graph's nodes ignores a constant added to every attention score.
    r"pool\.attention\.gate_nn\.bias",
    # A training-mode BatchNorm subtracts the batch mean, so the bias of the layer feeding it has no
    # effect: GCN / GAT convolutions -> norms, GIN's MLP (Linear -> BatchNorm, Linear -> norms) and
    # the virtual-node MLP likewise.
    r"convs\.\d+\.bias",
    r"convs\.\d+\.nn\.[03]\.bias",
    r"virtual_mlps\.\d+\.0\.[03]\.bias",
]


def graphs():
    """The molecules of SMILES before DAG preparation."""
    return [MolToDAG().graph_from_smiles(s)[0] for s in SMILES]


def batch(molecules=None):
    return Batch.from_data_list([ToDAG()(g) for g in (molecules or graphs())])


def small(name, **kw):
    args = dict(hidden_channels=8, num_layers=2, heads=2, node_encoder="ogb", edge_encoder="ogb")
    return make_model(name, None, 3, **{**args, **kw})


def perturb(model, scale=0.1):
    """Move every parameter off its initial value (pLSTM's edge gates start at zero, blocking the edge encoder)."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))
    return model


def test_registry_holds_the_builtin_models():
    assert MODEL_NAMES == model_names() == ("plstm", "gin", "gcn", "gat", "gin-virtual", "dagnn")
    with pytest.raises(ValueError, match=re.escape(f"unknown model 'gnn'; choose one of {MODEL_NAMES}")):
        make_model("gnn", 9, 1)


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_every_model_outputs_one_row_per_graph_and_every_parameter_learns(name, pooling):
    torch.manual_seed(0)
    model = perturb(small(name, pooling=pooling))
    data = batch()
    before = {k: v.clone() for k, v in data.to_dict().items() if torch.is_tensor(v)}
    out = model(data)
    assert out.shape == (len(SMILES), 3) and out.isfinite().all()
    out.square().mean().backward()
    grads = dict(model.named_parameters())
    scale = max(float(p.grad.abs().max()) for p in grads.values())
    zero = {n for n in grads if any(re.fullmatch(pattern, n) for pattern in ZERO_GRADIENT)}
    for n, p in grads.items():
        assert p.grad.isfinite().all(), n
        if n in zero:
            assert p.grad.abs().max() <= 1e-5 * scale, n
        else:
            assert p.grad.abs().max() > 0, n
    assert ("pool.attention.gate_nn.bias" in zero) == (pooling == "attention")
    assert all(torch.equal(v, data[k]) for k, v in before.items())


def test_register_model_adds_a_name_to_make_model(monkeypatch):
    # A copy keeps this test's model out of the process-wide registry.
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    built = {}

    def build(in_channels, out_channels, num_layers, width=1, **common):
        built.update(num_layers=num_layers, width=width, **common)
        return torch.nn.Linear(in_channels, out_channels)

    # Its own argument is read from its signature.
    registry.register_model("tiny", build, default_layers=3)
    assert model_names()[-1] == "tiny" and "tiny" not in MODEL_NAMES
    assert isinstance(make_model("tiny", 4, 2, width=7), torch.nn.Linear)
    assert built["num_layers"] == 3 and built["width"] == 7 and built["pooling"] == "mean"
    make_model("tiny", 4, 2, num_layers=1)
    assert built["num_layers"] == 1
    with pytest.raises(ValueError, match=r"model 'tiny' does not take the argument\(s\) \['depth'\]; its own "
                                         r"arguments are \['width'\]"):
        make_model("tiny", 4, 2, depth=2)
    with pytest.raises(ValueError, match="a model named 'tiny' is already registered"):
        registry.register_model("tiny", build, default_layers=3)
    with pytest.raises(ValueError, match="`default_layers` must be a positive integer, got 0"):
        registry.register_model("other", build, default_layers=0)
    with pytest.raises(ValueError, match="the builder of model 'other' must be callable, got int"):
        registry.register_model("other", 3, default_layers=1)


def test_make_model_defaults_are_the_models_defaults():
    make = inspect.signature(make_model).parameters
    for cls in (PLSTMNet, GNNBaseline):
        own = inspect.signature(cls).parameters
        for arg in ("hidden_channels", "heads", "edge_dim", "node_encoder", "edge_encoder", "pooling", "dropout"):
            assert make[arg].default == own[arg].default, (cls.__name__, arg)
    # num_layers=None: the models' own depths (checkpoints store None and rebuild with them).
    assert len(make_model("plstm", 9, 1, hidden_channels=8, heads=2).blocks) \
        == inspect.signature(PLSTMNet).parameters["num_blocks"].default == 2
    assert len(make_model("gin", 9, 1).convs) == inspect.signature(GNNBaseline).parameters["num_layers"].default == 5
    # Every PLSTMNet argument make_model does not name is passed through for "plstm" and refused by the GNNs.
    plstm = inspect.signature(PLSTMNet).parameters
    named = {name for name, p in plstm.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    passed = named - set(make) - {"num_blocks"}
    assert passed == {"block", "pos_encoding", "form", "alpha", "edge_features", "norm", "local"}
    for arg in sorted(passed):
        make_model("plstm", 9, 1, hidden_channels=8, heads=2, **{arg: plstm[arg].default})
        with pytest.raises(ValueError, match=rf"model 'gcn' does not take the argument\(s\) \['{arg}'\]; its own "
                                             r"arguments are \['virtual_node'\]$"):
            make_model("gcn", 9, 1, **{arg: None})


def _optional_parameters(cls) -> dict:
    return {name: p.default for name, p in inspect.signature(cls).parameters.items() if p.default is not p.empty}


def test_model_arguments_are_the_constructor_parameters_make_model_does_not_set():
    common = set(inspect.signature(make_model).parameters)
    # pLSTM passes its other arguments on to every block and layer; each sets the depth / layer pattern of the next.
    chain = {**_optional_parameters(PLSTMConv), **_optional_parameters(PLSTMBlock), **_optional_parameters(PLSTMNet)}
    options = set(chain) - common - {"num_blocks", "pattern", "mode"}
    assert set(model_arguments("plstm")) == options
    for name in ("gin", "gcn", "gat", "gin-virtual"):
        assert set(model_arguments(name)) == set(_optional_parameters(GNNBaseline)) - common == {"virtual_node"}
    assert set(model_arguments("dagnn")) == set(_optional_parameters(DAGNN)) - common == set()
    # Every one of them reaches the model: its default builds it, another value changes it.
    for name in sorted(options):
        make_model("plstm", 9, 1, hidden_channels=8, heads=2, **{name: chain[name]})
    model = make_model("plstm", 9, 1, hidden_channels=8, heads=2, mlp_ratio=3, qk_channels=5)
    assert model.blocks[0].mlps[0][0].out_features == 24 and model.blocks[1].convs[0].qk_channels == 5


def test_an_unknown_model_argument_is_refused_naming_it_and_the_valid_ones():
    with pytest.raises(ValueError, match=r"model 'plstm' does not take the argument\(s\) \['mlp_rato'\]; its own "
                                         r"arguments are \['block', .*'mlp_ratio', .*\]"):
        make_model("plstm", 9, 1, mlp_rato=2)


def test_factory_builds_the_named_architecture():
    assert isinstance(small("plstm"), PLSTMNet)
    assert [m.conv for m in map(small, ("gin", "gcn", "gat", "gin-virtual"))] == ["gin", "gcn", "gat", "gin"]
    assert small("gin-virtual").virtual_emb is not None and small("gin").virtual_emb is None
    assert not small("gin-virtual").virtual_emb.weight.any()  # OGB's virtual node starts at zero
    assert str(small("gat")) == "GNNBaseline('gat', None, 3, hidden_channels=8, num_layers=2, virtual_node=False)"


@pytest.mark.parametrize("name", model_names())
def test_reset_parameters_reinitialises_every_parameter(name):
    model = small(name, pooling="attention")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    model.reset_parameters()
    assert [n for n, p in model.named_parameters() if (p == 7.0).all()] == []


@pytest.mark.parametrize("name", ["gin", "gat", "plstm"])
def test_edge_features_are_used_when_an_edge_encoder_is_given(name):
    torch.manual_seed(0)
    molecules = graphs()
    data = batch(molecules)
    no_bonds = [g.clone() for g in molecules]
    for g in no_bonds:
        g.edge_attr = torch.zeros_like(g.edge_attr)
    changed = batch(no_bonds)
    with_edges = perturb(small(name)).eval()
    assert not torch.allclose(with_edges(data), with_edges(changed))
    without = small(name, edge_encoder=None).eval()
    assert torch.allclose(without(data), without(changed))


def test_gcn_ignores_edge_features():
    model = small("gcn")
    assert model.edge_encoders is None
    data = batch()
    del data.edge_attr
    assert model(data).shape == (len(SMILES), 3)


def test_linear_encoders_take_float_or_integer_features():
    torch.manual_seed(0)
    data = Data(x=torch.randn(4, 5), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), edge_attr=torch.randn(3, 2))
    model = make_model("gin", 5, 2, hidden_channels=8, num_layers=2, edge_dim=2).eval()
    assert isinstance(model.edge_encoders[0], LinearEncoder)
    assert model(data).shape == (1, 2)
    integer = make_model("gcn", 9, 1, hidden_channels=8, num_layers=1).eval()
    data = batch()
    assert data.x.dtype == torch.long
    assert torch.allclose(integer(data), integer(data.clone().update({"x": data.x.float()})))


def test_encoders_and_pooling():
    torch.manual_seed(0)
    linear = make_encoder("linear", 3, 4, "edge features")
    assert str(linear) == "LinearEncoder(3, 4, what='edge features')"
    assert torch.allclose(linear(torch.tensor([[1, 2, 3]])), linear.lin(torch.tensor([[1.0, 2.0, 3.0]])))
    scalar = LinearEncoder(1, 4)
    assert torch.equal(scalar(torch.tensor([2.0, 3.0])), scalar(torch.tensor([[2.0], [3.0]])))
    ogb = make_encoder("ogb", None, 4, "edge features")
    assert isinstance(ogb, OGBEncoder) and len(ogb.dims) == 3 and str(ogb) == "OGBEncoder(4, what='edge features')"
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]])
    index = torch.tensor([0, 0, 1])
    expected = {"mean": [[2.0, 3.0], [5.0, 7.0]], "sum": [[4.0, 6.0], [5.0, 7.0]], "max": [[3.0, 4.0], [5.0, 7.0]]}
    for pooling, rows in expected.items():
        assert torch.equal(GraphPooling(pooling, 2)(x, index, 3), torch.tensor([*rows, [0.0, 0.0]]))
    attention = GraphPooling("attention", 2)
    with torch.no_grad():
        attention.attention.gate_nn.weight.copy_(torch.tensor([[1.0, 0.0]]))
    weights = torch.tensor([1.0, 3.0]).softmax(0)
    assert torch.allclose(attention(x, index, 2), torch.stack([weights @ x[:2], x[2]]))
    assert set(POOLINGS) == {"mean", "sum", "max", "attention"} and str(attention) == "GraphPooling('attention', 2)"


def test_clear_errors_for_bad_arguments():
    with pytest.raises(ValueError, match="a 'linear' encoder for node features needs a positive number of input "
                                         "channels, got None"):
        make_model("gin", None, 1)
    with pytest.raises(ValueError, match=r"GAT needs `hidden_channels` \(10\) divisible by `heads` \(4\)"):
        make_model("gat", 9, 1, hidden_channels=10)
    with pytest.raises(ValueError, match=r"`pooling` must be one of \('mean', 'sum', 'max', 'attention'\), "
                                         r"got 'median'"):
        make_model("gin", 9, 1, pooling="median")
    with pytest.raises(ValueError, match="`num_layers` must be a positive integer, got 0"):
        make_model("gin", 9, 1, num_layers=0)
    with pytest.raises(ValueError, match=r"`dropout` must lie in \[0, 1\), got 1.0"):
        make_model("gcn", 9, 1, dropout=1.0)
    with pytest.raises(ValueError, match=r"`conv` must be one of \('gin', 'gcn', 'gat'\), got 'sage'"):
        GNNBaseline("sage", 9, 1)
    with pytest.raises(ValueError, match=r"unknown encoder 'onehot' for edge features; choose one of "
                                         r"\('linear', 'ogb'\)"):
        make_model("gin", 9, 1, edge_encoder="onehot")
    with pytest.raises(ValueError, match=r"`what` must be one of \('node features', 'edge features'\), got 'bonds'"):
        OGBEncoder(4, "bonds")


def test_clear_errors_for_bad_features():
    with pytest.raises(ValueError, match="node features have 9 channels but the model was built for 5"):
        make_model("gin", 5, 1)(batch())
    out_of_vocab = Data(x=torch.full((2, 9), 500), edge_index=torch.tensor([[0, 1], [1, 0]]))
    with pytest.raises(ValueError, match=r"node features column 0 holds values outside OGB's vocabulary \[0, 119\)"):
        make_model("gin", None, 1, node_encoder="ogb")(out_of_vocab)
    with pytest.raises(ValueError, match=r"needs integer node features of shape \[\*, 9\] in OGB's convention, got "
                                         r"torch.float32 of shape \[2, 9\]"):
        make_model("gin", None, 1, node_encoder="ogb")(Data(x=torch.randn(2, 9), edge_index=out_of_vocab.edge_index))
    no_bonds = batch()
    del no_bonds.edge_attr
    with pytest.raises(ValueError, match="built with an edge encoder but the graph has no `edge_attr`"):
        small("gin")(no_bonds)
    with pytest.raises(ValueError, match="the graph has no node features `x`"):
        small("gin")(Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2))
    with pytest.raises(ValueError, match="the graph has no `edge_index`"):
        small("gin")(Data(x=torch.zeros(2, 9, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"`edge_index` refers to node 2 but the graph has 2 nodes"):
        small("gin")(Data(x=torch.zeros(2, 9, dtype=torch.long), edge_index=torch.tensor([[0], [2]])))
    with pytest.raises(ValueError, match=r"`edge_index` must be an integer tensor of shape \[2, num_edges\], got "
                                         r"torch.float32 of shape \[2, 1\]"):
        small("gin")(Data(x=torch.zeros(2, 9, dtype=torch.long), edge_index=torch.tensor([[0.0], [1.0]])))


def with_batch(data, batch_vector, **attributes):
    """A copy of ``data`` with a replaced ``batch`` vector (and other attributes)."""
    return data.clone().update({"batch": batch_vector, **attributes})


@pytest.mark.parametrize("name", ["plstm", "gin"])
def test_bad_batch_vectors_are_refused(name):
    model = small(name)
    data = batch()  # nodes per graph: 3, 7, 4, 1
    n = data.num_nodes
    with pytest.raises(ValueError, match=rf"`batch` must be an integer tensor of shape \[{n}\] \(one graph id per "
                                         rf"node\), got torch.float32 of shape \[{n}\]"):
        model(with_batch(data, data.batch.float()))
    with pytest.raises(ValueError, match=rf"got torch.int64 of shape \[{n - 1}\]"):
        model(with_batch(data, data.batch[1:]))
    # Graph ids 0, 1, 5 in a batch of 4 graphs.
    ids = data.batch.clone()
    ids[ids >= 2] = 5
    with pytest.raises(ValueError, match=r"graph ids in `batch` must lie in \[0, 4\) for a batch of 4 graph\(s\), "
                                         r"got ids from 0 to 5"):
        model(with_batch(data, ids))
    # The same ids in a hand-made batch of 6 graphs (no `ptr`): graphs 2, 3 and 4 would have no nodes.
    hand_made = DAGData(**{k: v for k, v in data.to_dict().items() if k != "ptr"})
    with pytest.raises(ValueError, match=r"graph ids in `batch` have a gap: no node belongs to graph\(s\) \[2, 3, 4\] "
                                         r"of 0..5"):
        model(with_batch(hand_made, ids, num_graphs=6))
    moved = data.batch.clone()
    moved[0] = 1  # a node of graph 0 moved to graph 1: counts 2, 8, 4, 1 against ptr's 3, 7, 4, 1
    with pytest.raises(ValueError, match=r"graph ids in `batch` disagree with the batch's `ptr`: nodes per graph "
                                         r"\[2, 8, 4, 1\] in `batch`, \[3, 7, 4, 1\] in `ptr`"):
        model(with_batch(data, moved))


@pytest.mark.parametrize("name", ["plstm", "gin"])
def test_graphs_batched_before_preparation_are_refused(name):
    prepared_after_batching = ToDAG()(Batch.from_data_list(graphs()))
    with pytest.raises(ValueError, match=r"has a `batch` vector but no `num_graphs`.*was pyg_plstm.ToDAG\(\) "
                                         r"applied after batching\?"):
        small(name)(prepared_after_batching)


def test_graph_inputs_of_single_graphs_and_batches():
    single = ToDAG()(graphs()[1])
    x, edge_index, batch_vector, num_graphs = graph_inputs(single)
    assert x is single.x and edge_index is single.edge_index and num_graphs == 1
    assert torch.equal(batch_vector, torch.zeros(single.num_nodes, dtype=torch.long))
    data = batch()
    assert graph_inputs(data).num_graphs == 4 and graph_inputs(data).batch is data.batch
    # A graph without nodes is fine where the batch's `ptr` declares it.
    plain = [Data(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr) for g in graphs()[:2]]
    empty = Data(x=torch.zeros(0, 9, dtype=torch.long), edge_index=torch.zeros(2, 0, dtype=torch.long),
                 edge_attr=torch.zeros(0, 3, dtype=torch.long))
    with_empty = Batch.from_data_list([plain[0], empty, plain[1]])
    assert graph_inputs(with_empty).num_graphs == 3
    model = small("gin", pooling="sum").eval()
    out = model(with_empty)
    assert torch.allclose(out[1], model.head.bias)  # an empty graph pools to zero
    assert torch.allclose(out[[0, 2]], model(Batch.from_data_list(plain)), atol=1e-6)


def test_graph_inputs_on_different_devices_are_refused():
    on_meta = torch.zeros(2, 9, dtype=torch.long, device="meta")
    with pytest.raises(ValueError, match="`edge_index` is on cpu but the node features `x` are on meta"):
        graph_inputs(Data(x=on_meta, edge_index=torch.tensor([[0], [1]])))
    no_edges = torch.zeros(2, 0, dtype=torch.long, device="meta")
    with pytest.raises(ValueError, match="`batch` is on cpu but the node features `x` are on meta"):
        graph_inputs(Data(x=on_meta, edge_index=no_edges, batch=torch.zeros(2, dtype=torch.long)))
