"""The authors' variant: every option against a reference, their edge layer reproduced from the fixture
(tests/fixtures/authors_edge_layer, numbers of ml-jku/plstm's code), and PLSTMNet.from_config("authors")."""
from functools import cache
from pathlib import Path

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from torch.nn import LayerNorm, RMSNorm
from torch_geometric.data import Data

from pyg_plstm import get_dag, prepare_dag
from pyg_plstm.compat import AUTHORS_WEIGHTS, authors_edge_layer
from pyg_plstm.dag import multitree_mask
from pyg_plstm.dag.prepare import pruned_in_order
from pyg_plstm.functional import FORMS, plstm_dag
from pyg_plstm.models import CONFIGS, PLSTMNet, make_model
from pyg_plstm.nn import PLSTMBlock, PLSTMConv
from pyg_plstm.nn.conv import AUTHORS_CONV_OPTIONS, GATE_BIAS, TRANSITION_BIAS
from pyg_plstm.ops import edge_states, plstm_reference

from graphs import is_multitree, molecules, prepared_batch, random_dag, undirected

FIXTURES = Path(__file__).parent / "fixtures" / "authors_edge_layer"
TOL = 1e-10


def fixture(mode: str) -> dict:
    return torch.load(FIXTURES / f"authors_edge_layer_{mode}.pt", weights_only=True)


def randomized(module: torch.nn.Module, seed: int = 0, std: float = 0.5) -> torch.nn.Module:
    """Random parameters everywhere (gate weights start at zero, which would hide how gates read inputs)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return module


def ring_molecule() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, edge_index, edge_attr (float64) of a fused-ring molecule with side chains: nodes with several
    in- and out-edges, so the two normalisations and the two transition nodes all differ."""
    from pyg_plstm.chem import from_smiles

    data = from_smiles("CC(=O)Nc1ccc2c(c1)C(=O)c1ccccc1-2")
    return data.x.double(), data.edge_index, data.edge_attr.double()


def uneven_diamond() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x, edge_index, edge_attr (float64) of two paths of different lengths from 1 to 5, with edges before
    and after: deepest-first pruning keeps the long path into 5, shallowest-first the short one."""
    edge_index = undirected([(0, 1), (1, 2), (2, 3), (3, 5), (1, 4), (4, 5), (5, 6), (4, 7), (6, 7)])
    gen = torch.Generator().manual_seed(3)
    attr = torch.randn(edge_index.size(1) // 2, 3, generator=gen, dtype=torch.float64)
    return torch.randn(8, 9, generator=gen, dtype=torch.float64), edge_index, torch.cat([attr, attr])


def pairs(dag_edge_index: torch.Tensor, line_index: torch.Tensor) -> set:
    """Line edges as ((tail, head), (tail, head)) of the DAG edges they join."""
    edges = [tuple(e) for e in dag_edge_index.t().tolist()]
    return {(edges[a], edges[b]) for a, b in line_index.t().tolist()}


# ----------------------------------------------------------------------------- the fixture

@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("form", [f for f in FORMS if f != "auto"])
def test_authors_edge_layer_reproduces_the_fixture(mode, form):
    fx = fixture(mode)
    layer = authors_edge_layer(fx["weights"], fx["config"], form=form)
    assert layer.lin_qkv.weight.dtype == torch.float64
    for g in fx["graphs"]:
        out = layer(g["x"], g["edge_index"], g["edge_attr"]).detach()
        assert float((out - g["output"]).abs().max()) < TOL


@pytest.mark.parametrize("mode", ["P", "D"])
def test_authors_edge_layer_intermediates_match(mode):
    fx = fixture(mode)
    layer = authors_edge_layer(fx["weights"], fx["config"])
    for g in fx["graphs"]:
        ref = g["intermediates"]
        gates = layer.gates(g["x"], g["edge_index"], g["edge_attr"])
        their_edge = {tuple(e): i for i, e in enumerate(g["dag_edge_index"].t().tolist())}
        perm = torch.tensor([their_edge[tuple(e)] for e in gates.dag.edge_index.t().tolist()])
        assert sorted(perm.tolist()) == list(range(len(their_edge)))  # the same DAG
        their_line = {tuple(line): j for j, line in enumerate(g["line_index"].t().tolist())}
        ours = [(int(perm[a]), int(perm[b])) for a, b in gates.dag.line_index.t().tolist()]
        assert sorted(ours) == sorted(their_line)  # the same line graph (D: after the same pruning)
        line_perm = torch.tensor([their_line[line] for line in ours])
        if mode == "D":
            full = prepare_dag(g["edge_index"], g["x"].size(0))
            assert pairs(full.edge_index, full.line_index) == pairs(g["dag_edge_index"], g["line_index_unpruned"])
        y = plstm_dag(*gates[:7], gates.dag)
        checks = {"q": (gates.query, ref["q"]), "k": (gates.key, ref["k"]), "v": (gates.value, ref["v"]),
                  "S": (gates.source, ref["S"][perm]), "M": (gates.mark, ref["M"][perm]),
                  "D": (gates.direct, ref["D"]), "T": (gates.transition, ref["T"][line_perm]),
                  "y_raw": (y, ref["y_raw"]), "y_normed": (layer.norm(y).flatten(1), ref["y_normed"])}
        for name, (value, expected) in checks.items():
            assert float((value.detach() - expected).abs().max()) < TOL, name


def test_fixture_tells_the_pruning_orders_apart():
    """Our default pruning differs from the authors' on the fixture, so the fixture checks the option."""
    differs = 0
    for g in fixture("D")["graphs"]:
        dag = prepare_dag(g["edge_index"], g["x"].size(0))
        kept = {order: pairs(dag.edge_index, pruned_in_order(dag, order).multitree().line_index)
                for order in ("deepest", "shallowest")}
        assert kept["shallowest"] == pairs(g["dag_edge_index"], g["line_index"])
        differs += kept["deepest"] != kept["shallowest"]
    assert differs >= 1


