"""Neural-architecture performance prediction (ENAS, D-VAE's "NA" set): how well each model ranks
architectures it was not trained on, from n = 100, 1,000 and 10,000 training architectures.

    python -m benchmarks.architectures --run                        # train what is missing (resumable)
    python -m benchmarks.architectures --run --models dagnn --sizes 100
    python -m benchmarks.architectures                              # collect: table and tau-vs-n plot

Protocol (the same for every model): D-VAE's split of the 20,020 architectures (burn-in 1,000, then
random.Random(0) shuffle, 90 % train / 10 % test). For n and seed s, n architectures are drawn from the
train part with seed s; 20 % of them (seeded) are the validation part that selects the epoch, the others
are trained on. Every model is scored on the whole fixed test part (1,902 architectures): Kendall tau and
Spearman rho of the predicted ranking, RMSE and Pearson r. Budget: batch 32, AdamW 1e-3 with the command
line's cosine schedule, 40 epochs at n = 100, 20 at n = 1,000 and 5 at n = 10,000; each model at its
default size (pLSTM: 2 blocks of its "dag" config, GNNs: 5 layers, DAGNN: 2 layers per direction, 96
channels), one CPU thread. The validation part's Kendall tau is recorded too (valid_kendall_tau).

Records go to ``benchmarks/results/architectures.json`` (one per model x n x seed with the command that
reproduces it); the table to ``benchmarks/results/architectures.md`` and the plot to
``benchmarks/results/architectures_tau.png``.
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
from pathlib import Path
from typing import Any, Optional

import torch

from pyg_plstm.models import CONFIGS

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SIZES = (100, 1000, 10000)
SEEDS = (0, 1, 2)
EPOCHS = {100: 40, 1000: 20, 10000: 5}
VALID_FRACTION = 0.2
PROTOCOL = "Protocol" + __doc__.split("Protocol")[1].split("Records")[0].rstrip()

#: pLSTM's named configuration for inputs that are DAGs (PLSTMNet CONFIGS["dag"]).
DAG_CONFIG = "dag"


def _plstm(block: str, **options: Any) -> dict[str, Any]:
    return {"name": "plstm", **CONFIGS[DAG_CONFIG], "block": block, **options}


#: Model key -> make_model arguments beyond the data set's encoders.
MODELS: dict[str, dict[str, Any]] = {
    "plstm-pd": _plstm("PD"),
    "plstm-p": _plstm("P"),
    "plstm-d": _plstm("D"),
    "plstm-pd-householder": _plstm("PD", transition="householder"),
    "plstm-p-householder": _plstm("P", transition="householder"),
    "plstm-d-householder": _plstm("D", transition="householder"),
    # The package default (built for molecules), for comparison with the "dag" config.
    "plstm-pd-default": {"name": "plstm", "block": "PD"},
    "dagnn": {"name": "dagnn"},
    "gin": {"name": "gin"},
    "gat": {"name": "gat"},
    "gin-virtual": {"name": "gin-virtual"},
}
LABELS = {"plstm-pd": "pLSTM PD", "plstm-p": "pLSTM P", "plstm-d": "pLSTM D",
          "plstm-pd-householder": "pLSTM PD, Householder", "plstm-p-householder": "pLSTM P, Householder",
          "plstm-d-householder": "pLSTM D, Householder", "plstm-pd-default": "pLSTM PD, default config",
          "dagnn": "DAGNN", "gin": "GIN", "gat": "GAT", "gin-virtual": "GIN + virtual node"}
METRICS = ("kendall_tau", "spearman", "rmse", "pearson", "s_per_epoch", "cpu_s_per_epoch")


def sample_split(train_pool: torch.Tensor, n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` indices of ``train_pool`` drawn with ``seed``, split into train and valid (:data:`VALID_FRACTION`)."""
    if not 2 <= n <= train_pool.numel():
        raise ValueError(f"n must lie in [2, {train_pool.numel()}] (the train part), got {n}")
    drawn = train_pool[torch.randperm(train_pool.numel(), generator=torch.Generator().manual_seed(seed))[:n]]
    num_valid = max(1, round(VALID_FRACTION * n))
    return {"train": drawn[num_valid:].sort().values, "valid": drawn[:num_valid].sort().values}


