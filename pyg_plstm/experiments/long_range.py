r"""Long-range DAG benchmark: pLSTM (P, D, PD blocks) against message passing.

Trains every model on a task of :mod:`pyg_plstm.datasets.synthetic` with walk
lengths ``--train-depth`` and reports test accuracy in distribution (same
depths) and in extrapolation (``--test-depth``, longer walks on larger graphs),
as mean ± std over seeds, with the chance level. Every finished run is
recorded at once in ``--out/runs/<model>/seed<k>.json``; ``results.json``,
``results.md`` (the table) and ``accuracy_by_depth.png`` are rebuilt from all
records in ``--out`` after each run, so an interrupted benchmark keeps what it
finished, running the same command again trains only the missing runs, and
several commands (e.g. one per model) may share a folder; the folder follows
the rules of ``pyg-plstm train``'s (:mod:`pyg_plstm.train.run_folder`: one
writer per run, the same refusals). The table states how
often the label's walk survives D-mode's multitree pruning (where it does not,
a D-mode layer cannot carry the label along it).

Models (``--models``):

* ``plstm-P``, ``plstm-D``, ``plstm-PD``: :class:`~pyg_plstm.models.PLSTMNet` with
  ``--plstm-blocks`` blocks of that pattern on the directed DAG (edge feature:
  the mark). One block already sees the whole DAG ancestry.
* ``gin``, ``gat``: ``--gnn-layers`` layers (GINE / GAT with edge features).
* ``gin-deep``: GIN with one layer per hop of the longest training walk, the
  receptive depth of one pLSTM layer on the training graphs.

Message-passing models get both directions of every edge with edge features
``[mark, is_forward]``, so they may pass messages either way and still know
the direction. Model selection: best validation accuracy (in distribution).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from pyg_plstm.checks import check_positive
from pyg_plstm.dag import RandomPruning
from pyg_plstm.datasets.synthetic import KINDS, long_range_dataset, marked_walk, path_permutation, permutations
from pyg_plstm.datasets.synthetic import TASKS as WALK_TASKS
from pyg_plstm.models import POOLINGS
from pyg_plstm.train import Task, TrainConfig, fit, load_model, predict
from pyg_plstm.train.compare import model_config as train_model_config
from pyg_plstm.train.files import atomic_open, atomic_write
from pyg_plstm.train.report import json_safe, markdown_table, mean_std, summarize
from pyg_plstm.train.run_folder import Layout, RunFolder, run_settings

__all__ = ["D_PRUNINGS", "MODELS", "DEFAULT_MODELS", "HOUSEHOLDER_MODELS", "STATE_TASKS", "TASKS", "RESULT_FILES",
           "LongRangeConfig", "message_passing_view", "model_config",
           "walk_survives_multitree", "run", "load_records", "summarize_records", "results_table", "per_seed_table",
           "plot_accuracy_by_depth", "write_outputs", "build_parser", "main"]

# State tracking along the marked walk: the task and n of the group S_n whose elements the walk composes.
STATE_TASKS = {"path_parity": 2, "path_s3": 3, "path_s5": 5}
TASKS = WALK_TASKS + tuple(STATE_TASKS)
DEFAULT_MODELS = ("plstm-P", "plstm-D", "plstm-PD", "gin", "gat", "gin-deep")
# pLSTM with Householder transitions: "plstm-<block>-hh<n_h>", "-pos" keeps the eigenvalues in [0, 1].
HOUSEHOLDER_MODELS = tuple(f"plstm-{block}-hh{steps}{sign}" for block in ("P", "PD") for steps in (1, 2, 4)
                           for sign in ("", "-pos"))
MODELS = DEFAULT_MODELS + HOUSEHOLDER_MODELS
_PLSTM_NAME = re.compile(r"plstm-(?P<block>PD|P|D)(?:-hh(?P<steps>\d+)(?P<pos>-pos)?)?$")
RESULT_FILES = ("results.json", "results.md", "accuracy_by_depth.png")
# A run is its record, written once it has finished.
RUNS = Layout(run="runs/{model}/seed{seed}.json", record="runs/{model}/seed{seed}.json", reports=RESULT_FILES,
              what="long-range run", fields=("model", "seed", "result", "data", "by_depth"))
# The fields that define the graphs: one table only holds runs on the same ones.
# D-mode's multitree: prepared once ("fixed"), reversed layers re-pruned in their own direction
# ("own-reverse"), or drawn afresh for every training graph in every epoch ("random").
D_PRUNINGS = ("fixed", "own-reverse", "random")
DATA_FIELDS = ("task", "kind", "train_depth", "test_depth", "width", "num_classes", "max_degree", "d_pruning",
               "num_train", "num_eval")
_TRAIN = TrainConfig()


@dataclass(frozen=True)
class LongRangeConfig:
    """Everything that defines one benchmark table.

    ``num_eval`` graphs each are drawn for validation, in-distribution test
    and extrapolation test; split ``k`` of seed ``s`` uses data seed ``4 s + k``.
    The state-tracking tasks (:data:`STATE_TASKS`: parity, :math:`S_3`,
    :math:`S_5` along the walk, :func:`~pyg_plstm.datasets.synthetic.path_permutation`)
    have ``n!`` classes: ``num_classes`` is set to that.
    Batch size and learning rate are :class:`~pyg_plstm.train.TrainConfig`'s
    defaults; the epochs, the warm-up of :meth:`train_config` and the model
    sizes are this benchmark's protocol (that of the README's recorded
    results), fixed here so that library defaults can change without changing it.
    """

    task: str = "source_class"
    kind: str = "dag"
    train_depth: tuple[int, int] = (1, 5)
    test_depth: tuple[int, int] = (8, 12)
    width: int = 4
    num_classes: int = 4
    max_degree: int = 2
    num_train: int = 1000
    num_eval: int = 256
    models: tuple[str, ...] = DEFAULT_MODELS
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 30
    batch_size: int = _TRAIN.batch_size
    lr: float = _TRAIN.lr
    hidden_channels: int = 32
    heads: int = 4
    plstm_blocks: int = 2
    gnn_layers: int = 4
    pooling: str = "mean"
    d_pruning: str = "fixed"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown graph kind {self.kind!r}; choose one of {KINDS}")
        if self.task in STATE_TASKS:
            object.__setattr__(self, "num_classes", len(permutations(STATE_TASKS[self.task])))
        for name in ("train_depth", "test_depth"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ValueError(f"`{name}` must be a range 1 <= min <= max, got {(lo, hi)}")
        check_positive(**{name: getattr(self, name) for name in (
            "width", "num_classes", "max_degree", "num_train", "num_eval", "hidden_channels", "heads", "plstm_blocks",
            "gnn_layers")})
        if self.num_classes < 2:
            raise ValueError(f"`num_classes` must be at least 2, got {self.num_classes}")
        if self.task in WALK_TASKS and self.width % self.num_classes:
            raise ValueError(f"`width` ({self.width}) must be a multiple of `num_classes` ({self.num_classes})")
        if not self.models or any(m not in MODELS for m in self.models):
            raise ValueError(f"`models` must be a non-empty selection of {MODELS}, got {self.models!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"`seeds` must be distinct non-negative integers, got {self.seeds!r}")
        if self.d_pruning not in D_PRUNINGS:
            raise ValueError(f"unknown d_pruning {self.d_pruning!r}; choose one of {D_PRUNINGS}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose one of {POOLINGS}")
        if self.hidden_channels % self.heads:
            raise ValueError(f"`hidden_channels` ({self.hidden_channels}) must be divisible by `heads` "
                             f"({self.heads}) for GAT")
        self.train_config(0)  # TrainConfig checks epochs, batch size and learning rate

    @property
    def chance(self) -> float:
        """Accuracy of guessing (the classes are balanced)."""
        return 1.0 / self.num_classes

    @property
    def deep_layers(self) -> int:
        """Layers of ``gin-deep``: the longest training walk."""
        return self.train_depth[1]

    @property
    def task_spec(self) -> Task:
        """What the models predict: one of ``num_classes`` classes, scored by accuracy."""
        return Task("multiclass", self.num_classes)

    def data_settings(self) -> dict[str, Any]:
        """The settings that define the graphs (as stored in JSON)."""
        return json.loads(json.dumps({name: getattr(self, name) for name in DATA_FIELDS}))

    def train_config(self, seed: int) -> TrainConfig:
        """The optimisation settings of one run: a short warm-up (2 epochs), the library's other defaults."""
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           warmup_epochs=min(2, self.epochs - 1), seed=seed)


