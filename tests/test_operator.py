import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data

from graphs import family, random_dag, random_operands
from pyg_plstm.dag import ToDAG, get_dag, prepare_dag
from pyg_plstm.functional import plstm_dag, schedule_for
from pyg_plstm.ops import plstm_dag_reference

GRAD_NAMES = ["query", "key", "value", "source", "transition", "mark", "direct"]


def _compare(dag, gen, tol=1e-10, **kw):
    ops = random_operands(dag.num_nodes, dag.num_edges, dag.line_index.size(1), generator=gen, **kw)
    fast = plstm_dag(*ops, dag.edge_index, dag.line_index, dag.edge_level)
    ref = plstm_dag_reference(*ops, dag.edge_index, dag.line_index)
    assert fast.shape == ref.shape
    assert torch.allclose(fast, ref, atol=tol, rtol=0)
    weight = torch.randn(ref.shape, dtype=ref.dtype, generator=gen)
    g_fast = torch.autograd.grad((fast * weight).sum(), ops, allow_unused=True)
    g_ref = torch.autograd.grad((ref * weight).sum(), ops, allow_unused=True)
    for name, op, a, b in zip(GRAD_NAMES, ops, g_fast, g_ref):
        # Autograd reports "unused" for operands with no elements (e.g. gates of a graph without edges).
        a = torch.zeros_like(op) if a is None else a
        b = torch.zeros_like(op) if b is None else b
        assert torch.allclose(a, b, atol=tol, rtol=0), name


@pytest.mark.parametrize("index", range(7))
@pytest.mark.parametrize("variant", ["full", "multitree", "reversed"])
def test_level_scan_matches_reference(index, variant):
    gen = torch.Generator().manual_seed(index)
    name, ei, n = family(gen)[index]
    dag = prepare_dag(ei, n)
    dag = {"full": dag, "multitree": dag.multitree(), "reversed": dag.reverse()}[variant]
    _compare(dag, gen)


def test_mixed_batch_matches_reference():
    gen = torch.Generator().manual_seed(11)
    graphs = [Data(edge_index=ei, num_nodes=n) for _, ei, n in family(gen)]
    graphs.append(Data(edge_index=random_dag(8, 0.5, gen), num_nodes=8))
    batch = Batch.from_data_list([ToDAG()(g) for g in graphs])
    _compare(get_dag(batch), gen)
    _compare(get_dag(batch, reverse=True), gen)


def test_gradcheck():
    gen = torch.Generator().manual_seed(2)
    dag = prepare_dag(random_dag(6, 0.5, gen), 6)
    ops = random_operands(6, dag.num_edges, dag.line_index.size(1), heads=2, k=2, v=2, generator=gen)
    assert torch.autograd.gradcheck(lambda *a: plstm_dag(*a, dag.edge_index, dag.line_index), ops)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 10), st.floats(0.0, 0.8), st.integers(0, 10_000), st.booleans())
def test_property_fast_equals_reference(n, p, seed, reverse):
    gen = torch.Generator().manual_seed(seed)
    dag = prepare_dag(random_dag(n, p, gen), n)
    _compare(dag.reverse() if reverse else dag, gen)


def test_long_chain_is_sequential_in_depth_only():
    n = 300
    dag = prepare_dag(torch.stack([torch.arange(n - 1), torch.arange(1, n)]), n)
    sched = schedule_for(dag.edge_index, dag.line_index, n, dag.edge_level)
    assert sched.num_levels == n - 1
    gen = torch.Generator().manual_seed(0)
    ops = random_operands(n, dag.num_edges, dag.line_index.size(1), generator=gen, requires_grad=False)
    out = plstm_dag(*ops, dag.edge_index, dag.line_index, schedule=sched)
    assert torch.allclose(out, plstm_dag_reference(*ops, dag.edge_index, dag.line_index), atol=1e-10)


@pytest.mark.parametrize("n,e", [(0, 0), (5, 0)])
def test_empty_inputs(n, e):
    ops = random_operands(n, e, 0)
    ei = torch.zeros(2, 0, dtype=torch.long)
    out = plstm_dag(*ops, ei, ei)
    assert out.shape == (n, 2, 4)
    if n:
        direct = ops[6][..., None] * (ops[0] * ops[1]).sum(-1, keepdim=True) * ops[2]
        assert torch.allclose(out, direct)
    out.sum().backward()


def _valid():
    dag = prepare_dag(random_dag(5, 0.6, torch.Generator().manual_seed(0)), 5)
    ops = random_operands(5, dag.num_edges, dag.line_index.size(1), requires_grad=False)
    return ops, dag


@pytest.mark.parametrize("position,bad,match", [
    (0, lambda t: t[:, :, :2], "`key` must have shape"),
    (2, lambda t: t[:3], "`value` must have shape"),
    (3, lambda t: t[:, :1], "`source` must have shape"),
    (4, lambda t: t[:-1], "`transition` must have shape"),
    (5, lambda t: t.float(), "`mark` has dtype"),
    (6, lambda t: t.long(), "`direct` must be a floating-point"),
])
def test_operand_errors_name_the_argument(position, bad, match):
    ops, dag = _valid()
    ops[position] = bad(ops[position])
    with pytest.raises(ValueError, match=match):
        plstm_dag(*ops, dag.edge_index, dag.line_index)


def test_structure_errors():
    ops, dag = _valid()
    with pytest.raises(ValueError, match="dag_edge_index` must be an integer"):
        plstm_dag(*ops, dag.edge_index.float(), dag.line_index)
    broken = dag.line_index.clone()
    broken[1, 0] = (broken[1, 0] + 1) % dag.num_edges
    if bool((dag.edge_index[1, broken[0, 0]] != dag.edge_index[0, broken[1, 0]])):
        with pytest.raises(ValueError, match="do not share a node"):
            plstm_dag(*ops, dag.edge_index, broken)
    with pytest.raises(ValueError, match="points outside"):
        plstm_dag(*ops, dag.edge_index + 10, dag.line_index)
    cyc = torch.tensor([[0, 1, 2], [1, 2, 0]])
    li = torch.tensor([[0, 1, 2], [1, 2, 0]])
    c_ops = random_operands(3, 3, 3, requires_grad=False)
    with pytest.raises(ValueError, match="cycle"):
        plstm_dag(*c_ops, cyc, li)
    with pytest.raises(ValueError, match="topological order"):
        plstm_dag(*c_ops, cyc, li, torch.tensor([0, 1, 2]))


def test_inputs_not_mutated():
    ops, dag = _valid()
    copies = [t.clone() for t in ops] + [dag.edge_index.clone(), dag.line_index.clone()]
    plstm_dag(*ops, dag.edge_index, dag.line_index)
    for a, b in zip(ops + [dag.edge_index, dag.line_index], copies):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(4)
    dag = prepare_dag(random_dag(40, 0.2, gen), 40)
    ops = random_operands(40, dag.num_edges, dag.line_index.size(1), generator=gen)
    cpu = plstm_dag(*ops, dag.edge_index, dag.line_index)
    cuda_ops = [t.detach().cuda().requires_grad_() for t in ops]
    gpu = plstm_dag(*cuda_ops, dag.edge_index.cuda(), dag.line_index.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-10)
    g_cpu = torch.autograd.grad(cpu.sum(), ops)
    g_gpu = torch.autograd.grad(gpu.sum(), cuda_ops)
    for a, b in zip(g_cpu, g_gpu):
        assert torch.allclose(a, b.cpu(), atol=1e-10)