def ranking_metrics(predicted: list[float], true: list[float]) -> dict[str, float]:
    """Kendall tau, Spearman rho, RMSE and Pearson r of ``predicted`` against ``true``."""
    from scipy import stats

    rmse = math.sqrt(sum((p - t) ** 2 for p, t in zip(predicted, true)) / len(true))
    return {"kendall_tau": float(stats.kendalltau(predicted, true).statistic),
            "spearman": float(stats.spearmanr(predicted, true).statistic), "rmse": rmse,
            "pearson": float(stats.pearsonr(predicted, true).statistic)}


def command_line(model: str, n: int, seed: int, epochs: Optional[int]) -> str:
    extra = [] if epochs is None else ["--epochs", str(epochs)]
    return shlex.join(["python", "-m", "benchmarks.architectures", "--run", "--models", model, "--sizes", str(n),
                       "--seeds", str(seed), *extra])


def run_one(dataset: Any, pool: torch.Tensor, test: torch.Tensor, model: str, n: int, seed: int,
            out: Path, epochs: Optional[int] = None) -> dict[str, Any]:
    """Train ``model`` on ``n`` architectures of ``pool`` (seed ``seed``) and score it on ``test``."""
    from pyg_plstm.train import TrainConfig, fit, load_model, predict
    from pyg_plstm.train.compare import model_config
    from pyg_plstm.train.data import tu_encoders
    from pyg_plstm.train.metrics import Task

    task = Task("regression", 1)
    options = dict(MODELS[model])
    config = model_config(options.pop("name"), task, tu_encoders(dataset), **options)
    split = sample_split(pool, n, seed)
    train = TrainConfig(epochs=epochs or EPOCHS[n], seed=seed)
    result = fit(config, task, {name: dataset[idx] for name, idx in split.items()}, train, out_dir=out,
                 resume=True, meta={"dataset": "enas6", "n": n}, log=lambda line: None)
    net, checkpoint = load_model(out / "best.pt")
    graphs = dataset[test]
    predicted = predict(net, graphs, checkpoint.get("target_norm")).view(-1).tolist()
    true = [float(g.y) for g in graphs]
    valid = dataset[split["valid"]]
    valid_tau = ranking_metrics(predict(net, valid, checkpoint.get("target_norm")).view(-1).tolist(),
                                [float(g.y) for g in valid])["kendall_tau"]
    return {"model": model, "n": n, "seed": seed, **ranking_metrics(predicted, true), "valid_kendall_tau": valid_tau,
            "s_per_epoch": result.seconds_per_epoch, "cpu_s_per_epoch": result.cpu_seconds_per_epoch,
            "best_epoch": result.best_epoch, "epochs": train.epochs, "num_parameters": result.num_parameters,
            "command": command_line(model, n, seed, epochs)}


def run(models: list[str], sizes: list[int], seeds: list[int], runs: Path, data_root: Path, results: Path,
        path: Optional[str] = None, burn_in: Optional[int] = None, epochs: Optional[int] = None) -> None:
    """Every missing model x n x seed record, n by n, recorded as soon as it is done."""
    from pyg_plstm.datasets import NeuralArchitectures

    dataset = NeuralArchitectures(str(data_root), path, log=False)
    split = dataset.get_idx_split("literature", frac_valid=0.0, **({} if burn_in is None else {"burn_in": burn_in}))
    records_path = results / "architectures.json"
    done = {(r["model"], r["n"], r["seed"]) for r in harness.load_records(records_path)}
    for n in sizes:
        for seed in seeds:
            for model in models:
                if (model, n, seed) in done:
                    continue
                print(f"[architectures] {model}, n = {n}, seed {seed}", flush=True)
                record = run_one(dataset, split["train"], split["test"], model, n, seed,
                                 runs / f"n{n}" / model / f"seed{seed}", epochs)
                harness.save_record(records_path, record, ("model", "n", "seed"),
                                    lambda r: (r["n"], *harness.table_position(MODELS, r["model"]), r["seed"]),
                                    {"protocol": PROTOCOL})


