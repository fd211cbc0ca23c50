r"""Graph-level training loop: best-validation model selection, exact resume, DDP.

:func:`fit` trains one model with one seed and returns the record at the best
validation epoch (as OGB reports it). It runs unchanged under ``torchrun``: each
process trains on its share of every global batch (see
:mod:`pyg_plstm.train.distributed`), so a data-parallel run follows the same
trajectory as a single-process one.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm

from pyg_plstm.checks import check_choice, check_positive
from pyg_plstm.chem import MolToDAG
from pyg_plstm.dag import DAGLoader
from pyg_plstm.models import make_model
from pyg_plstm.train import distributed as D
from pyg_plstm.train.checkpoint import check_config, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from pyg_plstm.train.ensemble import PREDICTIONS_FILE, save_test_predictions
from pyg_plstm.train.files import atomic_write
from pyg_plstm.train.fingerprint import PROCESSING_META, data_changes, scan_split
from pyg_plstm.train.metrics import Task, check_labels, evaluate, is_better, masked_loss, output_values
from pyg_plstm.train.report import json_safe
from pyg_plstm.train.run_folder import RESULT_FILE, replacing_dir, run_lock

__all__ = ["SCHEDULES", "TrainConfig", "RunResult", "TrainState", "TargetScale", "fit", "build_state",
           "train_epoch", "evaluate_split", "save_checkpoints", "check_resumable", "resume_state", "write_result",
           "predict", "molecule_featurizer", "check_splits", "scan_splits", "molecule_feature_matrix",
           "load_model", "make_target_norm", "lr_factor", "progress_enabled", "seed_everything", "batches_of"]

SPLITS = ("train", "valid", "test")
SCHEDULES = ("cosine", "constant")
# What a run leaves in its folder (checkpoints while it trains, the record once it has finished).
RUN_FILES = ("best.pt", "last.pt", RESULT_FILE, PREDICTIONS_FILE)


@dataclass
class TrainConfig:
    """Optimisation settings of one run (stored in checkpoints and compared on resume).

    Defaults follow the pLSTM paper's protocol: AdamW, cosine decay after a
    linear warm-up, gradient clipping at norm 1. These field defaults are the
    defaults of ``pyg-plstm train`` too.
    """

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 5
    schedule: str = "cosine"
    grad_clip: float = 1.0
    seed: int = 0
    normalize_targets: bool = True

    def __post_init__(self) -> None:
        check_positive(epochs=self.epochs, batch_size=self.batch_size)
        check_choice("schedule", self.schedule, SCHEDULES)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"`lr` must be a positive number, got {self.lr}")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"`{name}` must be a number >= 0, got {value}")
        for name in ("warmup_epochs", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}")
        if self.warmup_epochs > self.epochs:
            warnings.warn(f"warmup_epochs={self.warmup_epochs} is longer than the run (epochs={self.epochs}): the "
                          f"learning rate rises for the whole run and never reaches lr={self.lr}", stacklevel=3)


@dataclass
class RunResult:
    """Outcome of :func:`fit`: the best-validation epoch's metrics and the full history."""

    best_epoch: int
    best: dict[str, dict[str, float]]
    history: list[dict[str, Any]]
    num_parameters: int
    seconds_per_epoch: float
    cpu_seconds_per_epoch: float
    out_dir: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def progress_enabled(requested: bool = True) -> bool:
    """Progress bars only for humans: not in CI, not when stderr is redirected."""
    return requested and not os.environ.get("CI") and sys.stderr.isatty()


