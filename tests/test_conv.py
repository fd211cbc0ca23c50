import pandas as pd
import pytest
import torch
from torch_geometric.data import Batch

from graphs import chain, family, undirected
from pyg_plstm import get_dag, prepare_dag
from pyg_plstm.chem import from_smiles
from pyg_plstm.nn import DAGPlan, PLSTMConv
from pyg_plstm.ops import plstm_dag_reference
from pyg_plstm.nn.conv import GATE_BIAS, TRANSITION_BIAS

SMILES = pd.read_csv("data/solubility.csv").smiles.tolist()


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
        data.dag_edge_attr = data.dag_edge_attr.double()
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
    assert conv.lin_out.in_features == 3 * 4


def test_gates_follow_the_paper():
    """S_e = s(W[x_u; f_e]), M_e = s(W[x_w; f_e]), D_n = s(W x_n), T from [f_e'; f_e; x_shared]."""
    data = _molecules(1, start=300)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, mode="D", edge_dim=3).double())
    for reverse in (False, True):
        g = conv.gates(data.x, edge_attr=data.dag_edge_attr, dag=get_dag(data), reverse=reverse)
        src, dst = g.dag.edge_index
        prev, nxt = g.dag.line_index
        f = data.dag_edge_attr
        w_node = conv.lin_gate.weight.view(4, 2, 9)
        w_edge = conv.lin_edge_gate.weight.view(4, 2, 3)
        b = conv.lin_gate.bias.view(4, 2)

        def gate(chunk, node_feats, edge_terms):
            return node_feats @ w_node[chunk].t() + b[chunk] + edge_terms

        assert torch.allclose(g.source, torch.sigmoid(gate(0, data.x[src], f @ w_edge[0].t())))
        assert torch.allclose(g.mark, torch.sigmoid(gate(1, data.x[dst], f @ w_edge[1].t())))
        assert torch.allclose(g.direct, torch.sigmoid(gate(2, data.x, 0)))
        assert torch.equal(dst[prev], src[nxt])
        raw = gate(3, data.x[dst[prev]], f[prev] @ w_edge[2].t() + f[nxt] @ w_edge[3].t())
        assert torch.allclose(g.transition, torch.tanh(raw))


def test_edge_feature_defaults_to_endpoint_mean():
    data = _molecules(1, start=40)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2).double())
    with_mean = PLSTMConv(9, 8, heads=2, edge_dim=9).double()
    with_mean.load_state_dict(conv.state_dict())
    dag = get_dag(data)
    mean = 0.5 * (data.x[dag.edge_index[0]] + data.x[dag.edge_index[1]])
    assert torch.allclose(conv(data.x, dag=dag), with_mean(data.x, edge_attr=mean, dag=dag))


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("form", ["scan", "parallel"])
def test_forward_is_operator_on_gates(mode, reverse, form):
    data = _molecules(1, start=500)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, mode=mode, edge_dim=3, form=form).double())
    dag = get_dag(data)
    g = conv.gates(data.x, dag=dag, reverse=reverse)
    expected = plstm_dag_reference(*g[:7], g.dag.edge_index, g.dag.line_index)
    expected = conv.lin_out(conv.norm(expected).flatten(1))
    assert torch.allclose(conv(data.x, dag=dag, reverse=reverse), expected, atol=1e-12)
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
    out = conv(batch.x, dag=DAGPlan(get_dag(batch), batch.batch), reverse=reverse)
    expected = torch.cat([conv(g.x, dag=get_dag(g), reverse=reverse) for g in graphs])
    assert torch.allclose(out, expected, atol=1e-12)


def test_reverse_flag_equals_reversed_dag():
    data = _molecules(1, start=200)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3).double())
    dag = get_dag(data)
    out = conv(data.x, dag=dag, reverse=True)
    assert torch.allclose(out, conv(data.x, dag=dag.reverse()))
    assert not torch.allclose(out, conv(data.x, dag=dag))


def test_slow_path_matches_prepared_dag_and_caches():
    data = _molecules(1, start=900)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3, cached=True).double())
    # The slow path orients by node index; so does a DAG prepared without an order.
    dag = prepare_dag(data.edge_index, data.num_nodes, edge_attr=data.edge_attr)
    expected = conv(data.x, edge_attr=dag.edge_attr, dag=dag)
    assert torch.allclose(conv(data.x, data.edge_index, data.edge_attr), expected)
    assert torch.allclose(conv(data.x, data.edge_index, data.edge_attr), expected)  # from the cache
    x, edge_index, edge_attr = data.x[:3], chain(3), data.edge_attr[:4]
    with pytest.raises(ValueError, match="cached"):
        conv(x, edge_index, edge_attr)
    conv.reset_parameters()
    assert conv(x, edge_index, edge_attr).shape == (3, 8)