def _cell(values: list[float], digits: int, seeds: int) -> str:
    if not values:
        return "–"
    text = f"{statistics.mean(values):.{digits}f}"
    if len(values) > 1:
        text += f" ± {statistics.stdev(values):.{digits}f}"
    return text if len(values) == seeds else f"{text} ({len(values)} of {seeds} seeds)"


def collect(records: list[dict], seeds: int = len(SEEDS)) -> str:
    """The Markdown report: one table per metric, models by n (mean ± std over seeds)."""
    sizes = sorted({r["n"] for r in records})
    models = [m for m in MODELS if any(r["model"] == m for r in records)]
    lines = ["# Neural-architecture performance prediction (ENAS, D-VAE's NA set)", "",
             "Generated by `python -m benchmarks.architectures` from `benchmarks/results/architectures.json`; "
             "do not edit by hand.", "", PROTOCOL.replace("\n", " "), ""]
    titles = {"kendall_tau": "Kendall tau on the test part (higher is better)",
              "spearman": "Spearman rho (higher is better)", "rmse": "RMSE of the accuracy (lower is better)",
              "pearson": "Pearson r (higher is better)", "s_per_epoch": "Seconds per training epoch (wall)",
              "cpu_s_per_epoch": "CPU seconds per training epoch (this process; less sensitive to other load)"}
    for metric in METRICS:
        lines += [f"## {titles[metric]}", "", "| model | " + " | ".join(f"n = {n:,}" for n in sizes) + " |",
                  "|---" * (len(sizes) + 1) + "|"]
        digits = 2 if metric.endswith("per_epoch") else (4 if metric == "rmse" else 3)
        for model in models:
            cells = [_cell([r[metric] for r in records if r["model"] == model and r["n"] == n], digits, seeds)
                     for n in sizes]
            lines.append(f"| {LABELS[model]} | " + " | ".join(cells) + " |")
        lines.append("")
    missing = [f"{LABELS[m]} at n = {n:,} (missing {seeds - c} of {seeds} seeds)" for n in SIZES for m in MODELS
               if (c := sum(r["model"] == m and r["n"] == n for r in records)) < seeds]
    lines += ["## Missing runs", "", "; ".join(missing) if missing else "none", "", "## Commands", ""]
    lines += [f"- {LABELS[m]}: `{next(r['command'] for r in records if r['model'] == m)}`" for m in models]
    return "\n".join(lines) + "\n"


def plot_tau(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for model in MODELS:
        sizes = sorted({r["n"] for r in records if r["model"] == model})
        if not sizes:
            continue
        taus = [[r["kendall_tau"] for r in records if r["model"] == model and r["n"] == n] for n in sizes]
        ax.errorbar(sizes, [statistics.mean(t) for t in taus],
                    yerr=[statistics.stdev(t) if len(t) > 1 else 0.0 for t in taus], marker="o", capsize=3,
                    label=LABELS[model], linestyle="--" if model.startswith("plstm") else "-")
    ax.set_xscale("log")
    ax.set_xlabel("training architectures n")
    ax.set_ylabel("Kendall tau on the test part")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="store_true", help="train the missing runs first")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="training architectures n")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--epochs", type=int, help="override the protocol's epochs (smoke tests)")
    parser.add_argument("--file", help="another architecture file (default: the shipped one)")
    parser.add_argument("--burn-in", type=int, help="lines left out before the split (default: D-VAE's 1,000)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "architectures", help="run folders")
    parser.add_argument("--data-root", type=Path, default=ROOT / "runs" / "data", help="processed data")
    parser.add_argument("--results", type=Path, default=RESULTS, help="records, table and plot")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    torch.set_num_threads(1)
    if args.run:
        run(args.models, args.sizes, args.seeds, args.runs, args.data_root, args.results, args.file, args.burn_in,
            args.epochs)
    records = harness.load_records(args.results / "architectures.json")
    if records:
        (args.results / "architectures.md").write_text(collect(records))
        plot_tau(records, args.results / "architectures_tau.png")
        print(f"wrote {args.results / 'architectures.md'} and architectures_tau.png ({len(records)} records)")


if __name__ == "__main__":
    main()