def message_passing_view(data: Data) -> Data:
    """The graph as message-passing models see it: both directions of every
    edge, edge features ``[mark, is_forward]``."""
    ei, mark = data.edge_index, data.edge_attr
    forward = torch.cat([mark, torch.ones_like(mark)], 1)
    backward = torch.cat([mark, torch.zeros_like(mark)], 1)
    return Data(x=data.x, edge_index=torch.cat([ei, ei.flip(0)], 1), edge_attr=torch.cat([forward, backward]),
                y=data.y, depth=data.depth, num_nodes=data.num_nodes)


def walk_survives_multitree(data: Data) -> bool:
    """Whether D-mode's multitree pruning keeps every line edge of the walk
    that defines the label; if not, no D-mode layer can carry the label along it."""
    walk = marked_walk(data)
    kept = {tuple(pair) for pair in data.line_index[:, data.multitree_mask].t().tolist()}
    return all(pair in kept for pair in zip(walk, walk[1:]))


def model_config(model: str, config: LongRangeConfig) -> dict[str, Any]:
    """:func:`~pyg_plstm.models.make_model` arguments of ``model``, built by
    :func:`pyg_plstm.train.compare.model_config` as for ``pyg-plstm train``."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    match = _PLSTM_NAME.match(model)
    name = "plstm" if match else "gin" if model == "gin-deep" else model
    layers = config.plstm_blocks if match else config.deep_layers if model == "gin-deep" else config.gnn_layers
    # pLSTM reads the mark on the directed edges; message passing also gets the direction (see the module doc).
    inputs = {"in_channels": config.num_classes + 1, "edge_dim": 1 if match else 2}
    own: dict[str, Any] = {}
    if match:
        own["block"] = match["block"]
        if config.d_pruning == "own-reverse":
            own["reverse_pruning"] = "own"
        if match["steps"]:
            own.update(transition="householder", householder_steps=int(match["steps"]),
                       negative_eigenvalues=not match["pos"])
    return train_model_config(name, config.task_spec, inputs, hidden_channels=config.hidden_channels,
                              heads=config.heads, pooling=config.pooling, num_layers=layers, **own)


def _label(row: Mapping[str, Any]) -> str:
    settings = row["model_config"]
    if settings["name"] == "plstm":
        transition = ""
        if settings.get("transition") == "householder":
            eigenvalues = "[-1, 1]" if settings["negative_eigenvalues"] else "[0, 1]"
            transition = f", Householder n_h={settings['householder_steps']}, eigenvalues {eigenvalues}"
        return f"pLSTM-{settings['block']}{transition} ({settings['num_layers']} blocks)"
    return f"{'GAT' if settings['name'] == 'gat' else 'GIN'} ({settings['num_layers']} layers)"


def _splits(config: LongRangeConfig, seed: int) -> dict[str, list[Data]]:
    def draw(k: int, num: int, depth: tuple[int, int]) -> list[Data]:
        if config.task in STATE_TASKS:
            return path_permutation(num, depth, degree=STATE_TASKS[config.task], width=config.width,
                                    kind=config.kind, max_degree=config.max_degree, seed=4 * seed + k)
        return long_range_dataset(config.task, num, depth, width=config.width, num_classes=config.num_classes,
                                  kind=config.kind, max_degree=config.max_degree, seed=4 * seed + k)

    return {"train": draw(0, config.num_train, config.train_depth),
            "valid": draw(1, config.num_eval, config.train_depth),
            "test_id": draw(2, config.num_eval, config.train_depth),
            "test_ood": draw(3, config.num_eval, config.test_depth)}


def _accuracy_by_depth(correct: np.ndarray, depth: np.ndarray) -> dict[str, float]:
    # String keys, as JSON stores them.
    return {str(int(d)): float(correct[depth == d].mean()) for d in np.unique(depth)}


class _Transformed(Sequence):
    """``graphs`` with ``transform`` applied on every access (a fresh draw each epoch)."""

    def __init__(self, graphs: Sequence[Data], transform: Callable[[Data], Data]) -> None:
        self.graphs, self.transform = graphs, transform

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, index: int) -> Data:
        return self.transform(self.graphs[index])


def _run_one(model: str, seed: int, splits: dict[str, list[Data]], config: LongRangeConfig,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Train ``model`` with ``seed``; the record of its scores at the best-validation epoch."""
    settings = model_config(model, config)
    train_config = config.train_config(seed)
    with tempfile.TemporaryDirectory() as tmp:
        train = splits["train"]
        if config.d_pruning == "random" and settings["name"] == "plstm":
            train = _Transformed(train, RandomPruning())
        result = fit(settings, config.task_spec, {"train": train, "valid": splits["valid"]}, train_config,
                     out_dir=tmp, log=log)
        best, _ = load_model(Path(tmp) / "best.pt")
    scores = {"valid": result.best["valid"]}
    correct, depth = [], []
    for split in ("test_id", "test_ood"):
        data = splits[split]
        y = torch.cat([d.y for d in data])
        hit = (predict(best, data).argmax(-1) == y).numpy()
        scores[split] = {"acc": float(hit.mean())}
        correct.append(hit)
        depth.append(torch.cat([d.depth for d in data]).numpy())
    return {"model": model, "seed": seed, "data": config.data_settings(),
            **run_settings(dataclasses.asdict(train_config), settings),
            "result": {"best_epoch": result.best_epoch, "best": scores, "num_parameters": result.num_parameters,
                       "seconds_per_epoch": result.seconds_per_epoch,
                       "cpu_seconds_per_epoch": result.cpu_seconds_per_epoch},
            "by_depth": _accuracy_by_depth(np.concatenate(correct), np.concatenate(depth))}


