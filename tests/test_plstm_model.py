"""PLSTMNet (models/plstm.py): shapes, batching, encoders, forms, gradients, shared DAG caches, errors."""
import pytest
import torch
from torch_geometric.data import Batch, Data

from pyg_plstm import DAG, ToDAG, get_dag, prepare_dag
from pyg_plstm.dag import node_depth
from pyg_plstm.models import PLSTMNet
from pyg_plstm.nn import DAGEncoding, DegreeEncoding, PLSTMBlock, node_depths

from graphs import solubility_molecules


def _batch(count: int = 6, start: int = 0) -> Batch:
    return Batch.from_data_list(solubility_molecules(count, start))


def _paper_parameter_count(in_channels: int, out_channels: int) -> int:
    c, heads, head = 96, 4, 24
    linear = lambda i, o, bias=True: i * o + (o if bias else 0)  # noqa: E731
    conv = (linear(c, heads * 3 * head, bias=False)  # query, key, value
            + linear(c, 4 * heads)  # node terms of source, mark, direct, transition (+ biases)
            + linear(c, 4 * heads, bias=False)  # edge-feature terms
            + heads * head  # multi-head RMSNorm
            + linear(heads * head, c))  # output projection
    block = 2 * (conv + 2 * c) + 2 * c + linear(c, 4 * c) + linear(4 * c, c)  # PD + pre-norms + MLP
    return linear(in_channels, c) + 2 * block + 2 * c + linear(c, c) + linear(c, out_channels)


def test_hybrid_is_the_model_default_and_previous_config_drops_it():
    batch = _batch()
    model = PLSTMNet(None, node_encoder="ogb", edge_encoder="ogb")
    assert all(block.local == "gine" for block in model.blocks)
    previous = PLSTMNet.from_config("previous", None, node_encoder="ogb", edge_encoder="ogb")
    assert all(block.local is None for block in previous.blocks)
    local = [name for name, _ in model.named_parameters() if ".local_" in name]
    assert local and sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in previous.parameters())
    model(batch).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for name, p in model.named_parameters() if name in local)


def test_one_P_layer_per_block_is_the_default_and_the_hybrid_pd_config_adds_the_D_layer():
    """The default block is one P-mode layer after the GINE layer; the former default (P then D) is the
    'hybrid-pd' config, the same model but for the D-mode layer of every block."""
    batch = _batch()
    model = PLSTMNet(None, node_encoder="ogb", edge_encoder="ogb")
    pd = PLSTMNet.from_config("hybrid-pd", None, node_encoder="ogb", edge_encoder="ogb")
    assert [b.pattern for b in model.blocks] == ["P", "P"] and [b.pattern for b in pd.blocks] == ["PD", "PD"]
    assert [c.mode for b in pd.blocks for c in b.convs] == ["P", "D", "P", "D"]
    assert all(b.local == "gine" for b in [*model.blocks, *pd.blocks])
    # Beyond the D-mode layers (and their pre-norms) the two models have the same parameters.
    d_only = {name for name, _ in pd.named_parameters() if ".convs.1." in name or ".conv_norms.1." in name}
    assert d_only and {name for name, _ in model.named_parameters()} == {
        name for name, _ in pd.named_parameters()} - d_only
    pd(batch).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for name, p in pd.named_parameters() if name in d_only)


def test_bidirectional_model_doubles_only_the_pLSTM_layers():
    batch = _batch()
    one_way = PLSTMNet(None, node_encoder="ogb", edge_encoder="ogb")
    both = PLSTMNet(None, node_encoder="ogb", edge_encoder="ogb", bidirectional=True)
    conv_params = sum(p.numel() for b in one_way.blocks for p in b.convs.parameters())
    assert sum(p.numel() for p in both.parameters()) == sum(p.numel() for p in one_way.parameters()) + conv_params
    assert all(block.bidirectional for block in both.blocks)
    assert both(batch).shape == (batch.num_graphs, 1)


