"""Every form of the pLSTM operator against the reference form (values and all
seven gradients, float64), exact first and second derivatives, and the
validation every form shares. Form-specific behaviour (the parallel form's
memory limit, the form-choice rule) is in test_cost.py, the schedules in
test_structures.py."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor
from torch_geometric.data import Data

from pyg_plstm.dag import DAG, prepare_dag
from pyg_plstm.functional import plstm_dag, prepare_structure
from pyg_plstm.ops import FORMS, choose_form, edge_states, plstm_parallel, plstm_reference, plstm_scan, plstm_sparse

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
    undirected,
)

GRAD_NAMES = ["query", "key", "value", "source", "transition", "mark", "direct"]
TOL = 1e-10

# Each fast form, through the dispatcher and as its ops function. "auto" has
# no ops function of its own: test_auto_runs_the_form_choose_form_picks checks
# that it runs the form choose_form names.
OPS_FUNCTIONS = {"scan": plstm_scan, "parallel": plstm_parallel, "sparse": plstm_sparse}
FORM_CALLS = {
    **{f"dag-{form}": functools.partial(plstm_dag, form=form) for form in [*OPS_FUNCTIONS, "auto"]},
    **{f"ops-{form}": function for form, function in OPS_FUNCTIONS.items()},
}


def test_every_form_is_compared():
    assert set(FORMS) == {*OPS_FUNCTIONS, "auto", "reference"}


VIEWS = {
    "full": lambda d: d,
    "multitree": lambda d: d.multitree(),
    "reversed": lambda d: d.reverse(),
    "reversed multitree": lambda d: d.multitree().reverse(),
}


# Cases --------------------------------------------------------------------

def _mixed_batch() -> DAG:
    """Every family shape, ring molecules, a random DAG and a 30-node tree that pads the others."""
    gen = torch.Generator().manual_seed(5)
    graphs = [Data(edge_index=ei, num_nodes=n) for _, ei, n in family(gen)]
    graphs += molecules(3) + [Data(edge_index=random_dag(12, 0.3, gen), num_nodes=12),
                              Data(edge_index=binary_tree(30), num_nodes=30)]
    order = torch.randperm(len(graphs), generator=gen).tolist()
    return batched_dag([graphs[i] for i in order])


def _batch_with_empty_graphs() -> DAG:
    """Graphs without nodes in the middle (a gap in the graph ids) and at the end (an empty last block)."""
    gen = torch.Generator().manual_seed(3)
    empty = Data(edge_index=chain(0), num_nodes=0)
    return batched_dag([Data(edge_index=chain(4), num_nodes=4), empty,
                        Data(edge_index=random_dag(5, 0.6, gen), num_nodes=5), empty])


def _no_nodes() -> DAG:
    none = torch.zeros(2, 0, dtype=torch.long)
    return DAG(none, none, 0)


def _empty_batch() -> DAG:
    none = torch.zeros(2, 0, dtype=torch.long)
    return DAG(none, none, 0, batch=torch.zeros(0, dtype=torch.long))


CASES = {f"{name}/{view}": (functools.partial(family_dag, i), view)
         for i, (name, _, _) in enumerate(family(torch.Generator()))
         for view in VIEWS}
CASES.update({f"mixed batch/{view}": (_mixed_batch, view) for view in VIEWS})
CASES.update({
    "batch with empty graphs/full": (_batch_with_empty_graphs, "full"),
    "batch with empty graphs/reversed multitree": (_batch_with_empty_graphs, "reversed multitree"),
    "molecules/full": (lambda: batched_dag(molecules(24)), "full"),
    "molecules/reversed multitree": (lambda: batched_dag(molecules(24)), "reversed multitree"),
    "long chain/full": (lambda: prepare_dag(chain(120), 120), "full"),
    "long chain/reversed": (lambda: prepare_dag(chain(120), 120), "reversed"),
    "no nodes/full": (_no_nodes, "full"),
    "empty batch/full": (_empty_batch, "full"),
})


@dataclass
class Reference:
    dag: DAG
    ops: list[Tensor]
    weight: Tensor
    out: Tensor
    grads: list[Tensor]


def _grads(out: Tensor, ops: list[Tensor], weight: Tensor) -> list[Tensor]:
    """Gradients of ``(out * weight).sum()``; only operands without elements may be unused."""
    if not out.requires_grad:  # the reference form returns a constant when there are no nodes
        assert all(op.numel() == 0 for op in ops[:3])
        return [torch.zeros_like(op) for op in ops]
    grads = torch.autograd.grad((out * weight).sum(), ops, allow_unused=True)
    for name, op, grad in zip(GRAD_NAMES, ops, grads):
        assert grad is not None or op.numel() == 0, f"no gradient for `{name}`"
    return [torch.zeros_like(op) if grad is None else grad for op, grad in zip(ops, grads)]


def reference_output(dag: DAG, gen: torch.Generator) -> Reference:
    ops = operands_for(dag, generator=gen)
    out = plstm_reference(*ops, dag)
    weight = torch.randn(out.shape, dtype=out.dtype, generator=gen)
    grads = _grads(out, ops, weight)
    # Every gradient is nonzero wherever its operand has entries, so comparing them has teeth.
    for name, op, grad in zip(GRAD_NAMES, ops, grads):
        assert op.numel() == 0 or bool(grad.abs().sum() > 0), name
    return Reference(dag, ops, weight, out, grads)


def assert_matches(call, ref: Reference) -> None:
    out = call(*ref.ops, ref.dag)
    assert out.shape == ref.out.shape
    assert torch.allclose(out, ref.out, atol=TOL, rtol=0)
    for name, a, b in zip(GRAD_NAMES, _grads(out, ref.ops, ref.weight), ref.grads):
        assert torch.allclose(a, b, atol=TOL, rtol=0), name


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> Reference:
    """The reference form's output and gradients, computed once per case for all forms."""
    build, view = CASES[request.param]
    return reference_output(VIEWS[view](build()), torch.Generator().manual_seed(list(CASES).index(request.param)))


