"""Matrix transitions (dense ``[L, H, K, K]`` and Householder products) in the
pLSTM operator: values and every gradient against the reference form (float64),
exact first and second derivatives, the structured fast path against dense
matrices built here, form selection, validation."""
from __future__ import annotations

import functools

import pytest
import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_plstm.dag import DAG, prepare_dag
from pyg_plstm.functional import Householder, plstm_dag
from pyg_plstm.models import PLSTMNet
from pyg_plstm.nn import PLSTMBlock, PLSTMConv
from pyg_plstm.ops import edge_states, plstm_reference, plstm_scan

from graphs import (
    batched_dag,
    binary_tree,
    chain,
    family,
    family_dag,
    molecules,
    operands_for,
    random_dag,
    tailed_diamond,
)

TOL = 1e-10
GATE_NAMES = ["query", "key", "value", "source", "mark", "direct"]

VIEWS = {
    "full": lambda d: d,
    "multitree": lambda d: d.multitree(),
    "reversed": lambda d: d.reverse(),
}


# Operands -----------------------------------------------------------------

def random_householder(lines: int, heads: int, steps: int, k: int, generator: torch.Generator,
                       dtype: torch.dtype = torch.float64) -> Householder:
    """Unit directions, beta in [0, 2] (negative eigenvalues included), scale in [-1, 1]."""
    direction = torch.randn(lines, heads, steps, k, dtype=dtype, generator=generator)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    beta = 2 * torch.rand(lines, heads, steps, dtype=dtype, generator=generator)
    scale = 2 * torch.rand(lines, heads, dtype=dtype, generator=generator) - 1
    return Householder(scale.requires_grad_(), direction.requires_grad_(), beta.requires_grad_())


def materialise(transition: Householder) -> Tensor:
    """``a R_n ... R_1`` as dense matrices, built reflection by reflection (independently of the library)."""
    scale, direction, beta = transition
    k = direction.size(-1)
    eye = torch.eye(k, dtype=direction.dtype)
    matrix = eye.expand(*scale.shape, k, k)
    for j in range(direction.size(2)):
        w = direction[:, :, j]
        reflection = eye - beta[:, :, j, None, None] * w.unsqueeze(-1) * w.unsqueeze(-2)
        matrix = reflection @ matrix
    return scale[..., None, None] * matrix


def random_dense(lines: int, heads: int, k: int, generator: torch.Generator) -> Tensor:
    return (torch.randn(lines, heads, k, k, dtype=torch.float64, generator=generator) / k).requires_grad_()


def gates_for(dag: DAG, generator: torch.Generator, **kwargs) -> list[Tensor]:
    """query, key, value, source, mark, direct (the scalar transition of operands_for dropped)."""
    ops = operands_for(dag, generator=generator, **kwargs)
    return ops[:4] + ops[5:]


def call(operator, gates: list[Tensor], transition, dag: DAG) -> Tensor:
    query, key, value, source, mark, direct = gates
    return operator(query, key, value, source, transition, mark, direct, dag)


def gradients(out: Tensor, inputs: list[Tensor], weight: Tensor) -> list[Tensor]:
    grads = torch.autograd.grad((out * weight).sum(), inputs, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads)]


# Cases --------------------------------------------------------------------

def _mixed_batch() -> DAG:
    gen = torch.Generator().manual_seed(5)
    graphs = [Data(edge_index=ei, num_nodes=n) for _, ei, n in family(gen)]
    graphs += molecules(2) + [Data(edge_index=random_dag(10, 0.35, gen), num_nodes=10)]
    return batched_dag(graphs)


CASES = {f"{name}/{view}": (functools.partial(family_dag, i), view)
         for i, (name, _, _) in enumerate(family(torch.Generator()))
         for view in VIEWS}
CASES.update({f"mixed batch/{view}": (_mixed_batch, view) for view in VIEWS})


def _case(name: str) -> tuple[DAG, torch.Generator]:
    build, view = CASES[name]
    return VIEWS[view](build()), torch.Generator().manual_seed(list(CASES).index(name))