def batches_of(loader: DataLoader) -> Iterator[Any]:
    """The batches of ``loader``; with worker processes, Ctrl-C stops it cleanly between two batches.

    A terminal sends Ctrl-C to every process of the command. Workers that got
    it would die with tracebacks of their own (and the main process with
    "DataLoader worker exited unexpectedly"), so SIGINT is blocked while they
    are forked and stays blocked in them (the mask is inherited). In the main
    process it is held back while a batch is fetched: a fetch cut short leaves
    a worker whose tensor transfer breaks off, with a traceback. It takes
    effect, as :class:`KeyboardInterrupt`, before the next batch is fetched;
    the workers are shut down as it unwinds.
    """
    if loader.num_workers == 0 or threading.current_thread() is not threading.main_thread():
        yield from loader
        return
    interrupts: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupts.append(signum))
    try:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            batches = iter(loader)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for batch in batches:
            if interrupts:
                break
            yield batch
        if interrupts:
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_target_norm(task: Task, train_labels: Tensor, enabled: bool = True) -> Optional[dict[str, Tensor]]:
    """Per-target mean/std of the training labels (regression only; ``None`` otherwise)."""
    if task.type != "regression" or not enabled:
        return None
    y = train_labels
    if y.size(1) != task.num_tasks:
        raise ValueError(f"labels have {y.size(1)} targets but the task declares {task.num_tasks}")
    labelled = ~torch.isnan(y)
    count = labelled.sum(0).clamp(min=1)
    mean = torch.where(labelled, y, 0).sum(0) / count
    var = torch.where(labelled, (y - mean) ** 2, 0).sum(0) / count
    # A constant target has std 0; leave its scale alone rather than divide by zero.
    std = torch.where(var > 0, var.sqrt(), torch.ones_like(var))
    return {"mean": mean.float(), "std": std.float()}


def lr_factor(config: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning-rate multiplier per optimiser step: linear warm-up, then cosine decay (or constant)."""
    warmup = config.warmup_epochs * steps_per_epoch
    total = config.epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class TargetScale:
    """Labels to the scale the model is trained on (:meth:`target`) and its outputs back to label units
    (:meth:`output`); the identity without a ``norm`` (see :func:`make_target_norm`)."""

    def __init__(self, norm: Optional[Mapping[str, Tensor]], device: torch.device) -> None:
        self.norm = None if norm is None else {k: v.to(device) for k, v in norm.items()}

    def target(self, y: Tensor) -> Tensor:
        return y if self.norm is None else (y - self.norm["mean"]) / self.norm["std"]

    def output(self, pred: Tensor) -> Tensor:
        return pred if self.norm is None else pred * self.norm["std"] + self.norm["mean"]


def _loader(module: nn.Module, dataset: Dataset, device: torch.device, num_workers: int,
            **kwargs: Any) -> torch.utils.data.DataLoader:
    """The batches of ``dataset``; for a model that prepares its structure ahead of time, on CPU, each
    batch carries its DAG with the model's schedules, built in the loader (its workers, if any)."""
    prepare = getattr(module, "prepare_structure", None)
    if prepare is None or device.type != "cpu":
        return DataLoader(dataset, num_workers=num_workers, **kwargs)
    return DAGLoader(dataset, prepare=prepare, num_workers=num_workers, **kwargs)


@torch.no_grad()
def _predict(module: nn.Module, dataset: Dataset, batch_size: int, device: torch.device,
             scale: TargetScale, env: D.DistEnv, num_workers: int = 0, progress: bool = False,
             desc: str = "eval") -> tuple[Optional[Tensor], Tensor]:
    """Labels (``None`` for unlabelled graphs) and (denormalised) predictions, each process doing a shard."""
    module.eval()
    shard = Subset(dataset, range(env.rank, len(dataset), env.world_size))
    ys, preds = [], []
    if len(shard):
        loader = _loader(module, shard, device, num_workers, batch_size=batch_size, shuffle=False)
        for data in tqdm(batches_of(loader), total=len(loader), desc=desc, leave=False, disable=not progress):
            data = data.to(device)
            preds.append(scale.output(module(data)).float().cpu())
            if getattr(data, "y", None) is not None:
                ys.append(data.y.float().cpu())
    parts = D.gather_shards((ys, preds), env)
    ys = [t for p_ys, _ in parts for t in p_ys]
    pred = torch.cat([t for _, p_preds in parts for t in p_preds])
    y = torch.cat(ys) if ys else None
    if env.world_size > 1:
        # Shards come rank after rank; put every graph back in its place in the data set.
        order = torch.cat([torch.arange(r, len(dataset), env.world_size) for r in range(env.world_size)])
        place = torch.empty_like(order)
        place[order] = torch.arange(len(order))
        pred, y = pred[place], (None if y is None else y[place])
    return y, pred


def predict(module: nn.Module, dataset: Dataset, target_norm: Optional[Mapping[str, Tensor]] = None,
            batch_size: int = 128, device: str | torch.device = "cpu") -> Tensor:
    """Predictions (in label units) for every graph of ``dataset``, in order, computed on ``device``
    (the module is moved there) in eval mode; the module is left in the mode the caller had it in."""
    check_positive(batch_size=batch_size)
    device = D.resolve_device(device)
    was_training = module.training
    try:
        return _predict(module.to(device), dataset, batch_size, device, TargetScale(target_norm, device),
                        D.DistEnv(device=device))[1]
    finally:
        module.train(was_training)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint; returns it (in eval mode) and the checkpoint."""
    device = D.resolve_device(device)
    ckpt = load_checkpoint(path, map_location=device)
    model = make_model(**ckpt["model_config"])
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:  # torch lists missing / unexpected / misshapen weights
        raise ValueError(f"{path}: the stored weights do not fit the stored model settings: {err}") from None
    return model.to(device).eval(), ckpt


def molecule_featurizer(ckpt: Mapping[str, Any], path: str | os.PathLike) -> MolToDAG:
    """How the checkpoint's model turns SMILES into graphs; refused for a model not trained on SMILES."""
    featurizer = ckpt["meta"].get("featurizer")
    if featurizer is None:
        raise ValueError(f"{path} was not trained on SMILES ({ckpt['meta'].get('dataset')}); it needs a molecule "
                         "model")
    return MolToDAG(**featurizer)


def _epoch_line(record: Mapping[str, Any], eval_splits: list[str], epochs: int, improved: bool) -> str:
    metrics = " | ".join(" ".join(f"{s} {k} {v:.4f}" for k, v in record[s].items()) for s in eval_splits)
    return (f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs} | loss {record['loss']:.4f} | {metrics} | "
            f"{record['time_epoch']:.1f}s" + (" *" if improved else ""))


