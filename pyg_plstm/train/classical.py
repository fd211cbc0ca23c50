r"""Training the fingerprint baselines (``ecfp-svr``, ``ecfp-rf``) like any model: run record, checkpoint, report.

:func:`fit_classical` is :func:`~pyg_plstm.train.fit` for the models of
:mod:`pyg_plstm.baselines`: it reads the SMILES of every graph, fits on the
training split (regression targets standardised with the training labels'
mean and std, as for the neural models), and writes ``best.pt`` and
``result.json`` in the same layout, so reports, ``--resume`` checks and
``predict`` treat it as any run. The fit is one step, recorded as epoch 1:

* ``ecfp-svr``: ``C`` is picked from :data:`~pyg_plstm.baselines.SVR_C_GRID`
  by the validation split's headline metric (the one choice made on data;
  ``epsilon`` is fixed); the SVM has no randomness, so every seed gives the
  same model;
* ``ecfp-rf``: fixed settings (500 trees, Breiman's features per split); the
  seed draws the bootstraps and features, so seeds differ.

Its ``seconds_per_epoch`` is the time of the whole fit, every ``C`` of the
grid included (the fingerprints are computed before, as graphs are in data
processing). ``num_parameters`` counts the dual coefficients and intercepts
(SVM) or the tree nodes (forest). The checkpoint holds the estimators as
tensors and plain values (:func:`~pyg_plstm.train.checkpoint.save_checkpoint`,
loaded with ``weights_only``), never a pickled scikit-learn object.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from pyg_plstm.baselines import ECFP_MODELS, ECFPModel
from pyg_plstm.train.checkpoint import load_checkpoint, save_checkpoint
from pyg_plstm.train.ensemble import save_test_predictions
from pyg_plstm.train.metrics import Task, evaluate, is_better, masked_loss, output_values
from pyg_plstm.train.run_folder import RESULT_FILE
from pyg_plstm.train.trainer import (
    RunResult,
    TargetScale,
    check_resumable,
    check_splits,
    make_target_norm,
    scan_splits,
    write_result,
)

__all__ = ["CHECKPOINT", "is_classical", "split_smiles", "fit_classical", "load_classical"]

# The one checkpoint of a fingerprint run (there is no training state to resume).
CHECKPOINT = "best.pt"


def is_classical(name: str) -> bool:
    """Whether ``name`` is a fingerprint baseline rather than a graph model."""
    return name in ECFP_MODELS


def split_smiles(name: str, dataset: Dataset) -> list[str]:
    """The SMILES of every graph of split ``name``, in order; refused when a graph has none."""
    smiles = []
    for i in range(len(dataset)):
        text = getattr(dataset[i], "smiles", None)
        if not isinstance(text, str):
            raise ValueError(f"graph {i} of the {name!r} split has no SMILES; the fingerprint models need "
                             "molecule data sets")
        smiles.append(text)
    return smiles


def _to_tensors(value: Any) -> Any:
    """NumPy arrays (nested in dicts and lists) as tensors, for a ``weights_only`` checkpoint."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, Mapping):
        return {k: _to_tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_tensors(v) for v in value]
    return value


def _to_arrays(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, Mapping):
        return {k: _to_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_arrays(v) for v in value]
    return value


def load_classical(ckpt: Mapping[str, Any]) -> ECFPModel:
    """The fitted fingerprint model of a checkpoint written by :func:`fit_classical`."""
    return ECFPModel.from_state(ckpt["model_config"], _to_arrays(ckpt["model"]))


def _features(model: ECFPModel, split: str, dataset: Dataset) -> np.ndarray:
    bits, errors = model.featurize(split_smiles(split, dataset))
    if errors:
        row, error = next(iter(errors.items()))
        raise ValueError(f"graph {row} of the {split!r} split: {error}")
    return bits


