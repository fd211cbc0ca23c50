r"""Summaries of one or more runs: mean ± std tables (Markdown, JSON) and learning curves (PNG)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from pyg_plstm.train.files import atomic_open, atomic_write
from pyg_plstm.train.metrics import Task

__all__ = ["REPORT_FILES", "mean_std", "format_mean_std", "summarize", "markdown_table", "ensemble_table",
           "write_report", "plot_curves", "json_safe"]

# The report built over all runs of a folder.
REPORT_FILES = ("summary.md", "summary.json", "curves.png")


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def mean_std(values: Sequence[Optional[float]]) -> dict[str, float]:
    """Mean, sample std (``nan`` for one value) and count; ``None`` (NaN read back from JSON) counts as NaN."""
    arr = np.asarray(values, dtype=float)
    # Sample std over seeds, as on the OGB leaderboard; undefined for a single seed.
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else float("nan"),
            "n": int(arr.size)}


def summarize(runs: Sequence[Mapping[str, Any]], task: Task) -> list[dict[str, Any]]:
    """One row per model: every metric at the best-valid epoch as mean/std over seeds, plus costs.

    ``runs`` are dicts ``{"model", "seed", "result"}`` with ``result`` a
    :meth:`RunResult.to_dict` (or any dict with its ``best``, ``best_epoch``,
    ``num_parameters`` and time entries); models and splits keep their
    first-seen order. A split some seeds lack is summarised over the others.
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_model.setdefault(run["model"], []).append(run["result"])
    rows = []
    for model, results in by_model.items():
        row: dict[str, Any] = {"model": model, "seeds": len(results),
                               "num_parameters": results[0]["num_parameters"]}
        for split in dict.fromkeys(s for r in results for s in r["best"]):
            scored = [r["best"][split] for r in results if split in r["best"]]
            row[split] = {m: mean_std([best[m] for best in scored]) for m in task.metrics}
        for key in ("best_epoch", "seconds_per_epoch", "cpu_seconds_per_epoch"):
            row[key] = mean_std([r[key] for r in results])
        rows.append(row)
    return rows


def format_mean_std(stat: Mapping[str, float], digits: int = 4) -> str:
    """``mean ± std`` (just the mean for a single value)."""
    if math.isnan(stat["std"]):
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown_table(rows: Sequence[Mapping[str, Any]], task: Task, headers: Optional[Mapping[str, str]] = None,
                   labels: Optional[Mapping[str, str]] = None, constant_rows: Optional[Mapping[str, float]] = None,
                   digits: int = 4) -> str:
    r"""The headline metric per split (mean ± std over seeds), as a Markdown table.

    Args:
        headers: the split columns and their titles (default: every split of
            the rows, titled ``"<split> <metric>"``).
        labels: how to name models (default: their names).
        constant_rows: extra rows scoring a constant in every split column
            (e.g. ``{"chance": 0.25}``).
    """
    if headers is None:
        splits = dict.fromkeys(s for row in rows for s in row if isinstance(row[s], Mapping) and task.metric in row[s])
        headers = {s: f"{s} {task.metric}" for s in splits}
    labels = labels or {}
    head = ["model", "seeds", "params", *headers.values(), "best epoch", "s/epoch", "CPU s/epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [labels.get(row["model"], row["model"]), str(row["seeds"]), f"{row['num_parameters']:,}"]
        cells += [format_mean_std(row[s][task.metric], digits) if s in row else "" for s in headers]
        cells += [format_mean_std(row["best_epoch"], 1), format_mean_std(row["seconds_per_epoch"], 2),
                  format_mean_std(row["cpu_seconds_per_epoch"], 2)]
        lines.append("| " + " | ".join(cells) + " |")
    for label, value in (constant_rows or {}).items():
        lines.append("| " + " | ".join([label, "", ""] + [f"{value:.{digits}f}"] * len(headers) + [""] * 3) + " |")
    return "\n".join(lines)


def ensemble_table(rows: Sequence[Mapping[str, Any]], task: Task, digits: int = 4) -> str:
    """The test metrics of seed ensembles (rows of :func:`~pyg_plstm.train.ensemble.seed_ensembles`) and the
    Spearman correlation of their errors with their spread, as a Markdown table."""
    head = ["ensemble", "seeds", *(f"test {m}" for m in task.metrics), "Spearman(abs error, std)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [row["model"], " ".join(map(str, row["seeds"]))]
        cells += [f"{row['test'][m]:.{digits}f}" for m in task.metrics] + [f"{row['spearman_error_std']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(runs: Sequence[Mapping[str, Any]], task: Task, path: str | Path) -> None:
    """Training loss and validation metric per epoch, one colour per model, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    colours: dict[str, Any] = {}
    for run in runs:
        history = run["result"]["history"]
        epochs = [h["epoch"] for h in history]
        model = run["model"]
        first = model not in colours
        colours.setdefault(model, f"C{len(colours)}")
        style = {"color": colours[model], "alpha": 0.8, "label": model if first else None}
        ax_loss.plot(epochs, np.asarray([h["loss"] for h in history], dtype=float), **style)
        ax_metric.plot(epochs, np.asarray([h["valid"][task.metric] for h in history], dtype=float), **style)
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    ax_metric.set(xlabel="epoch", ylabel=f"valid {task.metric}", title=f"validation {task.metric}")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_open(path) as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def write_report(out_dir: str | Path, runs: Sequence[Mapping[str, Any]], task: Task,
                 info: Mapping[str, Any], ensembles: Sequence[Mapping[str, Any]] = ()) -> str:
    """Write ``summary.json``, ``summary.md`` and ``curves.png`` to ``out_dir`` (each atomically); return the table.

    ``summary.json`` lists every run with its best-epoch metrics, and its
    settings where the run records them (see :func:`~pyg_plstm.train.run_folder.load_runs`), and the
    ``ensembles`` (rows of :func:`~pyg_plstm.train.ensemble.seed_ensembles`),
    which also get a table of their own.
    """
    out = Path(out_dir)
    rows = summarize(runs, task)
    table = markdown_table(rows, task)
    if ensembles:
        table += "\n\nEnsembles of the seeds (mean prediction; std over seeds as uncertainty):\n\n"
        table += ensemble_table(ensembles, task)
    settings = ("config", "model_config")
    payload = {"info": dict(info), "task": task.to_dict(), "summary": rows, "ensembles": list(ensembles),
               "runs": [{"model": r["model"], "seed": r["seed"], "best_epoch": r["result"]["best_epoch"],
                         "best": r["result"]["best"], **{k: r[k] for k in settings if k in r}} for r in runs]}
    atomic_write(out / "summary.json", json.dumps(json_safe(payload), indent=2))
    title = f"# {info.get('dataset', 'results')}: {task.metric} at the best-validation epoch\n\n"
    atomic_write(out / "summary.md", title + table + "\n")
    plot_curves(runs, task, out / "curves.png")
    return table