def test_authors_edge_layer_refuses_bad_input_and_copies_the_weights():
    fx = fixture("P")
    weights, config = fx["weights"], fx["config"]
    with pytest.raises(ValueError, match="W_T"):
        authors_edge_layer({k: v for k, v in weights.items() if k != "W_T"}, config)
    with pytest.raises(ValueError, match="W_S"):
        authors_edge_layer({**weights, "W_S": weights["W_S"][:, :-1]}, config)
    with pytest.raises(ValueError, match="rms_eps"):
        authors_edge_layer(weights, {k: v for k, v in config.items() if k != "rms_eps"})
    assert set(AUTHORS_WEIGHTS) <= set(weights)
    before = {k: v.clone() for k, v in weights.items()}
    layer = authors_edge_layer(weights, config)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(1.0)
    assert all(torch.equal(weights[k], before[k]) for k in weights)


# ----------------------------------------------------------------------------- options of PLSTMConv

@pytest.mark.parametrize("p_normalize", ["out", "in"])
@pytest.mark.parametrize("transition_node", ["shared", "tail"])
@pytest.mark.parametrize("reverse", [False, True])
def test_transition_options_follow_their_definition(p_normalize, transition_node, reverse):
    """T~ = W [f_e'; f_e; x_node] + b, node = shared node b or tail a of e' = (a -> b); P-mode divides by
    alpha + sum |T~| over the line edges out of e' ("out") or into e ("in")."""
    x, edge_index, edge_attr = ring_molecule()
    alpha, heads = 0.3, 2
    conv = randomized(PLSTMConv(9, 8, heads=heads, mode="P", edge_dim=3, alpha=alpha, p_normalize=p_normalize,
                                transition_node=transition_node).double())
    g = conv.gates(x, edge_index, edge_attr, reverse=reverse)
    src, dst = g.dag.edge_index.tolist()
    f = edge_attr[g.dag.input_edge]
    w_node, b = conv.lin_gate.weight.view(4, heads, 9)[3], conv.lin_gate.bias.view(4, heads)[3]
    w_edge = conv.lin_edge_gate.weight.view(4, heads, 3)
    lines = g.dag.line_index.t().tolist()
    raw = []
    for prev, nxt in lines:
        node = src[prev] if transition_node == "tail" else dst[prev]
        raw.append(w_edge[2] @ f[prev] + w_edge[3] @ f[nxt] + w_node @ x[node] + b)
    group = [nxt if p_normalize == "in" else prev for prev, nxt in lines]
    total: dict[int, torch.Tensor] = {}
    for j, key in enumerate(group):
        total[key] = total.get(key, 0) + raw[j].abs()
    expected = torch.stack([raw[j] / (alpha + total[key]) for j, key in enumerate(group)])
    assert torch.allclose(g.transition, expected, atol=1e-12)
    for key in total:  # the bound each normalisation guarantees
        assert bool((sum(g.transition[j].abs() for j, k in enumerate(group) if k == key) < 1).all())