# Dense matrix transitions -------------------------------------------------

@pytest.mark.parametrize("form", ["scan", "auto", "ops-scan"])
@pytest.mark.parametrize("name", CASES)
def test_dense_transitions_match_the_reference(name, form):
    dag, gen = _case(name)
    gates = gates_for(dag, gen)
    transition = random_dense(dag.num_line_edges, 2, 3, gen)
    inputs = gates + [transition]
    ref = call(plstm_reference, gates, transition, dag)
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=gen)
    ref_grads = gradients(ref, inputs, weight)
    operator = plstm_scan if form == "ops-scan" else functools.partial(plstm_dag, form=form)
    out = call(operator, gates, transition, dag)
    assert torch.allclose(out, ref, atol=TOL, rtol=0)
    for name_, a, b in zip(GATE_NAMES + ["transition"], gradients(out, inputs, weight), ref_grads):
        assert torch.allclose(a, b, atol=TOL, rtol=0), name_
    if dag.num_line_edges:
        assert ref_grads[-1].abs().sum() > 0


def test_dense_transitions_mix_the_key_dimension():
    """A permutation matrix on a chain moves the key's entries: the reference and
    the scan both read ``q^T P k`` two edges downstream, not ``q^T k``."""
    dag = prepare_dag(chain(3), 3)
    heads, k = 1, 3
    query = torch.zeros(3, heads, k, dtype=torch.float64)
    key = torch.zeros(3, heads, k, dtype=torch.float64)
    key[0, 0, 0] = 1.0
    query[2, 0, 1] = 1.0  # reads coordinate 1, where the permutation puts coordinate 0
    value = torch.ones(3, heads, 1, dtype=torch.float64)
    source = torch.ones(dag.num_edges, heads, dtype=torch.float64)
    mark = torch.ones(dag.num_edges, heads, dtype=torch.float64)
    direct = torch.zeros(3, heads, dtype=torch.float64)
    perm = torch.eye(k, dtype=torch.float64)[[1, 2, 0]].t()  # e_0 -> e_1
    transition = perm.expand(dag.num_line_edges, heads, k, k)
    for form in ("reference", "scan"):
        out = plstm_dag(query, key, value, source, transition, mark, direct, dag, form=form)
        assert float(out[2, 0, 0]) == 1.0
        scalar = plstm_dag(query, key, value, source, torch.ones(dag.num_line_edges, heads, dtype=torch.float64),
                           mark, direct, dag, form=form)
        assert float(scalar[2, 0, 0]) == 0.0


# Householder transitions --------------------------------------------------