# One equivalence test for every form --------------------------------------

@pytest.mark.parametrize("call", FORM_CALLS)
def test_form_matches_reference(case, call):
    assert_matches(FORM_CALLS[call], case)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 10), st.floats(0.0, 0.8), st.integers(0, 10_000), st.sampled_from(list(VIEWS)))
@pytest.mark.parametrize("call", FORM_CALLS)
def test_form_matches_reference_on_random_dags(call, n, p, seed, view):
    gen = torch.Generator().manual_seed(seed)
    dag = VIEWS[view](prepare_dag(random_dag(n, p, gen), n))
    assert_matches(FORM_CALLS[call], reference_output(dag, gen))


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.floats(0.0, 0.8)), min_size=1, max_size=5),
       st.integers(0, 10_000), st.sampled_from(list(VIEWS)))
@pytest.mark.parametrize("call", FORM_CALLS)
def test_form_matches_reference_on_random_batches(call, sizes, seed, view):
    gen = torch.Generator().manual_seed(seed)
    dag = VIEWS[view](batched_dag([Data(edge_index=random_dag(n, p, gen), num_nodes=n) for n, p in sizes]))
    assert_matches(FORM_CALLS[call], reference_output(dag, gen))


def test_auto_runs_the_form_choose_form_picks():
    """``form="auto"`` gives bit for bit what the chosen form gives, and not what
    any other form gives (in float32 the forms round differently)."""
    molecule_batch = batched_dag(molecules(16))
    cases = [(molecule_batch, 24, 24), (molecule_batch, 2, 2), (_mixed_batch(), 24, 24),
             (prepare_dag(chain(300), 300), 4, 4)]
    chosen = []
    for dag, key_dim, value_dim in cases:
        ops = operands_for(dag, k=key_dim, v=value_dim, dtype=torch.float32, requires_grad=False)
        form = choose_form(dag, key_dim, value_dim)
        auto = plstm_dag(*ops, dag, form="auto")
        for other in OPS_FUNCTIONS:
            assert torch.equal(auto, plstm_dag(*ops, dag, form=other)) is (other == form), (form, other)
        chosen.append(form)
    # 300 nodes: beyond what the parallel form may pad to, and deep.
    assert chosen[-1] == "scan" and len(set(chosen)) > 1


# Exact first and second derivatives ---------------------------------------

def _diamond() -> DAG:
    return prepare_dag(torch.tensor([[0, 0, 1, 2], [1, 2, 3, 3]]), 4)


def _grad_batch() -> DAG:
    ei, n = tailed_diamond()
    return batched_dag([Data(edge_index=ei, num_nodes=n), Data(edge_index=chain(3), num_nodes=3),
                        Data(edge_index=chain(1), num_nodes=1)])


