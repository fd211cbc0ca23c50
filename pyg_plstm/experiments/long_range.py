r"""Long-range DAG benchmark: pLSTM (P, D, PD blocks) against message passing.

Trains every model on a task of :mod:`pyg_plstm.datasets.synthetic` with walk
lengths ``--train-depth`` and reports test accuracy in distribution (same
depths) and in extrapolation (``--test-depth``, longer walks on larger graphs),
as mean ± std over seeds, with the chance level. Writes ``results.json``,
``results.md`` (the table) and ``accuracy_by_depth.png`` to ``--out``, and
states how often the label's walk survives D-mode's multitree pruning (where
it does not, a D-mode layer cannot carry the label along it).

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
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch_geometric.data import Data

from pyg_plstm.datasets.synthetic import KINDS, TASKS, long_range_dataset, marked_walk
from pyg_plstm.train import Task, TrainConfig, fit, load_model, predict
from pyg_plstm.train.report import format_mean_std, json_safe, mean_std

__all__ = ["MODELS", "LongRangeConfig", "message_passing_view", "model_config", "walk_survives_multitree", "run",
           "summarize",
           "markdown_table", "plot_accuracy_by_depth", "write_outputs", "build_parser", "main"]

MODELS = ("plstm-P", "plstm-D", "plstm-PD", "gin", "gat", "gin-deep")
POOLINGS = ("mean", "sum", "attention")


@dataclass(frozen=True)
class LongRangeConfig:
    """Everything that defines one benchmark table.

    ``num_eval`` graphs each are drawn for validation, in-distribution test
    and extrapolation test; split ``k`` of seed ``s`` uses data seed ``4 s + k``.
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
    models: tuple[str, ...] = MODELS
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    hidden_channels: int = 32
    heads: int = 4
    plstm_blocks: int = 2
    gnn_layers: int = 4
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {TASKS}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown graph kind {self.kind!r}; choose one of {KINDS}")
        for name in ("train_depth", "test_depth"):
            lo, hi = getattr(self, name)
            if not 1 <= lo <= hi:
                raise ValueError(f"`{name}` must be a range 1 <= min <= max, got {(lo, hi)}")
        for name in ("width", "num_classes", "max_degree", "num_train", "num_eval", "epochs", "batch_size",
                     "hidden_channels", "heads", "plstm_blocks", "gnn_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise ValueError(f"`num_classes` must be at least 2, got {self.num_classes}")
        if self.width % self.num_classes:
            raise ValueError(f"`width` ({self.width}) must be a multiple of `num_classes` ({self.num_classes})")
        if not self.models or any(m not in MODELS for m in self.models):
            raise ValueError(f"`models` must be a non-empty selection of {MODELS}, got {self.models!r}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"`seeds` must be distinct non-negative integers, got {self.seeds!r}")
        if not self.lr > 0:
            raise ValueError(f"`lr` must be positive, got {self.lr}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose one of {POOLINGS}")
        if self.hidden_channels % self.heads:
            raise ValueError(f"`hidden_channels` ({self.hidden_channels}) must be divisible by `heads` "
                             f"({self.heads}) for GAT")

    @property
    def chance(self) -> float:
        """Accuracy of guessing (the classes are balanced)."""
        return 1.0 / self.num_classes

    @property
    def deep_layers(self) -> int:
        """Layers of ``gin-deep``: the longest training walk."""
        return self.train_depth[1]


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
    """:func:`~pyg_plstm.models.make_model` arguments of ``model``."""
    shared = dict(in_channels=config.num_classes + 1, out_channels=config.num_classes,
                  hidden_channels=config.hidden_channels, heads=config.heads, pooling=config.pooling)
    if model.startswith("plstm-"):
        return dict(name="plstm", num_layers=config.plstm_blocks, edge_dim=1, block=model.split("-")[1],
                    **shared)
    if model == "gin-deep":
        return dict(name="gin", num_layers=config.deep_layers, edge_dim=2, **shared)
    if model in ("gin", "gat"):
        return dict(name=model, num_layers=config.gnn_layers, edge_dim=2, **shared)
    raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")


def _label(model: str, config: LongRangeConfig) -> str:
    if model.startswith("plstm-"):
        return f"pLSTM-{model.split('-')[1]} ({config.plstm_blocks} blocks)"
    layers = config.deep_layers if model == "gin-deep" else config.gnn_layers
    return f"{'GAT' if model == 'gat' else 'GIN'} ({layers} layers)"


def _splits(config: LongRangeConfig, seed: int) -> dict[str, list[Data]]:
    def draw(k: int, num: int, depth: tuple[int, int]) -> list[Data]:
        return long_range_dataset(config.task, num, depth, width=config.width, num_classes=config.num_classes,
                                  kind=config.kind, max_degree=config.max_degree, seed=4 * seed + k)

    return {"train": draw(0, config.num_train, config.train_depth),
            "valid": draw(1, config.num_eval, config.train_depth),
            "test_id": draw(2, config.num_eval, config.train_depth),
            "test_ood": draw(3, config.num_eval, config.test_depth)}


def _accuracy_by_depth(correct: np.ndarray, depth: np.ndarray) -> dict[int, float]:
    return {int(d): float(correct[depth == d].mean()) for d in np.unique(depth)}


def _run_one(model: str, seed: int, splits: dict[str, list[Data]], config: LongRangeConfig,
             log: Callable[[str], None]) -> dict[str, Any]:
    settings = model_config(model, config)
    train_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                               warmup_epochs=min(2, config.epochs - 1), seed=seed)
    task = Task("multiclass", config.num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(settings, task, {"train": splits["train"], "valid": splits["valid"]}, train_config,
                     out_dir=tmp, log=log)
        best, _ = load_model(Path(tmp) / "best.pt")
    record: dict[str, Any] = {"model": model, "seed": seed, "best_epoch": result.best_epoch,
                              "valid": result.best["valid"]["acc"], "num_parameters": result.num_parameters,
                              "seconds_per_epoch": result.seconds_per_epoch,
                              "cpu_seconds_per_epoch": result.cpu_seconds_per_epoch}
    correct, depth = [], []
    for split in ("test_id", "test_ood"):
        data = splits[split]
        y = torch.cat([d.y for d in data])
        hit = (predict(best, data).argmax(-1) == y).numpy()
        record[split] = float(hit.mean())
        correct.append(hit)
        depth.append(torch.cat([d.depth for d in data]).numpy())
    record["by_depth"] = _accuracy_by_depth(np.concatenate(correct), np.concatenate(depth))
    return record


def run(config: LongRangeConfig, log: Callable[[str], None] = print,
        epoch_log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Train and evaluate every model with every seed; returns the records and the summary."""
    records, intact = [], {"test_id": [], "test_ood": []}
    for seed in config.seeds:
        splits = _splits(config, seed)
        for split, flags in intact.items():
            flags += [walk_survives_multitree(d) for d in splits[split]]
        mp_splits = {name: [message_passing_view(d) for d in data] for name, data in splits.items()}
        for model in config.models:
            start = time.perf_counter()
            record = _run_one(model, seed, splits if model.startswith("plstm-") else mp_splits, config, epoch_log)
            records.append(record)
            log(f"{model:>9} seed {seed}: in-dist {record['test_id']:.3f} | extrapolation "
                f"{record['test_ood']:.3f} | best epoch {record['best_epoch']} | "
                f"{time.perf_counter() - start:.0f}s")
    return {"config": dataclasses.asdict(config), "chance": config.chance, "records": records,
            "summary": summarize(records, config),
            "walk_survives_multitree": {split: float(np.mean(flags)) for split, flags in intact.items()}}


def summarize(records: Sequence[dict[str, Any]], config: LongRangeConfig) -> list[dict[str, Any]]:
    """Per model (in ``config.models`` order): mean/std over seeds of every score."""
    rows = []
    for model in config.models:
        mine = [r for r in records if r["model"] == model]
        if not mine:
            continue
        depths = sorted({d for r in mine for d in r["by_depth"]})
        rows.append({
            "model": model, "label": _label(model, config), "seeds": len(mine),
            "num_parameters": mine[0]["num_parameters"],
            **{k: mean_std([r[k] for r in mine])
               for k in ("test_id", "test_ood", "valid", "best_epoch", "cpu_seconds_per_epoch")},
            "by_depth": {d: mean_std([r["by_depth"][d] for r in mine]) for d in depths},
        })
    return rows


def markdown_table(summary: Sequence[dict[str, Any]], config: LongRangeConfig) -> str:
    """Accuracy in distribution and in extrapolation, mean ± std over seeds."""
    (a, b), (c, d) = config.train_depth, config.test_depth
    head = ["model", "params", f"in-dist acc (depth {a}-{b})", f"extrapolation acc (depth {c}-{d})",
            "best epoch", "CPU s/epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in summary:
        lines.append("| " + " | ".join([
            row["label"], f"{row['num_parameters']:,}", format_mean_std(row["test_id"], 3),
            format_mean_std(row["test_ood"], 3), format_mean_std(row["best_epoch"], 1),
            format_mean_std(row["cpu_seconds_per_epoch"], 1)]) + " |")
    lines.append(f"| chance | | {config.chance:.3f} | {config.chance:.3f} | | |")
    return "\n".join(lines)


def plot_accuracy_by_depth(summary: Sequence[dict[str, Any]], config: LongRangeConfig,
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
        ax.plot(depths, mean, style, marker="o", ms=3, color=f"C{i}", label=row["label"])
        ax.fill_between(depths, mean - std, mean + std, color=f"C{i}", alpha=0.15)
    ax.set(xlabel="walk length (hops between the label's source and the readout)", ylabel="test accuracy",
           ylim=(0, 1.02), title=f"{config.task} on random {config.kind}s (width {config.width})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(results: dict[str, Any], config: LongRangeConfig, out_dir: str | Path,
                  command: Optional[str] = None) -> str:
    """``results.json``, ``results.md`` and ``accuracy_by_depth.png``; returns the table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results["summary"], config)
    (out / "results.json").write_text(json.dumps(json_safe(results), indent=2))
    intro = (f"# Long-range benchmark: `{config.task}` on random {config.kind}s\n\n"
             f"Test accuracy at the best-validation epoch, mean ± std over seeds {list(config.seeds)}; "
             f"{config.num_train} training graphs, {config.num_eval} per test set, width {config.width}, "
             f"{config.num_classes} balanced classes.\n\n")
    if command:
        intro += f"Command: `{command}`\n\n"
    survive = results["walk_survives_multitree"]
    note = (f"\nThe label's walk survives D-mode's multitree pruning in {survive['test_id']:.1%} of the "
            f"in-distribution and {survive['test_ood']:.1%} of the extrapolation test graphs.\n")
    (out / "results.md").write_text(intro + table + "\n" + note)
    plot_accuracy_by_depth(results["summary"], config, out / "accuracy_by_depth.png")
    return table


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
                    "on longer walks (extrapolation).")
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
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; these small graphs gain nothing from more, and lose on a busy machine")
    p.add_argument("--out", default="runs/long_range", help="folder for results.json/.md and the plot")
    p.add_argument("--verbose", action="store_true", help="log every epoch")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point (``pyg-plstm long-range``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = LongRangeConfig(
            task=args.task, kind=args.kind, train_depth=args.train_depth, test_depth=args.test_depth,
            width=args.width, num_classes=args.num_classes, max_degree=args.max_degree, num_train=args.num_train,
            num_eval=args.num_eval, models=tuple(args.models), seeds=tuple(args.seeds), epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, hidden_channels=args.hidden, heads=args.heads,
            plstm_blocks=args.plstm_blocks, gnn_layers=args.gnn_layers, pooling=args.pooling)
    except ValueError as err:
        parser.error(str(err))
    if args.threads < 1:
        parser.error(f"--threads must be positive, got {args.threads}")
    torch.set_num_threads(args.threads)
    results = run(config, epoch_log=print if args.verbose else lambda _: None)
    command = "pyg-plstm long-range " + " ".join(sys.argv[1:] if argv is None else argv)
    table = write_outputs(results, config, args.out, command.strip())
    print(table)
    print(f"wrote {Path(args.out) / 'results.md'}, results.json and accuracy_by_depth.png")
    return 0