def test_matrices_match_the_product_of_reflections():
    gen = torch.Generator().manual_seed(0)
    transition = random_householder(6, 2, 3, 4, gen)
    dense = materialise(transition)
    assert torch.allclose(transition.matrices(), dense, atol=1e-14, rtol=0)
    assert torch.allclose(transition.transpose().matrices(), dense.transpose(-1, -2), atol=1e-14, rtol=0)
    assert transition.steps == 3
    states = torch.randn(6, 2, 4, 5, dtype=torch.float64, generator=gen)
    assert torch.allclose(transition.apply(states), dense @ states, atol=1e-13, rtol=0)
    # Spectral norm at most |a| (beta in [0, 2], unit directions); beta = 2 is orthogonal.
    norms = torch.linalg.matrix_norm(dense.detach(), ord=2)
    assert bool((norms <= transition.scale.detach().abs() + 1e-12).all())
    reflection = Householder(torch.ones(1, 1, dtype=torch.float64), transition.direction[:1, :1, :1].detach(),
                             torch.full((1, 1, 1), 2.0, dtype=torch.float64))
    matrix = reflection.matrices()[0, 0]
    assert torch.allclose(matrix @ matrix, torch.eye(4, dtype=torch.float64), atol=1e-14)
    assert torch.allclose(torch.linalg.eigvalsh(matrix), torch.tensor([-1.0, 1, 1, 1], dtype=torch.float64))


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_hand_written_gradient_matches_autograd_on_dense_matrices(steps):
    gen = torch.Generator().manual_seed(steps)
    transition = random_householder(7, 3, steps, 5, gen)
    states = torch.randn(7, 3, 5, 4, dtype=torch.float64, generator=gen)
    adjoint = torch.randn(7, 3, 5, 4, dtype=torch.float64, generator=gen)
    expected = torch.autograd.grad((adjoint * (materialise(transition) @ states)).sum(), list(transition))
    for name, a, b in zip(Householder._fields, transition.grad(adjoint, states), expected):
        assert b.abs().sum() > 0
        assert torch.allclose(a, b, atol=1e-12, rtol=0), name


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("form", ["scan", "auto", "reference"])
@pytest.mark.parametrize("name", CASES)
def test_householder_matches_dense_reference(name, form, steps):
    """The fast path (reflections applied to the states) against the reference on
    matrices materialised here; gradients reach the reflections through them."""
    dag, gen = _case(name)
    gates = gates_for(dag, gen)
    transition = random_householder(dag.num_line_edges, 2, steps, 3, gen)
    inputs = gates + list(transition)
    ref = call(plstm_reference, gates, materialise(transition), dag)
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=gen)
    ref_grads = gradients(ref, inputs, weight)
    out = call(functools.partial(plstm_dag, form=form), gates, transition, dag)
    assert torch.allclose(out, ref, atol=TOL, rtol=0)
    for name_, a, b in zip(GATE_NAMES + list(Householder._fields), gradients(out, inputs, weight), ref_grads):
        assert torch.allclose(a, b, atol=TOL, rtol=0), name_
    if dag.num_line_edges:
        assert all(g.abs().sum() > 0 for g in ref_grads[-3:])


def test_only_some_reflection_parts_require_grad():
    dag = _mixed_batch()
    gen = torch.Generator().manual_seed(2)
    gates = [t.detach() for t in gates_for(dag, gen)]
    scale, direction, beta = (t.detach() for t in random_householder(dag.num_line_edges, 2, 2, 3, gen))
    direction.requires_grad_()
    out = call(plstm_scan, gates, Householder(scale, direction, beta), dag)
    ref = call(plstm_reference, gates, materialise(Householder(scale, direction, beta)), dag)
    (grad,) = torch.autograd.grad(out.square().sum(), direction)
    (expected,) = torch.autograd.grad(ref.square().sum(), direction)
    assert expected.abs().sum() > 0
    assert torch.allclose(grad, expected, atol=TOL, rtol=0)


def test_negative_eigenvalues_flip_the_state_along_a_chain():
    """K = 1: a reflection with beta is the number 1 - beta, so beta in {0, 2}
    multiplies the state by +-1 per edge and the read-out is the parity of the flips."""
    n = 9
    dag = prepare_dag(chain(n), n)
    gen = torch.Generator().manual_seed(1)
    flips = torch.randint(0, 2, (dag.num_line_edges,), generator=gen)
    ones = torch.ones
    transition = Householder(ones(dag.num_line_edges, 1, dtype=torch.float64),
                             ones(dag.num_line_edges, 1, 1, 1, dtype=torch.float64),
                             (2.0 * flips).to(torch.float64).view(-1, 1, 1))
    source = torch.zeros(dag.num_edges, 1, dtype=torch.float64)
    source[0] = 1.0  # only the first edge of the chain writes a state
    states = edge_states(ones(n, 1, 1, dtype=torch.float64), ones(n, 1, 1, dtype=torch.float64), source,
                         transition, dag)
    # Edge e+1 follows edge e on the chain; its state carries the sign of every flip before it.
    order = torch.argsort(dag.edge_index[0])
    signs = states[order, 0, 0, 0]
    line_order = torch.argsort(dag.edge_index[0, dag.line_index[1]])
    expected = torch.cat([torch.ones(1), torch.cumprod(1 - 2.0 * flips[line_order], 0)]).to(torch.float64)
    assert torch.equal(signs, expected)
    assert bool((signs < 0).any())


# Exact first and second derivatives ---------------------------------------

