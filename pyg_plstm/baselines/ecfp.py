r"""Fingerprint baselines: ECFP bits of the SMILES into a Tanimoto SVM or a random forest, one per target.

``ecfp-svr`` is :class:`~pyg_plstm.baselines.svm.TanimotoSVM` (SVR; SVC for
binary targets), ``ecfp-rf`` is :class:`~pyg_plstm.baselines.forest.NodeForest`
(regressor; classifier for binary targets), both on the Morgan bits of
:func:`~pyg_plstm.chem.features.fingerprints` (ECFP4, 2,048 bits by default),
as the classical models of MoleculeACE. Each target is fitted on its labelled
molecules only (missing labels, NaN, are left out), so multi-task sets with
gaps work. :meth:`ECFPModel.predict` gives, per target, the SVR/forest value
for regression and a logit for binary targets: the SVC's decision value, or
the log-odds of the forest's class-1 fraction (clipped to
``[CLIP, 1 - CLIP]``).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

from pyg_plstm.baselines.forest import NodeForest
from pyg_plstm.baselines.svm import TanimotoSVM
from pyg_plstm.chem.features import FP_RADIUS, FP_SIZE, fingerprints

__all__ = ["ECFP_MODELS", "SVR_C_GRID", "ECFPModel", "ecfp_config"]

# The SVM's C is picked from this grid on the validation split; epsilon and the forest are fixed.
SVR_C_GRID = (0.1, 1.0, 10.0, 100.0)
SVR_EPSILON = 0.1
RF_TREES = 500
# Breiman's defaults: a third of the features per split for regression, their square root for classification.
RF_MAX_FEATURES = {False: 1 / 3, True: "sqrt"}
CLIP = 1e-6

# Model name -> estimator.
ECFP_MODELS = {"ecfp-svr": TanimotoSVM, "ecfp-rf": NodeForest}


def ecfp_config(name: str, out_channels: int, classify: bool, radius: int = FP_RADIUS,
                size: int = FP_SIZE) -> dict[str, Any]:
    """The settings of fingerprint model ``name`` (stored in its checkpoint and run record)."""
    if name not in ECFP_MODELS:
        raise ValueError(f"unknown fingerprint model {name!r}; choose one of {tuple(ECFP_MODELS)}")
    config = {"name": name, "out_channels": out_channels, "classify": classify, "radius": radius, "size": size}
    if name == "ecfp-svr":
        return {**config, "C_grid": list(SVR_C_GRID), "epsilon": SVR_EPSILON}
    return {**config, "n_estimators": RF_TREES, "max_features": RF_MAX_FEATURES[classify]}


class ECFPModel:
    r"""One fingerprint estimator per target (see the module notes).

    Args:
        config (dict): As :func:`ecfp_config` returns.
        C (float, optional): The SVM's ``C`` (``ecfp-svr``; default the middle of the grid).
        seed (int): The forest's random state (``ecfp-rf``; the SVM has no randomness).
    """

    def __init__(self, config: Mapping[str, Any], C: Optional[float] = None, seed: int = 0) -> None:
        self.config = dict(config)
        self.name = self.config["name"]
        if self.name not in ECFP_MODELS:
            raise ValueError(f"unknown fingerprint model {self.name!r}; choose one of {tuple(ECFP_MODELS)}")
        grid = self.config.get("C_grid") or [1.0]
        self.C = float(grid[len(grid) // 2] if C is None else C)
        self.seed = seed
        self.estimators: list[TanimotoSVM | NodeForest] = []

    def featurize(self, smiles: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
        """Fingerprint bits of ``smiles`` and ``{row: error}`` for those that cannot be parsed."""
        return fingerprints(smiles, self.config["radius"], self.config["size"])

    def _estimator(self) -> TanimotoSVM | NodeForest:
        classify = self.config["classify"]
        if self.name == "ecfp-svr":
            return TanimotoSVM(self.C, self.config["epsilon"], classify)
        return NodeForest(self.config["n_estimators"], self.config["max_features"], classify, self.seed)

    def fit(self, bits: np.ndarray, y: np.ndarray, n_jobs: int = 1) -> "ECFPModel":
        """Fit one estimator per column of ``y`` ``[n, out_channels]`` (NaN = missing) on its labelled rows."""
        y = np.asarray(y, dtype=np.float64).reshape(len(bits), -1)
        if y.shape[1] != self.config["out_channels"]:
            raise ValueError(f"labels have {y.shape[1]} target(s), the model {self.config['out_channels']}")
        self.estimators = []
        for t in range(y.shape[1]):
            labelled = ~np.isnan(y[:, t])
            estimator = self._estimator()
            try:
                if isinstance(estimator, NodeForest):
                    estimator.fit(bits[labelled], y[labelled, t], n_jobs)
                else:
                    estimator.fit(bits[labelled], y[labelled, t])
            except ValueError as err:
                raise ValueError(f"{self.name} cannot fit target {t}: {err}") from None
            self.estimators.append(estimator)
        return self

    def predict(self, bits: np.ndarray) -> np.ndarray:
        """``[n, out_channels]``: per target the regression value, or a logit for binary targets."""
        columns = []
        for estimator in self.estimators:
            if isinstance(estimator, TanimotoSVM):
                columns.append(estimator.decision(bits))
            elif estimator.classify:
                share = np.clip(estimator.predict(bits), CLIP, 1 - CLIP)
                columns.append(np.log(share / (1 - share)))
            else:
                columns.append(estimator.predict(bits))
        return np.stack(columns, 1) if columns else np.zeros((len(bits), 0))

    @property
    def num_parameters(self) -> int:
        return sum(estimator.num_parameters for estimator in self.estimators)

    def state_dict(self) -> dict[str, Any]:
        """The fitted estimators as arrays and numbers (see :meth:`from_state`)."""
        return {"C": self.C, "seed": self.seed, "estimators": [e.state_dict() for e in self.estimators]}

    @classmethod
    def from_state(cls, config: Mapping[str, Any], state: Mapping[str, Any]) -> "ECFPModel":
        model = cls(config, state["C"], state["seed"])
        kind = ECFP_MODELS[model.name]
        model.estimators = [kind.from_state(s) for s in state["estimators"]]
        if len(model.estimators) != config["out_channels"]:
            raise ValueError(f"the stored {model.name} has {len(model.estimators)} estimator(s) for "
                             f"{config['out_channels']} target(s)")
        return model

    def __repr__(self) -> str:
        return (f"ECFPModel({self.name}, radius={self.config['radius']}, size={self.config['size']}, "
                f"targets={len(self.estimators)})")
