r"""Ensembles of trained models: the mean and spread of their predictions, and how well the spread ranks errors.

An ensemble of :math:`M` members predicts, per molecule and target, the mean
:math:`\bar p = \frac1M \sum_m p_m` of its members' predictions (values for
regression, probabilities for classification) and reports their standard
deviation :math:`s = \sqrt{\frac1M \sum_m (p_m - \bar p)^2}` (population
form, as chemprop's ensemble variance) as its uncertainty. How well
:math:`s` ranks the errors is the Spearman correlation between
:math:`|y - \bar p|` and :math:`s` over the labelled molecules of a target,
averaged over targets (``nan`` where undefined, e.g. constant :math:`s`).

Every finished run with a test split leaves its best epoch's test predictions
(:data:`PREDICTIONS_FILE`, NumPy ``.npz`` read without pickle) beside its
``result.json``; :func:`seed_ensembles` averages the seeds of every model.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from pyg_plstm.train.files import atomic_write
from pyg_plstm.train.metrics import Task, evaluate

__all__ = ["PREDICTIONS_FILE", "save_test_predictions", "load_test_predictions", "ensemble", "error_rank_correlation",
           "seed_ensembles"]

PREDICTIONS_FILE = "test_predictions.npz"


def save_test_predictions(out: str | Path, labels: Optional[Tensor], predictions: Tensor) -> None:
    """Write a run's test ``labels`` and ``predictions`` (in label units / probabilities) to ``out``."""
    buffer = io.BytesIO()
    label_array = np.full(tuple(predictions.shape), np.nan) if labels is None else labels.double().cpu().numpy()
    np.savez(buffer, labels=label_array, predictions=predictions.double().cpu().numpy())
    atomic_write(Path(out) / PREDICTIONS_FILE, buffer.getvalue())


def load_test_predictions(run_dir: str | Path) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``(labels, predictions)`` saved in ``run_dir``, or ``None`` if the run left none."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return arrays["labels"], arrays["predictions"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path} is not a readable predictions file: {err}") from None


def ensemble(predictions: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The mean and (population) standard deviation over the members' ``predictions`` (same shapes)."""
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in predictions])
    return stacked.mean(0), stacked.std(0)


def error_rank_correlation(labels: np.ndarray, mean: np.ndarray, std: np.ndarray) -> float:
    """Spearman correlation of ``|labels - mean|`` with ``std`` over labelled entries, averaged over targets
    (columns); ``nan`` if no target has it defined."""
    from scipy.stats import spearmanr

    labels, mean, std = (np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (labels, mean, std))
    scores = []
    for t in range(labels.shape[1]):
        labelled = ~np.isnan(labels[:, t])
        error, spread = np.abs(labels[labelled, t] - mean[labelled, t]), std[labelled, t]
        if labelled.sum() > 1 and np.ptp(error) > 0 and np.ptp(spread) > 0:
            scores.append(float(spearmanr(error, spread).statistic))
    return float(np.mean(scores)) if scores else float("nan")


def seed_ensembles(out_dir: str | Path, runs: Sequence[Mapping[str, Any]], task: Task) -> list[dict[str, Any]]:
    """One row per model with two or more finished seeds in ``out_dir`` that saved test predictions: the
    ensemble's test metrics, its members and the Spearman correlation of its errors with its spread.

    Multi-class ensembles average class probabilities and report no correlation.
    """
    by_model: dict[str, list[int]] = {}
    for run in runs:
        by_model.setdefault(run["model"], []).append(run["seed"])
    rows = []
    for model, seeds in by_model.items():
        saved = {seed: load_test_predictions(Path(out_dir) / model / f"seed{seed}") for seed in seeds}
        saved = {seed: arrays for seed, arrays in saved.items() if arrays is not None}
        if len(saved) < 2:
            continue
        labels = next(iter(saved.values()))[0]
        if any(not np.array_equal(a[0], labels, equal_nan=True) for a in saved.values()):
            raise ValueError(f"the seeds of {model} in {out_dir} saved test predictions for different labels")
        mean, std = ensemble([a[1] for a in saved.values()])
        # Probabilities score like logits: every classification metric here depends on their order only.
        metrics = evaluate(task, torch.from_numpy(labels), torch.from_numpy(mean))
        correlation = float("nan") if task.type == "multiclass" else error_rank_correlation(labels, mean, std)
        rows.append({"model": model, "seeds": sorted(saved), "test": metrics, "spearman_error_std": correlation})
    return rows