def _diamond() -> DAG:
    return prepare_dag(torch.tensor([[0, 0, 1, 2], [1, 2, 3, 3]]), 4)


def _grad_batch() -> DAG:
    ei, n = tailed_diamond()
    return batched_dag([Data(edge_index=ei, num_nodes=n), Data(edge_index=chain(3), num_nodes=3),
                        Data(edge_index=binary_tree(4), num_nodes=4)])


GRAD_GRAPHS = {"diamond": _diamond, "mixed batch": _grad_batch}


@pytest.mark.parametrize("kind", ["dense", "householder"])
@pytest.mark.parametrize("form", ["scan", "reference"])
@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("graph", GRAD_GRAPHS)
def test_gradcheck_and_gradgradcheck(kind, form, mode, graph):
    dag = GRAD_GRAPHS[graph]().view(mode)
    gen = torch.Generator().manual_seed(len(graph) + len(mode))
    gates = gates_for(dag, gen, heads=1, k=2, v=2)
    parts = ([random_dense(dag.num_line_edges, 1, 2, gen)] if kind == "dense"
             else list(random_householder(dag.num_line_edges, 1, 2, 2, gen)))

    def operator(*inputs: Tensor) -> Tensor:
        transition = inputs[6] if kind == "dense" else Householder(*inputs[6:])
        return call(functools.partial(plstm_dag, form=form), list(inputs[:6]), transition, dag)

    inputs = gates + parts
    assert torch.autograd.gradcheck(operator, inputs)
    assert torch.autograd.gradgradcheck(operator, inputs)


# Forms and validation -----------------------------------------------------

def _valid() -> tuple[list[Tensor], DAG, torch.Generator]:
    dag = prepare_dag(random_dag(5, 0.6, torch.Generator().manual_seed(0)), 5)
    gen = torch.Generator().manual_seed(1)
    return [t.detach() for t in gates_for(dag, gen)], dag, gen


@pytest.mark.parametrize("form", ["parallel", "sparse"])
@pytest.mark.parametrize("kind", ["dense", "householder"])
def test_scalar_only_forms_refuse_matrix_transitions(form, kind):
    gates, dag, gen = _valid()
    transition = (random_dense(dag.num_line_edges, 2, 3, gen) if kind == "dense"
                  else random_householder(dag.num_line_edges, 2, 2, 3, gen))
    with pytest.raises(ValueError, match=f"form='{form}' takes scalar transitions"):
        call(functools.partial(plstm_dag, form=form), gates, transition, dag)
    with pytest.raises(ValueError, match=f"form='{form}' takes scalar transitions"):
        call(functools.partial(plstm_dag, form=form, validate=False), gates, transition, dag)


@pytest.mark.parametrize("kind", ["dense", "householder"])
def test_auto_picks_the_scan_for_matrix_transitions(kind, monkeypatch):
    """Even where the form rule would pick a scalar-only form, matrix transitions run the scan."""
    monkeypatch.setattr("pyg_plstm.functional.choose_form", lambda *args: "parallel")
    dag = batched_dag(molecules(4))
    gen = torch.Generator().manual_seed(3)
    gates = gates_for(dag, gen)
    transition = (random_dense(dag.num_line_edges, 2, 3, gen) if kind == "dense"
                  else random_householder(dag.num_line_edges, 2, 2, 3, gen))
    out = call(functools.partial(plstm_dag, form="auto"), gates, transition, dag)
    assert type(out.grad_fn.next_functions[0][0]).__name__ == "_LevelScanBackward"
    # The patched rule is in effect: a scalar transition takes the form it names.
    scalar = plstm_dag(*gates[:4], torch.rand(dag.num_line_edges, 2, dtype=torch.float64), *gates[4:], dag,
                       form="auto")
    assert type(scalar.grad_fn.next_functions[0][0]).__name__ != "_LevelScanBackward"



def _replace(transition: Householder, **parts) -> Householder:
    return transition._replace(**parts)