def test_degree_encoding():
    edge_index = torch.tensor([[0, 0, 1], [1, 2, 2]])  # degrees 2, 2, 2 and 0 (isolated)
    pe = DegreeEncoding(4)(edge_index, 4)
    freq = torch.tensor([1.0, 1e-4])
    deg = torch.tensor([2.0, 2.0, 2.0, 0.0])[:, None]
    assert torch.allclose(pe, torch.cat([torch.sin(deg * freq), torch.cos(deg * freq)], -1))
    with pytest.raises(ValueError, match="even"):
        DegreeEncoding(5)


def test_dag_encoding_matches_hand_computed_depths():
    # 0 -> 2 <- 1, 2 -> 3, 0 -> 3 and an isolated node 4: the longest paths by hand.
    dag = prepare_dag(torch.tensor([[0, 1, 2, 0], [2, 2, 3, 3]]), 5, directed=True)
    depth, height = node_depths(dag)
    assert depth.tolist() == [0, 0, 1, 2, 0] and height.tolist() == [2, 2, 1, 0, 0]
    assert depth.tolist() == node_depth(dag.edge_index, 5).tolist()
    assert node_depths(dag.reverse())[0].tolist() == height.tolist()
    encoding = DAGEncoding(8)
    expected = encoding.depth.weight[[0, 0, 1, 2, 0]] + encoding.height.weight[[2, 2, 1, 0, 0]]
    assert torch.equal(encoding(dag), expected)
    shallow = DAGEncoding(8, max_depth=1)  # depth 2 and height 2 share row 1
    assert torch.equal(shallow(dag), shallow.depth.weight[[0, 0, 1, 1, 0]] + shallow.height.weight[[1, 1, 1, 0, 0]])
    with pytest.raises(ValueError, match="max_depth"):
        DAGEncoding(8, max_depth=0)


def test_dag_encoding_is_per_graph_in_a_batch():
    chain = Data(x=torch.eye(3), edge_index=torch.tensor([[0, 1], [1, 2]]))
    fork = Data(x=torch.eye(3)[:2], edge_index=torch.tensor([[1], [0]]))
    batch = Batch.from_data_list([ToDAG(directed=True)(g) for g in (chain, fork)])
    depth, height = node_depths(get_dag(batch))
    assert depth.tolist() == [0, 1, 2, 1, 0] and height.tolist() == [2, 1, 0, 0, 1]


def test_dag_config_keeps_the_given_direction_and_trains_every_parameter():
    graphs = [Data(x=torch.eye(4), edge_index=torch.tensor([[0, 1, 2, 0], [1, 2, 3, 2]]), y=torch.tensor([[1.0]])),
              Data(x=torch.eye(4), edge_index=torch.tensor([[0, 1, 2, 0], [1, 2, 3, 3]]), y=torch.tensor([[0.0]]))]
    batch = Batch.from_data_list([ToDAG(directed=True)(g) for g in graphs])
    assert torch.equal(get_dag(batch).edge_index, batch.edge_index)
    model = PLSTMNet.from_config("dag", in_channels=4, hidden_channels=16)
    assert isinstance(model.pos_encoder, DAGEncoding) and model.pos_encoding == "dag"
    model(batch).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.pos_encoder.depth.weight.grad[:4].abs().sum(-1).gt(0).all()  # depths 0..3 of the chain


def test_paper_config_parameter_count():
    model = PLSTMNet.from_config("paper", in_channels=9, out_channels=1)
    count = sum(p.numel() for p in model.parameters())
    assert count == _paper_parameter_count(9, 1) == 320_705
    assert len(model.blocks) == 2 and all(b.pattern == "PD" for b in model.blocks)
    assert str(model) == "PLSTMNet(9, 96, 1, num_blocks=2, block='PD')"
    small = PLSTMNet.from_config("paper", in_channels=9, out_channels=2, hidden_channels=32, block="P")
    assert small.hidden_channels == 32 and small.blocks[0].pattern == "P" and small.out_channels == 2


@pytest.mark.parametrize("block, pooling", [("PD", "mean"), ("P", "sum"), ("D", "attention")])
def test_regression_and_classification_shapes(block, pooling):
    batch = _batch()
    for out_channels in (1, 12):
        model = PLSTMNet(9, hidden_channels=16, out_channels=out_channels, heads=2, block=block, pooling=pooling)
        out = model(batch)
        assert out.shape == (6, out_channels) and out.isfinite().all()
    assert model.node_embeddings(batch).shape == (batch.num_nodes, 16)