def load_records(out_dir: str | Path) -> list[dict[str, Any]]:
    """The records of the finished runs in ``out_dir`` (``runs/<model>/seed<k>.json``), in :data:`MODELS` order."""
    folder = RunFolder(out_dir, RUNS)
    records = folder.records(order=MODELS)
    for record in records:
        if record["model"] not in MODELS:
            raise ValueError(f"{folder.record_path(record['model'], record['seed'])} is not a long-range run record "
                             f"(unknown model {record['model']!r})")
    return records


def _data_changes(config: LongRangeConfig) -> Callable[[Mapping[str, Any]], list[str]]:
    """How a record's graphs differ from those of ``config``."""
    data = config.data_settings()

    def changes(record: Mapping[str, Any]) -> list[str]:
        saved = record["data"]
        return [f"{key}: {saved.get(key)!r} there, {data.get(key)!r} now" for key in sorted(set(saved) | set(data))
                if saved.get(key) != data.get(key)]

    return changes


def run(config: LongRangeConfig, out_dir: str | Path, overwrite: bool = False,
        log: Callable[[str], None] = print, epoch_log: Callable[[str], None] = lambda _: None,
        command: Optional[str] = None) -> dict[str, Any]:
    r"""Train and evaluate every model with every seed, recording each run in ``out_dir`` as it finishes.

    Runs ``out_dir`` already holds with the same settings are kept, not
    retrained; ``overwrite`` retrains those it holds with other settings
    (:meth:`~pyg_plstm.train.run_folder.RunFolder.plan`). Every run of the call
    is locked while it lasts. Returns the results of every run in ``out_dir``
    (see :func:`write_outputs`).
    """
    folder = RunFolder(out_dir, RUNS)
    out = folder.path
    planned = {m: run_settings(dataclasses.asdict(config.train_config(0)), model_config(m, config))
               for m in config.models}
    results = None
    with folder.lock((m, s) for s in config.seeds for m in config.models):
        folder.check_reports(overwrite)
        kept = folder.plan(load_records(out), planned, config.seeds, _data_changes(config), overwrite, keep=True)
        for seed in config.seeds:
            todo = [m for m in config.models if (m, seed) not in kept]
            for model in config.models:
                if (model, seed) in kept:
                    log(f"{model:>9} seed {seed}: kept from {folder.record_path(model, seed)}")
            if not todo:
                continue
            splits = _splits(config, seed)
            survival = {split: [sum(walk_survives_multitree(d) for d in splits[split]), len(splits[split])]
                        for split in ("test_id", "test_ood")}
            mp_splits = {name: [message_passing_view(d) for d in data] for name, data in splits.items()}
            for model in todo:
                start = time.perf_counter()
                record = _run_one(model, seed, splits if model.startswith("plstm-") else mp_splits, config,
                                  epoch_log)
                record.update(walk_survives_multitree=survival, command=command)
                folder.write_record(record)
                results = write_outputs(out)
                best = record["result"]["best"]
                log(f"{model:>9} seed {seed}: in-dist {best['test_id']['acc']:.3f} | extrapolation "
                    f"{best['test_ood']['acc']:.3f} | best epoch {record['result']['best_epoch']} | "
                    f"{time.perf_counter() - start:.0f}s")
    return results if results is not None else write_outputs(out)


