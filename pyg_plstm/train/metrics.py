r"""Task descriptions, NaN-masked losses and evaluation metrics.

Labels follow OGB's convention: a float tensor ``[num_graphs, num_tasks]``
with ``NaN`` where a label is missing (multi-task classification). Losses and
metrics ignore missing entries. For OGB datasets the headline metric is
computed by OGB's own :class:`~ogb.graphproppred.Evaluator`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["Task", "METRICS", "masked_loss", "evaluate", "is_better", "check_labels", "output_values"]

TASK_TYPES = ("regression", "binary", "multiclass")
# Metric name -> higher is better.
METRICS = {"rmse": False, "mae": False, "rocauc": True, "ap": True, "acc": True}
_TASK_METRICS = {"regression": ("rmse", "mae"), "binary": ("rocauc", "ap"), "multiclass": ("acc",)}


@dataclass(frozen=True)
class Task:
    """What is predicted and how it is scored.

    Args:
        type: ``'regression'``, ``'binary'`` (one or more binary tasks, NaN =
            missing) or ``'multiclass'`` (one integer class per graph).
        num_tasks: number of targets, or of classes for ``'multiclass'``.
        metric: headline metric used for model selection (default: the first
            metric of the task type, ``rmse`` / ``rocauc`` / ``acc``).
        ogb_name: OGB dataset name whose ``Evaluator`` scores the headline metric.
    """

    type: str
    num_tasks: int
    metric: str = ""
    ogb_name: Optional[str] = None

    def __post_init__(self) -> None:
        if self.type not in TASK_TYPES:
            raise ValueError(f"unknown task type {self.type!r}; choose one of {TASK_TYPES}")
        if not isinstance(self.num_tasks, int) or self.num_tasks <= 0:
            raise ValueError(f"`num_tasks` must be a positive integer, got {self.num_tasks!r}")
        if not self.metric:
            object.__setattr__(self, "metric", _TASK_METRICS[self.type][0])
        if self.metric not in _TASK_METRICS[self.type]:
            raise ValueError(
                f"metric {self.metric!r} does not apply to {self.type} tasks; "
                f"choose one of {_TASK_METRICS[self.type]}"
            )

    @property
    def metrics(self) -> tuple[str, ...]:
        """All metrics reported for this task, headline first."""
        return (self.metric,) + tuple(m for m in _TASK_METRICS[self.type] if m != self.metric)

    @property
    def out_channels(self) -> int:
        return self.num_tasks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def output_values(task_type: str, pred: Tensor) -> Tensor:
    """Model outputs in the units users read: probabilities for classification (the sigmoid of binary logits,
    the softmax over classes), the values themselves for regression."""
    if task_type == "binary":
        return pred.sigmoid()
    if task_type == "multiclass":
        return pred.softmax(-1)
    return pred


def is_better(metric: str, new: float, old: Optional[float]) -> bool:
    """Whether ``new`` improves on ``old`` (``None`` = nothing yet)."""
    if old is None or np.isnan(old):
        return not np.isnan(new)
    return new > old if METRICS[metric] else new < old


def masked_loss(task: Task, pred: Tensor, y: Tensor) -> tuple[Tensor, int]:
    """Summed loss over labelled entries and their count (so callers can average globally)."""
    if task.type == "multiclass":
        target = y.reshape(-1).long()
        return F.cross_entropy(pred, target, reduction="sum"), target.numel()
    y = y.reshape(pred.shape)
    labelled = ~torch.isnan(y)
    pred, target = pred[labelled], y[labelled]
    if task.type == "binary":
        loss = F.binary_cross_entropy_with_logits(pred, target, reduction="sum")
    else:
        loss = F.mse_loss(pred, target, reduction="sum")
    return loss, int(labelled.sum())


def _per_task(y_true: np.ndarray, y_pred: np.ndarray, fn: Any, need_both_classes: bool) -> float:
    """Mean of ``fn`` over tasks, each on its labelled rows (OGB's convention)."""
    scores = []
    for t in range(y_true.shape[1]):
        labelled = ~np.isnan(y_true[:, t])
        yt, yp = y_true[labelled, t], y_pred[labelled, t]
        if yt.size == 0 or (need_both_classes and len(np.unique(yt)) < 2):
            continue
        scores.append(fn(yt, yp))
    return float(np.mean(scores)) if scores else float("nan")


def _metric(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if name == "rmse":
        return _per_task(y_true, y_pred, lambda t, p: np.sqrt(np.mean((t - p) ** 2)), False)
    if name == "mae":
        return _per_task(y_true, y_pred, lambda t, p: np.mean(np.abs(t - p)), False)
    if name == "rocauc":
        return _per_task(y_true, y_pred, roc_auc_score, True)
    if name == "ap":
        return _per_task(y_true, y_pred, average_precision_score, True)
    if name == "acc":
        return float(np.mean(y_pred.argmax(-1) == y_true.reshape(-1))) if y_true.size else float("nan")
    raise ValueError(f"unknown metric {name!r}; choose one of {tuple(METRICS)}")


def evaluate(task: Task, y_true: Tensor, y_pred: Tensor) -> dict[str, float]:
    """All metrics of ``task`` for predictions ``y_pred`` (logits / values) against ``y_true``.

    A metric that is undefined on this data (e.g. ROC-AUC without both classes
    in any task) is ``nan``.
    """
    yt = y_true.detach().cpu().double().numpy()
    yp = y_pred.detach().cpu().double().numpy()
    if task.type != "multiclass":
        yt = yt.reshape(yp.shape)
    out = {name: _metric(name, yt, yp) for name in task.metrics}
    if task.ogb_name is not None:
        out[task.metric] = _ogb_score(task, yt, yp)
    return out


def _ogb_score(task: Task, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from ogb.graphproppred import Evaluator

    evaluator = Evaluator(task.ogb_name)
    if evaluator.eval_metric != task.metric:
        raise ValueError(
            f"OGB scores {task.ogb_name} by {evaluator.eval_metric!r}, but the task's metric is {task.metric!r}"
        )
    if task.type == "multiclass":
        y_true, y_pred = y_true.reshape(-1, 1), y_pred.argmax(-1).reshape(-1, 1)
    try:
        return float(evaluator.eval({"y_true": y_true, "y_pred": y_pred})[task.metric])
    except RuntimeError:
        # OGB refuses a split where no task has both classes; report it as undefined like ours.
        return float("nan")


def _column_problem(task: Task, y: Tensor) -> Optional[str]:
    """Why one target column cannot be scored (``None`` if it can)."""
    labelled = y[~torch.isnan(y)]
    if labelled.numel() == 0:
        return "has no labels"
    if task.type == "binary":
        classes = labelled.unique()
        if classes.numel() < 2:
            return f"has only class {classes.item():g} ({', '.join(task.metrics)} undefined)"
    return None


def check_labels(task: Task, labels: Mapping[str, Tensor], columns: Sequence[str]) -> list[str]:
    r"""Refuse labels that cannot be trained on or scored; return notices about partly scored splits.

    ``labels`` maps split names to ``[num_graphs, num_targets]`` tensors (NaN =
    missing) and ``columns`` names the targets. Raises :class:`ValueError`
    naming the column and the split when a target has no label in ``train``,
    when no target of a split can be scored (no labels, or a binary target
    with one class only; every split is scored), for an infinite label and
    for a class outside ``0 .. num_tasks - 1``. A split where only some
    targets cannot be scored is scored on the others, as OGB's evaluator does;
    the notices say which.
    """
    notices = []
    for split, y in labels.items():
        if task.type == "multiclass":
            bad = y[torch.isnan(y) | (y < 0) | (y >= task.num_tasks) | (y != y.round())]
            if bad.numel():
                raise ValueError(f"the {split!r} split has the class label {bad[0].item():g}; classes are the "
                                 f"integers 0 .. {task.num_tasks - 1}")
            continue
        if y.size(1) != len(columns):
            raise ValueError(f"the {split!r} split has {y.size(1)} target(s), but {len(columns)} are named "
                             f"({list(columns)})")
        if torch.isinf(y).any():
            column = columns[int(torch.isinf(y).any(0).nonzero()[0])]
            raise ValueError(f"column {column!r} has an infinite label in the {split!r} split")
        problems = {c: p for c, p in zip(columns, (_column_problem(task, y[:, t]) for t in range(y.size(1)))) if p}
        empty = [c for c, p in problems.items() if p == "has no labels"]
        if split == "train" and empty:
            raise ValueError(f"column {empty[0]!r} has no labels in the 'train' split; nothing to learn it from")
        described = "; ".join(f"column {c!r} {p}" for c, p in problems.items())
        if len(problems) == len(columns):
            raise ValueError(f"the {split!r} split cannot be scored: {described}")
        if problems:
            notices.append(f"the {split!r} split is scored without the targets it cannot score: {described}")
    return notices
