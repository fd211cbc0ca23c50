r"""The ``pyg-plstm`` command line (also ``python -m pyg_plstm``).

Subcommands:

* ``train``: train pLSTM and/or baselines on a named data set or a CSV, over
  one or more seeds; writes checkpoints, ``summary.json``/``summary.md`` and
  ``curves.png`` under ``--out`` and prints the best-validation table.
* ``predict``: predictions of a trained checkpoint for SMILES (arguments or a
  CSV column), written as CSV.
* ``long-range``: the synthetic long-range benchmark
  (:mod:`pyg_plstm.experiments.long_range`; its own options follow).

Exit status: 0 on success; 1 when ``predict`` refused some rows (invalid
SMILES; the other rows are still written; ``--allow-invalid`` makes this 0);
2 for bad arguments or input (with a message naming the problem); 130 when
interrupted (``train --resume --out DIR`` continues).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

from pyg_plstm.models import MODEL_NAMES, POOLINGS

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_INVALID_ROWS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_EPOCHS = 40
DEFAULT_BATCH_SIZE = 32


def _data_root() -> str:
    return os.environ.get("PYG_PLSTM_DATA", os.path.join("~", ".cache", "pyg_plstm"))


def _add_train(sub: argparse._SubParsersAction) -> None:
    from pyg_plstm.train.data import SPLIT_METHODS, TASK_CHOICES
    from pyg_plstm.train.trainer import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig)}
    p = sub.add_parser("train", help="train pLSTM and/or baselines, print the results table",
                       description="Train models side by side over seeds; report the metrics at the "
                                   "best-validation epoch (mean ± std over seeds).")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="solubility",
                      help="'solubility' (default, shipped), 'freesolv' (shipped), an OGB 'ogbg-mol*' name, a "
                           "MoleculeNet name ('esol', 'hiv', ... or 'moleculenet:<name>'), or a TU name "
                           "('MUTAG', 'tu:<NAME>')")
    data.add_argument("--csv", help="train on this CSV instead (needs --target-col)")
    data.add_argument("--smiles-col", default="smiles", help="SMILES column of --csv (default: smiles)")
    data.add_argument("--target-col", nargs="+", metavar="COL", help="target column(s) of --csv")
    data.add_argument("--split-col", help="train/valid/test column of --csv (used by --split auto/file)")
    data.add_argument("--task", choices=TASK_CHOICES, default="auto",
                      help="molecule sets: regression or binary classification (auto: binary when all "
                           "labels are 0/1)")
    data.add_argument("--split", choices=SPLIT_METHODS, default="auto",
                      help="auto: OGB's official split, else the file's split column, else scaffold "
                           "(molecules) or random (TU); random is 80/10/10")
    data.add_argument("--split-seed", type=int, default=0, help="seed of a random split (default 0)")
    data.add_argument("--root", default=_data_root(),
                      help="where data sets are downloaded/processed (default $PYG_PLSTM_DATA or "
                           "~/.cache/pyg_plstm)")

    model = p.add_argument_group("model")
    model.add_argument("--model", nargs="+", choices=MODEL_NAMES, default=["plstm"], metavar="NAME",
                       help=f"one or more of {', '.join(MODEL_NAMES)} (default: plstm)")
    model.add_argument("--hidden", type=int, default=96, help="hidden channels (default 96)")
    model.add_argument("--layers", type=int, help="pLSTM blocks / GNN layers (default: 2 / 5)")
    model.add_argument("--heads", type=int, default=4, help="heads of pLSTM and GAT (default 4)")
    model.add_argument("--dropout", type=float, default=0.0)
    model.add_argument("--pooling", choices=POOLINGS, default="mean")
    model.add_argument("--block", default="PD", help="pLSTM block pattern: PD, P or D (default PD)")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"(default {DEFAULT_EPOCHS})")
    opt.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                     help=f"global batch size (default {DEFAULT_BATCH_SIZE})")
    opt.add_argument("--lr", type=float, default=defaults["lr"], help="AdamW learning rate")
    opt.add_argument("--weight-decay", type=float, default=defaults["weight_decay"])
    opt.add_argument("--warmup-epochs", type=int, default=defaults["warmup_epochs"])
    opt.add_argument("--schedule", choices=("cosine", "constant"), default=defaults["schedule"])
    opt.add_argument("--grad-clip", type=float, default=defaults["grad_clip"], help="0 disables clipping")
    opt.add_argument("--seeds", "--seed", nargs="+", type=int, default=[0], dest="seeds", metavar="SEED",
                     help="one run per seed; several give mean ± std (default 0)")

    run = p.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument("--threads", type=int, default=1,
                     help="intra-op CPU threads per process (default 1: molecular graphs are too small for "
                          "more threads to pay off; on 2 cores one thread trained pLSTM about 4x faster)")
    run.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    run.add_argument("--out", help="output folder (default runs/<dataset>-<time>)")
    run.add_argument("--resume", action="store_true",
                     help="continue the runs in --out from their last checkpoints (finished runs are kept)")
    run.add_argument("--overwrite", action="store_true", help="replace earlier runs in --out")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bars (also off when CI is set or stderr is not a terminal)")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict SMILES with a trained checkpoint, write CSV",
                       description="Predictions of a checkpoint written by `pyg-plstm train` (best.pt or "
                                   "last.pt). Invalid SMILES are reported per row and left without a "
                                   "prediction; the exit status is then 1 unless --allow-invalid.")
    p.add_argument("--checkpoint", required=True, help="path to best.pt / last.pt")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--smiles", nargs="+", help="SMILES strings")
    src.add_argument("--csv", help="CSV file with a SMILES column")
    p.add_argument("--smiles-col", default="smiles", help="SMILES column of --csv (default: smiles)")
    p.add_argument("--out", help="output CSV (default: standard output)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu")
    p.add_argument("--allow-invalid", action="store_true", help="exit 0 even if some rows were refused")


def build_parser() -> argparse.ArgumentParser:
    from pyg_plstm import __version__

    parser = argparse.ArgumentParser(prog="pyg-plstm", description="pLSTM on graphs: training, prediction, "
                                     "benchmarks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_predict(sub)
    sub.add_parser("long-range", add_help=False,
                   help="synthetic long-range benchmark (see `pyg-plstm long-range --help`)")
    return parser


def _check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    positive = ["epochs", "batch_size", "hidden", "heads", "threads"] + (["layers"] if args.layers is not None else [])
    for name in positive:
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.csv is None and (args.target_col or args.split_col):
        parser.error("--target-col/--split-col describe a --csv file; pass --csv too")
    if args.resume and args.out is None:
        parser.error("--resume needs --out, the folder of the run to continue")
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds has duplicates: {args.seeds}")
    if len(set(args.model)) != len(args.model):
        parser.error(f"--model has duplicates: {args.model}")


def _prepare_out(args: argparse.Namespace, run_dirs: list[Path]) -> None:
    earlier = [d for d in run_dirs if (d / "last.pt").exists()]
    if earlier and not (args.resume or args.overwrite):
        raise ValueError(f"{args.out} already holds runs ({earlier[0] / 'last.pt'}); pass --resume to "
                         "continue them, --overwrite to start over, or another --out")
    if args.overwrite:
        for d in earlier:
            shutil.rmtree(d)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from pyg_plstm.train import distributed as D
    from pyg_plstm.train.compare import compare_models
    from pyg_plstm.train.data import prepare_data
    from pyg_plstm.train.report import write_report
    from pyg_plstm.train.trainer import TrainConfig, progress_enabled

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    env = D.setup(args.device)
    try:
        name = Path(args.csv).stem if args.csv else args.dataset
        if args.out is None:
            # Every process must write to the folder rank 0 picked.
            args.out = D.gather_shards(f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}", env)[0]
        out = Path(args.out)
        run_dirs = [out / m / f"seed{s}" for m in args.model for s in args.seeds]
        if env.is_main:
            _prepare_out(args, run_dirs)
        # Rank 0 processes the raw data first so that the others only read the result.
        if not env.is_main:
            D.barrier(env)
        data = prepare_data(args.dataset, Path(args.root).expanduser(), args.csv, args.smiles_col,
                            args.target_col, args.split_col, args.split, args.split_seed, args.task)
        if env.is_main:
            D.barrier(env)
            sizes = ", ".join(f"{k} {v}" for k, v in data.meta["sizes"].items())
            print(f"data: {name} ({data.meta['split']} split: {sizes}); task: {data.task.type}, "
                  f"{data.task.num_tasks} {'classes' if data.task.type == 'multiclass' else 'target(s)'}, "
                  f"metric {data.task.metric}; output: {out}", flush=True)
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                             schedule=args.schedule, grad_clip=args.grad_clip)
        options = {"hidden_channels": args.hidden, "num_layers": args.layers, "heads": args.heads,
                   "pooling": args.pooling, "dropout": args.dropout, "block": args.block}
        runs = compare_models(data, args.model, config, args.seeds, out, options, resume=args.resume,
                              device=args.device, num_workers=args.num_workers,
                              progress=progress_enabled(not args.no_progress))
        if env.is_main:
            info = {**data.meta, "arguments": vars(args), "devices": env.world_size}
            table = write_report(out, runs, data.task, info)
            print(f"\n{name}: {data.task.metric} at the best-validation epoch\n{table}\n"
                  f"written to {out}/summary.md, summary.json, curves.png", flush=True)
        return EXIT_OK
    except KeyboardInterrupt:
        if env.is_main:
            print(f"\ninterrupted; continue with: pyg-plstm train ... --resume --out {args.out}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        D.cleanup(env)
        torch.set_num_threads(threads)


def _read_smiles(args: argparse.Namespace) -> list[str]:
    if args.smiles is not None:
        return list(args.smiles)
    from pyg_plstm.datasets import read_csv

    frame = read_csv(args.csv)
    if args.smiles_col not in frame.columns:
        raise ValueError(f"{args.csv} has no column {args.smiles_col!r}; columns: {list(frame.columns)}")
    return frame[args.smiles_col].fillna("").astype(str).tolist()


def cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from pyg_plstm.chem import MolToDAG
    from pyg_plstm.train.trainer import load_model, predict

    model, ckpt = load_model(args.checkpoint, args.device)
    featurizer = ckpt["meta"].get("featurizer")
    # Only SMILES-featurised (regression / binary) models can predict from SMILES.
    if featurizer is None:
        raise ValueError(f"{args.checkpoint} was not trained on SMILES ({ckpt['meta'].get('dataset')}); "
                         "predict needs a molecule model")
    to_graph = MolToDAG(**featurizer)
    smiles = _read_smiles(args)
    graphs, ok, errors = [], [], {}
    for row, s in enumerate(smiles):
        try:
            graphs.append(to_graph.from_smiles(s))
            ok.append(row)
        except ValueError as err:
            errors[row] = str(err)
            print(f"row {row}: refused {s!r}: {err}", file=sys.stderr)
    values = torch.empty(0)
    if graphs:
        values = predict(model, graphs, ckpt.get("target_norm"), args.batch_size, args.device)
        # Classifiers output logits; users want probabilities.
        if ckpt["task"]["type"] == "binary":
            values = values.sigmoid()
    columns = list(ckpt["meta"].get("targets") or [f"task_{t}" for t in range(ckpt["task"]["num_tasks"])])
    by_row = dict(zip(ok, values.tolist()))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["row", "smiles"] + columns + ["error"])
    for row, s in enumerate(smiles):
        writer.writerow([row, s] + by_row.get(row, [""] * len(columns)) + [errors.get(row, "")])
    if args.out:
        Path(args.out).write_text(buf.getvalue())
        print(f"{len(ok)} of {len(smiles)} rows predicted; written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(buf.getvalue())
    return EXIT_INVALID_ROWS if errors and not args.allow_invalid else EXIT_OK


def _long_range(argv: list[str]) -> int:
    from pyg_plstm.experiments.long_range import main as long_range_main

    return long_range_main(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    os.environ.setdefault("OUTDATED_IGNORE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    # The benchmark parses its own options (including --help).
    if argv and argv[0] == "long-range":
        return _long_range(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            _check_args(args, parser)
            return cmd_train(args)
        return cmd_predict(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"pyg-plstm {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
