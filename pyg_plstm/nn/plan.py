r"""Per-forward-pass structure shared by all pLSTM layers of a model."""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from pyg_plstm.dag import DAG
from pyg_plstm.functional import schedule_for
from pyg_plstm.ops.level_scan import LevelSchedule
from pyg_plstm.ops.parallel import ParallelSchedule, parallel_schedule, prefer_parallel

MODES = ("P", "D")
FORMS = ("auto", "scan", "parallel")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}")


def check_form(form: str) -> None:
    if form not in FORMS:
        raise ValueError(f"`form` must be one of {FORMS}, got {form!r}")


class DAGPlan:
    r"""A (batched) :class:`~pyg_plstm.DAG` plus what pLSTM layers derive from
    it, computed on first use and then shared.

    Every layer runs on one *view* of the DAG: forward or reversed, with the
    full line graph (P-mode) or its multitree pruning (D-mode). A view's
    schedule (the sort of edges and line edges by topological level, see
    :func:`~pyg_plstm.functional.schedule_for`, plus the dense padding layout
    for the parallel form) depends only on the structure, so a model builds
    one plan per forward pass and all its layers reuse at most four schedules
    instead of re-sorting in every layer.

    Args:
        dag (DAG): The structure, e.g. from :func:`~pyg_plstm.get_dag`.
        batch (torch.Tensor, optional): Graph assignment of every node
            (:obj:`None` for a single graph).
        validate (bool, optional): Check each view's structure once when its
            schedule is built. (default: :obj:`True`)
    """

    def __init__(self, dag: DAG, batch: Optional[Tensor] = None, validate: bool = True) -> None:
        if not isinstance(dag, DAG):
            raise ValueError(f"`dag` must be a pyg_plstm.DAG, got {type(dag).__name__}")
        if batch is not None and (not isinstance(batch, Tensor) or batch.shape != (dag.num_nodes,)):
            raise ValueError(f"`batch` must be a tensor of shape [{dag.num_nodes}] (one graph id per node), "
                             f"got {list(batch.shape) if isinstance(batch, Tensor) else type(batch).__name__}")
        self.dag = dag
        self.batch = batch
        self.validate = validate
        self._views: dict[tuple[str, bool], DAG] = {}
        self._schedules: dict[tuple[str, bool, str], Union[LevelSchedule, ParallelSchedule]] = {}
        self._graph_sizes: Optional[tuple[int, int]] = None

    @property
    def num_nodes(self) -> int:
        return self.dag.num_nodes

    def view(self, mode: str, reverse: bool = False) -> DAG:
        """The DAG a ``mode`` layer runs on, in the given direction."""
        check_mode(mode)
        key = (mode, reverse)
        if key not in self._views:
            dag = self.dag.multitree() if mode == "D" else self.dag
            self._views[key] = dag.reverse() if reverse else dag
        return self._views[key]

    def form(self, form: str = "auto", key_dim: int = 1, value_dim: int = 1) -> str:
        """:obj:`"scan"` or :obj:`"parallel"` for a layer asking for :obj:`form`
        with per-head sizes :obj:`key_dim` and :obj:`value_dim`; :obj:`"auto"`
        follows the measured rule :func:`~pyg_plstm.ops.parallel.prefer_parallel`."""
        check_form(form)
        if form != "auto":
            return form
        if self._graph_sizes is None:
            if self.batch is None or self.num_nodes == 0:
                self._graph_sizes = (1, self.num_nodes)
            else:
                counts = torch.bincount(self.batch)
                self._graph_sizes = (counts.numel(), int(counts.max()))
        num_graphs, max_nodes = self._graph_sizes
        parallel = prefer_parallel(self.dag.num_edges, num_graphs, max_nodes, key_dim, value_dim)
        return "parallel" if parallel else "scan"

    def schedule(self, mode: str, reverse: bool = False,
                 form: str = "scan") -> Union[LevelSchedule, ParallelSchedule]:
        """The schedule of :meth:`view` for the operator form :obj:`form` (``"scan"`` or ``"parallel"``)."""
        if form not in ("scan", "parallel"):
            raise ValueError(f"`form` must be 'scan' or 'parallel' here (resolve 'auto' with form()), got {form!r}")
        key = (mode, reverse, form)
        if key not in self._schedules:
            dag = self.view(mode, reverse)
            if form == "parallel":
                self._schedules[key] = parallel_schedule(dag.edge_index, dag.line_index, dag.num_nodes,
                                                         self.batch, dag.edge_level, self.validate)
            else:
                self._schedules[key] = schedule_for(dag.edge_index, dag.line_index, dag.num_nodes,
                                                    dag.edge_level, self.validate)
        return self._schedules[key]

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, num_edges={self.dag.num_edges}, "
                f"num_line_edges={self.dag.line_index.size(1)})")