def fit_classical(
    model_config: Mapping[str, Any],
    task: Task,
    splits: Mapping[str, Dataset],
    seed: int,
    out_dir: Optional[str | os.PathLike] = None,
    resume: bool = False,
    meta: Optional[Mapping[str, Any]] = None,
    log: Callable[[str], None] = tqdm.write,
) -> RunResult:
    r"""Fit fingerprint model ``model_config`` (see :func:`~pyg_plstm.baselines.ecfp_config`) with ``seed``.

    Same contract as :func:`~pyg_plstm.train.fit` (splits, labels, ``meta``,
    files in ``out_dir``); ``resume`` checks that an earlier checkpoint there
    was made on the same data with the same settings, then fits again (the
    fit is deterministic given the seed).
    """
    check_splits(splits)
    if task.type == "multiclass":
        raise ValueError(f"{model_config['name']} predicts regression or binary targets, not {task.num_tasks} "
                         "classes")
    model_config, meta = dict(model_config), dict(meta or {})
    labels, fingerprint, notices = scan_splits(task, splits, meta)
    for notice in notices:
        log(notice)
    settings = {"config": {"seed": seed}, "model_config": model_config, "task": task.to_dict(), "meta": meta,
                "data": fingerprint}
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        if resume and (out / CHECKPOINT).is_file():
            check_resumable(load_checkpoint(out / CHECKPOINT), settings, out / CHECKPOINT)
        (out / RESULT_FILE).unlink(missing_ok=True)

    norm = make_target_norm(task, labels["train"].float())
    scale = TargetScale(norm, torch.device("cpu"))
    probe = ECFPModel(model_config, seed=seed)
    bits = {name: _features(probe, name, dataset) for name, dataset in splits.items()}
    y_train = scale.target(labels["train"].float()).double().numpy()

    def predict(model: ECFPModel, split: str) -> Tensor:
        return scale.output(torch.from_numpy(model.predict(bits[split])).float())

    t0, c0 = time.perf_counter(), time.process_time()
    grid: Sequence[Optional[float]] = model_config.get("C_grid") or [None]
    best, selection = None, []
    for C in grid:
        model = ECFPModel(model_config, C, seed).fit(bits["train"], y_train, n_jobs=torch.get_num_threads())
        score = evaluate(task, labels["valid"], predict(model, "valid"))[task.metric]
        selection.append({"C": C, f"valid_{task.metric}": score})
        if best is None or is_better(task.metric, score, best[1]):
            best = (model, score)
    model = best[0]
    time_train, cpu_train = time.perf_counter() - t0, time.process_time() - c0

    metrics = {name: evaluate(task, labels[name], predict(model, name)) for name in splits}
    train_pred = torch.from_numpy(model.predict(bits["train"])).float()
    loss, count = masked_loss(task, train_pred, torch.from_numpy(y_train).float())
    record = {"epoch": 1, "loss": float(loss) / max(count, 1), "time_train": time_train, "cpu_train": cpu_train,
              **{name: metrics[name] for name in splits if name != "train"},
              "time_epoch": time.perf_counter() - t0}
    if len(grid) > 1:
        record["selection"] = selection
        log(f"{model_config['name']}: C={model.C:g} by valid {task.metric} "
            + ", ".join(f"{s['C']:g}: {s[f'valid_{task.metric}']:.4f}" for s in selection))
    if out is not None:
        if "test" in splits:
            save_test_predictions(out, labels["test"], output_values(task.type, predict(model, "test")))
        save_checkpoint(out / CHECKPOINT, {**settings, "model": _to_tensors(model.state_dict()),
                                           "target_norm": norm, "epoch": 1, "metrics": record})
    result = RunResult(best_epoch=1, best=metrics, history=[record], num_parameters=model.num_parameters,
                       seconds_per_epoch=time_train, cpu_seconds_per_epoch=cpu_train,
                       out_dir=str(out) if out is not None else None)
    if out is not None:
        write_result(out, settings, result)
    return result
