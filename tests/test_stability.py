"""Numerical stability as the paper claims it (Eq. 8): with the P-mode or D-mode
constraint, the cell-state norm grows at most linearly with the longest path.

Bound used: in P-mode every edge passes on a total |T| < 1, in D-mode the line
graph is a multitree with |T| < 1; either way the summed path weight from one
source edge to any edge is below 1 (a sub-stochastic walk visits an edge at most
once), so ``||C_e|| <= #ancestor edges * max S ||k|| ||v||``. In a graph whose
levels hold at most ``W`` edges that is ``<= (level(e) + 1) * W * max S ||k|| ||v||``.
"""
import pytest
import torch

from pyg_plstm.nn import PLSTMConv
from pyg_plstm.ops import edge_states

from graphs import chain_dag, wide_diamonds_dag


def _edges_per_level(dag):
    return int(torch.bincount(dag.edge_level).max())


def check_bound(conv, dag, x):
    gates = conv.gates(x, dag=dag)
    view = gates.dag  # the full line graph in P-mode, the multitree in D-mode
    assert view is dag.view(conv.mode)
    states = edge_states(gates.key, gates.value, gates.source, gates.transition, view)
    norms = states.flatten(2).norm(dim=-1)  # [E, H]
    src = view.edge_index[0]
    inflow = gates.source * gates.key.norm(dim=-1)[src] * gates.value.norm(dim=-1)[src]  # [E, H]
    bound = (view.edge_level[:, None] + 1) * _edges_per_level(view) * inflow.max(0).values
    assert torch.isfinite(norms).all()
    assert bool((norms <= bound * (1 + 1e-4) + 1e-6).all()), float((norms / bound).max())
    return norms, bound


@pytest.mark.parametrize("mode", ["P", "D"])
@pytest.mark.parametrize("shape", ["chain", "wide diamonds"])
@pytest.mark.parametrize("autocast", [False, True], ids=["float32", "bf16-autocast"])
@pytest.mark.parametrize("transition", [{}, {"transition": "householder", "householder_steps": 2}],
                         ids=["scalar", "householder"])
def test_deep_graphs_are_stable(mode, shape, autocast, transition):
    """||H||_2 <= 1 keeps Householder transitions inside the scalar bound."""
    torch.manual_seed(0)
    dag = chain_dag(10_000) if shape == "chain" else wide_diamonds_dag(10_000)
    conv = PLSTMConv(16, 16, heads=2, mode=mode, **transition)
    # Large random gate weights: far from the initialisation, gates saturate at
    # both ends and the transitions reach the edge of their constraint.
    with torch.no_grad():
        for lin in (conv.lin_gate, conv.lin_edge_gate):
            lin.weight.normal_(std=3.0)
        conv.lin_gate.bias.normal_(std=3.0)
    x = torch.randn(dag.num_nodes, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = conv(x, dag=dag)
    assert torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    for name, p in conv.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name  # every parameter shapes the output
    if not autocast:
        norms, bound = check_bound(conv, dag, x.detach())
        # The states really do carry information along the path (the bound is not vacuous).
        assert float(norms[-1].max()) > float(norms[0].max())


def test_bound_fails_without_the_mode_constraint():
    """Transitions of 1 on the full line graph of stacked diamonds double the
    number of paths at every stage: the same bound is exceeded, so it has teeth."""
    dag = wide_diamonds_dag(40, width=2)
    heads, k = 1, 2
    n, e, lines = dag.num_nodes, dag.num_edges, dag.num_line_edges
    key = torch.ones(n, heads, k)
    value = torch.ones(n, heads, k)
    source = torch.ones(e, heads)
    transition = torch.ones(lines, heads)
    states = edge_states(key, value, source, transition, dag)
    norms = states.flatten(2).norm(dim=-1)
    bound = (dag.edge_level[:, None] + 1) * _edges_per_level(dag) * (key.norm(dim=-1)[0] * value.norm(dim=-1)[0])
    assert bool((norms > bound).any())
