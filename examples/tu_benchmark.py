"""pLSTM vs GIN on the TU graph-classification sets with the pLSTM paper's protocol.

Protocol (as in the paper, following Xu et al., GIN, 2019): stratified 10-fold
cross-validation; in every fold train 100 epochs with AdamW (lr 1e-3), a
cosine schedule after 5 linear warm-up epochs and gradient clipping at norm 1;
record the test-fold accuracy after every epoch, average the curves over the
folds and report the mean ± std over folds at the epoch where the average is
highest. (There is no separate validation set in this protocol.)

    python examples/tu_benchmark.py --dataset MUTAG --models plstm gin
"""
from __future__ import annotations

import os

# Importing ogb (through pyg_plstm.datasets) otherwise checks PyPI for a newer release.
os.environ.setdefault("OUTDATED_IGNORE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402

from pyg_plstm.datasets import TU_PAPER_NAMES, load_dataset  # noqa: E402
from pyg_plstm.models import MODEL_NAMES  # noqa: E402
from pyg_plstm.splits import stratified_kfold  # noqa: E402
from pyg_plstm.train import Task, TrainConfig, fit  # noqa: E402
from pyg_plstm.train.data import tu_encoders  # noqa: E402
from pyg_plstm.train.report import format_mean_std, json_safe, mean_std  # noqa: E402
from pyg_plstm.train.trainer import progress_enabled  # noqa: E402


def cross_validate(dataset: Any, model: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Accuracy curves of every fold and the protocol's summary for one model."""
    task = Task("multiclass", dataset.num_classes)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         warmup_epochs=min(5, args.epochs - 1), schedule="cosine", grad_clip=1.0, seed=args.seed)
    model_config = {"name": model, "out_channels": task.out_channels, "hidden_channels": args.hidden,
                    "num_layers": args.layers, "heads": args.heads, **tu_encoders(dataset)}
    curves = []
    for k, fold in enumerate(stratified_kfold(dataset.y, n_splits=args.folds, seed=args.seed)):
        print(f"{model}: fold {k + 1}/{args.folds}")
        # The test fold doubles as `valid` so that fit records its accuracy after every epoch.
        splits = {"train": dataset[fold["train"]], "valid": dataset[fold["test"]]}
        result = fit(model_config, task, splits, config, out / model / f"fold{k}", device=args.device,
                     progress=progress_enabled())
        curves.append([h["valid"]["acc"] for h in result.history])
    acc = np.array(curves)
    best = int(acc.mean(0).argmax())
    return {"model": model, "best_epoch": best + 1, "accuracy": mean_std(acc[:, best].tolist()),
            "curves": acc.tolist()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="MUTAG", help=f"TU name, e.g. {', '.join(TU_PAPER_NAMES)}")
    parser.add_argument("--root", default="dataset", help="download/processing folder (default: dataset)")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=["plstm", "gin"])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--layers", type=int, default=None, help="pLSTM blocks / GNN layers (default: 2 / 5)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="fold shuffling and training seed")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="output folder (default: runs/tu-<dataset>)")
    args = parser.parse_args(argv)

    dataset = load_dataset(args.dataset, args.root)
    out = Path(args.out or f"runs/tu-{args.dataset}")
    results = [cross_validate(dataset, model, args, out) for model in args.models]
    lines = [f"{args.dataset}, {args.folds}-fold CV, {args.epochs} epochs", "",
             "| model | accuracy | epoch |", "|---|---|---|"]
    lines += [f"| {r['model']} | {format_mean_std(r['accuracy'])} | {r['best_epoch']} |" for r in results]
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps(json_safe({"arguments": vars(args), "results": results}), indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