@pytest.mark.parametrize("transition_node", ["shared", "tail"])
def test_d_mode_transition_node(transition_node):
    x, edge_index, edge_attr = ring_molecule()
    conv = randomized(PLSTMConv(9, 8, heads=2, mode="D", edge_dim=3, transition_node=transition_node).double())
    g = conv.gates(x, edge_index, edge_attr)
    src, dst = g.dag.edge_index
    prev, nxt = g.dag.line_index
    f = edge_attr[g.dag.input_edge]
    node = src[prev] if transition_node == "tail" else dst[prev]
    w_node, b = conv.lin_gate.weight.view(4, 2, 9)[3], conv.lin_gate.bias.view(4, 2)[3]
    w_edge = conv.lin_edge_gate.weight.view(4, 2, 3)
    raw = f[prev] @ w_edge[2].t() + f[nxt] @ w_edge[3].t() + x[node] @ w_node.t() + b
    assert torch.allclose(g.transition, torch.tanh(raw), atol=1e-12)
    assert bool((src[prev] != dst[prev]).all())  # the two nodes really are different nodes


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("reverse", [False, True])
def test_forward_with_authors_options_is_the_operator_on_its_gates(mode, reverse):
    x, edge_index, edge_attr = uneven_diamond()
    conv = randomized(PLSTMConv(9, 8, heads=2, mode=mode, edge_dim=3, **AUTHORS_CONV_OPTIONS).double())
    dag = prepare_dag(edge_index, x.size(0))
    g = conv.gates(x, edge_index, edge_attr, dag=dag, reverse=reverse)
    expected = conv.lin_out(conv.norm(plstm_reference(*g[:7], g.dag)).flatten(1))
    assert torch.allclose(conv(x, edge_index, edge_attr, dag=dag, reverse=reverse), expected, atol=1e-12)
    if mode == "D":
        pruned = pruned_in_order(dag, "shallowest").multitree()
        assert torch.equal(g.dag.line_index, (pruned.reverse() if reverse else pruned).line_index)
        assert not torch.equal(pruned.line_index, dag.multitree().line_index)  # the option changes the pruning


@pytest.mark.parametrize("option", ["p_normalize", "transition_node", "prune_order", "init"])
def test_options_refuse_unknown_values(option):
    with pytest.raises(ValueError, match=option):
        PLSTMConv(4, 4, **{option: "sideways"})


def test_authors_init():
    torch.manual_seed(0)
    heads = 256
    conv = PLSTMConv(16, 16, heads=heads, qkv_bias=True, init="authors")
    bias = conv.lin_gate.bias.detach().view(4, heads)
    assert bool((bias[:3] == GATE_BIAS).all())
    assert 8.5 < float(bias[3].std()) < 11.5 and abs(float(bias[3].mean())) < 2.0  # N(0, 10^2) per head
    for lin in (conv.lin_qkv, conv.lin_out):  # PyTorch's default U(+-1/sqrt(fan-in))
        bound = lin.in_channels ** -0.5
        magnitude = lin.bias.detach().abs()
        assert bool((magnitude <= bound).all()) and float(magnitude.max()) > 0.8 * bound
    default = PLSTMConv(16, 16, heads=4, mode="D", qkv_bias=True)
    assert bool((default.lin_qkv.bias == 0).all()) and bool((default.lin_out.bias == 0).all())
    assert bool((default.lin_gate.bias.view(4, 4)[3] == TRANSITION_BIAS["D"]).all())
    assert PLSTMConv(16, 16).lin_qkv.bias is None


# ----------------------------------------------------------------------------- the authors' pruning

