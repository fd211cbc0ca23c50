r"""Several models × several seeds on one data set, ready for :func:`~pyg_plstm.train.report.write_report`."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from pyg_plstm.baselines import ecfp_config
from pyg_plstm.models import model_arguments, model_names
from pyg_plstm.train.classical import fit_classical, is_classical
from pyg_plstm.train.data import PreparedData
from pyg_plstm.train.metrics import Task
from pyg_plstm.train.trainer import TrainConfig, fit

__all__ = ["model_config", "run_config", "compare_models"]


def model_config(name: str, task: Task, encoders: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    """``make_model`` arguments for ``name`` predicting ``task`` from inputs described by ``encoders``
    (``in_channels``, ``edge_dim``, ``node_encoder``, ``edge_encoder``, as :attr:`PreparedData.encoders`).

    ``options`` (e.g. ``hidden_channels``, ``num_layers``) apply to every model; an option that is
    some model's own argument (:func:`~pyg_plstm.models.model_arguments`, e.g. pLSTM's ``block``)
    goes only to the models that take it. A fingerprint baseline (``ecfp-*``) takes none of them: its
    settings are :func:`~pyg_plstm.baselines.ecfp_config`'s.
    """
    if is_classical(name):
        return ecfp_config(name, task.out_channels, task.type == "binary")
    own = {arg for model in model_names() for arg in model_arguments(model)}
    taken = set(model_arguments(name))
    chosen = {k: v for k, v in options.items() if k not in own or k in taken}
    return {"name": name, "out_channels": task.out_channels, **encoders, **chosen}


def run_config(name: str, config: TrainConfig) -> dict[str, Any]:
    """The training settings a run of model ``name`` records: every :class:`TrainConfig` field for a graph
    model, only the seed for a fingerprint baseline (epochs, batches and learning rates do not apply)."""
    return {"seed": config.seed} if is_classical(name) else dataclasses.asdict(config)


def compare_models(
    data: PreparedData,
    models: Sequence[str],
    config: TrainConfig,
    seeds: Sequence[int] = (0,),
    out_dir: Optional[str | os.PathLike] = None,
    model_options: Optional[Mapping[str, Any]] = None,
    model_overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
    on_run_end: Optional[Callable[[dict[str, Any]], None]] = None,
    **fit_kwargs: Any,
) -> list[dict[str, Any]]:
    r"""Train every model with every seed (``config`` with its ``seed`` replaced).

    ``model_options`` go to every model (see :func:`model_config`);
    ``model_overrides[name]`` replace ``make_model`` arguments of model ``name`` only.

    Runs go to ``out_dir/<model>/seed<k>/``. Returns ``{"model", "seed", "result"}``
    dicts (``result`` as :meth:`RunResult.to_dict`), each also passed to
    ``on_run_end`` as soon as its run has finished; ``fit_kwargs`` go to :func:`fit`
    (of them, only ``resume`` to :func:`~pyg_plstm.train.classical.fit_classical` for
    the fingerprint baselines).
    """
    runs = []
    for name in models:
        settings = model_config(name, data.task, data.encoders, **(model_options or {}))
        settings.update((model_overrides or {}).get(name, {}))
        for seed in seeds:
            run_dir = None if out_dir is None else Path(out_dir) / name / f"seed{seed}"
            if is_classical(name):
                result = fit_classical(settings, data.task, data.splits, seed, run_dir,
                                       resume=fit_kwargs.get("resume", False), meta=data.meta)
            else:
                result = fit(settings, data.task, data.splits, dataclasses.replace(config, seed=seed), run_dir,
                             meta=data.meta, **fit_kwargs)
            runs.append({"model": name, "seed": seed, "result": result.to_dict()})
            if on_run_end is not None:
                on_run_end(runs[-1])
    return runs
