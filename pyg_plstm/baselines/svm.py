r"""Support vector machines on a Tanimoto kernel of fingerprint bits, stored as plain arrays.

For bit vectors :math:`a, b` the Tanimoto (Jaccard) kernel is

.. math::
    K(a, b) = \frac{a \cdot b}{|a| + |b| - a \cdot b},

with :math:`K = 1` for two empty fingerprints. A fitted machine predicts

.. math::
    f(x) = \sum_i \alpha_i K(x, s_i) + b

over its support fingerprints :math:`s_i` with dual coefficients
:math:`\alpha_i` and intercept :math:`b`: scikit-learn's ``SVR`` (regression)
or ``SVC`` (binary classification; :math:`f` is then its decision value,
positive for class 1) with ``kernel='precomputed'``, of which only these
arrays are kept, so a checkpoint needs no pickled estimator.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

__all__ = ["tanimoto", "TanimotoSVM"]


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The Tanimoto kernel ``[len(a), len(b)]`` (float64) between the 0/1 rows of ``a`` and of ``b``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    common = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - common
    return np.divide(common, union, out=np.ones_like(common), where=union > 0)


class TanimotoSVM:
    r"""An SVR (``classify=False``) or SVC (``classify=True``) on the Tanimoto kernel, for one target.

    Args:
        C (float): The regularisation parameter of scikit-learn's SVR/SVC.
        epsilon (float): The width of the SVR's insensitive tube (regression only).
        classify (bool): Fit an SVC on 0/1 labels instead of an SVR.
    """

    def __init__(self, C: float = 1.0, epsilon: float = 0.1, classify: bool = False) -> None:
        if not C > 0 or not epsilon >= 0:
            raise ValueError(f"`C` must be > 0 and `epsilon` >= 0, got C={C!r}, epsilon={epsilon!r}")
        self.C, self.epsilon, self.classify = float(C), float(epsilon), bool(classify)
        self.support = np.zeros((0, 0), dtype=np.uint8)
        self.dual_coef = np.zeros(0)
        self.intercept = 0.0

    def fit(self, bits: np.ndarray, y: np.ndarray, kernel: np.ndarray | None = None) -> "TanimotoSVM":
        """Fit on fingerprints ``bits`` ``[n, size]`` and labels ``y`` ``[n]``; ``kernel`` is
        ``tanimoto(bits, bits)`` when the caller has it already."""
        from sklearn.svm import SVC, SVR

        if kernel is None:
            kernel = tanimoto(bits, bits)
        if self.classify:
            if len(np.unique(y)) < 2:
                raise ValueError("an SVC needs training labels of both classes, got only "
                                 f"{np.unique(y).tolist()}")
            machine = SVC(C=self.C, kernel="precomputed").fit(kernel, y.astype(int))
            # scikit-learn's public dual_coef_/intercept_ give its decision_function (positive for classes_[1]).
            sign = 1.0 if machine.classes_[1] == 1 else -1.0
        else:
            machine = SVR(C=self.C, epsilon=self.epsilon, kernel="precomputed").fit(kernel, y)
            sign = 1.0
        self.support = np.asarray(bits)[machine.support_].astype(np.uint8)
        self.dual_coef = sign * machine.dual_coef_[0].astype(np.float64)
        self.intercept = sign * float(machine.intercept_[0])
        return self

    def decision(self, bits: np.ndarray) -> np.ndarray:
        """:math:`f(x)` for every row of ``bits``: the SVR's prediction, or the SVC's decision value."""
        return tanimoto(bits, self.support) @ self.dual_coef + self.intercept

    @property
    def num_parameters(self) -> int:
        """The fitted numbers: one dual coefficient per support vector and the intercept."""
        return self.dual_coef.size + 1

    def state_dict(self) -> dict[str, Any]:
        """Everything :meth:`from_state` needs, as NumPy arrays and numbers."""
        return {"C": self.C, "epsilon": self.epsilon, "classify": self.classify,
                "support": np.packbits(self.support, axis=1), "size": int(self.support.shape[1]),
                "dual_coef": self.dual_coef, "intercept": self.intercept}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "TanimotoSVM":
        machine = cls(state["C"], state["epsilon"], state["classify"])
        packed = np.asarray(state["support"], dtype=np.uint8)
        machine.support = np.unpackbits(packed, axis=1, count=int(state["size"]))
        machine.dual_coef = np.asarray(state["dual_coef"], dtype=np.float64)
        machine.intercept = float(state["intercept"])
        return machine

    def __repr__(self) -> str:
        kind = "SVC" if self.classify else "SVR"
        return f"TanimotoSVM({kind}, C={self.C:g}, epsilon={self.epsilon:g}, support={len(self.dual_coef)})"