def authors_pruning(edges: list[tuple[int, int]], num_nodes: int) -> set:
    """The authors' code through networkx itself (README sec. 5 of the fixture): DAG edges inserted in
    lexicographic order, networkx's line graph and topological sort, greedy disjoint-ancestry selection."""
    dag = nx.DiGraph()
    dag.add_nodes_from(range(num_nodes))
    dag.add_edges_from(sorted(edges))
    line = nx.line_graph(dag)
    order = list(nx.topological_sort(line))
    position = {e: i for i, e in enumerate(order)}
    ancestors: dict = {e: set() for e in order}
    kept = set()
    for child in order:
        for parent in sorted(line.predecessors(child), key=position.get):
            if ancestors[parent] & ancestors[child]:
                continue
            kept.add((parent, child))
            ancestors[child] |= ancestors[parent] | {parent}
    return kept


def random_graph(gen: torch.Generator) -> tuple[list[tuple[int, int]], int]:
    """A random tree on 4-22 nodes plus a few extra edges, edges as (low, high)."""
    n = int(torch.randint(4, 23, (1,), generator=gen))
    edges = {(int(torch.randint(0, v, (1,), generator=gen)), v) for v in range(1, n)}
    for _ in range(int(torch.randint(1, 6, (1,), generator=gen))):
        u, v = sorted(torch.randperm(n, generator=gen)[:2].tolist())
        edges.add((u, v))
    return sorted(edges), n


def test_shallowest_pruning_is_the_authors_and_a_multitree():
    gen = torch.Generator().manual_seed(0)
    differs = 0
    for _ in range(60):
        edges, n = random_graph(gen)
        edge_index = undirected(edges)
        # The input column order does not matter, only the structure and the node order.
        edge_index = edge_index[:, torch.randperm(edge_index.size(1), generator=gen)]
        dag = prepare_dag(edge_index, n)
        shallowest = pruned_in_order(dag, "shallowest").multitree()
        assert pairs(dag.edge_index, shallowest.line_index) == authors_pruning(edges, n)
        assert is_multitree(dag.num_edges, shallowest.line_index.t().tolist())
        differs += not torch.equal(shallowest.line_index, dag.multitree().line_index)
        # With a node ranking: the authors' code on the graph relabelled by it.
        rank = torch.randperm(n, generator=gen)
        ranked = prepare_dag(edge_index, n, order=rank)
        mask = multitree_mask(ranked.edge_index, ranked.line_index, n, order=rank, prune_order="shallowest")
        relabelled = rank[ranked.edge_index]
        assert pairs(relabelled, ranked.line_index[:, mask]) == authors_pruning(relabelled.t().tolist(), n)
    assert differs > 0


def test_shallowest_pruning_of_a_batch_is_that_of_its_graphs():
    graphs = molecules(6) + [Data(edge_index=random_dag(12, 0.4, torch.Generator().manual_seed(1)), num_nodes=12)]
    batched = pruned_in_order(get_dag(prepared_batch(graphs)), "shallowest")
    single = [pruned_in_order(prepare_dag(g.edge_index, g.num_nodes), "shallowest") for g in graphs]
    assert torch.equal(batched.multitree_mask, torch.cat([dag.multitree_mask for dag in single]))
    for dag in single:
        assert is_multitree(dag.num_edges, dag.multitree().line_index.t().tolist())


def test_pruned_in_order_is_cached_and_the_default_is_the_prepared_dag():
    edge_index, n = undirected([(0, 1), (1, 2), (1, 3), (2, 4), (3, 4), (4, 5), (0, 5)]), 6
    dag = prepare_dag(edge_index, n)
    assert pruned_in_order(dag, "deepest") is dag
    alternative = pruned_in_order(dag, "shallowest")
    assert pruned_in_order(dag, "shallowest") is alternative
    assert torch.equal(alternative.edge_index, dag.edge_index) and torch.equal(alternative.line_index,
                                                                                dag.line_index)
    assert torch.equal(alternative.input_edge, dag.input_edge)
    with pytest.raises(ValueError, match="prune_order"):
        pruned_in_order(dag, "random")


# ----------------------------------------------------------------------------- stability of both normalisations