def write_result(out: Path, settings: Mapping[str, Any], result: RunResult) -> None:
    """The record of a finished run, ``out/result.json``: model name, seed, settings (config, model_config, task,
    meta, data fingerprint) and the :class:`RunResult` (read back by :func:`~pyg_plstm.train.run_folder.load_runs`)."""
    record = {"model": settings["model_config"].get("name"), "seed": settings["config"]["seed"], **settings,
              "result": result.to_dict()}
    atomic_write(out / RESULT_FILE, json.dumps(json_safe(record), indent=2))


@dataclass
class TrainState:
    """Everything a training run changes, i.e. what ``last.pt`` stores to resume it exactly."""

    module: nn.Module  # the model itself (checkpointed)
    model: nn.Module  # what is trained: the module, or its DDP wrapper under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: D.GlobalBatchSampler
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: Optional[dict[str, Any]] = None
    best_state: Optional[dict[str, Tensor]] = None

    def record(self, task: Task, record: dict[str, Any]) -> bool:
        """Append an epoch's record; keep it (and the weights) if it is the best so far. Returns whether it is."""
        self.history.append(record)
        self.epoch = record["epoch"]
        improved = self.best is None or is_better(task.metric, record["valid"][task.metric],
                                                  self.best["valid"][task.metric])
        if improved:
            self.best = record
            self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        return improved


def molecule_feature_matrix(dataset: Dataset) -> Tensor:
    """The ``molecule_features`` of every graph of ``dataset``, ``[len(dataset), dim]``; refused when a graph
    has none."""
    rows = []
    for i in range(len(dataset)):
        features = getattr(dataset[i], "molecule_features", None)
        if features is None:
            raise ValueError(f"graph {i} has no `molecule_features`, but the model takes them")
        rows.append(features.reshape(1, -1))
    return torch.cat(rows)


