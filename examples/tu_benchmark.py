"""pLSTM vs GNNs on the TU graph-classification sets (MUTAG, NCI1, PROTEINS, PTC_FM) by cross-validation.

Two protocols (``--protocol``), both stratified 10-fold cross-validation, training every fold with AdamW
(lr 1e-3), a cosine schedule after a linear warm-up and gradient clipping at norm 1:

* ``xu`` (Xu et al., GIN, 2019): 100 epochs, 5 warm-up epochs; the test-fold accuracy is recorded after
  every epoch, the curves are averaged over the folds and the mean ± std over folds is reported at the epoch
  where the average is highest (no validation set).
* ``authors`` (the pLSTM paper's TU experiments, as in the authors' code ml-jku/plstm_experiments):
  ``StratifiedKFold(shuffle=True, random_state=42)``; each training fold is split again, stratified
  (``train_test_split(train_size=0.888889, random_state=42)``), into train and validation; 100 epochs,
  ``epochs // 20`` warm-up epochs, batches of 64 graphs; every fold reports its test accuracy at its
  best-validation epoch. Node attributes are used (``use_node_attr=True``). pLSTM is
  ``PLSTMNet.from_config("authors")`` (2 PD blocks, 96 channels, mean pooling, no edge features: edges get
  the mean of their endpoints' encoded features); ``--hidden``/``--layers``/``--heads`` override it.

    python examples/tu_benchmark.py --dataset MUTAG --models plstm gin
    python examples/tu_benchmark.py --protocol authors --dataset PROTEINS --models plstm
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
import torch  # noqa: E402

from pyg_plstm.datasets import TU_PAPER_NAMES, load_dataset  # noqa: E402
from pyg_plstm.models import CONFIGS, MODEL_NAMES  # noqa: E402
from pyg_plstm.splits import stratified_kfold  # noqa: E402
from pyg_plstm.train import Task, TrainConfig, fit  # noqa: E402
from pyg_plstm.train.data import tu_encoders  # noqa: E402
from pyg_plstm.train.report import format_mean_std, json_safe, mean_std  # noqa: E402
from pyg_plstm.train.trainer import progress_enabled  # noqa: E402

PROTOCOLS = ("xu", "authors")
# Settings that differ between the protocols when not given on the command line.
PROTOCOL_DEFAULTS = {"xu": {"seed": 0, "batch_size": 32}, "authors": {"seed": 42, "batch_size": 64}}
# The authors' inner split: train_test_split(train_size=0.888889), i.e. 8/9 of the training fold.
AUTHORS_TRAIN_FRACTION = 0.888889


def authors_folds(labels: torch.Tensor, n_splits: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """The authors' folds: stratified k-fold, then a stratified train/valid split of every training fold
    (both unstratified, as in their code, when a class is too small to stratify)."""
    from sklearn.model_selection import KFold, train_test_split

    y = labels.view(-1).numpy()

    def folds(stratified: bool) -> list[dict[str, torch.Tensor]]:
        outer = (stratified_kfold(labels, n_splits=n_splits, seed=seed) if stratified else
                 [{"train": torch.from_numpy(train), "test": torch.from_numpy(test)}
                  for train, test in KFold(n_splits, shuffle=True, random_state=seed).split(y)])
        out = []
        for fold in outer:
            train_valid = fold["train"].numpy()
            train, valid = train_test_split(train_valid, train_size=AUTHORS_TRAIN_FRACTION, random_state=seed,
                                            stratify=y[train_valid] if stratified else None)
            out.append({"train": torch.from_numpy(np.sort(train)), "valid": torch.from_numpy(np.sort(valid)),
                        "test": fold["test"]})
        return out

    try:
        return folds(stratified=True)
    except ValueError:
        return folds(stratified=False)


def model_config(dataset: Any, model: str, args: argparse.Namespace, out_channels: int) -> dict[str, Any]:
    """Keyword arguments of make_model for ``model`` under the chosen protocol."""
    sizes = {"hidden_channels": args.hidden, "num_layers": args.layers, "heads": args.heads}
    config: dict[str, Any] = {"name": model, "out_channels": out_channels, **tu_encoders(dataset)}
    if args.protocol == "authors" and model == "plstm":
        authors = {"num_layers" if key == "num_blocks" else key: value for key, value in CONFIGS["authors"].items()}
        # Their TU model has no edge encoder: edges get the mean of their endpoints' encoded features.
        config.update(authors, edge_dim=None, edge_encoder=None)
        config.update({key: value for key, value in sizes.items() if value is not None})
        return config
    defaults = {"hidden_channels": 96, "num_layers": None, "heads": 4}
    config.update({key: defaults[key] if value is None else value for key, value in sizes.items()})
    if args.protocol == "authors":
        config["pooling"] = "mean"
    return config


def cross_validate(dataset: Any, model: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Accuracy of every fold and the protocol's summary for one model."""
    task = Task("multiclass", dataset.num_classes)
    authors = args.protocol == "authors"
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         warmup_epochs=args.epochs // 20 if authors else min(5, args.epochs - 1),
                         schedule="cosine", grad_clip=1.0, seed=args.seed)
    configuration = model_config(dataset, model, args, task.out_channels)
    folds = (authors_folds(dataset.y, args.folds, args.seed) if authors
             else stratified_kfold(dataset.y, n_splits=args.folds, seed=args.seed))
    curves, tests, best_epochs = [], [], []
    for k, fold in enumerate(folds):
        print(f"{model}: fold {k + 1}/{args.folds}")
        if authors:
            splits = {name: dataset[fold[name]] for name in ("train", "valid", "test")}
        else:
            # The test fold doubles as `valid` so that fit records its accuracy after every epoch.
            splits = {"train": dataset[fold["train"]], "valid": dataset[fold["test"]]}
        result = fit(configuration, task, splits, config, out / model / f"fold{k}", device=args.device,
                     progress=progress_enabled())
        curves.append([h["test" if authors else "valid"]["acc"] for h in result.history])
        if authors:
            tests.append(result.best["test"]["acc"])
            best_epochs.append(result.best_epoch)
    acc = np.array(curves)
    if authors:
        return {"model": model, "best_epoch": best_epochs, "accuracy": mean_std(tests), "fold_accuracy": tests,
                "curves": acc.tolist()}
    best = int(acc.mean(0).argmax())
    return {"model": model, "best_epoch": best + 1, "accuracy": mean_std(acc[:, best].tolist()),
            "curves": acc.tolist()}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="MUTAG", help=f"TU name, e.g. {', '.join(TU_PAPER_NAMES)}")
    parser.add_argument("--root", default="dataset", help="download/processing folder (default: dataset)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="xu", help="see the module docstring")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=["plstm", "gin"])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 (xu) / 64 (authors)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=None, help="default: 96")
    parser.add_argument("--layers", type=int, default=None, help="pLSTM blocks / GNN layers (default: 2 / 5)")
    parser.add_argument("--heads", type=int, default=None, help="default: 4")
    parser.add_argument("--seed", type=int, default=None, help="fold shuffling and training seed "
                                                                "(default: 0 (xu) / 42 (authors))")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="output folder (default: runs/tu-<dataset>)")
    args = parser.parse_args(argv)
    for name, value in PROTOCOL_DEFAULTS[args.protocol].items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    dataset = load_dataset(args.dataset, args.root, **({"use_node_attr": True} if args.protocol == "authors" else {}))
    out = Path(args.out or f"runs/tu-{args.dataset}")
    results = [cross_validate(dataset, model, args, out) for model in args.models]
    selection = "best validation epoch per fold" if args.protocol == "authors" else "best mean epoch"
    lines = [f"{args.dataset}, {args.folds}-fold CV ({args.protocol} protocol, {selection}), {args.epochs} epochs",
             "", "| model | accuracy | epoch |", "|---|---|---|"]
    lines += [f"| {r['model']} | {format_mean_std(r['accuracy'])} | {r['best_epoch']} |" for r in results]
    table = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table + "\n")
    (out / "summary.json").write_text(json.dumps(json_safe({"arguments": vars(args), "results": results}), indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
