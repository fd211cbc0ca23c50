from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import Tensor
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch, Data
from torch_geometric.utils import from_smiles

from graphs import chain, family, random_dag, random_operands
from pyg_plstm.dag import ToDAG, get_dag, prepare_dag
from pyg_plstm.functional import plstm_dag
from pyg_plstm.ops import plstm_dag_reference
from pyg_plstm.ops.parallel import MAX_PARALLEL_NODES, parallel_schedule, plstm_dag_parallel, prefer_parallel

GRAD_NAMES = ["query", "key", "value", "source", "transition", "mark", "direct"]
VARIANTS = {
    "full": lambda d: d,
    "multitree": lambda d: d.multitree(),
    "reversed": lambda d: d.reverse(),
    "reversed multitree": lambda d: d.multitree().reverse(),
}


def _molecules(count: int) -> list[Data]:
    smiles = pd.read_csv(Path(__file__).parents[1] / "data" / "freesolv.csv")["smiles"]
    rings = [s for s in smiles if sum(c.isdigit() for c in s) >= 4]  # fused or several rings
    # Structure only, so that molecules batch with the featureless test graphs.
    return [Data(edge_index=g.edge_index, num_nodes=g.num_nodes) for g in map(from_smiles, rings[:count])]


def _batch(graphs: list[Data]) -> Batch:
    return Batch.from_data_list([ToDAG()(g) for g in graphs])


def _grads(out: Tensor, ops: list[Tensor], weight: Tensor) -> list[Tensor]:
    if not out.requires_grad:  # the reference returns a constant for an empty batch
        return [torch.zeros_like(o) for o in ops]
    grads = torch.autograd.grad((out * weight).sum(), ops, allow_unused=True)
    # Operands without elements (gates of a graph without edges) come back as "unused".
    return [torch.zeros_like(o) if g is None else g for o, g in zip(ops, grads)]


def _compare(dag, batch, gen, reference=True, tol=1e-10):
    ops = random_operands(dag.num_nodes, dag.num_edges, dag.line_index.size(1), generator=gen)
    out = plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, batch, dag.edge_level)
    expected = [plstm_dag(*ops, dag.edge_index, dag.line_index, dag.edge_level)]
    if reference:
        expected.append(plstm_dag_reference(*ops, dag.edge_index, dag.line_index))
    weight = torch.randn(out.shape, dtype=out.dtype, generator=gen)
    g_out = _grads(out, ops, weight)
    for exp in expected:
        assert out.shape == exp.shape
        assert torch.allclose(out, exp, atol=tol, rtol=0)
        for name, a, b in zip(GRAD_NAMES, g_out, _grads(exp, ops, weight)):
            assert torch.allclose(a, b, atol=tol, rtol=0), name


@pytest.mark.parametrize("index", range(7))
@pytest.mark.parametrize("variant", VARIANTS)
def test_single_graph_matches_reference(index, variant):
    gen = torch.Generator().manual_seed(index)
    _, ei, n = family(gen)[index]
    _compare(VARIANTS[variant](prepare_dag(ei, n)), None, gen)


@pytest.mark.parametrize("variant", VARIANTS)
def test_mixed_batch_matches_reference(variant):
    gen = torch.Generator().manual_seed(5)
    graphs = [Data(edge_index=ei, num_nodes=n) for _, ei, n in family(gen)]
    graphs += _molecules(3) + [Data(edge_index=random_dag(12, 0.3, gen), num_nodes=12)]
    order = torch.randperm(len(graphs), generator=gen).tolist()
    batch = _batch([graphs[i] for i in order])
    _compare(VARIANTS[variant](get_dag(batch)), batch.batch, gen)


def test_molecule_batch_matches_level_scan():
    gen = torch.Generator().manual_seed(1)
    batch = _batch(_molecules(24))
    for variant in VARIANTS.values():
        _compare(variant(get_dag(batch)), batch.batch, gen, reference=False)