@cache  # a DAG is immutable; its schedules are shared by the tests
def layered_dag(depth: int, width: int):
    """``depth / 2`` stacked diamonds of ``width``: top -> ``width`` middle nodes -> bottom, repeated."""
    edges, top = [], 0
    for _ in range(depth // 2):
        mids = range(top + 1, top + 1 + width)
        bottom = top + 1 + width
        edges += [(top, m) for m in mids] + [(m, bottom) for m in mids]
        top = bottom
    return prepare_dag(torch.tensor(edges).t(), top + 1, directed=True)


@cache
def chain_dag(depth: int):
    return prepare_dag(torch.stack([torch.arange(depth), torch.arange(1, depth + 1)]), depth + 1, directed=True)


def state_norms(conv: PLSTMConv, dag, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cell-state norms ``[E, H]``, the largest source term b = max S ||k|| ||v|` ``[H]`` and the edge levels
    ``[E, 1]`` of the layer's DAG view."""
    g = conv.gates(x, dag=dag)
    with torch.autocast("cpu", enabled=False):
        norms = edge_states(g.key, g.value, g.source, g.transition, g.dag).flatten(2).norm(dim=-1)
    src = g.dag.edge_index[0]
    inflow = (g.source * g.key.norm(dim=-1)[src] * g.value.norm(dim=-1)[src]).max(0).values
    return norms, inflow, g.dag.edge_level[:, None]


def state_bound(conv: PLSTMConv, dag, inflow: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    r"""The bound of the layer's normalisation:

    * "in": sum over the line edges into e of |T| < 1, so ||C_e|| <= max ||C_e'|| + b <= (level(e) + 1) b;
    * "out": sum over the line edges out of e' of |T| < 1, so the path weights from one edge to another sum
      to < 1 and ||C_e|| <= (number of ancestor edges + 1) b <= (level(e) + 1) W b, W = edges per level.
    """
    width = 1 if conv.p_normalize == "in" else int(torch.bincount(dag.edge_level).max())
    return (level + 1) * width * inflow


def open_gates(conv: PLSTMConv) -> PLSTMConv:
    """Gates far more open than at initialisation so that states actually travel."""
    with torch.no_grad():
        for lin in (conv.lin_gate, conv.lin_edge_gate):
            lin.weight.normal_(std=3.0)
        conv.lin_gate.bias.normal_(std=3.0)
    return conv


@pytest.mark.parametrize("p_normalize", ["out", "in"])
@pytest.mark.parametrize("shape", ["chain", "diamonds of width 8"])
@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
def test_state_norm_is_at_most_linear_in_the_path_length(p_normalize, shape, autocast):
    torch.manual_seed(0)
    dag = chain_dag(10_000) if shape == "chain" else layered_dag(10_000, width=8)
    conv = open_gates(PLSTMConv(16, 16, heads=2, mode="P", p_normalize=p_normalize, transition_node="tail"))
    x = torch.randn(dag.num_nodes, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        norms, inflow, level = state_norms(conv, dag, x)
    bound = state_bound(conv, dag, inflow, level)
    assert bool(torch.isfinite(norms).all())
    assert bool((norms <= bound * (1 + 1e-4) + 1e-6).all()), float((norms / bound).max())
    deep = dag.edge_level >= 5_000 - 2 if shape == "diamonds of width 8" else dag.edge_level >= 9_000
    assert float(norms[deep].max()) > float(norms[dag.edge_level == 0].max())  # states travel: not vacuous
    if p_normalize == "in" and autocast:
        x.requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = conv(x, dag=dag)
        out.float().square().mean().backward()
        assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(x.grad).all())


def test_in_normalisation_bounds_states_however_wide_the_fan_in():
    """Eight aligned states flowing into one edge: "out" lets each pass almost whole (their edges have one
    successor), "in" splits the weight among them, so only "in" keeps the width-free bound."""
    edge_index = torch.tensor([[i for i in range(8)] + [8], [8] * 8 + [9]])
    dag = prepare_dag(edge_index, 10, directed=True)
    ratio = {}
    for p_normalize in ("out", "in"):
        conv = PLSTMConv(4, 4, heads=1, mode="P", p_normalize=p_normalize)
        with torch.no_grad():
            bias = conv.lin_gate.bias.view(4, 1)
            bias[0] = 10.0  # source ~ 1
            bias[3] = 50.0  # raw transition 50: T = 50 / 50.5 alone, 50 / 400.5 among eight
        norms, inflow, level = state_norms(conv, dag, torch.ones(10, 4))
        assert bool((norms <= state_bound(conv, dag, inflow, level) * (1 + 1e-6)).all())
        ratio[p_normalize] = float((norms / ((level + 1) * inflow)).max())
    assert ratio["in"] <= 1 + 1e-6
    assert ratio["out"] > 4  # about (8 * 0.99 + 1) / 2


# ----------------------------------------------------------------------------- block and model

def test_authors_block_is_two_residual_sub_blocks():
    x, edge_index, _ = ring_molecule()
    x = x[:, :8].contiguous()
    dag = prepare_dag(edge_index, x.size(0))
    block = randomized(PLSTMBlock(8, heads=2, norm="rms", mlp_per_layer=True).double())
    assert [type(m) for m in block.conv_norms] == [RMSNorm, RMSNorm] and len(block.mlps) == 2

    def rms(h, norm):
        return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight

    h = x
    for conv, norm, mlp_norm, mlp in zip(block.convs, block.conv_norms, block.mlp_norms, block.mlps):
        h = h + conv(rms(h, norm), dag=dag)
        h = h + mlp[3](F.gelu(mlp[0](rms(h, mlp_norm))))
    assert torch.allclose(block(x, dag=dag), h, atol=1e-12)


def test_default_block_is_unchanged():
    """LayerNorm, the pLSTM layers, then one MLP."""
    x, edge_index, _ = ring_molecule()
    x = x[:, :8].contiguous()
    dag = prepare_dag(edge_index, x.size(0))
    block = randomized(PLSTMBlock(8, heads=2).double())
    assert [type(m) for m in block.conv_norms] == [LayerNorm, LayerNorm] and len(block.mlps) == 1
    h = x
    for conv, norm in zip(block.convs, block.conv_norms):
        h = h + conv(F.layer_norm(h, (8,), norm.weight, norm.bias), dag=dag)
    mlp_norm, mlp = block.mlp_norms[0], block.mlps[0]
    h = h + mlp[3](F.gelu(mlp[0](F.layer_norm(h, (8,), mlp_norm.weight, mlp_norm.bias))))
    assert torch.allclose(block(x, dag=dag), h, atol=1e-12)
    with pytest.raises(ValueError, match="norm"):
        PLSTMBlock(8, norm="group")


def test_input_edge_features_are_computed_once_from_the_encoded_input():
    batch = prepared_batch(molecules(3))
    batch.x = torch.randn(batch.num_nodes, 5, generator=torch.Generator().manual_seed(0))
    model = randomized(PLSTMNet(5, hidden_channels=8, heads=2, edge_features="input"), std=0.3)
    assert all(conv.edge_dim == 8 for block in model.blocks for conv in block.convs)
    dag = get_dag(batch)
    h = model.node_encoder(batch.x) + model.pos_encoder(dag.edge_index, dag.num_nodes)
    edge_attr = 0.5 * (h[batch.edge_index[0]] + h[batch.edge_index[1]])
    for i, block in enumerate(model.blocks):
        h = block(h, batch.edge_index, edge_attr, dag=dag, reverse=i % 2 == 1)
    assert torch.allclose(model.node_embeddings(batch), model.norm(h), atol=1e-5)
    assert all(conv.edge_dim is None for block in PLSTMNet(5, hidden_channels=8).blocks for conv in block.convs)
    with pytest.raises(ValueError, match="edge_features"):
        PLSTMNet(5, hidden_channels=8, edge_features="input", edge_dim=3)


def test_authors_config():
    model = PLSTMNet.from_config("authors", 5, 2)
    assert model.hidden_channels == 96 and len(model.blocks) == 2 and model.edge_features == "input"
    for block in model.blocks:
        assert block.pattern == "PD" and len(block.mlps) == 2 and isinstance(block.mlp_norms[0], RMSNorm)
        assert block.mlps[0][0].out_features == 384
        for conv in block.convs:
            assert (conv.p_normalize, conv.transition_node, conv.prune_order) == ("in", "tail", "shallowest")
            assert conv.lin_qkv.bias is not None and conv.heads == 4 and conv.edge_dim == 96
    # make_model (what the trainer builds) takes the same configuration.
    arguments = {"num_layers" if k == "num_blocks" else k: v for k, v in CONFIGS["authors"].items()}
    twin = make_model("plstm", 5, 2, **arguments)
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}

    batch = prepared_batch(molecules(4))
    batch.x = torch.randn(batch.num_nodes, 5, generator=torch.Generator().manual_seed(0))
    out = model(batch)
    assert out.shape == (4, 2) and bool(torch.isfinite(out).all())
    out.square().sum().backward()
    assert float(model.blocks[0].convs[0].lin_qkv.bias.grad.abs().max()) > 0