def build_state(model_config: Mapping[str, Any], config: TrainConfig, train: Dataset, env: D.DistEnv) -> TrainState:
    """A fresh model (seeded with ``config.seed``), its AdamW optimiser, schedule and batch sampler for the
    training split ``train``, whose rows fit the model's molecule-feature scaler if it has one."""
    seed_everything(config.seed)
    module = make_model(**model_config)
    scaler = getattr(module, "molecule_scaler", None)
    if scaler is not None:
        scaler.fit(molecule_feature_matrix(train))
    module = module.to(env.device)
    if env.distributed and env.device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    model: nn.Module = module
    if env.distributed:
        model = nn.parallel.DistributedDataParallel(
            module, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    sampler = D.GlobalBatchSampler(len(train), config.batch_size, shuffle=True, seed=config.seed, rank=env.rank,
                                   world_size=env.world_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, len(sampler)))
    return TrainState(module, model, optimizer, scheduler, sampler)


def train_epoch(state: TrainState, epoch: int, dataset: Dataset, task: Task, scale: TargetScale,
                config: TrainConfig, env: D.DistEnv, num_workers: int = 0, progress: bool = False) -> dict[str, Any]:
    """One pass over the training set; returns the mean loss per label, the last learning rate and the times."""
    t0, c0 = time.perf_counter(), time.process_time()
    model, optimizer = state.model, state.optimizer
    model.train()
    state.sampler.set_epoch(epoch)
    batches = state.sampler.batches()
    loader = _loader(state.module, dataset, env.device, num_workers, batch_sampler=[idx for idx, _ in batches])
    loss_sum, loss_count = torch.zeros((), device=env.device), 0
    progress_bar = tqdm(batches_of(loader), total=len(loader), desc="train", leave=False, disable=not progress)
    for data, (_, weight) in zip(progress_bar, batches):
        data = data.to(env.device)
        loss, count = masked_loss(task, model(data), scale.target(data.y))
        count = count if weight else 0
        total = D.all_reduce_sum([float(count)], env)[0]
        # DDP averages gradients over processes; scaling by world_size / global count turns that
        # into the mean over the global batch's labels, as in a single-process run.
        factor = weight * env.world_size / total if total else 0.0
        optimizer.zero_grad(set_to_none=True)
        (loss * factor).backward()
        if total:
            if config.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        state.scheduler.step()
        loss_sum += loss.detach() * weight
        loss_count += count
    loss_sum, loss_count = D.all_reduce_sum([float(loss_sum), float(loss_count)], env)
    return {"loss": loss_sum / max(loss_count, 1.0), "lr": optimizer.param_groups[0]["lr"],
            "time_train": time.perf_counter() - t0, "cpu_train": time.process_time() - c0}


def evaluate_split(module: nn.Module, dataset: Dataset, task: Task, scale: TargetScale, env: D.DistEnv,
                   batch_size: int, num_workers: int = 0, progress: bool = False,
                   desc: str = "eval") -> dict[str, float]:
    """Every metric of ``task`` for ``module`` on ``dataset`` (each process predicts a shard)."""
    y, pred = _predict(module, dataset, batch_size, env.device, scale, env, num_workers, progress, desc=desc)
    return evaluate(task, y, pred)


def save_checkpoints(out: Path, payload: Mapping[str, Any], state: TrainState, improved: bool) -> None:
    """``best.pt`` (if ``improved``) and ``last.pt`` (with what resuming needs) in ``out``."""
    if improved:
        save_checkpoint(out / "best.pt", payload)
    save_checkpoint(out / "last.pt", {**payload, "optimizer": state.optimizer.state_dict(),
                                      "scheduler": state.scheduler.state_dict(), "history": state.history,
                                      "best": state.best, "rng": rng_state()})


def check_resumable(ckpt: Mapping[str, Any], settings: Mapping[str, Any], path: Path) -> None:
    """Raise :class:`ValueError` naming every difference when checkpoint ``ckpt`` (read from ``path``) was made on
    other data (fingerprints differ) or with other ``settings`` (config, model_config, task, meta) than this run's."""
    changes = data_changes(ckpt.get("data"), settings["data"])
    if changes:
        raise ValueError(f"checkpoint {path} was made on other data:\n  " + "\n  ".join(changes)
                         + "\nstart afresh (without resuming) or restore the data it was made on")
    for key, value in settings.items():
        if key != "data":
            check_config(ckpt[key], value, f"checkpoint {path} ({key})",
                         ignore=[PROCESSING_META] if key == "meta" else [])