@pytest.mark.parametrize("bad,match", [
    (lambda t, g: t[0], r"`transition` must have shape \[\d+, 2\] \(one row per line edge\) or \[\d+, 2, 3, 3\]"),
    (lambda t, g: t[..., :2], r"`transition` must have shape"),
    (lambda t, g: (g.scale, g.direction, g.beta), r"`transition` must be a torch.Tensor \(\[L, H\] or \[L, H, K, K\]\) "
                                                  "or a pyg_plstm.ops.Householder, got tuple"),
    (lambda t, g: _replace(g, beta=g.beta.float()), "`transition.beta` has dtype torch.float32"),
    (lambda t, g: _replace(g, direction=g.direction.tolist()), "`transition.direction` must be a torch.Tensor"),
    (lambda t, g: _replace(g, scale=g.scale[:-1]), "`transition.scale` must have shape"),
    (lambda t, g: _replace(g, direction=g.direction[..., :2]),
     r"`transition.direction` must have shape \[\d+, 2, n_h, 3\]"),
    (lambda t, g: _replace(g, beta=g.beta[..., :1]), r"`transition.beta` must have shape \[\d+, 2, 2\]"),
    (lambda t, g: _replace(g, direction=g.direction[:, :, :0], beta=g.beta[:, :, :0]), "holds no reflections"),
])
def test_transition_errors_name_the_part(bad, match):
    gates, dag, gen = _valid()
    dense = random_dense(dag.num_line_edges, 2, 3, gen).detach()
    householder = Householder(*(t.detach() for t in random_householder(dag.num_line_edges, 2, 2, 3, gen)))
    with pytest.raises(ValueError, match=match):
        call(plstm_dag, gates, bad(dense, householder), dag)


@pytest.mark.parametrize("form", ["scan", "reference"])
def test_inputs_not_mutated(form):
    gates, dag, gen = _valid()
    gates = [t.requires_grad_() for t in gates]
    transition = random_householder(dag.num_line_edges, 2, 2, 3, gen)
    copies = [t.detach().clone() for t in gates + list(transition)]
    out = call(functools.partial(plstm_dag, form=form), gates, transition, dag)
    torch.autograd.grad(out.square().sum(), gates + list(transition), create_graph=True)
    for a, b in zip(gates + list(transition), copies):
        assert torch.equal(a, b)


@pytest.mark.parametrize("view", VIEWS)
def test_edge_states_read_out_gives_the_operator(view):
    gen = torch.Generator().manual_seed(9)
    dag = VIEWS[view](prepare_dag(random_dag(9, 0.45, gen), 9))
    query, key, value, source, mark, direct = (t.detach() for t in gates_for(dag, gen))
    transition = Householder(*(t.detach() for t in random_householder(dag.num_line_edges, 2, 2, 3, gen)))
    states = edge_states(key, value, source, transition, dag)
    dst = dag.edge_index[1]
    read = mark[..., None] * torch.einsum("ehk,ehkv->ehv", query[dst], states)
    through_edges = torch.zeros_like(value).index_add(0, dst, read)
    direct_term = direct[..., None] * (query * key).sum(-1, keepdim=True) * value
    expected = plstm_reference(query, key, value, source, materialise(transition), mark, direct, dag) - direct_term
    assert through_edges.abs().max() > 1e-3
    assert torch.allclose(through_edges, expected, atol=TOL, rtol=0)


# The layer: PLSTMConv(transition="householder") ---------------------------

def _layer_dag() -> DAG:
    gen = torch.Generator().manual_seed(11)
    return batched_dag([Data(edge_index=random_dag(8, 0.4, gen), num_nodes=8),
                        Data(edge_index=binary_tree(6), num_nodes=6)])


def _householder_conv(mode: str, edge_dim=None, **kwargs) -> PLSTMConv:
    conv = PLSTMConv(6, 8, heads=2, mode=mode, edge_dim=edge_dim, transition="householder", **kwargs).double()
    with torch.no_grad():  # open the gates so that states travel and every parameter matters
        for lin in (conv.lin_gate, conv.lin_edge_gate):
            lin.weight.normal_(std=0.5)
        conv.lin_gate.bias.normal_(std=0.5)
        conv.lin_reflection.bias.normal_(std=0.5)
    return conv


