from pathlib import Path

import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch

from pyg_plstm import DAG, ToDAG, get_dag, prepare_dag
from pyg_plstm.chem import from_smiles
from pyg_plstm.nn import PLSTMConv
from pyg_plstm.nn.conv import GATE_BIAS, TRANSITION_BIAS
from pyg_plstm.ops import level_schedule, parallel_layout, plstm_reference

from graphs import chain, diamond_stack, family, undirected

SMILES = pd.read_csv(Path(__file__).parent.parent / "data" / "solubility.csv").smiles.tolist()


def _randomize(module: torch.nn.Module, seed: int = 0, std: float = 0.5) -> torch.nn.Module:
    """Random parameters everywhere: at initialisation the gate weights are zero,
    which would hide any mistake in how gates read their inputs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return module


def _molecules(count: int, start: int = 0) -> list:
    """OGB-convention molecules with float features (the conv takes embedded features)."""
    graphs = []
    for s in SMILES[start:start + count]:
        data = from_smiles(s)
        data.x = data.x.double()
        data.edge_attr = data.edge_attr.double()
        graphs.append(data)
    return graphs


@pytest.mark.parametrize("mode", ["P", "D"])
def test_plstm_conv(mode):
    x = torch.randn(6, 8)
    edge_index = undirected([(0, 1), (1, 2), (2, 3), (3, 4), (1, 5)])
    conv = PLSTMConv(8, 32, heads=2, mode=mode)
    assert str(conv) == f"PLSTMConv(8, 32, heads=2, mode='{mode}')"
    out = conv(x, edge_index)
    assert out.size() == (6, 32)
    assert torch.allclose(conv(x, dag=prepare_dag(edge_index, 6)), out, atol=1e-6)

    conv = PLSTMConv(8, 7, heads=3, mode=mode, edge_dim=2, qk_channels=5, v_channels=4)
    out = conv(x, edge_index, torch.randn(edge_index.size(1), 2))
    assert out.size() == (6, 7)
    assert conv.lin_out.in_channels == 3 * 4


def test_gates_follow_the_paper():
    """S_e = s(W[x_u; f_e]), M_e = s(W[x_w; f_e]), D_n = s(W x_n), T from [f_e'; f_e; x_tail(e')]
    (the shared node with transition_node="shared": tests/test_compat.py)."""
    data = _molecules(1, start=300)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, mode="D", edge_dim=3).double())
    for reverse in (False, True):
        g = conv.gates(data.x, data.edge_index, data.edge_attr, dag=get_dag(data), reverse=reverse)
        src, dst = g.dag.edge_index
        prev, nxt = g.dag.line_index
        f = data.edge_attr[g.dag.input_edge]
        w_node = conv.lin_gate.weight.view(4, 2, 9)
        w_edge = conv.lin_edge_gate.weight.view(4, 2, 3)
        b = conv.lin_gate.bias.view(4, 2)

        def gate(chunk, node_feats, edge_terms, w_node=w_node, b=b):
            return node_feats @ w_node[chunk].t() + b[chunk] + edge_terms

        assert torch.allclose(g.source, torch.sigmoid(gate(0, data.x[src], f @ w_edge[0].t())))
        assert torch.allclose(g.mark, torch.sigmoid(gate(1, data.x[dst], f @ w_edge[1].t())))
        assert torch.allclose(g.direct, torch.sigmoid(gate(2, data.x, 0)))
        assert torch.equal(dst[prev], src[nxt])
        raw = gate(3, data.x[src[prev]], f[prev] @ w_edge[2].t() + f[nxt] @ w_edge[3].t())
        assert torch.allclose(g.transition, torch.tanh(raw))


def test_edge_feature_defaults_to_endpoint_mean():
    data = _molecules(1, start=40)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2).double())
    with_mean = PLSTMConv(9, 8, heads=2, edge_dim=9).double()
    with_mean.load_state_dict(conv.state_dict())
    dag = get_dag(data)
    # Edge features are indexed like edge_index: give every input edge the mean of its endpoints.
    mean = 0.5 * (data.x[data.edge_index[0]] + data.x[data.edge_index[1]])
    assert torch.allclose(conv(data.x, dag=dag), with_mean(data.x, data.edge_index, mean, dag=dag))


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("form", ["scan", "parallel"])
def test_forward_is_operator_on_gates(mode, reverse, form):
    data = _molecules(1, start=500)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, mode=mode, edge_dim=3, form=form).double())
    dag = get_dag(data)
    g = conv.gates(data.x, data.edge_index, data.edge_attr, dag=dag, reverse=reverse)
    expected = plstm_reference(*g[:7], g.dag)
    expected = conv.lin_out(conv.norm(expected).flatten(1))
    assert torch.allclose(conv(data.x, data.edge_index, data.edge_attr, dag=dag, reverse=reverse), expected,
                          atol=1e-12)
    line = dag.multitree() if mode == "D" else dag
    assert torch.equal(g.dag.line_index, line.reverse().line_index if reverse else line.line_index)


@pytest.mark.parametrize("index", range(7))
def test_p_mode_transitions_are_contractive(index):
    gen = torch.Generator().manual_seed(index)
    _, edge_index, n = family(gen)[index]
    # Large weights: raw transitions far from the normalisation's small-value regime.
    conv = _randomize(PLSTMConv(4, 8, heads=3, mode="P", alpha=0.1).double(), seed=index, std=5.0)
    x = torch.randn(n, 4, dtype=torch.float64, generator=gen)
    for reverse in (False, True):
        g = conv.gates(x, edge_index, reverse=reverse)
        l1 = torch.zeros(g.dag.num_edges, 3, dtype=torch.float64).index_add_(
            0, g.dag.line_index[0], g.transition.abs())
        assert (l1 < 1).all()
        if g.transition.numel():
            assert l1.max() > 0.9  # alpha = 0.1 leaves room up to S / (0.1 + S)


def test_d_mode_runs_on_the_multitree():
    # Two line-graph paths from edge (0, 1) to edge (4, 5).
    edge_index = undirected([(0, 1), (1, 2), (1, 3), (2, 4), (3, 4), (4, 5)])
    conv = _randomize(PLSTMConv(4, 8, heads=2, mode="D").double())
    g = conv.gates(torch.randn(6, 4, dtype=torch.float64), edge_index)
    dag = prepare_dag(edge_index, 6)
    assert torch.equal(g.dag.line_index, dag.line_index[:, dag.multitree_mask])
    assert g.dag.line_index.size(1) < dag.line_index.size(1)
    assert (g.transition.abs() < 1).all()


@pytest.mark.parametrize("mode", ["P", "D"])
def test_edge_permutation_invariance(mode):
    data = _molecules(1, start=700)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, mode=mode, edge_dim=3).double())
    out = conv(data.x, data.edge_index, data.edge_attr)
    perm = torch.randperm(data.edge_index.size(1), generator=torch.Generator().manual_seed(1))
    out_perm = conv(data.x, data.edge_index[:, perm], data.edge_attr[perm])
    assert torch.allclose(out, out_perm, atol=1e-12)


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("form", ["scan", "parallel"])
def test_batched_equals_per_graph(mode, reverse, form):
    graphs = _molecules(5, start=100)
    conv = _randomize(PLSTMConv(9, 8, heads=2, mode=mode, edge_dim=3, form=form).double())
    batch = Batch.from_data_list(graphs)
    out = conv(batch.x, batch.edge_index, batch.edge_attr, dag=get_dag(batch), reverse=reverse)
    expected = torch.cat([conv(g.x, g.edge_index, g.edge_attr, dag=get_dag(g), reverse=reverse) for g in graphs])
    assert torch.allclose(out, expected, atol=1e-12)


def test_batch_argument_gives_one_block_per_graph():
    """With `batch`, the parallel form pads each graph on its own, not the whole batch as one graph."""
    graphs = _molecules(16, start=100)
    batch = Batch.from_data_list(graphs)
    conv = _randomize(PLSTMConv(9, 24, heads=1, edge_dim=3, form="parallel").double())
    dag = get_dag(batch)
    assert dag.num_graphs == 16 and dag.max_graph_nodes == max(g.num_nodes for g in graphs)
    conv(batch.x, batch.edge_index, batch.edge_attr, dag=dag)
    layout = dag.memo("parallel_layout", lambda: None, nodes_only=True)
    assert layout.num_graphs == 16 and layout.max_nodes == dag.max_graph_nodes
    # The slow path with `batch` builds the same per-graph structure.
    slow = conv(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
    assert torch.allclose(slow, conv(batch.x, batch.edge_index, batch.edge_attr, dag=prepare_dag(
        batch.edge_index, batch.num_nodes, batch=batch.batch)), atol=1e-12)


def test_reverse_flag_equals_reversed_dag():
    data = _molecules(1, start=200)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3).double())
    dag, e, f = get_dag(data), data.edge_index, data.edge_attr
    out = conv(data.x, e, f, dag=dag, reverse=True)
    assert torch.allclose(out, conv(data.x, e, f, dag=dag.reverse()))
    assert not torch.allclose(out, conv(data.x, e, f, dag=dag))


def test_slow_path_matches_prepared_dag_and_caches():
    data = _molecules(1, start=900)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3, cached=True).double())
    # The slow path orients by node index; so does a DAG prepared without an order.
    dag = prepare_dag(data.edge_index, data.num_nodes)
    expected = conv(data.x, data.edge_index, data.edge_attr, dag=dag)
    assert torch.allclose(conv(data.x, data.edge_index, data.edge_attr), expected)
    assert torch.allclose(conv(data.x, data.edge_index, data.edge_attr), expected)  # from the cache
    x, edge_index, edge_attr = data.x[:3], chain(3), data.edge_attr[:4]
    with pytest.raises(ValueError, match="cached"):
        conv(x, edge_index, edge_attr)
    conv.reset_parameters()
    assert conv(x, edge_index, edge_attr).shape == (3, 8)


def test_schedules_are_shared_between_layers(monkeypatch):
    import pyg_plstm.ops.structures as structures

    calls = []
    for name in ("sort_levels", "_layout"):
        original = getattr(structures, name)
        monkeypatch.setattr(structures, name, lambda *a, f=original, **k: calls.append(1) or f(*a, **k))
    data = _molecules(1, start=50)[0]
    dag = get_dag(data)
    for mode in "PDPD":
        for form in ("scan", "parallel"):
            PLSTMConv(9, 8, mode=mode, form=form).double()(data.x, dag=dag)
    # One level sort per view (P, D) and one padding layout shared by all views.
    assert len(calls) == 3
    PLSTMConv(9, 8, mode="P", form="parallel").double()(data.x, dag=dag, reverse=True)
    assert len(calls) == 4
    assert level_schedule(dag) is level_schedule(dag) and parallel_layout(dag) is parallel_layout(dag)


def test_graph_without_edges():
    conv = PLSTMConv(4, 8, heads=2)
    out = conv(torch.randn(3, 4), torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (3, 8) and out.isfinite().all()


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("autocast", [False, True])
def test_deep_chain_is_finite(mode, autocast):
    n = 1000
    dag = prepare_dag(chain(n), n)
    conv = PLSTMConv(16, 16, heads=4, mode=mode)
    with torch.no_grad():  # transitions close to 1: the state survives the whole chain
        conv.lin_gate.bias.view(4, 4)[3].fill_(3.0 if mode == "D" else 100.0)
        conv.lin_gate.bias.view(4, 4)[:3].fill_(0.0)
    x = torch.randn(n, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = conv(x, dag=dag)
        gates = conv.gates(x, dag=dag)
    assert out.dtype == (torch.bfloat16 if autocast else torch.float32)
    # The operator ran in float32 even under autocast.
    assert gates.transition.dtype == torch.float32 and gates.transition.min() > 0.99
    out.float().square().mean().backward()
    assert out.isfinite().all()
    assert x.grad.isfinite().all() and x.grad[0].abs().sum() > 0
    assert all(p.grad.isfinite().all() for p in conv.parameters())


def test_compile():
    # aot_eager traces forward and backward like inductor without its C++ build.
    # The structure work (the layer's DAG view) and the operator (a loop over
    # the DAG's levels) run eagerly, so the graph breaks twice per call, and the
    # compiled code around them is the same for every structure.
    data = _molecules(1, start=600)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3))
    x, edge_attr = data.x.float().requires_grad_(), data.edge_attr.float()
    dag = get_dag(data)
    expected = conv(x, data.edge_index, edge_attr, dag=dag)
    compiled = torch.compile(conv, backend="aot_eager")
    out = compiled(x, data.edge_index, edge_attr, dag=dag)
    assert torch.allclose(out, expected, atol=1e-6)
    grad, = torch.autograd.grad(out.sum(), x)
    expected_grad, = torch.autograd.grad(expected.sum(), x)
    assert torch.allclose(grad, expected_grad, atol=1e-5)


def test_state_dict_round_trip(tmp_path):
    data = _molecules(1, start=10)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, mode="D", edge_dim=3).double())
    torch.save(conv.state_dict(), tmp_path / "conv.pt")
    other = PLSTMConv(9, 8, heads=2, mode="D", edge_dim=3).double()
    other.load_state_dict(torch.load(tmp_path / "conv.pt", weights_only=True))
    dag = get_dag(data)
    assert torch.equal(other(data.x, data.edge_index, data.edge_attr, dag=dag),
                       conv(data.x, data.edge_index, data.edge_attr, dag=dag))


@pytest.mark.parametrize("mode", ["P", "D"])
def test_reset_parameters(mode):
    conv = _randomize(PLSTMConv(8, 8, heads=2, mode=mode))
    conv.reset_parameters()
    bias = conv.lin_gate.bias.view(4, 2)
    assert (bias[:3] == GATE_BIAS).all() and (bias[3] == TRANSITION_BIAS[mode]).all()
    assert (conv.lin_gate.weight == 0).all() and (conv.lin_edge_gate.weight == 0).all()
    assert (conv.norm.weight == 1).all()
    g = conv.gates(torch.randn(3, 8), chain(3))
    assert torch.allclose(g.transition, torch.full_like(g.transition, 3 / 3.5 if mode == "P" else 0.964), atol=1e-3)


def test_inputs_not_mutated():
    data = _molecules(1, start=20)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3).double())
    before = [t.clone() for t in (data.x, data.edge_index, data.edge_attr)]
    conv(data.x, data.edge_index, data.edge_attr)
    assert all(torch.equal(a, b) for a, b in zip(before, (data.x, data.edge_index, data.edge_attr)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(mode="X"), "`mode`"),
    (dict(form="fast"), "`form`"),
    (dict(heads=0), "`heads`"),
    (dict(alpha=0.0), "`alpha`"),
    (dict(edge_dim=-1), "`edge_dim`"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PLSTMConv(**{"in_channels": 4, "out_channels": 8, **kwargs})


def test_input_errors():
    x, edge_index = torch.randn(5, 4), chain(5)
    dag = prepare_dag(edge_index, 5)
    conv = PLSTMConv(4, 8)
    with pytest.raises(ValueError, match="4 features per node|has 3 features"):
        conv(torch.randn(5, 3), edge_index)
    with pytest.raises(ValueError, match="floating point"):
        conv(torch.ones(5, 4, dtype=torch.long), edge_index)
    with pytest.raises(ValueError, match="dtype torch.float64"):
        conv(x.double(), edge_index)
    with pytest.raises(ValueError, match="edge_dim=None"):
        conv(x, edge_index, torch.randn(8, 2))
    with pytest.raises(ValueError, match="6 nodes but the DAG has 5"):
        conv(torch.randn(6, 4), dag=dag)
    with pytest.raises(ValueError, match="`edge_index` or a prepared `dag`"):
        conv(x)
    with pytest.raises(ValueError, match=r"shape \[2, num_edges\]"):
        conv(x, edge_index[0])

    conv = PLSTMConv(4, 8, edge_dim=2)
    with pytest.raises(ValueError, match="edge_dim=2 but got no `edge_attr`"):
        conv(x, edge_index)
    with pytest.raises(ValueError, match="edge_dim=2 but got no `edge_attr`"):
        conv(x, dag=dag)
    with pytest.raises(ValueError, match="`edge_attr` has 7 rows but `edge_index` has 8 columns"):
        conv(x, edge_index, torch.randn(7, 2))
    # Self-loops first: the DAG keeps input edges 4..7, so one row per DAG edge cannot be right.
    looped = torch.cat([torch.arange(4).repeat(2, 1), edge_index], 1)
    with pytest.raises(ValueError, match="has 4 rows but the DAG's edges come from input edges up to 7"):
        conv(x, edge_attr=torch.randn(4, 2), dag=prepare_dag(looped, 5))
    with pytest.raises(ValueError, match=r"shape \[num_edges, 2\], got \[8, 3\]"):
        conv(x, edge_index, torch.randn(8, 3))
    with pytest.raises(ValueError, match="`edge_attr` must be floating point"):
        conv(x, edge_index, torch.ones(8, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="`edge_attr` has dtype torch.float64"):
        conv(x, edge_index, torch.ones(8, 2, dtype=torch.float64))


def test_auto_form_follows_the_measured_rule(monkeypatch):
    from torch_geometric.utils import from_smiles as pyg_from_smiles

    import pyg_plstm.functional as functional
    from pyg_plstm.ops import choose_form

    molecules = Batch.from_data_list(
        [ToDAG()(pyg_from_smiles(s)) for s in ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"] * 10])
    dag = get_dag(molecules)
    assert choose_form(dag, 24, 24) == "parallel"
    n = 1000
    assert choose_form(prepare_dag(torch.stack([torch.arange(n - 1), torch.arange(1, n)]), n), 24, 24) == "scan"
    # The layer runs the form the rule picks (spied on), and that form agrees with the reference.
    used = []
    for name in ("scan", "parallel"):
        impl = functional._IMPLEMENTATIONS[name]
        monkeypatch.setitem(functional._IMPLEMENTATIONS, name, lambda *a, f=impl, n=name: used.append(n) or f(*a))
    conv = _randomize(PLSTMConv(9, 16, heads=2).double())
    x = molecules.x.double()
    auto = conv(x, dag=dag)
    assert used == ["parallel"]
    conv.form = "reference"
    assert torch.allclose(auto, conv(x, dag=dag), atol=1e-10)


def test_directed_input_is_kept_on_the_slow_path():
    # A directed chain 2 -> 1 -> 0 runs against the node order; undirected input would be flipped.
    x = torch.randn(3, 4, dtype=torch.float64)
    directed = torch.tensor([[2, 1], [1, 0]])
    conv = _randomize(PLSTMConv(4, 8, heads=2).double())
    g = conv.gates(x, directed)
    assert g.dag.edge_index.tolist() == [[2, 1], [1, 0]]
    assert torch.allclose(conv(x, directed), conv(x, dag=prepare_dag(directed, 3, directed=True)))
    assert not torch.allclose(conv(x, directed), conv(x, undirected([(0, 1), (1, 2)])))
    with pytest.raises(ValueError, match="cycle through node"):
        conv(x, torch.tensor([[0, 1, 2], [1, 2, 0]]))


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("form", ["scan", "parallel", "reference"])
def test_second_derivatives_are_exact(mode, form):
    # A 4-node diamond: two paths from node 0 to node 3, so D-mode prunes one.
    edge_index = undirected([(0, 1), (0, 2), (1, 3), (2, 3)])
    dag = prepare_dag(edge_index, 4)
    conv = _randomize(PLSTMConv(3, 4, heads=2, mode=mode, form=form).double(), std=0.3)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: conv(x, dag=dag), (x,))


def test_lazy_in_channels():
    data = _molecules(2, start=30)
    batch = Batch.from_data_list(data)
    conv = PLSTMConv(-1, 8, heads=2, edge_dim=3).double()
    assert str(conv) == "PLSTMConv(-1, 8, heads=2, mode='P')"
    out = conv(batch.x, batch.edge_index, batch.edge_attr, dag=get_dag(batch))
    assert out.shape == (batch.num_nodes, 8) and conv.in_channels == 9
    assert conv.lin_qkv.weight.shape[1] == 9 and (conv.lin_gate.bias.view(4, 2)[:3] == GATE_BIAS).all()
    # A lazy layer loads materialised weights without re-initialising them.
    other = PLSTMConv(-1, 8, heads=2, edge_dim=3).double()
    other.load_state_dict(conv.state_dict())
    assert torch.equal(other(batch.x, batch.edge_index, batch.edge_attr, dag=get_dag(batch)), out)


def test_in_pyg_sequential():
    from torch_geometric.nn import Sequential

    data = _molecules(3, start=60)
    batch = Batch.from_data_list(data)
    model = Sequential("x, edge_index, edge_attr, batch", [
        (PLSTMConv(9, 16, heads=2, edge_dim=3), "x, edge_index, edge_attr, batch -> x"),
        torch.nn.ReLU(),
        (PLSTMConv(16, 4, heads=2, mode="D"), "x, edge_index, batch=batch -> x"),
    ]).double()
    out = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)
    assert out.shape == (batch.num_nodes, 4)
    per_graph = torch.cat([model(g.x, g.edge_index, g.edge_attr, torch.zeros(g.num_nodes, dtype=torch.long))
                           for g in data])
    assert torch.allclose(out, per_graph, atol=1e-10)


class _ExplainedModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3))
        self.conv2 = _randomize(PLSTMConv(8, 8, heads=2, mode="D"), seed=1)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x, edge_index, edge_attr):
        h = self.conv1(x, edge_index, edge_attr).relu()
        return self.head(self.conv2(h, edge_index, reverse=True)).sum(0, keepdim=True)


def test_explainer_edge_and_node_masks():
    from torch_geometric.explain import Explainer, GNNExplainer

    data = _molecules(1, start=400)[0]
    x, edge_attr = data.x.float(), data.edge_attr.float()
    model = _ExplainedModel()
    explainer = Explainer(model, GNNExplainer(epochs=3), explanation_type="model", node_mask_type="attributes",
                          edge_mask_type="object",
                          model_config=dict(mode="regression", task_level="graph", return_type="raw"))
    explanation = explainer(x, data.edge_index, edge_attr=edge_attr)
    assert explanation.edge_mask.shape == (data.edge_index.size(1),)
    assert explanation.node_mask.shape == x.shape
    # The mask acts through the DAG edges: each bond's kept direction is attributed.
    kept = get_dag(data).input_edge
    assert (explanation.edge_mask[kept] != 0).all()
    assert not model.conv1.explain and model.conv1._edge_mask is None  # the explainer cleaned up


def test_explainer_mask_scales_source_and_mark_gates():
    from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

    data = _molecules(1, start=410)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3).double())
    plain = conv.gates(data.x, data.edge_index, data.edge_attr)
    mask = torch.randn(data.edge_index.size(1), dtype=torch.float64)
    set_masks(conv, mask, data.edge_index, apply_sigmoid=True)
    masked = conv.gates(data.x, data.edge_index, data.edge_attr)
    clear_masks(conv)
    factor = mask.sigmoid()[plain.dag.input_edge].view(-1, 1)
    assert torch.allclose(masked.source, plain.source * factor)
    assert torch.allclose(masked.mark, plain.mark * factor)
    assert torch.equal(masked.transition, plain.transition)
    set_masks(conv, torch.randn(3), data.edge_index)
    with pytest.raises(ValueError, match="edge mask has 3 entries"):
        conv(data.x, data.edge_index, data.edge_attr)
    clear_masks(conv)


def test_to_hetero_relations_within_one_node_type():
    from torch_geometric.data import HeteroData
    from torch_geometric.nn import to_hetero

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = PLSTMConv(-1, 8, heads=2)

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    hetero = HeteroData()
    hetero["atom"].x = torch.randn(5, 4)
    hetero["atom", "bond", "atom"].edge_index = undirected([(0, 1), (1, 2), (2, 3)])
    hetero["atom", "ring", "atom"].edge_index = undirected([(0, 4), (3, 4)])
    model = to_hetero(Net(), hetero.metadata(), aggr="sum")
    out = model(hetero.x_dict, hetero.edge_index_dict)
    assert out["atom"].shape == (5, 8)
    bond, ring = model.conv["atom__bond__atom"], model.conv["atom__ring__atom"]
    x, ei = hetero["atom"].x, hetero.edge_index_dict
    expected = bond(x, ei["atom", "bond", "atom"]) + ring(x, ei["atom", "ring", "atom"])
    assert torch.allclose(out["atom"], expected)

    bipartite = HeteroData()
    bipartite["atom"].x, bipartite["mol"].x = torch.randn(5, 4), torch.randn(1, 4)
    bipartite["atom", "in", "mol"].edge_index = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 0, 0, 0]])
    bipartite["mol", "has", "atom"].edge_index = torch.tensor([[0, 0, 0, 0, 0], [0, 1, 2, 3, 4]])
    model = to_hetero(Net(), bipartite.metadata(), aggr="sum")
    with pytest.raises(ValueError, match="relation between two node types"):
        model(bipartite.x_dict, bipartite.edge_index_dict)


def test_reverse_pruning_own_prunes_the_reversed_dag():
    from pyg_plstm.dag import repruned

    edge_index, n = diamond_stack(3)  # prunes differently in the two directions (tests/test_dag.py)
    dag = prepare_dag(edge_index, n)
    x = torch.randn(n, 4, dtype=torch.float64)
    own = _randomize(PLSTMConv(4, 8, heads=2, mode="D", reverse_pruning="own").double())
    forward = PLSTMConv(4, 8, heads=2, mode="D").double()
    forward.load_state_dict(own.state_dict())
    g = own.gates(x, dag=dag, reverse=True)
    assert g.dag is repruned(dag.reverse()).multitree()
    assert forward.gates(x, dag=dag, reverse=True).dag is dag.view("D", reverse=True)
    assert not torch.equal(g.dag.line_index, dag.view("D", reverse=True).line_index)
    expected = own.lin_out(own.norm(plstm_reference(*g[:7], g.dag)).flatten(1))
    assert torch.allclose(own(x, dag=dag, reverse=True), expected, atol=1e-12)
    # Forward layers are unaffected by the option.
    assert torch.equal(own(x, dag=dag), forward(x, dag=dag))
    with pytest.raises(ValueError, match="`reverse_pruning` must be one of"):
        PLSTMConv(4, 8, reverse_pruning="random")


def test_a_dag_of_another_graph_with_as_many_nodes_is_refused():
    first = _molecules(1, start=40)[0]
    # Same atoms in another order: as many nodes and edges, other bonds.
    second = first.clone()
    perm = torch.arange(first.num_nodes).roll(1)
    second.edge_index = perm[first.edge_index]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3).double())
    x, edge_attr = first.x, first.edge_attr
    conv(x, first.edge_index, edge_attr, dag=get_dag(first))
    conv(x, first.edge_index.clone(), edge_attr, dag=get_dag(first))  # equal content passes
    with pytest.raises(ValueError, match="not the edge list the DAG was prepared from"):
        conv(x, first.edge_index, edge_attr, dag=get_dag(second))
    with pytest.raises(ValueError, match="not the edge list the DAG was prepared from"):
        conv(x, second.edge_index, edge_attr, dag=prepare_dag(first.edge_index, first.num_nodes))
    batch = Batch.from_data_list([first, first])
    other = Batch.from_data_list([second, first])
    with pytest.raises(ValueError, match="not the edge list the DAG was prepared from"):
        conv(batch.x, batch.edge_index, batch.edge_attr, dag=get_dag(other))
    edges = first.num_edges
    with pytest.raises(ValueError, match=f"has {edges} edges but the DAG was prepared from one with {2 * edges}"):
        conv(batch.x, first.edge_index, edge_attr, dag=get_dag(batch))
    dag = get_dag(first)
    first.edge_index[:, [0, 1]] = first.edge_index[:, [1, 0]]
    with pytest.raises(ValueError, match="modified in place"):
        conv(x, first.edge_index, edge_attr, dag=dag)


def test_inputs_on_another_device_than_x_are_refused_naming_both():
    # The meta device stands in for a GPU: a DAG, edge list, batch or edge features left on the CPU
    # next to node features moved elsewhere would fail deep inside torch (or, for indices, silently work).
    x, edge_index, edge_attr = torch.randn(5, 4), chain(5), torch.randn(8, 2)
    dag = prepare_dag(edge_index, 5)
    conv = PLSTMConv(4, 8, edge_dim=2)
    meta = PLSTMConv(4, 8, edge_dim=2).to("meta")
    on_meta = x.to("meta")
    with pytest.raises(ValueError, match="`x` is on meta but the layer's parameters are on cpu"):
        conv(on_meta, edge_index, edge_attr)
    with pytest.raises(ValueError, match="`dag` is on cpu but `x` is on meta"):
        meta(on_meta, edge_attr=edge_attr.to("meta"), dag=dag)
    with pytest.raises(ValueError, match="`edge_index` is on cpu but `x` is on meta"):
        meta(on_meta, edge_index, edge_attr.to("meta"))
    with pytest.raises(ValueError, match="`edge_attr` is on meta but `x` is on cpu"):
        conv(x, edge_index, edge_attr.to("meta"), dag=dag)
    with pytest.raises(ValueError, match="`batch` is on meta but `x` is on cpu"):
        conv(x, edge_index, edge_attr, torch.zeros(5, dtype=torch.long, device="meta"), dag=dag)
    with pytest.raises(ValueError, match="`edge_index` is on meta but `x` is on cpu"):
        conv(x, edge_index.to("meta"), edge_attr, dag=dag)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_edge_index_beside_a_dag_must_hold_integers(dtype):
    x, edge_index = torch.randn(5, 4), chain(5)
    conv = PLSTMConv(4, 8)
    hand_built = prepare_dag(edge_index, 5)
    hand_built = DAG(hand_built.edge_index, hand_built.line_index, 5)  # records no input to compare with
    for dag in (prepare_dag(edge_index, 5), hand_built):
        with pytest.raises(ValueError, match=f"`edge_index` must hold integer node indices, got dtype {dtype}"):
            conv(x, edge_index.to(dtype), dag=dag)