def resume_state(out: Path, state: TrainState, settings: Mapping[str, Any], device: torch.device) -> bool:
    """Load ``out/last.pt`` (and the best weights) into ``state``; ``False`` if there is none.

    Raises :class:`ValueError` naming every difference when the checkpoint was
    made on other data (fingerprints differ) or with other settings.
    """
    last_path = out / "last.pt"
    if not last_path.is_file():
        return False
    ckpt = load_checkpoint(last_path, map_location=device)
    check_resumable(ckpt, settings, last_path)
    state.module.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    state.history, state.best, state.epoch = ckpt["history"], ckpt["best"], ckpt["epoch"]
    state.best_state = load_checkpoint(out / "best.pt", map_location=device)["model"]
    set_rng_state(ckpt["rng"])
    return True


def check_splits(splits: Mapping[str, Dataset]) -> None:
    """Refuse splits without ``train`` and ``valid``, with unknown names or empty ones."""
    missing = [s for s in ("train", "valid") if s not in splits]
    if missing:
        raise ValueError(f"`splits` needs the split(s) {missing}; got {sorted(splits)}")
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split name(s) {unknown}; use {SPLITS}")
    empty = [s for s, ds in splits.items() if len(ds) == 0]
    if empty:
        raise ValueError(f"split(s) {empty} are empty")


def scan_splits(task: Task, splits: Mapping[str, Dataset], meta: Mapping[str, Any]
                ) -> tuple[dict[str, Tensor], dict[str, Any], list[str]]:
    """Labels and data fingerprint of every split (:func:`~pyg_plstm.train.fingerprint.scan_split`), and the
    notices of :func:`~pyg_plstm.train.metrics.check_labels` (which refuses labels that cannot be trained on)."""
    labels, fingerprint = {}, {}
    for name, dataset in splits.items():
        labels[name], fingerprint[name] = scan_split(name, dataset)
    notices = check_labels(task, labels, meta.get("targets") or [f"task_{t}" for t in range(task.num_tasks)])
    return labels, fingerprint, notices


