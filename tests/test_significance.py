"""The bootstrap of a difference in test RMSE: against a loop that redraws molecules and seeds one by one, on
identical models, on a clearly better model, and its refusals."""
import math

import numpy as np
import pytest

from pyg_plstm.train.significance import percentile_interval, rmse_difference_replicates


def _rmse(predictions, labels):
    return math.sqrt(sum((p - y) ** 2 for p, y in zip(predictions, labels)) / len(labels))


def _loop_replicates(labels, first, second, replicates, seed):
    """The same draws as the function takes them, in plain Python: the molecules first, then each model's seeds."""
    rng = np.random.default_rng(seed)
    molecules = rng.integers(0, len(labels), size=(replicates, len(labels)))
    seed_draws = [rng.integers(0, len(model), size=(replicates, len(model))) for model in (first, second)]
    values = []
    for b in range(replicates):
        drawn_labels = [labels[i] for i in molecules[b]]
        means = []
        for model, draws in zip((first, second), seed_draws):
            rmses = [_rmse([model[s][i] for i in molecules[b]], drawn_labels) for s in draws[b]]
            means.append(sum(rmses) / len(rmses))
        values.append(means[0] - means[1])
    return values


def test_replicates_equal_a_loop_over_redrawn_molecules_and_seeds():
    rng = np.random.default_rng(1)
    labels = rng.normal(size=11)
    first, second = labels + rng.normal(0, 0.5, size=(3, 11)), labels + rng.normal(0, 0.7, size=(2, 11))
    difference, replicates = rmse_difference_replicates(labels, first, second, replicates=25, seed=7)
    expected = (sum(_rmse(p, labels) for p in first) / 3) - (sum(_rmse(p, labels) for p in second) / 2)
    assert difference == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(replicates, _loop_replicates(labels, first, second, 25, 7), atol=1e-12)
    again = rmse_difference_replicates(labels, first, second, replicates=25, seed=7)[1]
    np.testing.assert_array_equal(replicates, again)
    assert not np.array_equal(replicates, rmse_difference_replicates(labels, first, second, replicates=25, seed=8)[1])


def test_a_model_against_itself_differs_by_zero_in_every_replicate():
    rng = np.random.default_rng(2)
    labels = rng.normal(size=30)
    predictions = labels + rng.normal(0, 0.3, size=(3, 30))
    difference, replicates = rmse_difference_replicates(labels, predictions, predictions.copy(), replicates=50)
    assert difference == 0
    # Each model's seeds are drawn on their own, so a replicate can pair different seeds; with one seed it cannot.
    single = predictions[:1]
    assert not rmse_difference_replicates(labels, single, single.copy(), replicates=50)[1].any()
    low, high = percentile_interval(replicates)
    assert low <= 0 <= high


def test_a_clearly_better_model_gets_an_interval_below_zero_and_equal_models_one_around_it():
    rng = np.random.default_rng(3)
    labels = rng.normal(size=200)
    good = labels + rng.normal(0, 0.2, size=(3, 200))
    bad = labels + rng.normal(0, 0.6, size=(3, 200))
    difference, replicates = rmse_difference_replicates(labels, good, bad)
    low, high = percentile_interval(replicates)
    assert low <= difference <= high < 0
    alike = labels + rng.normal(0, 0.2, size=(3, 200))
    low, high = percentile_interval(rmse_difference_replicates(labels, good, alike)[1])
    assert low < 0 < high


def test_percentile_interval_takes_the_quantiles():
    values = np.arange(1001, dtype=float)
    assert percentile_interval(values) == pytest.approx((25.0, 975.0))
    assert percentile_interval(values, 0.5) == pytest.approx((250.0, 750.0))


@pytest.mark.parametrize("labels, first, second, options, message", [
    ([1.0], [[1.0]], [[1.0]], {}, "at least 2 test labels"),
    ([1.0, float("nan")], [[1.0, 2.0]], [[1.0, 2.0]], {}, "non-finite"),
    ([1.0, 2.0], [1.0, 2.0], [[1.0, 2.0]], {}, r"`first` must be \[seeds, 2\]"),
    ([1.0, 2.0], [[1.0, 2.0]], [[1.0, 2.0, 3.0]], {}, r"`second` must be \[seeds, 2\]"),
    ([1.0, 2.0], [[1.0, float("inf")]], [[1.0, 2.0]], {}, "`first` holds non-finite"),
    ([1.0, 2.0], [[1.0, 2.0]], [[1.0, 2.0]], {"replicates": 0}, "`replicates` must be a positive integer"),
    ([1.0, 2.0], [[1.0, 2.0]], [[1.0, 2.0]], {"replicates": True}, "`replicates` must be a positive integer"),
])
def test_bad_input_is_refused_naming_it(labels, first, second, options, message):
    with pytest.raises(ValueError, match=message):
        rmse_difference_replicates(np.asarray(labels), first, second, **options)


@pytest.mark.parametrize("replicates, level, message", [
    ([], 0.95, "non-empty vector"), ([[1.0]], 0.95, "non-empty vector"), ([1.0], 1.0, r"`level` must be in \(0, 1\)"),
])
def test_bad_intervals_are_refused(replicates, level, message):
    with pytest.raises(ValueError, match=message):
        percentile_interval(replicates, level)