def test_single_graph_without_batch_vector():
    data = solubility_molecules(1, start=30)[0]
    model = PLSTMNet(9, hidden_channels=16, out_channels=3, heads=2)
    assert model(data).shape == (1, 3)


def test_ogb_encoders_with_from_smiles_features():
    batch = _batch()
    model = PLSTMNet(None, hidden_channels=16, out_channels=2, heads=2, node_encoder="ogb", edge_encoder="ogb")
    assert batch.x.dtype == torch.long and batch.edge_attr.shape[1] == 3
    assert model(batch).shape == (6, 2)
    # Edge features reach the pLSTM layers (once their gate weights are not zero, as at init).
    for block in model.blocks:
        for conv in block.convs:
            torch.nn.init.normal_(conv.lin_edge_gate.weight)
    bonds = batch.edge_attr.clone()
    bonds[:, 0] = (bonds[:, 0] + 1) % 4
    assert not torch.allclose(model(batch), model(batch.clone().update({"edge_attr": bonds})))


def test_linear_edge_encoder_is_implied_by_edge_dim():
    batch = _batch()
    batch.edge_attr = batch.edge_attr.float()
    model = PLSTMNet(9, hidden_channels=16, heads=2, edge_dim=3)
    assert model.edge_encoder is not None
    assert all(conv.edge_dim == 16 for block in model.blocks for conv in block.convs)
    assert model(batch).shape == (6, 1)


def test_batched_equals_per_graph():
    graphs = solubility_molecules(6, start=400)
    model = PLSTMNet(None, hidden_channels=16, out_channels=2, heads=2, node_encoder="ogb",
                     edge_encoder="ogb", pooling="attention", dropout=0.3).double().eval()
    out = model(Batch.from_data_list(graphs))
    expected = torch.cat([model(g) for g in graphs])
    assert torch.allclose(out, expected, atol=1e-12)


def test_scan_and_parallel_forms_agree():
    batch = _batch(start=800)
    kwargs = dict(hidden_channels=16, heads=2, node_encoder="ogb", edge_encoder="ogb", block="PD")
    torch.manual_seed(0)
    scan = PLSTMNet(None, form="scan", **kwargs).double()
    parallel = PLSTMNet(None, form="parallel", **kwargs).double()
    parallel.load_state_dict(scan.state_dict())
    assert torch.allclose(scan(batch), parallel(batch), atol=1e-10)


def _check_gradients(model: PLSTMNet, blocked: set) -> None:
    """Finite gradients everywhere; exactly zero for ``blocked``, zero up to float noise for the
    shift-invariant gate bias, nonzero for every other parameter."""
    grads = {name: p.grad for name, p in model.named_parameters()}
    scale = max(float(g.abs().max()) for g in grads.values())
    for name, grad in grads.items():
        assert grad.isfinite().all(), name
        if name in blocked:
            assert not grad.any(), name
        elif name == "pool.attention.gate_nn.bias":
            # Softmax over a graph's nodes ignores a constant added to every attention score.
            assert grad.abs().max() <= 1e-5 * scale, name
        else:
            assert grad.abs().max() > 0, name


@pytest.mark.parametrize("local", ["gine", None])
def test_gradient_flows_to_all_parameters(local):
    torch.manual_seed(0)
    batch = _batch(count=8, start=250)
    model = PLSTMNet(None, hidden_channels=16, out_channels=2, heads=2, node_encoder="ogb", edge_encoder="ogb",
                     pooling="attention", local=local, block="PD")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(batch).square().sum().backward()
    # The edge-gate weights start at zero (the paper's init): without the local GINE layer, which reads
    # the bonds from the start, the edge encoder's gradient is exactly zero until the first update has
    # moved them.
    encoder = {f"edge_encoder.encoder.bond_embedding_list.{i}.weight" for i in range(3)}
    _check_gradients(model, blocked=encoder if local is None else set())
    optimizer.step()
    optimizer.zero_grad()
    model(batch).square().sum().backward()
    _check_gradients(model, blocked=set())


