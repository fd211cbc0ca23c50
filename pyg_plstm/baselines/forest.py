r"""Random forests stored as flat node arrays and evaluated by a NumPy traversal.

A fitted scikit-learn forest becomes five arrays over all nodes of all trees
(``left``, ``right``, ``feature``, ``threshold``, ``value``; a leaf has
``left == -1``) and the root of every tree. A sample goes left at a node when
``x[feature] <= threshold``, comparing ``x`` cast to float32 as scikit-learn
does; the forest predicts the mean of its trees' leaf values: the leaf mean
(regression) or the leaf's fraction of class 1 (binary classification), i.e.
``predict`` of ``RandomForestRegressor`` and ``predict_proba[:, 1]`` of
``RandomForestClassifier``. Nothing of scikit-learn is needed to predict.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["NodeForest"]

_ARRAYS = ("left", "right", "feature", "threshold", "value", "roots")
# Node indices fit 32 bits (a forest of 2^31 nodes would not fit in memory); thresholds stay float64 as
# scikit-learn's, so every comparison is the same.
_DTYPES = {"left": np.int32, "right": np.int32, "feature": np.int32, "threshold": np.float64,
           "value": np.float64, "roots": np.int64}


class NodeForest:
    r"""A random forest of one target as node arrays (see the module notes).

    Args:
        n_estimators (int): Trees to grow.
        max_features (float or str): Features tried per split, as scikit-learn's
            argument of that name.
        classify (bool): Grow classification trees on 0/1 labels.
        seed (int): The ``random_state`` of the forest (bootstrap and feature draws).
    """

    def __init__(self, n_estimators: int = 500, max_features: float | str = 1.0, classify: bool = False,
                 seed: int = 0) -> None:
        self.n_estimators, self.max_features, self.classify, self.seed = n_estimators, max_features, classify, seed
        self.left = self.right = self.feature = np.zeros(0, dtype=np.int32)
        self.roots = np.zeros(0, dtype=np.int64)
        self.threshold = self.value = np.zeros(0)

    def fit(self, x: np.ndarray, y: np.ndarray, n_jobs: int = 1) -> "NodeForest":
        """Grow the forest on ``x`` ``[n, features]`` and labels ``y`` ``[n]`` and keep its node arrays."""
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        kind = RandomForestClassifier if self.classify else RandomForestRegressor
        forest = kind(n_estimators=self.n_estimators, max_features=self.max_features, random_state=self.seed,
                      n_jobs=n_jobs).fit(x, y.astype(int) if self.classify else y)
        self.load_sklearn(forest)
        return self

    def load_sklearn(self, forest: Any) -> "NodeForest":
        """Take the node arrays of a fitted ``RandomForestRegressor`` / binary ``RandomForestClassifier``."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS}
        offset = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            leaf = tree.children_left < 0
            parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
            parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
            parts["feature"].append(np.where(leaf, 0, tree.feature))
            parts["threshold"].append(tree.threshold)
            value = tree.value[:, 0, :]
            if self.classify:
                # Class counts or fractions, depending on the scikit-learn release: normalise either way.
                positive = list(forest.classes_).index(1) if 1 in forest.classes_ else None
                share = value[:, positive] / value.sum(1) if positive is not None else np.zeros(len(value))
                parts["value"].append(share)
            else:
                parts["value"].append(value[:, 0])
            parts["roots"].append(np.array([offset]))
            offset += tree.node_count
        for name, chunks in parts.items():
            setattr(self, name, np.concatenate(chunks).astype(_DTYPES[name]))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The mean leaf value over the trees for every row of ``x`` (float64 ``[n]``)."""
        x = np.asarray(x, dtype=np.float32)
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        inner = self.left[node] >= 0
        while inner.any():
            r, t = np.nonzero(inner)
            at = node[r, t]
            go_left = x[r, self.feature[at]] <= self.threshold[at]
            node[r, t] = np.where(go_left, self.left[at], self.right[at])
            inner = self.left[node] >= 0
        return self.value[node].mean(1)

    @property
    def num_parameters(self) -> int:
        """The nodes of all trees."""
        return int(self.left.size)

    def state_dict(self) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "max_features": self.max_features, "classify": self.classify,
                "seed": self.seed, **{name: getattr(self, name) for name in _ARRAYS}}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "NodeForest":
        forest = cls(state["n_estimators"], state["max_features"], state["classify"], state["seed"])
        for name in _ARRAYS:
            setattr(forest, name, np.asarray(state[name], dtype=_DTYPES[name]))
        return forest

    def __repr__(self) -> str:
        kind = "classification" if self.classify else "regression"
        return (f"NodeForest({kind}, trees={len(self.roots)}, nodes={self.left.size}, "
                f"max_features={self.max_features!r})")