GRAD_GRAPHS = {"diamond": _diamond, "chain": lambda: prepare_dag(chain(4), 4), "mixed batch": _grad_batch}


def test_grad_graphs_cover_the_pruned_line_graph():
    dag = _grad_batch()
    assert 0 < dag.multitree().num_line_edges < dag.num_line_edges
    assert dag.num_graphs == 3


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("graph", GRAD_GRAPHS)
def test_gradcheck_and_gradgradcheck(form, mode, graph):
    """Second derivatives (gradient penalties, meta-learning) must be exact in every form."""
    dag = GRAD_GRAPHS[graph]().view(mode)
    ops = operands_for(dag, heads=1, k=2, v=2, generator=torch.Generator().manual_seed(len(graph)))

    def operator(*operands: Tensor) -> Tensor:
        return plstm_dag(*operands, dag, form=form)

    assert torch.autograd.gradcheck(operator, ops)
    assert torch.autograd.gradgradcheck(operator, ops)


# Inspection ---------------------------------------------------------------

@pytest.mark.parametrize("view", VIEWS)
def test_edge_states_read_out_gives_the_operator(view):
    """Reading the states of :func:`edge_states` out with the marks gives the reference
    operator minus its direct term: ``sum_{e -> n} M_e C_e^T q_n``."""
    gen = torch.Generator().manual_seed(9)
    dag = VIEWS[view](prepare_dag(random_dag(9, 0.45, gen), 9))
    query, key, value, source, transition, mark, direct = operands_for(dag, generator=gen, requires_grad=False)
    states = edge_states(key, value, source, transition, dag)
    assert states.shape == (dag.num_edges, 2, 3, 4)
    dst = dag.edge_index[1]
    read = mark[..., None] * torch.einsum("ehk,ehkv->ehv", query[dst], states)
    through_edges = torch.zeros_like(value).index_add(0, dst, read)
    direct_term = direct[..., None] * (query * key).sum(-1, keepdim=True) * value
    expected = plstm_reference(query, key, value, source, transition, mark, direct, dag) - direct_term
    assert through_edges.abs().max() > 1e-3
    assert torch.allclose(through_edges, expected, atol=TOL, rtol=0)


# Validation shared by every form ------------------------------------------

def _valid() -> tuple[list[Tensor], DAG]:
    dag = prepare_dag(random_dag(5, 0.6, torch.Generator().manual_seed(0)), 5)
    return operands_for(dag, requires_grad=False), dag


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("position,bad,match", [
    (1, lambda t: t[:, :, :2], r"`key` must have shape \[5, 2, 3\]"),
    (2, lambda t: t[:3], r"`value` must have shape \[5, 2, V\]"),
    (3, lambda t: t[:, :1], "`source` must have shape"),
    (4, lambda t: t[:-1], "`transition` must have shape"),
    (5, lambda t: t.float(), "`mark` has dtype torch.float32 but `query` has torch.float64"),
    (6, lambda t: t.long(), "`direct` must be a floating-point"),
    (6, lambda t: t.to("meta"), "`direct` is on meta but `query` is on cpu"),
    (0, lambda t: t[:4], "`query` has 4 nodes but the DAG has 5"),
    (0, lambda t: t[0], r"`query` must have shape \[N, H, K\]"),
    (2, lambda t: t.tolist(), "`value` must be a torch.Tensor"),
])
def test_operand_errors_name_the_argument(form, position, bad, match):
    ops, dag = _valid()
    ops[position] = bad(ops[position])
    with pytest.raises(ValueError, match=match):
        plstm_dag(*ops, dag, form=form)


@pytest.mark.parametrize("form", FORMS)
def test_a_dag_on_another_device_than_the_operands_is_refused(form):
    ops, dag = _valid()
    with pytest.raises(ValueError, match="`dag` is on cpu but `query` is on meta"):
        plstm_dag(*[t.to("meta") for t in ops], dag, form=form)


@pytest.mark.parametrize("args,match", [
    (("dag", 2, 3), "`dag` must be a pyg_plstm.DAG"),
    ((None, 2.5, 3), "`key_dim` must be a positive integer, got 2.5"),
    ((None, 2, 0), "`value_dim` must be a positive integer, got 0"),
])
def test_prepare_structure_refuses_what_is_not_a_dag_or_a_size(args, match):
    _, dag = _valid()
    with pytest.raises(ValueError, match=match):
        prepare_structure(dag if args[0] is None else args[0], *args[1:])