def test_blocks_alternate_direction(monkeypatch):
    seen = []
    original = PLSTMBlock.forward
    monkeypatch.setattr(PLSTMBlock, "forward", lambda self, *a, reverse=False, **k: seen.append(reverse)
                        or original(self, *a, reverse=reverse, **k))
    PLSTMNet(9, hidden_channels=16, num_blocks=3, heads=2)(_batch())
    assert seen == [False, True, False]


def test_one_dag_and_one_schedule_per_view_per_forward(monkeypatch):
    import pyg_plstm.models.plstm as plstm_module

    dags, built = [], []
    monkeypatch.setattr(plstm_module, "get_dag", lambda data, f=get_dag: dags.append(1) or f(data))
    memo = DAG.memo
    monkeypatch.setattr(DAG, "memo", lambda self, key, build: memo(self, key, lambda: built.append(key) or build()))
    PLSTMNet(9, hidden_channels=16, num_blocks=4, heads=2, block="PD", form="scan")(_batch())
    assert len(dags) == 1
    assert built.count("level_schedule") == 4  # {P, D} x {forward, reversed}, for 8 layers


def test_autocast_forward_backward():
    batch = _batch()
    model = PLSTMNet(9, hidden_channels=16, heads=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    out.float().sum().backward()
    assert out.isfinite().all()
    assert all(p.grad.isfinite().all() for p in model.parameters())


def test_state_dict_round_trip(tmp_path):
    batch = _batch()
    kwargs = dict(hidden_channels=16, out_channels=2, heads=2, node_encoder="ogb", edge_encoder="ogb",
                  pooling="attention")
    model = PLSTMNet(None, **kwargs)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    other = PLSTMNet(None, **kwargs)
    other.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert torch.equal(model(batch), other(batch))


def test_inputs_not_mutated():
    batch = _batch()
    before = {k: v.clone() for k, v in batch.to_dict().items() if torch.is_tensor(v)}
    PLSTMNet(9, hidden_channels=16, heads=2, edge_dim=3)(batch)
    assert all(torch.equal(v, batch[k]) for k, v in before.items())


@pytest.mark.parametrize("kwargs, match", [
    (dict(pos_encoding="laplacian"), r"`pos_encoding` must be one of \('degree', 'dag', None\), got 'laplacian'"),
    (dict(hidden_channels=15), "pos_encoding='degree' needs an even `hidden_channels`, got 15"),
    (dict(block="PX"), "`pattern` must be a non-empty string of the modes"),
    (dict(pooling="median"), "`pooling` must be one of"),
    (dict(node_encoder="gnn"), "unknown encoder 'gnn' for node features"),
    (dict(edge_encoder="linear"), "a 'linear' encoder for edge features needs a positive number of input channels"),
    (dict(form="fast"), "`form` must be one of"),
    (dict(num_blocks=0), "`num_blocks` must be a positive integer, got 0"),
    (dict(dropout=1.0), r"`dropout` must lie in \[0, 1\), got 1.0"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PLSTMNet(9, **kwargs)


def test_input_errors():
    with pytest.raises(ValueError, match="unknown config"):
        PLSTMNet.from_config("huge", in_channels=9)
    model = PLSTMNet(9, hidden_channels=16, heads=2)
    with pytest.raises(ValueError, match="no prepared DAG"):
        model(Data(x=torch.randn(3, 9), edge_index=torch.tensor([[0, 1], [1, 2]])))
    batch = _batch()
    del batch.edge_attr
    with pytest.raises(ValueError, match="built with an edge encoder but the graph has no `edge_attr`"):
        PLSTMNet(9, hidden_channels=16, heads=2, edge_encoder="ogb")(batch)
    batch = _batch()
    with pytest.raises(ValueError, match="node features have 5 channels but the model was built for 9"):
        model(batch.update({"x": torch.randn(batch.num_nodes, 5)}))


def test_inputs_on_another_device_are_refused_naming_them():
    # The meta device stands in for a GPU: a tensor left behind on the CPU would fail deep inside torch.
    batch = _batch(2)
    model = PLSTMNet(None, hidden_channels=16, heads=2, node_encoder="ogb", edge_encoder="ogb", molecule_dim=2)
    with pytest.raises(ValueError, match="`edge_attr` is on meta but `x` is on cpu"):
        model(batch.clone().update({"edge_attr": batch.edge_attr.to("meta")}))
    with pytest.raises(ValueError, match="`edge_attr` must be a tensor with one row per edge, got list"):
        model(batch.clone().update({"edge_attr": batch.edge_attr.tolist()}))
    with pytest.raises(ValueError, match="`molecule_features` is on meta but `x` is on cpu"):
        model(batch.clone().update({"molecule_features": torch.zeros(2, 2, device="meta")}))
    # A local layer mixes nodes before any pLSTM layer checks its inputs: the block checks first.
    block = PLSTMBlock(8, heads=2, local="gine").to("meta")
    with pytest.raises(ValueError, match="`dag` is on cpu but `x` is on meta"):
        block(torch.zeros(5, 8, device="meta"), dag=prepare_dag(torch.tensor([[0, 1, 2], [1, 2, 3]]), 5))


@pytest.mark.parametrize("options", [{}, {"block": "D", "bidirectional": True, "form": "scan"},
                                     {"num_blocks": 3, "reverse_pruning": "own", "form": "parallel"},
                                     {"transition": "householder"}])
def test_structure_prepared_in_the_loader_leaves_no_host_work_to_the_forward(monkeypatch, options):
    from torch_geometric.loader import DataLoader

    import pyg_plstm.ops.structures as structures
    import pyg_plstm.ops.validation as validation
    from pyg_plstm.dag import DAGLoader

    graphs = solubility_molecules(20)
    torch.manual_seed(0)
    # P and D views (the D ones pruned to multitrees), unless the options name another block.
    model = PLSTMNet(None, hidden_channels=16, heads=2, node_encoder="ogb", edge_encoder="ogb",
                     **{"block": "PD", **options}).eval()
    expected = [model(batch) for batch in DataLoader(graphs, batch_size=8)]
    collated = list(DAGLoader(graphs, batch_size=8, prepare=model.prepare_structure))

    def refuse(*args, **kwargs):
        raise AssertionError("structure work in the forward pass")

    for name in ("sort_levels", "_reachability", "_layout"):
        monkeypatch.setattr(structures, name, refuse)
    monkeypatch.setattr(validation, "_check_structure", refuse)
    for batch, want in zip(collated, expected):
        assert get_dag(batch) is get_dag(batch)
        assert torch.equal(model(batch), want)
    with pytest.raises(AssertionError, match="structure work"):
        model(Batch.from_data_list(graphs[:8]))  # without the loader, the forward builds it


def test_structure_prepared_in_loader_workers_serves_the_forward(monkeypatch):
    # The batches (and their DAGs, schedules included) come from a worker process, pickled: the forward
    # must accept them as prepared (no stale-input error, no rebuild) and give the same output.
    from torch_geometric.loader import DataLoader

    import pyg_plstm.ops.structures as structures
    import pyg_plstm.ops.validation as validation
    from pyg_plstm.dag import DAGLoader

    graphs = solubility_molecules(12)
    torch.manual_seed(0)
    model = PLSTMNet(None, hidden_channels=16, heads=2, node_encoder="ogb", edge_encoder="ogb", block="PD").eval()
    expected = [model(batch) for batch in DataLoader(graphs, batch_size=6)]
    collated = list(DAGLoader(graphs, batch_size=6, prepare=model.prepare_structure, num_workers=1, timeout=60))

    def refuse(*args, **kwargs):
        raise AssertionError("structure work in the forward pass")

    for name in ("sort_levels", "_reachability", "_layout"):
        monkeypatch.setattr(structures, name, refuse)
    monkeypatch.setattr(validation, "_check_structure", refuse)
    assert len(collated) == len(expected) == 2
    for batch, want in zip(collated, expected):
        assert torch.equal(model(batch), want)
