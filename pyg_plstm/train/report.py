r"""Summaries of one or more runs: mean ± std tables (Markdown, JSON) and learning curves (PNG)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from pyg_plstm.train.metrics import Task

__all__ = ["mean_std", "format_mean_std", "summarize", "markdown_table", "write_report", "plot_curves",
           "json_safe"]

SPLITS = ("train", "valid", "test")


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample std (``nan`` for one value) and count."""
    arr = np.asarray(values, dtype=float)
    # Sample std over seeds, as on the OGB leaderboard; undefined for a single seed.
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else float("nan"),
            "n": int(arr.size)}


def summarize(runs: Sequence[Mapping[str, Any]], task: Task) -> list[dict[str, Any]]:
    """One row per model: every metric at the best-valid epoch as mean/std over seeds, plus costs.

    ``runs`` are dicts ``{"model", "seed", "result"}`` with ``result`` a
    :meth:`RunResult.to_dict`; models keep their first-seen order.
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_model.setdefault(run["model"], []).append(run["result"])
    rows = []
    for model, results in by_model.items():
        row: dict[str, Any] = {"model": model, "seeds": len(results),
                               "num_parameters": results[0]["num_parameters"]}
        for split in SPLITS:
            if split in results[0]["best"]:
                row[split] = {m: mean_std([r["best"][split][m] for r in results]) for m in task.metrics}
        row["best_epoch"] = mean_std([r["best_epoch"] for r in results])
        row["seconds_per_epoch"] = mean_std([r["seconds_per_epoch"] for r in results])
        row["cpu_seconds_per_epoch"] = mean_std([r["cpu_seconds_per_epoch"] for r in results])
        rows.append(row)
    return rows


def format_mean_std(stat: Mapping[str, float], digits: int = 4) -> str:
    """``mean ± std`` (just the mean for a single value)."""
    if math.isnan(stat["std"]):
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown_table(rows: Sequence[Mapping[str, Any]], task: Task) -> str:
    """The headline metric per split, as a Markdown table."""
    splits = [s for s in SPLITS if rows and s in rows[0]]
    head = ["model", "seeds", "params"] + [f"{s} {task.metric}" for s in splits] + ["best epoch", "s/epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = [row["model"], str(row["seeds"]), f"{row['num_parameters']:,}"]
        cells += [format_mean_std(row[s][task.metric]) for s in splits]
        cells += [format_mean_std(row["best_epoch"], 1), format_mean_std(row["seconds_per_epoch"], 2)]
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
        ax_loss.plot(epochs, [h["loss"] for h in history], **style)
        ax_metric.plot(epochs, [h["valid"][task.metric] for h in history], **style)
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    ax_metric.set(xlabel="epoch", ylabel=f"valid {task.metric}", title=f"validation {task.metric}")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(out_dir: str | Path, runs: Sequence[Mapping[str, Any]], task: Task,
                 info: Mapping[str, Any]) -> str:
    """Write ``summary.json``, ``summary.md`` and ``curves.png`` to ``out_dir``; return the table."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = summarize(runs, task)
    table = markdown_table(rows, task)
    payload = {"info": dict(info), "task": task.to_dict(), "summary": rows,
               "runs": [{"model": r["model"], "seed": r["seed"], "best_epoch": r["result"]["best_epoch"],
                         "best": r["result"]["best"]} for r in runs]}
    (out / "summary.json").write_text(json.dumps(json_safe(payload), indent=2))
    title = f"# {info.get('dataset', 'results')}: {task.metric} at the best-validation epoch\n\n"
    (out / "summary.md").write_text(title + table + "\n")
    plot_curves(runs, task, out / "curves.png")
    return table