def test_plan_is_shared_between_layers(monkeypatch):
    import pyg_plstm.nn.plan as plan_module

    calls = []
    for name in ("schedule_for", "parallel_schedule"):
        original = getattr(plan_module, name)
        monkeypatch.setattr(plan_module, name, lambda *a, f=original, **k: calls.append(1) or f(*a, **k))
    data = _molecules(1, start=50)[0]
    plan = DAGPlan(get_dag(data))
    for mode in "PDPD":
        for form in ("scan", "parallel"):
            PLSTMConv(9, 8, mode=mode, form=form).double()(data.x, dag=plan)
    assert len(calls) == 4
    PLSTMConv(9, 8, mode="P").double()(data.x, dag=plan, reverse=True)
    assert len(calls) == 5


def test_graph_without_edges():
    conv = PLSTMConv(4, 8, heads=2)
    out = conv(torch.randn(3, 4), torch.zeros(2, 0, dtype=torch.long))
    assert out.shape == (3, 8) and out.isfinite().all()


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("autocast", [False, True])
def test_deep_chain_is_finite(mode, autocast):
    n = 1000
    plan = DAGPlan(prepare_dag(chain(n), n))
    conv = PLSTMConv(16, 16, heads=4, mode=mode)
    with torch.no_grad():  # transitions close to 1: the state survives the whole chain
        conv.lin_gate.bias.view(4, 4)[3].fill_(3.0 if mode == "D" else 100.0)
        conv.lin_gate.bias.view(4, 4)[:3].fill_(0.0)
    x = torch.randn(n, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = conv(x, dag=plan)
        gates = conv.gates(x, dag=plan)
    assert out.dtype == (torch.bfloat16 if autocast else torch.float32)
    # The operator ran in float32 even under autocast.
    assert gates.transition.dtype == torch.float32 and gates.transition.min() > 0.99
    out.float().square().mean().backward()
    assert out.isfinite().all()
    assert x.grad.isfinite().all() and x.grad[0].abs().sum() > 0
    assert all(p.grad.isfinite().all() for p in conv.parameters())


def test_compile():
    # aot_eager traces forward and backward like inductor without its C++ build
    # (~30 s on CPU); inductor agrees to 1e-7 in float32 when run by hand.
    # The level schedule is host work with data-dependent shapes: building it
    # inside the compiled region breaks the graph, so the plan is prepared first.
    data = _molecules(1, start=600)[0]
    conv = _randomize(PLSTMConv(9, 8, heads=2, edge_dim=3))
    x, edge_attr = data.x.float().requires_grad_(), data.dag_edge_attr.float()
    plan = DAGPlan(get_dag(data))
    expected = conv(x, edge_attr=edge_attr, dag=plan)
    compiled = torch.compile(conv, backend="aot_eager", fullgraph=True)
    out = compiled(x, edge_attr=edge_attr, dag=plan)
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
    assert torch.equal(other(data.x, dag=dag), conv(data.x, dag=dag))


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
    with pytest.raises(ValueError, match=r"\[8, 2\] \(one per column of `edge_index`\), got \[7, 2\]"):
        conv(x, edge_index, torch.randn(7, 2))
    with pytest.raises(ValueError, match=r"\[4, 2\] \(one per DAG edge\), got \[8, 2\]"):
        conv(x, edge_attr=torch.randn(8, 2), dag=dag)
    with pytest.raises(ValueError, match=r"\[8, 2\].*got \[8, 3\]"):
        conv(x, edge_index, torch.randn(8, 3))
    with pytest.raises(ValueError, match="`edge_attr` must be floating point"):
        conv(x, edge_index, torch.ones(8, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="`edge_attr` has dtype torch.float64"):
        conv(x, edge_index, torch.ones(8, 2, dtype=torch.float64))


def test_auto_form_follows_the_measured_rule():
    from torch_geometric.data import Batch
    from torch_geometric.utils import from_smiles as pyg_from_smiles

    from pyg_plstm.dag import ToDAG, get_dag, prepare_dag
    from pyg_plstm.nn.plan import DAGPlan

    molecules = Batch.from_data_list([ToDAG()(pyg_from_smiles(s)) for s in ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"] * 10])
    plan = DAGPlan(get_dag(molecules), molecules.batch)
    assert plan.form("auto", 24, 24) == "parallel"
    assert plan.form("scan", 24, 24) == "scan"
    n = 1000
    chain = prepare_dag(torch.stack([torch.arange(n - 1), torch.arange(1, n)]), n)
    assert DAGPlan(chain).form("auto", 24, 24) == "scan"
    with pytest.raises(ValueError, match="resolve 'auto'"):
        plan.schedule("P", False, "auto")
    # The layer uses the form the plan resolves to, and both forms agree.
    conv = PLSTMConv(9, 16, heads=2).double()
    x = molecules.x.double()
    auto = conv(x, dag=DAGPlan(get_dag(molecules), molecules.batch))
    conv.form = "scan"
    scan = conv(x, dag=DAGPlan(get_dag(molecules), molecules.batch))
    assert torch.allclose(auto, scan, atol=1e-10)
