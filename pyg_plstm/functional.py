r"""Functional interface of the pLSTM operator on DAGs: one entry point for every form."""
from __future__ import annotations

import torch
from torch import Tensor

from pyg_plstm.checks import check_positive
from pyg_plstm.dag import DAG
from pyg_plstm.ops import (
    FORMS,
    Householder,
    check_operands,
    check_structure,
    choose_form,
    is_scalar,
    level_schedule,
    parallel_layout,
    plstm_parallel,
    plstm_reference,
    plstm_scan,
    plstm_sparse,
    reachability,
)

__all__ = ["plstm_dag", "prepare_structure", "FORMS", "MATRIX_FORMS", "Householder"]

_IMPLEMENTATIONS = {"scan": plstm_scan, "parallel": plstm_parallel, "sparse": plstm_sparse,
                    "reference": plstm_reference}
# What each form derives from the structure (host work, cached on the DAG).
_SCHEDULES = {"scan": level_schedule, "parallel": lambda dag: (level_schedule(dag), parallel_layout(dag)),
              "sparse": reachability, "reference": lambda dag: None}
# The forms that take matrix (dense or Householder) transitions; the others propagate scalar path weights.
MATRIX_FORMS = ("scan", "reference")


# Under torch.compile the operator runs eagerly (a graph break per call): its loops follow the levels of
# the DAG, so traced code would be specialised to one structure and recompiled for every new batch.
@torch.compiler.disable
def plstm_dag(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Tensor | Householder,
    mark: Tensor,
    direct: Tensor,
    dag: DAG,
    *,
    form: str = "auto",
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
        source, mark: ``[E, H]`` gates of the DAG edges (``dag.edge_index`` columns).
        transition: ``[L, H]`` gates of the line edges (``dag.line_index`` columns;
            the line graph may be any subset of the full one, e.g. ``dag.multitree()``),
            or matrices on the key dimension, :math:`C_e \mathrel{+}= T_{e'e} C_{e'}`:
            ``[L, H, K, K]`` dense, or a :class:`~pyg_plstm.ops.Householder`
            product (applied without forming ``K x K``). Matrix transitions run in
            the ``"scan"`` and ``"reference"`` forms only.
        direct: ``[N, H]``.
        dag: the structure (:func:`~pyg_plstm.get_dag`, :func:`~pyg_plstm.prepare_dag`
            or a view of one); its schedules are cached on it and shared by every call.
        form: ``"scan"`` (one step per topological level, linear memory),
            ``"parallel"`` (dense per-graph quadratic form, paper Eq. 7, for
            small graphs), ``"sparse"`` (the same sum over reachable pairs only,
            for small graphs), ``"reference"`` (the per-edge loop, for tests) or
            ``"auto"`` (:func:`~pyg_plstm.ops.choose_form`: the cheapest by a
            measured cost model on the batch's graph sizes, reachable pairs and
            ``K``, ``V``; the scan for matrix transitions). All are equal up to rounding
            and differentiable to any order.
        validate: check the operands' shapes against ``dag`` and, once per DAG,
            its structure (index ranges, line edges joining their edges, levels
            increasing along line edges, no edge between two graphs).

    Returns:
        ``[N, H, V]``.
    """
    if form not in FORMS:
        raise ValueError(f"`form` must be one of {FORMS}, got {form!r}")
    if validate:
        check_operands(query, key, value, source, transition, mark, direct, dag)
    scalar = is_scalar(transition)
    if not scalar and form not in MATRIX_FORMS + ("auto",):
        raise ValueError(f"form={form!r} takes scalar transitions ([L, H]) only; matrix and Householder "
                         f"transitions run in the forms {MATRIX_FORMS} (form='auto' picks the scan)")
    form = prepare_structure(dag, query.size(-1), value.size(-1), form=form, scalar=scalar, validate=validate)
    return _IMPLEMENTATIONS[form](query, key, value, source, transition, mark, direct, dag)


def prepare_structure(dag: DAG, key_dim: int, value_dim: int, *, form: str = "auto", scalar: bool = True,
                      validate: bool = True) -> str:
    r"""The host work :func:`plstm_dag` does on ``dag`` before any arithmetic:
    the structure check (``validate``), the choice of the form (``"auto"``:
    by ``key_dim``, ``value_dim`` and whether the transitions are ``scalar``)
    and that form's schedules. All of it is cached on ``dag``, so calling this
    ahead of time (e.g. in a data loader's worker) takes the work out of the
    forward pass. Returns the form.
    """
    if form not in FORMS:
        raise ValueError(f"`form` must be one of {FORMS}, got {form!r}")
    if not isinstance(dag, DAG):
        raise ValueError(f"`dag` must be a pyg_plstm.DAG (e.g. from get_dag or prepare_dag), got {type(dag).__name__}")
    check_positive(key_dim=key_dim, value_dim=value_dim)
    if validate:
        check_structure(dag)
    if form == "auto":
        form = choose_form(dag, key_dim, value_dim) if scalar else "scan"
    _SCHEDULES[form](dag)
    return form