def fit(
    model_config: Mapping[str, Any],
    task: Task,
    splits: Mapping[str, Dataset],
    config: TrainConfig,
    out_dir: Optional[str | os.PathLike] = None,
    resume: bool = False,
    device: str = "auto",
    num_workers: int = 0,
    progress: bool = False,
    meta: Optional[Mapping[str, Any]] = None,
    log: Callable[[str], None] = tqdm.write,
    on_epoch_end: Optional[Callable[[dict[str, Any]], None]] = None,
) -> RunResult:
    r"""Train ``make_model(**model_config)`` on ``splits['train']`` and select by ``splits['valid']``.

    Valid and test metrics are recorded after every epoch; the train metric
    once at the end, for the best epoch's weights. Labels are checked first
    (:func:`~pyg_plstm.train.metrics.check_labels`); a loss that turns
    non-finite stops the run with :class:`FloatingPointError`.

    Args:
        model_config: keyword arguments of :func:`~pyg_plstm.models.make_model`
            (plain values; stored in checkpoints so :func:`load_model` can rebuild).
        task: what is predicted and the selection metric.
        splits: datasets ``'train'``, ``'valid'`` and optionally ``'test'``.
        out_dir: where ``best.pt``, ``last.pt`` and, once finished,
            ``result.json`` go (none if ``None``).
        resume: continue from ``out_dir/last.pt`` if present; the data (by its
            fingerprint) and the stored settings (config, model, task,
            ``meta``) must match this call's.
        meta: plain data describing the dataset (name, ``targets``, ...) kept in checkpoints.
        on_epoch_end: called with each epoch's record (after checkpointing).
    """
    check_splits(splits)
    if resume and out_dir is None:
        raise ValueError("`resume` needs an `out_dir` holding the interrupted run's last.pt")
    model_config, meta = dict(model_config), dict(meta or {})
    labels, fingerprint, notices = scan_splits(task, splits, meta)
    env = D.setup(device)
    out = Path(out_dir) if out_dir is not None else None
    show = progress and env.is_main
    for notice in notices if env.is_main else ():
        log(notice)

    with contextlib.ExitStack() as stack:
        # Only the main process writes: it holds the run's lock, so no other process writes this run meanwhile.
        if out is not None and env.is_main:
            stack.enter_context(run_lock(out))
        state = build_state(model_config, config, splits["train"], env)
        norm = make_target_norm(task, labels["train"], config.normalize_targets)
        scale = TargetScale(norm, env.device)
        settings = {"config": asdict(config), "model_config": model_config, "task": task.to_dict(), "meta": meta,
                    "data": fingerprint}
        # Where this run writes: its folder, or, when that holds an earlier run, a new folder that
        # replaces it only once this run has finished (a failed run leaves the earlier one whole).
        write_dir = out
        if resume and resume_state(out, state, settings, env.device):
            if env.is_main:
                log(f"resumed from {out / 'last.pt'} after epoch {state.epoch}")
        elif out is not None and env.is_main:
            if resume:
                log(f"nothing to resume in {out}; starting afresh")
            if any((out / name).exists() for name in RUN_FILES):
                write_dir = stack.enter_context(replacing_dir(out))

        def evaluate_on(split: str) -> dict[str, float]:
            return evaluate_split(state.module, splits[split], task, scale, env, config.batch_size * 4, num_workers,
                                  show, desc=split)

        eval_splits = [s for s in splits if s != "train"]
        epochs_bar = tqdm(total=config.epochs, initial=state.epoch, unit="epoch", disable=not show,
                          desc=f"{model_config.get('name', 'model')} seed {config.seed}")
        for epoch in range(state.epoch + 1, config.epochs + 1):
            t0 = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch, **train_epoch(state, epoch, splits["train"], task, scale, config,
                                                                   env, num_workers, show)}
            if not math.isfinite(record["loss"]):
                raise FloatingPointError(f"training diverged: the loss is {record['loss']} in epoch {epoch}; try a "
                                         "lower learning rate or gradient clipping")
            D.sync_buffers(state.module, env)
            for split in eval_splits:
                record[split] = evaluate_on(split)
            record["time_epoch"] = time.perf_counter() - t0
            improved = state.record(task, record)
            if out is not None and env.is_main:
                save_checkpoints(write_dir, {**settings, "model": state.module.state_dict(), "target_norm": norm,
                                             "epoch": epoch, "metrics": record}, state, improved)
            D.barrier(env)
            if env.is_main:
                log(_epoch_line(record, eval_splits, config.epochs, improved))
            epochs_bar.update(1)
            if on_epoch_end is not None:
                on_epoch_end(record)
        epochs_bar.close()

        # The train metric only matters at the best epoch: one pass over the training set at the end
        # gives the same numbers as evaluating it after every epoch, at a fraction of the cost.
        state.module.load_state_dict(state.best_state)
        best = {**state.best, "train": evaluate_on("train")}
        if "test" in splits:
            # The best epoch's test predictions, for ensembles over seeds (see pyg_plstm.train.ensemble).
            test_y, test_pred = _predict(state.module, splits["test"], config.batch_size * 4, env.device, scale, env,
                                         num_workers)
            if out is not None and env.is_main:
                save_test_predictions(write_dir, test_y, output_values(task.type, test_pred))
        history = state.history
        result = RunResult(
            best_epoch=best["epoch"],
            best={s: best[s] for s in splits},
            history=history,
            num_parameters=sum(p.numel() for p in state.module.parameters()),
            seconds_per_epoch=float(np.mean([h["time_train"] for h in history])),
            cpu_seconds_per_epoch=float(np.mean([h["cpu_train"] for h in history])),
            out_dir=str(out) if out is not None else None,
        )
        if out is not None and env.is_main:
            write_result(write_dir, settings, result)
        return result