def _expected_reflections(conv: PLSTMConv, x: Tensor, edge_attr, view: DAG) -> tuple[Tensor, Tensor]:
    """Directions and betas from the layer's weights, written out."""
    (src, dst), (prev, nxt) = view.edge_index, view.line_index
    size = conv.heads * conv.householder_steps * (conv.qk_channels + 1)
    f = 0.5 * (x[src] + x[dst]) if edge_attr is None else edge_attr[view.input_edge]
    w_edge = conv.lin_edge_reflection.weight
    raw = (f[prev] @ w_edge[:size].t() + f[nxt] @ w_edge[size:].t()
           + x[src[prev]] @ conv.lin_reflection.weight.t() + conv.lin_reflection.bias)
    raw = raw.view(-1, conv.heads, conv.householder_steps, conv.qk_channels + 1)
    r = raw[..., :-1]
    direction = r / torch.sqrt((r * r).sum(-1, keepdim=True) + 1e-6)
    beta = torch.sigmoid(raw[..., -1]) * (2 if conv.negative_eigenvalues else 1)
    return direction, beta


@pytest.mark.parametrize("negative", [True, False])
@pytest.mark.parametrize("edge_dim", [None, 3])
@pytest.mark.parametrize("mode", ["P", "D"])
def test_layer_gates_built_by_hand(mode, edge_dim, negative):
    torch.manual_seed(0)
    dag = _layer_dag()
    conv = _householder_conv(mode, edge_dim, householder_steps=2, negative_eigenvalues=negative)
    x = torch.randn(dag.num_nodes, 6, dtype=torch.float64)
    edge_attr = None if edge_dim is None else torch.randn(dag.num_edges, 3, dtype=torch.float64)
    gates = conv.gates(x, edge_attr=edge_attr, dag=dag)
    assert isinstance(gates.transition, Householder)
    direction, beta = _expected_reflections(conv, x, edge_attr, gates.dag)
    assert torch.allclose(gates.transition.direction, direction, atol=1e-12, rtol=0)
    assert torch.allclose(gates.transition.beta, beta, atol=1e-12, rtol=0)
    assert bool((beta > 1).any()) == negative  # beta in (0, 2) or (0, 1)
    # The scalar part is exactly the scalar layer's transition.
    scalar = PLSTMConv(6, 8, heads=2, mode=mode, edge_dim=edge_dim).double()
    scalar.load_state_dict({k: v for k, v in conv.state_dict().items() if "reflection" not in k})
    expected = scalar.gates(x, edge_attr=edge_attr, dag=dag)
    assert torch.equal(gates.transition.scale, expected.transition)
    for a, b in zip(gates[:7], expected[:7]):
        if isinstance(a, Tensor):
            assert torch.equal(a, b)


@pytest.mark.parametrize("mode", ["P", "D"])
def test_layer_matches_the_reference_on_dense_matrices(mode):
    torch.manual_seed(1)
    dag = _layer_dag()
    conv = _householder_conv(mode, householder_steps=3)
    x = torch.randn(dag.num_nodes, 6, dtype=torch.float64, requires_grad=True)
    out = conv(x, dag=dag)
    gates = conv.gates(x, dag=dag)
    query, key, value, source, transition, mark, direct, view = gates
    states = plstm_reference(query, key, value, source, materialise(transition), mark, direct, view)
    expected = conv.lin_out(conv.norm(states).flatten(1))
    assert torch.allclose(out, expected, atol=1e-12, rtol=0)
    weight = torch.randn_like(out)
    params = [x] + list(conv.parameters())
    names = ["x"] + [n for n, _ in conv.named_parameters()]
    for name, a, b in zip(names, gradients(out, params, weight), gradients(expected, params, weight)):
        assert torch.allclose(a, b, atol=1e-10, rtol=0), name
        assert a.abs().sum() > 0, name