def test_graph_ids_with_gaps():
    # A graph without nodes leaves its id out of `batch`; its block stays empty.
    gen = torch.Generator().manual_seed(3)
    batch = _batch([Data(edge_index=chain(4), num_nodes=4), Data(edge_index=chain(0), num_nodes=0),
                    Data(edge_index=random_dag(5, 0.6, gen), num_nodes=5)])
    assert batch.batch.unique().tolist() == [0, 2]
    _compare(get_dag(batch), batch.batch, gen)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.floats(0.0, 0.8)), min_size=1, max_size=5),
       st.integers(0, 10_000), st.booleans())
def test_property_random_batches(sizes, seed, reverse):
    gen = torch.Generator().manual_seed(seed)
    batch = _batch([Data(edge_index=random_dag(n, p, gen), num_nodes=n) for n, p in sizes])
    _compare(get_dag(batch, reverse=reverse), batch.batch, gen)


def test_shared_schedule_gives_the_same_result():
    gen = torch.Generator().manual_seed(7)
    batch = _batch(_molecules(4))
    dag = get_dag(batch)
    ops = random_operands(dag.num_nodes, dag.num_edges, dag.line_index.size(1), generator=gen)
    sched = parallel_schedule(dag.edge_index, dag.line_index, dag.num_nodes, batch.batch, dag.edge_level)
    assert sched.num_graphs == 4 and sched.max_nodes == int(torch.bincount(batch.batch).max())
    shared = plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, schedule=sched)
    assert torch.equal(shared, plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, batch.batch))
    unchecked = plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, batch.batch, validate=False)
    assert torch.equal(shared, unchecked)


def test_gradcheck():
    gen = torch.Generator().manual_seed(2)
    batch = _batch([Data(edge_index=random_dag(5, 0.6, gen), num_nodes=5),
                    Data(edge_index=chain(3), num_nodes=3)])
    dag = get_dag(batch)
    ops = random_operands(dag.num_nodes, dag.num_edges, dag.line_index.size(1), heads=2, k=2, v=2, generator=gen)
    assert torch.autograd.gradcheck(
        lambda *a: plstm_dag_parallel(*a, dag.edge_index, dag.line_index, batch.batch), ops)


@pytest.mark.parametrize("with_batch", [False, True])
def test_empty_batch(with_batch):
    ops = random_operands(0, 0, 0)
    ei = torch.zeros(2, 0, dtype=torch.long)
    out = plstm_dag_parallel(*ops, ei, ei, torch.zeros(0, dtype=torch.long) if with_batch else None)
    assert out.shape == (0, 2, 4)
    out.sum().backward()
    assert all(o.grad is not None and o.grad.shape == o.shape for o in ops[:3])


def _valid():
    batch = _batch([Data(edge_index=chain(3), num_nodes=3), Data(edge_index=chain(4), num_nodes=4)])
    dag = get_dag(batch)
    ops = random_operands(dag.num_nodes, dag.num_edges, dag.line_index.size(1), requires_grad=False)
    return ops, dag, batch.batch


@pytest.mark.parametrize("bad,match", [
    (lambda b: b.float(), "`batch` must be an integer tensor"),
    (lambda b: b[:-1], r"`batch` must have shape \[7\]"),
    (lambda b: b - 1, "negative graph ids"),
    (lambda b: b.flip(0), "must be contiguous"),
    (lambda b: torch.tensor([0, 1, 0, 1, 1, 1, 1]), "goes from 1 to 0 at node 2"),
])
def test_batch_errors(bad, match):
    ops, dag, batch = _valid()
    with pytest.raises(ValueError, match=match):
        plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, bad(batch))