def summarize_records(records: Sequence[Mapping[str, Any]], config: LongRangeConfig) -> list[dict[str, Any]]:
    """Per model: mean/std over seeds of every score (:func:`pyg_plstm.train.report.summarize`), the
    model's settings and the accuracy per walk length (over the seeds whose test graphs have that length)."""
    rows = summarize(records, config.task_spec)
    for row in rows:
        mine = [r for r in records if r["model"] == row["model"]]
        depths = sorted({int(d) for r in mine for d in r["by_depth"]})
        row["model_config"] = mine[0]["model_config"]
        row["by_depth"] = {d: mean_std([r["by_depth"][str(d)] for r in mine if str(d) in r["by_depth"]])
                           for d in depths}
    return rows


def results_table(summary: Sequence[Mapping[str, Any]], config: LongRangeConfig) -> str:
    """Accuracy in distribution and in extrapolation, mean ± std over seeds, and the chance level."""
    (a, b), (c, d) = config.train_depth, config.test_depth
    headers = {"test_id": f"in-dist acc (depth {a}-{b})", "test_ood": f"extrapolation acc (depth {c}-{d})"}
    return markdown_table(summary, config.task_spec, headers, labels={row["model"]: _label(row) for row in summary},
                          constant_rows={"chance": config.chance}, digits=3)


