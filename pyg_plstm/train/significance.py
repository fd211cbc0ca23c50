r"""How sure a difference in test RMSE between two models is: a bootstrap over test molecules and seeds.

Two models, each trained with several seeds, are compared by their test RMSE
averaged over the seeds, :math:`\Delta = \overline{\mathrm{RMSE}}_A -
\overline{\mathrm{RMSE}}_B`. That number moves with the test molecules that
happen to be in the split and with the seeds, and :func:`rmse_difference_replicates`
redraws both: each replicate draws the :math:`n` test molecules with replacement
(the same draw for both models: the comparison is paired by molecule) and,
independently per model, its seeds with replacement, and recomputes
:math:`\Delta`. The 2.5 % and 97.5 % quantiles of the replicates
(:func:`percentile_interval`) bound a 95 % interval; an interval that holds
0 means the two models are not told apart by these data. With 3 seeds the
seed draw is coarse, so the interval is an indication, not a test at an
exact level.

Differences over several data sets (e.g. of the mean over sets) take the
mean of the sets' replicates, replicate by replicate: the sets are drawn
independently.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rmse_difference_replicates", "percentile_interval"]


def _predictions(name: str, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    array = np.asarray(predictions, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] != num_labels:
        raise ValueError(f"`{name}` must be [seeds, {num_labels}] (one row of test predictions per seed, one "
                         f"column per label), got shape {list(array.shape)}")
    if not np.isfinite(array).all():
        raise ValueError(f"`{name}` holds non-finite predictions")
    return array


def rmse_difference_replicates(labels: np.ndarray, first: np.ndarray, second: np.ndarray, *,
                               replicates: int = 2000, seed: int = 0) -> tuple[float, np.ndarray]:
    """The seed-mean test RMSE of ``first`` minus that of ``second``, and ``replicates`` bootstrap replicates of it.

    Args:
        labels: ``[n]`` test labels (finite).
        first, second: ``[seeds, n]`` test predictions of each model, one row per seed (the two may have
            different numbers of seeds).
        replicates: how many bootstrap replicates.
        seed: seed of the draws (the same seed gives the same replicates).

    Returns:
        ``(difference, replicates)``: the difference on the data as they are, and ``[replicates]`` differences
        on redrawn test molecules and seeds.
    """
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 1 or labels.size < 2:
        raise ValueError(f"`labels` must be a vector of at least 2 test labels, got shape {list(labels.shape)}")
    if not np.isfinite(labels).all():
        raise ValueError("`labels` holds missing or non-finite values; keep the labelled molecules only")
    if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
        raise ValueError(f"`replicates` must be a positive integer, got {replicates!r}")
    squared = [(_predictions(name, p, labels.size) - labels) ** 2 for name, p in (("first", first), ("second", second))]
    difference = float(np.sqrt(squared[0].mean(1)).mean() - np.sqrt(squared[1].mean(1)).mean())
    rng = np.random.default_rng(seed)
    molecules = rng.integers(0, labels.size, size=(replicates, labels.size))
    means = []
    for errors in squared:
        num_seeds = errors.shape[0]
        # [seeds, replicates]: every seed's RMSE on every replicate's molecules.
        per_seed = np.sqrt(errors[:, molecules].mean(-1))
        drawn = rng.integers(0, num_seeds, size=(replicates, num_seeds))
        means.append(per_seed[drawn, np.arange(replicates)[:, None]].mean(1))
    return difference, means[0] - means[1]


def percentile_interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap ``replicates`` (their quantiles)."""
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1), got {level!r}")
    values = np.asarray(replicates, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"`replicates` must be a non-empty vector, got shape {list(values.shape)}")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