def test_unknown_form_and_non_dag_are_refused():
    ops, dag = _valid()
    with pytest.raises(ValueError, match="`form` must be one of"):
        plstm_dag(*ops, dag, form="dense")
    with pytest.raises(ValueError, match="`dag` must be a pyg_plstm.DAG"):
        plstm_dag(*ops, dag.edge_index)


def _structure_cases() -> list[tuple[str, DAG, str]]:
    # Edges 0: (0, 1), 1: (1, 2), 2: (3, 4); edge 0 feeds edge 1 only.
    ei = torch.tensor([[0, 1, 3], [1, 2, 4]])
    li = torch.tensor([[0], [1]])
    cycle = torch.tensor([[0, 1, 2], [1, 2, 0]])
    return [
        ("line edge between edges that do not meet", DAG(ei, torch.tensor([[0], [2]]), 5),
         r"`line_index` column 0 pairs edge 0 \[0, 1\] with edge 2 \[3, 4\], which do not share a node"),
        ("line edge to a missing edge", DAG(ei, torch.tensor([[0], [3]]), 5), "refers to an edge outside"),
        ("edge outside the nodes", DAG(ei + 10, li, 5), r"column 0 = \[10, 11\] points outside the 5 nodes"),
        ("cycle", DAG(cycle, cycle, 3), "cycle through node"),
        ("levels against the line graph", DAG(cycle, cycle, 3, edge_level=torch.tensor([0, 1, 2])),
         r"edge 2 \(level 2\) feeds edge 0 \(level 0\)"),
        ("negative input edge", DAG(ei, li, 5, input_edge=torch.tensor([0, -1, 2])), "negative edge ids"),
        # Nodes 0..2 and 3..4 as two graphs, with node 3 moved to graph 0: edge 2 = 3 -> 4 crosses.
        ("edge between graphs", DAG(ei, li, 5, batch=torch.tensor([0, 0, 0, 0, 1])),
         r"DAG edge 2 = \[3, 4\] joins graph 0 to graph 1"),
        ("edge between graphs of a prepared union", prepare_dag(ei, 5, batch=torch.tensor([0, 0, 1, 1, 2])),
         r"DAG edge 1 = \[1, 2\] joins graph 0 to graph 1"),
    ]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("index", range(len(_structure_cases())),
                         ids=[name for name, _, _ in _structure_cases()])
def test_structure_errors(form, index):
    _, dag, match = _structure_cases()[index]
    ops = operands_for(dag, requires_grad=False)
    with pytest.raises(ValueError, match=match):
        plstm_dag(*ops, dag, form=form)


@pytest.mark.parametrize("form", FORMS)
def test_inputs_not_mutated(form):
    dag = batched_dag([Data(edge_index=undirected([(0, 1), (0, 2), (1, 3), (2, 3)]), num_nodes=4),
                       Data(edge_index=chain(3), num_nodes=3)])
    ops = operands_for(dag)
    structure = [dag.edge_index, dag.line_index, dag.edge_level, dag.edge_level_rev, dag.multitree_mask,
                 dag.input_edge, dag.batch]
    copies = [t.detach().clone() for t in ops + structure]
    for create_graph in (False, True):  # the hand-written backward pass and the differentiable one
        out = plstm_dag(*ops, dag, form=form)
        torch.autograd.grad(out.square().sum(), ops, create_graph=create_graph)
    for a, b in zip(ops + structure, copies):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("form", ["scan", "parallel", "auto"])
def test_cuda_matches_reference_on_cpu(form):
    gen = torch.Generator().manual_seed(4)
    dag = batched_dag(molecules(6) + [Data(edge_index=random_dag(40, 0.2, gen), num_nodes=40)])
    ref = reference_output(dag, gen)
    cuda_dag = DAG(dag.edge_index.cuda(), dag.line_index.cuda(), dag.num_nodes, batch=dag.batch.cuda(),
                   num_graphs=dag.num_graphs)
    cuda_ops = [t.detach().cuda().requires_grad_() for t in ref.ops]
    out = plstm_dag(*cuda_ops, cuda_dag, form=form)
    assert torch.allclose(out.cpu(), ref.out, atol=TOL, rtol=0)
    for name, a, b in zip(GRAD_NAMES, _grads(out, cuda_ops, ref.weight.cuda()), ref.grads):
        assert torch.allclose(a.cpu(), b, atol=TOL, rtol=0), name