def per_seed_table(records: Sequence[Mapping[str, Any]], config: LongRangeConfig) -> str:
    """Every seed's in-distribution and extrapolation accuracy, one row per model: a mean hides a seed
    that did not learn."""
    metric = config.task_spec.metric
    models = list(dict.fromkeys(r["model"] for r in records))
    seeds = sorted({r["seed"] for r in records})
    lines = ["Per seed (in-distribution / extrapolation accuracy at the best-validation epoch):", "",
             "| model | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---" * (len(seeds) + 1) + "|"]
    for model in models:
        best = {r["seed"]: r["result"]["best"] for r in records if r["model"] == model}
        cells = [f"{best[s]['test_id'][metric]:.3f} / {best[s]['test_ood'][metric]:.3f}" if s in best else "–"
                 for s in seeds]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_accuracy_by_depth(summary: Sequence[Mapping[str, Any]], config: LongRangeConfig,
                           path: str | Path) -> None:
    """Test accuracy against walk length, mean ± std over seeds; training depths shaded."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.axvspan(config.train_depth[0] - 0.5, config.train_depth[1] + 0.5, color="0.9", label="training depths")
    ax.axhline(config.chance, color="0.4", linestyle=":", label="chance")
    for i, row in enumerate(summary):
        # A NaN point at every skipped depth keeps the lines from bridging the gap between test ranges.
        depths = list(range(min(row["by_depth"]), max(row["by_depth"]) + 1))
        mean = np.array([row["by_depth"][d]["mean"] if d in row["by_depth"] else np.nan for d in depths])
        std = np.nan_to_num(np.array([row["by_depth"][d]["std"] if d in row["by_depth"] else 0.0
                                      for d in depths]))
        style = "-" if row["model"].startswith("plstm-") else "--"
        ax.plot(depths, mean, style, marker="o", ms=3, color=f"C{i}", label=_label(row))
        ax.fill_between(depths, mean - std, mean + std, color=f"C{i}", alpha=0.15)
    ax.set(xlabel="walk length (hops between the label's source and the readout)", ylabel="test accuracy",
           ylim=(0, 1.02), title=f"{config.task} on random {config.kind}s (width {config.width})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    with atomic_open(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def write_outputs(out_dir: str | Path) -> dict[str, Any]:
    """Rebuild ``results.json``, ``results.md`` and ``accuracy_by_depth.png`` from every run record in
    ``out_dir``; returns the results (with the Markdown ``table``)."""
    out = Path(out_dir)
    records = load_records(out)
    if not records:
        raise ValueError(f"{out} holds no finished long-range runs")
    data = records[0]["data"]
    config = LongRangeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    summary = summarize_records(records, config)
    table = results_table(summary, config)
    seeds = sorted({r["seed"] for r in records})
    # Whether the label's walk survives depends on the graphs only: count each seed's test graphs once.
    survival = {r["seed"]: r["walk_survives_multitree"] for r in records}
    survive = {split: sum(s[split][0] for s in survival.values()) / sum(s[split][1] for s in survival.values())
               for split in ("test_id", "test_ood")}
    results = {"data": data, "chance": config.chance, "summary": summary, "records": records,
               "walk_survives_multitree": survive}
    atomic_write(out / "results.json", json.dumps(json_safe(results), indent=2))
    intro = (f"# Long-range benchmark: `{config.task}` on random {config.kind}s\n\n"
             f"Test accuracy at the best-validation epoch, mean ± std over seeds {seeds}; "
             f"{config.num_train} training graphs, {config.num_eval} per test set, width {config.width}, "
             f"{config.num_classes} balanced classes.\n\n")
    commands = list(dict.fromkeys(r["command"] for r in records if r.get("command")))
    intro += "".join(f"Command: `{c}`\n\n" for c in commands)
    note = (f"\nThe label's walk survives D-mode's multitree pruning in {survive['test_id']:.1%} of the "
            f"in-distribution and {survive['test_ood']:.1%} of the extrapolation test graphs.\n")
    atomic_write(out / "results.md", intro + table + "\n" + note + "\n" + per_seed_table(records, config))
    plot_accuracy_by_depth(summary, config, out / "accuracy_by_depth.png")
    return {**results, "table": table}


def _depth_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        bounds = (int(lo), int(hi) if sep else int(lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a depth or a range like 4-8, got {text!r}") from None
    return bounds


def build_parser() -> argparse.ArgumentParser:
    defaults = LongRangeConfig()
    p = argparse.ArgumentParser(
        prog="pyg-plstm long-range",
        description="Synthetic long-range DAG benchmark: pLSTM (P, D, PD) vs GIN/GAT, in distribution and "
                    "on longer walks (extrapolation).",
        epilog="exit status: as `pyg-plstm --help` lists (0 success, 2 bad arguments, 3 output refused, "
               "130 interrupted: finished runs are kept)")
    p.add_argument("--task", choices=TASKS, default=defaults.task)
    p.add_argument("--kind", choices=KINDS, default=defaults.kind, help="random DAGs or trees")
    p.add_argument("--train-depth", type=_depth_range, default=defaults.train_depth, metavar="A-B",
                   help="walk lengths of the training / validation / in-distribution test graphs")
    p.add_argument("--test-depth", type=_depth_range, default=defaults.test_depth, metavar="C-D",
                   help="walk lengths of the extrapolation test graphs")
    p.add_argument("--width", type=int, default=defaults.width, help="nodes per layer (leaves for trees)")
    p.add_argument("--num-classes", type=int, default=defaults.num_classes)
    p.add_argument("--max-degree", type=int, default=defaults.max_degree)
    p.add_argument("--num-train", type=int, default=defaults.num_train)
    p.add_argument("--num-eval", type=int, default=defaults.num_eval,
                   help="graphs in each of valid / in-distribution test / extrapolation test")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(defaults.models))
    p.add_argument("--seeds", type=int, nargs="+", default=list(defaults.seeds))
    p.add_argument("--epochs", type=int, default=defaults.epochs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--hidden", type=int, default=defaults.hidden_channels)
    p.add_argument("--heads", type=int, default=defaults.heads)
    p.add_argument("--plstm-blocks", type=int, default=defaults.plstm_blocks)
    p.add_argument("--gnn-layers", type=int, default=defaults.gnn_layers)
    p.add_argument("--pooling", choices=POOLINGS, default=defaults.pooling)
    p.add_argument("--d-pruning", choices=D_PRUNINGS, default=defaults.d_pruning,
                   help="D-mode's multitree: as prepared, reversed layers re-pruned in their own direction, or "
                        "drawn afresh per training graph and epoch (default %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; these small graphs gain nothing from more, and lose on a busy machine")
    p.add_argument("--out", default="runs/long_range",
                   help="folder for the run records, results.json/.md and the plot; finished runs of the same "
                        "graphs in it are kept and join the table (default %(default)s)")
    p.add_argument("--overwrite", action="store_true",
                   help="retrain the runs of this command that --out holds with other settings")
    p.add_argument("--verbose", action="store_true", help="log every epoch")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``pyg-plstm long-range``); returns the exit status.

    Errors (bad output folder, ...) are raised for :func:`pyg_plstm.cli.main` to report.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = LongRangeConfig(
            task=args.task, kind=args.kind, train_depth=args.train_depth, test_depth=args.test_depth,
            width=args.width, num_classes=args.num_classes, max_degree=args.max_degree, num_train=args.num_train,
            num_eval=args.num_eval, models=tuple(args.models), seeds=tuple(args.seeds), epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, hidden_channels=args.hidden, heads=args.heads,
            plstm_blocks=args.plstm_blocks, gnn_layers=args.gnn_layers, pooling=args.pooling,
            d_pruning=args.d_pruning)
    except ValueError as err:
        parser.error(str(err))
    if args.threads < 1:
        parser.error(f"--threads must be positive, got {args.threads}")
    command = "pyg-plstm long-range " + " ".join(sys.argv[1:] if argv is None else argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        results = run(config, args.out, args.overwrite, epoch_log=print if args.verbose else lambda _: None,
                      command=command.strip())
    except KeyboardInterrupt:
        print(f"\ninterrupted; the finished runs are kept in {args.out} (results.md); run the same command again "
              "to train the others", file=sys.stderr)
        raise
    finally:
        torch.set_num_threads(threads)
    print(results["table"])
    print(f"wrote {Path(args.out) / 'results.md'}, results.json and accuracy_by_depth.png")
    return 0
