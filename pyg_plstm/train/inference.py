r"""Predictions for SMILES from a checkpoint of any model: pLSTM, the GNN baselines or a fingerprint baseline.

:class:`Predictor` loads a checkpoint written by ``pyg-plstm train`` and maps
SMILES to predictions in label units (probabilities for binary targets);
SMILES that cannot be converted are reported per row, never predicted. A
model trained with molecule-level features gets them computed again from the
SMILES, as in training (and looked up in a descriptor file if it was trained
with one; a molecule the file lacks is refused like an invalid SMILES); the
checkpoint's scaler standardises them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from pyg_plstm.datasets.descriptors import MoleculeFeatures
from pyg_plstm.train.checkpoint import load_checkpoint
from pyg_plstm.train.classical import CHECKPOINT, is_classical, load_classical
from pyg_plstm.train.ensemble import ensemble
from pyg_plstm.train.metrics import output_values
from pyg_plstm.train.trainer import TargetScale, load_model, molecule_featurizer, predict

__all__ = ["Predictor", "checkpoint_paths", "predict_ensemble"]


class Predictor:
    r"""A trained checkpoint that predicts molecules given as SMILES.

    Args:
        path: ``best.pt`` / ``last.pt`` of a ``pyg-plstm train`` run.
        device: where graph models run (``'cpu'``, ``'cuda'``, ``'auto'``).
        batch_size: graphs per forward pass.
        descriptors: the descriptor file (CSV) of the molecules to predict, for a
            model trained with one (same columns and key); refused otherwise.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu", batch_size: int = 128,
                 descriptors: Optional[str | os.PathLike] = None) -> None:
        self.path, self.device, self.batch_size = str(path), device, batch_size
        ckpt = load_checkpoint(path)
        self.name = ckpt["model_config"].get("name")
        recorded = ckpt["meta"].get("molecule_features")
        self.features: Optional[MoleculeFeatures] = None
        if recorded is not None and not is_classical(self.name):
            try:
                self.features = MoleculeFeatures.from_meta(recorded, None if descriptors is None else str(descriptors))
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
        elif descriptors is not None and (recorded or {}).get("descriptors") is None:
            raise ValueError(f"{path} ({self.name}) was trained without a descriptor file; do not pass one")
        if is_classical(self.name):
            self.model: Any = load_classical(ckpt)
        else:
            # Only SMILES-featurised (regression / binary) models can predict from SMILES.
            self.to_graph = molecule_featurizer(ckpt, path)
            self.model, ckpt = load_model(path, device)
        self.task_type = ckpt["task"]["type"]
        self.target_norm = ckpt.get("target_norm")
        self.columns = list(ckpt["meta"].get("targets")
                            or [f"task_{t}" for t in range(ckpt["task"]["num_tasks"])])

    def __call__(self, smiles: Sequence[str]) -> tuple[np.ndarray, dict[int, str]]:
        """Predictions ``[len(smiles), len(columns)]`` (float64; NaN rows for refused SMILES) and
        ``{row: why it was refused}``."""
        values = np.full((len(smiles), len(self.columns)), np.nan)
        errors: dict[int, str] = {}
        if is_classical(self.name):
            bits, errors = self.model.featurize(smiles)
            ok = [row for row in range(len(smiles)) if row not in errors]
            scale = TargetScale(self.target_norm, torch.device("cpu"))
            out = scale.output(torch.from_numpy(self.model.predict(bits[ok])).float()) if ok else None
        else:
            graphs, ok = [], []
            for row, text in enumerate(smiles):
                try:
                    graph = self.to_graph.from_smiles(text)
                    if self.features is not None:
                        graph.molecule_features = torch.from_numpy(self.features(text, row)).reshape(1, -1)
                except (ValueError, TypeError) as err:
                    errors[row] = str(err)
                    continue
                graphs.append(graph)
                ok.append(row)
            out = predict(self.model, graphs, self.target_norm, self.batch_size, self.device) if ok else None
        if out is not None:
            values[ok] = output_values(self.task_type, out).double().cpu().numpy()
        return values, errors

    def __repr__(self) -> str:
        return f"Predictor({self.name}, {self.path}, targets={self.columns})"


def checkpoint_paths(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Checkpoint files from files and run folders: a folder stands for every ``best.pt`` below it (e.g. all
    seeds of a ``train --out`` folder, or of one model's folder), in path order."""
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            inside = sorted(entry.rglob(CHECKPOINT))
            if not inside:
                raise ValueError(f"{entry} is a folder without any {CHECKPOINT} below it")
            found += inside
        else:
            found.append(entry)
    return found


def predict_ensemble(members: Sequence[Predictor], smiles: Sequence[str]
                     ) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """The mean and standard deviation over ``members`` of their predictions for ``smiles``
    (:func:`~pyg_plstm.train.ensemble.ensemble`), and ``{row: why}`` for rows some member refused.

    The members must predict the same targets of the same task type.
    """
    first = members[0]
    for member in members[1:]:
        if (member.columns, member.task_type) != (first.columns, first.task_type):
            raise ValueError(f"{member.path} predicts {member.task_type} {member.columns}, {first.path} "
                             f"{first.task_type} {first.columns}: an ensemble needs the same targets")
    values, errors = [], {}
    for member in members:
        prediction, refused = member(smiles)
        values.append(prediction)
        for row, why in refused.items():
            errors.setdefault(row, why)
    mean, std = ensemble(values)
    mean[list(errors)], std[list(errors)] = np.nan, np.nan
    return mean, std, errors