def test_negative_eigenvalues_option_sets_the_spectrum():
    """One reflection per transition is symmetric: its eigenvalues lie in [-1, 1],
    negative for some line edges only when negative eigenvalues are allowed."""
    torch.manual_seed(2)
    dag = _layer_dag()
    x = torch.randn(dag.num_nodes, 6, dtype=torch.float64)
    for negative in (True, False):
        conv = _householder_conv("P", householder_steps=1, negative_eigenvalues=negative)
        reflections = Householder(*conv.gates(x, dag=dag).transition._replace(
            scale=torch.ones(dag.num_line_edges, 2, dtype=torch.float64)))
        eigenvalues = torch.linalg.eigvalsh(reflections.matrices().detach())
        assert bool((eigenvalues >= -1 - 1e-12).all() and (eigenvalues <= 1 + 1e-12).all())
        assert bool((eigenvalues < 0).any()) == negative


def test_block_and_net_pass_the_options_on():
    block = PLSTMBlock(8, heads=2, pattern="PD", transition="householder", householder_steps=2,
                       negative_eigenvalues=False)
    assert all(c.transition == "householder" and c.householder_steps == 2 and not c.negative_eigenvalues
               for c in block.convs)
    assert "householder_steps=2" in repr(block.convs[0])
    dag = _layer_dag()
    x = torch.randn(dag.num_nodes, 8)
    block(x, dag=dag).square().sum().backward()
    assert block.convs[1].lin_edge_reflection.weight.grad.abs().sum() > 0
    net = PLSTMNet(5, hidden_channels=8, out_channels=2, heads=2, num_blocks=1, transition="householder",
                   householder_steps=4)
    assert {c.householder_steps for c in net.modules() if isinstance(c, PLSTMConv)} == {4}
    scalar = PLSTMNet(5, hidden_channels=8, out_channels=2, heads=2, num_blocks=1)
    assert not any("reflection" in name for name, _ in scalar.named_parameters())
    assert {c.transition for c in scalar.modules() if isinstance(c, PLSTMConv)} == {"scalar"}


@pytest.mark.parametrize("kwargs,match", [
    (dict(transition="matrix"), "`transition` must be one of"),
    (dict(transition="householder", householder_steps=0), "householder_steps"),
    (dict(transition="householder", negative_eigenvalues=1), "`negative_eigenvalues` must be a bool"),
    (dict(transition="householder", form="parallel"), "transition='householder' runs in the forms"),
    (dict(transition="householder", form="sparse"), "transition='householder' runs in the forms"),
])
def test_layer_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PLSTMConv(6, 8, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["dense", "householder"])
def test_cuda_matches_reference_on_cpu(kind):
    gen = torch.Generator().manual_seed(4)
    dag = batched_dag(molecules(6) + [Data(edge_index=random_dag(40, 0.2, gen), num_nodes=40)])
    gates = gates_for(dag, gen)
    parts = ([random_dense(dag.num_line_edges, 2, 3, gen)] if kind == "dense"
             else list(random_householder(dag.num_line_edges, 2, 3, 3, gen)))
    as_transition = (lambda p: p[0]) if kind == "dense" else (lambda p: Householder(*p))
    dense = parts[0] if kind == "dense" else materialise(as_transition(parts))
    ref = call(plstm_reference, gates, dense, dag)
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=gen)
    ref_grads = gradients(ref, gates + parts, weight)
    cuda_dag = DAG(dag.edge_index.cuda(), dag.line_index.cuda(), dag.num_nodes, batch=dag.batch.cuda(),
                   num_graphs=dag.num_graphs)
    cuda_inputs = [t.detach().cuda().requires_grad_() for t in gates + parts]
    out = call(functools.partial(plstm_dag, form="auto"), cuda_inputs[:6], as_transition(cuda_inputs[6:]), cuda_dag)
    assert torch.allclose(out.cpu(), ref, atol=TOL, rtol=0)
    for a, b in zip(gradients(out, cuda_inputs, weight.cuda()), ref_grads):
        assert torch.allclose(a.cpu(), b, atol=TOL, rtol=0)