def test_structure_errors():
    ops, dag, batch = _valid()
    # Node 3 starts the second chain; moving it to graph 0 makes edge 3 -> 4 cross.
    crossing = batch.clone()
    crossing[3] = 0
    with pytest.raises(ValueError, match="joins graph 0 to graph 1"):
        plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, crossing)
    # A line edge from the first graph's last edge into the second graph's first.
    li = torch.cat([dag.line_index, torch.tensor([[1], [2]])], 1)
    t_ops = ops[:4] + [torch.rand(li.size(1), 2, dtype=torch.float64)] + ops[5:]
    with pytest.raises(ValueError, match="do not share a node"):
        plstm_dag_parallel(*t_ops, dag.edge_index, li, batch)
    with pytest.raises(ValueError, match="`transition` must have shape"):
        plstm_dag_parallel(*ops[:4], ops[4][:-1], *ops[5:], dag.edge_index, dag.line_index, batch)
    with pytest.raises(ValueError, match="points outside"):
        plstm_dag_parallel(*ops, dag.edge_index + 10, dag.line_index, batch)
    cyc = torch.tensor([[0, 1, 2], [1, 2, 0]])
    with pytest.raises(ValueError, match="cycle"):
        plstm_dag_parallel(*random_operands(3, 3, 3, requires_grad=False), cyc, cyc)


def test_schedule_mismatch():
    ops, dag, batch = _valid()
    other = prepare_dag(chain(5), 5)
    sched = parallel_schedule(other.edge_index, other.line_index, 5)
    with pytest.raises(ValueError, match="`schedule` was built for 5 nodes"):
        plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, schedule=sched)


def test_inputs_not_mutated():
    ops, dag, batch = _valid()
    args = ops + [dag.edge_index, dag.line_index, batch, dag.edge_level]
    copies = [t.clone() for t in args]
    plstm_dag_parallel(*args)
    for a, b in zip(args, copies):
        assert torch.equal(a, b)


@pytest.mark.parametrize("edges,graphs,max_nodes,dim,expected", [
    (1782, 128, 31, 24, True),     # 128 ESOL molecules
    (1824, 128, 64, 24, False),    # the same plus one 64-node tree: padding
    (6898, 512, 47, 24, False),    # 512 molecules pad to their largest
    (12160, 128, 96, 24, True),    # trees of 96 nodes
    (24448, 128, 192, 24, False),  # trees of 192 nodes
    (3968, 128, 32, 8, False),     # small heads: the scan's states are cheap
    (16256, 128, 128, 32, True),
    (0, 4, 10, 24, False),         # no edges: nothing to scan
    (0, 0, 0, 24, False),          # empty batch
])
def test_prefer_parallel_measured_cases(edges, graphs, max_nodes, dim, expected):
    assert prefer_parallel(edges, graphs, max_nodes, dim, dim) is expected


def test_prefer_parallel_caps_graph_size():
    n = MAX_PARALLEL_NODES
    assert prefer_parallel(4 * n, 4, n, 512, 512)
    assert not prefer_parallel(4 * (n + 1), 4, n + 1, 512, 512)
    # For equal-sized graphs the choice flips once, from parallel to scan.
    choices = [prefer_parallel(128 * m, 128, m, 24, 24) for m in range(1, 300)]
    flip = choices.index(False)
    assert all(choices[:flip]) and not any(choices[flip:]) and 100 < flip < 150


@pytest.mark.parametrize("bad", [-1, 2.0, True, None])
def test_prefer_parallel_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="`max_nodes` must be a non-negative int"):
        prefer_parallel(10, 1, bad, 24, 24)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(4)
    batch = _batch(_molecules(6))
    dag = get_dag(batch)
    ops = random_operands(dag.num_nodes, dag.num_edges, dag.line_index.size(1), generator=gen)
    cpu = plstm_dag_parallel(*ops, dag.edge_index, dag.line_index, batch.batch)
    cuda_ops = [t.detach().cuda().requires_grad_() for t in ops]
    gpu = plstm_dag_parallel(*cuda_ops, dag.edge_index.cuda(), dag.line_index.cuda(), batch.batch.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-10)
    for a, b in zip(torch.autograd.grad(cpu.sum(), ops), torch.autograd.grad(gpu.sum(), cuda_ops)):
        assert torch.allclose(a, b.cpu(), atol=1e-10)
