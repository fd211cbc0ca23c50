r"""Functional interface of the pLSTM operator on DAGs."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from pyg_plstm.dag import node_depth
from pyg_plstm.ops.level_scan import LevelSchedule, level_schedule, plstm_dag_level_scan

__all__ = ["plstm_dag", "check_structure", "schedule_for"]


def _shape_error(name: str, expected: str, got: Tensor) -> ValueError:
    return ValueError(f"`{name}` must have shape {expected}, got {list(got.shape)}")


def _check_operands(
    query: Tensor, key: Tensor, value: Tensor, source: Tensor, transition: Tensor,
    mark: Tensor, direct: Tensor, dag_edge_index: Tensor, line_index: Tensor,
    edge_level: Optional[Tensor],
) -> None:
    named = {"query": query, "key": key, "value": value, "source": source,
             "transition": transition, "mark": mark, "direct": direct}
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise ValueError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"`{name}` must be a floating-point tensor, got {t.dtype}")
        if t.dtype != query.dtype:
            raise ValueError(f"`{name}` has dtype {t.dtype} but `query` has {query.dtype}; cast all operands to one dtype")
        if t.device != query.device:
            raise ValueError(f"`{name}` is on {t.device} but `query` is on {query.device}")
    index_args = {"dag_edge_index": dag_edge_index, "line_index": line_index}
    if edge_level is not None:
        index_args["edge_level"] = edge_level
    for name, t in index_args.items():
        if not isinstance(t, Tensor) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"`{name}` must be an integer tensor, got {getattr(t, 'dtype', type(t).__name__)}")
        if t.device != query.device:
            raise ValueError(f"`{name}` is on {t.device} but `query` is on {query.device}")

    if query.dim() != 3:
        raise _shape_error("query", "[N, H, K]", query)
    n, h, k = query.shape
    if key.shape != query.shape:
        raise _shape_error("key", f"[{n}, {h}, {k}] (like `query`)", key)
    if value.dim() != 3 or value.shape[:2] != (n, h):
        raise _shape_error("value", f"[{n}, {h}, V]", value)
    if direct.shape != (n, h):
        raise _shape_error("direct", f"[{n}, {h}]", direct)
    if dag_edge_index.dim() != 2 or dag_edge_index.size(0) != 2:
        raise _shape_error("dag_edge_index", "[2, E]", dag_edge_index)
    e = dag_edge_index.size(1)
    for name, t in (("source", source), ("mark", mark)):
        if t.shape != (e, h):
            raise _shape_error(name, f"[{e}, {h}] (E = dag_edge_index.size(1))", t)
    if line_index.dim() != 2 or line_index.size(0) != 2:
        raise _shape_error("line_index", "[2, L]", line_index)
    if transition.shape != (line_index.size(1), h):
        raise _shape_error("transition", f"[{line_index.size(1)}, {h}] (L = line_index.size(1))", transition)
    if edge_level is not None and edge_level.shape != (e,):
        raise _shape_error("edge_level", f"[{e}]", edge_level)


def check_structure(dag_edge_index: Tensor, line_index: Tensor, edge_level: Tensor, num_nodes: int) -> None:
    """Raise ``ValueError`` unless the DAG, line graph and levels are consistent."""
    _check_links(dag_edge_index, line_index, num_nodes)
    _check_levels(dag_edge_index, line_index, edge_level)


def _check_links(dag_edge_index: Tensor, line_index: Tensor, num_nodes: int) -> None:
    e = dag_edge_index.size(1)
    if e and (int(dag_edge_index.min()) < 0 or int(dag_edge_index.max()) >= num_nodes):
        bad = int(((dag_edge_index < 0) | (dag_edge_index >= num_nodes)).any(0).nonzero()[0])
        raise ValueError(f"`dag_edge_index` column {bad} = {dag_edge_index[:, bad].tolist()} points outside the {num_nodes} nodes")
    if line_index.numel() == 0:
        return
    if int(line_index.min()) < 0 or int(line_index.max()) >= e:
        bad = int(((line_index < 0) | (line_index >= e)).any(0).nonzero()[0])
        raise ValueError(f"`line_index` column {bad} = {line_index[:, bad].tolist()} refers to an edge outside [0, {e})")
    joined = dag_edge_index[1, line_index[0]] == dag_edge_index[0, line_index[1]]
    if not bool(joined.all()):
        bad = int((~joined).nonzero()[0])
        a, b = line_index[:, bad].tolist()
        raise ValueError(
            f"`line_index` column {bad} pairs edge {a} {dag_edge_index[:, a].tolist()} with edge {b} "
            f"{dag_edge_index[:, b].tolist()}, which do not share a node (need dst(e_in) == src(e_out))")


def _check_levels(dag_edge_index: Tensor, line_index: Tensor, edge_level: Tensor) -> None:
    if line_index.numel() == 0:
        return
    ordered = edge_level[line_index[0]] < edge_level[line_index[1]]
    if not bool(ordered.all()):
        bad = int((~ordered).nonzero()[0])
        a, b = line_index[:, bad].tolist()
        raise ValueError(
            f"`edge_level` is not a topological order of the line graph: edge {a} (level "
            f"{int(edge_level[a])}) feeds edge {b} (level {int(edge_level[b])}); is the graph acyclic?")


def schedule_for(dag_edge_index: Tensor, line_index: Tensor, num_nodes: int,
                 edge_level: Optional[Tensor] = None, validate: bool = True) -> LevelSchedule:
    """Levels (computed if not given), optional consistency checks, and the level schedule."""
    if validate:
        _check_links(dag_edge_index, line_index, num_nodes)
    if edge_level is None:
        depth = node_depth(dag_edge_index.cpu().numpy(), num_nodes)
        edge_level = torch.from_numpy(depth).to(dag_edge_index.device)[dag_edge_index[0]]
    if validate:
        _check_levels(dag_edge_index, line_index, edge_level)
    return level_schedule(line_index, edge_level)


def plstm_dag(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Tensor,
    mark: Tensor,
    direct: Tensor,
    dag_edge_index: Tensor,
    line_index: Tensor,
    edge_level: Optional[Tensor] = None,
    *,
    schedule: Optional[LevelSchedule] = None,
    validate: bool = True,
) -> Tensor:
    r"""The pLSTM operator on a (batched) DAG.

    Per head, with cell states :math:`C_e \in \mathbb{R}^{K \times V}` on the
    DAG edges :math:`e = (u \to w)`:

    .. math::
        C_e = \sum_{(e', e) \in \mathcal{L}} T_{e'e}\, C_{e'} + S_e\, k_u \otimes v_u,
        \qquad
        y_n = \sum_{e:\, \mathrm{dst}(e) = n} M_e\, q_n^\top C_e + D_n\, (q_n \cdot k_n)\, v_n.

    Args:
        query, key: ``[N, H, K]``.
        value: ``[N, H, V]``.
        source, mark: ``[E, H]`` gates of the DAG edges.
        transition: ``[L, H]`` gates of the line edges.
        direct: ``[N, H]``.
        dag_edge_index: ``[2, E]`` acyclic ``src -> dst`` edges.
        line_index: ``[2, L]`` pairs ``(e_in, e_out)`` with ``dst(e_in) == src(e_out)``;
            any subset of the full line graph (e.g. the D-mode multitree).
        edge_level: ``[E]`` topological levels (computed when omitted).
        schedule: a precomputed :class:`~pyg_plstm.ops.LevelSchedule`, to share
            the sort across layers; ``edge_level`` and validation are then skipped.
        validate: check that the structure is consistent (index ranges, line
            edges joining their edges, levels increasing along line edges).

    Returns:
        ``[N, H, V]``.
    """
    _check_operands(query, key, value, source, transition, mark, direct,
                    dag_edge_index, line_index, edge_level)
    if schedule is None:
        schedule = schedule_for(dag_edge_index, line_index, query.size(0), edge_level, validate)
    return plstm_dag_level_scan(query, key, value, source, transition, mark, direct,
                                dag_edge_index, schedule)
