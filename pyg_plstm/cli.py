r"""The ``pyg-plstm`` command line (also ``python -m pyg_plstm``).

Subcommands:

* ``train``: train pLSTM, the GNN baselines and/or the fingerprint baselines
  (``ecfp-svr``, ``ecfp-rf``) on a named data set or a CSV, over one or more
  seeds, optionally with molecule-level features; writes checkpoints and a
  result record per run under ``--out/<model>/seed<k>/``, and
  ``summary.json``/``summary.md``/``curves.png`` over every finished run in
  ``--out`` (earlier runs on the same data stay in the table; models with
  several seeds also as ensembles), and prints the best-validation table.
* ``predict``: predictions of a trained checkpoint for SMILES (arguments or a
  CSV column), or the mean and std of several (an ensemble), written as CSV.
* ``explain``: atom and bond attributions of a trained checkpoint's
  predictions for SMILES, drawn on the molecules (PNG/SVG per molecule and
  method), with an HTML index and a CSV of the scores.
* ``long-range``: the synthetic long-range benchmark
  (:mod:`pyg_plstm.experiments.long_range`; its own options follow).

Every file is written atomically (a crash leaves the previous version whole);
no command writes onto one of its inputs, and ``predict`` replaces an existing
``--out`` (``explain``: a non-empty ``--out`` folder) only with ``--overwrite``.
A run has one writer at a time (a second command on the same run is refused
while the first lives), and ``train --overwrite`` replaces a run only once its
new run has finished.

Exit status::

    0    success
    1    predict / explain refused some rows (invalid SMILES; the other rows are written; --allow-invalid makes
         this 0)
    2    bad arguments or input, training diverged, or a method needs a missing optional package (the message
         names the problem)
    3    an output path was refused: a file where a folder is needed or the reverse, an existing
         predict --out or non-empty explain --out without --overwrite, an input of the command, a folder holding
         runs on other data or runs to --resume / --overwrite, or a run another process is writing
    4    a data set could not be downloaded (the message names the URL and where to put the raw files)
    130  interrupted (train --resume --out DIR continues; long-range keeps its finished runs)
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import inspect
import io
import json
import os
import sys
import textwrap
import time
import urllib.error
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from pyg_plstm.baselines import ECFP_MODELS
from pyg_plstm.chem import ORDERS, MolToDAG
from pyg_plstm.chem.features import FP_RADIUS, FP_SIZE, MOLECULE_FEATURES
from pyg_plstm.models import CONFIGS, MODEL_NAMES, POOLINGS, PLSTMNet, make_model, model_arguments
from pyg_plstm.nn.conv import TRANSITIONS, PLSTMConv
from pyg_plstm.train.files import (
    OutputPathError,
    atomic_write,
    check_not_an_input,
    check_output_dir,
    check_output_file,
)
from pyg_plstm.train.trainer import SCHEDULES, TrainConfig

__all__ = ["main", "build_parser", "EXIT_STATUS"]

EXIT_OK, EXIT_INVALID_ROWS, EXIT_USAGE, EXIT_OUTPUT, EXIT_DATA_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
# The table in the module docstring, shown by --help.
EXIT_STATUS = "exit status:\n" + textwrap.indent(textwrap.dedent(__doc__.split("Exit status::\n")[1]).strip("\n"), "  ")
# What a failed download raises: pyg_plstm.datasets.DownloadError (a URLError naming the URL and the offline
# folder), or what urllib raises where a download is not wrapped.
DOWNLOAD_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError)
# Graph models, then the fingerprint baselines; the order of the tables.
TRAINABLE = MODEL_NAMES + tuple(ECFP_MODELS)


def _data_root() -> str:
    return os.environ.get("PYG_PLSTM_DATA", os.path.join("~", ".cache", "pyg_plstm"))


def _default(function: Callable[..., Any], name: str) -> Any:
    """The default of argument ``name`` of ``function``: the CLI shows the library's own defaults."""
    return inspect.signature(function).parameters[name].default


def _add_train(sub: argparse._SubParsersAction) -> None:
    from pyg_plstm.train.data import SPLIT_METHODS, TASK_CHOICES

    defaults = TrainConfig()
    p = sub.add_parser("train", help="train pLSTM and/or baselines, print the results table", epilog=EXIT_STATUS,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train models side by side over seeds; report the metrics at the "
                                   "best-validation epoch (mean ± std over seeds).")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="solubility",
                      help="'solubility' (default, shipped), 'freesolv' (shipped), 'enas6' (shipped neural "
                           "architectures with their accuracy), an OGB 'ogbg-mol*' name, a "
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
                           "(molecules), D-VAE's split (enas6) or random (TU); random is 80/10/10")
    data.add_argument("--split-seed", type=int, default=0, help="seed of a random split (default 0)")
    data.add_argument("--atom-order", choices=ORDERS,
                      help="atom numbering of molecule sets, which orients the bonds: canonical (RDKit rank), "
                           "input (SMILES/file order, as the pLSTM paper) or bfs "
                           f"(default: {_default(MolToDAG, 'order')})")
    data.add_argument("--molecule-features", nargs="+", choices=MOLECULE_FEATURES, default=[], metavar="NAME",
                      help=f"molecule-level features beside the graph, any of {', '.join(MOLECULE_FEATURES)} "
                           "(Morgan ones with --fp-radius/--fp-size; rdkit2d: RDKit's descriptor list, a "
                           "descriptor RDKit cannot compute becomes the training mean); standardised on the "
                           "training split and joined to the pooled embedding before the head of every graph "
                           "model (the ecfp-* models ignore them)")
    data.add_argument("--descriptors", metavar="CSV",
                      help="a file of your own molecule-level descriptors (numeric columns, no gaps) keyed by "
                           "SMILES or row (--descriptors-key), joined like --molecule-features; every molecule "
                           "must be in it")
    data.add_argument("--descriptors-key", default="smiles", metavar="COL",
                      help="key column of --descriptors: a SMILES column (matched by canonical SMILES), or "
                           "'row' for 0-based data rows (default: smiles)")
    data.add_argument("--root", default=_data_root(),
                      help="where data sets are downloaded/processed (default $PYG_PLSTM_DATA or "
                           "~/.cache/pyg_plstm)")

    model = p.add_argument_group("model")
    model.add_argument("--model", nargs="+", choices=TRAINABLE, default=["plstm"], metavar="NAME",
                       help=f"one or more of {', '.join(TRAINABLE)} (default: %(default)s); ecfp-svr and "
                            "ecfp-rf are the fingerprint baselines (ECFP bits into a Tanimoto-kernel SVM, C "
                            "picked on the validation split, or a random forest), which ignore the options "
                            "below but --fp-radius/--fp-size")
    model.add_argument("--hidden", type=int, default=_default(make_model, "hidden_channels"),
                       help="hidden channels (default %(default)s)")
    model.add_argument("--layers", type=int, help="pLSTM blocks / GNN layers (default: the model's usual depth, "
                                                  "2 / 5)")
    model.add_argument("--heads", type=int, default=_default(make_model, "heads"),
                       help="heads of pLSTM and GAT (default %(default)s)")
    model.add_argument("--dropout", type=float, default=_default(make_model, "dropout"),
                       help="(default %(default)s)")
    model.add_argument("--pooling", choices=POOLINGS, default=_default(make_model, "pooling"),
                       help="(default %(default)s)")
    model.add_argument("--block", default=_default(PLSTMNet, "block"),
                       help="pLSTM block pattern: P, PD or D (default %(default)s)")
    model.add_argument("--plstm-config", choices=sorted(CONFIGS),
                       help="a named pLSTM configuration (PLSTMNet.CONFIGS): 'paper', 'authors' (the "
                            "authors' edge layer and block, edge features from the encoded nodes, so no "
                            "edge encoder), 'hybrid-pd' (the default before one P-mode layer per block: "
                            "P then D), 'previous' (the default before the hybrid blocks: LayerNorm, "
                            "pLSTM layers alone, norm offset 1e-2) or 'dag' (for inputs that are DAGs as "
                            "given, e.g. --dataset enas6: depth and height embeddings, pLSTM layers alone); "
                            "it sets pLSTM's architecture, --plstm-option entries override it")
    model.add_argument("--plstm-option", action="append", default=[], metavar="KEY=VALUE",
                       help="any PLSTMNet/PLSTMBlock/PLSTMConv option for pLSTM only, e.g. norm_eps=1e-2, "
                            "gate_bias=0, p_normalize=in (repeatable; values are Python literals or strings)")
    model.add_argument("--transition", choices=TRANSITIONS, default=_default(PLSTMConv, "transition"),
                       help="pLSTM transitions: scalar gates, or products of Householder reflections "
                            "(default %(default)s)")
    model.add_argument("--fp-radius", type=int, default=FP_RADIUS,
                       help="Morgan radius of the ecfp-* fingerprints and the morgan_* molecule features "
                            "(default %(default)s: ECFP4)")
    model.add_argument("--fp-size", type=int, default=FP_SIZE,
                       help="length of the ecfp-* fingerprints and the morgan_* molecule features "
                            "(default %(default)s)")
    model.add_argument("--householder-steps", type=int, default=_default(PLSTMConv, "householder_steps"),
                       help="reflections per Householder transition (default %(default)s)")

    opt = p.add_argument_group("optimisation")
    opt.add_argument("--epochs", type=int, default=defaults.epochs, help="(default %(default)s)")
    opt.add_argument("--batch-size", type=int, default=defaults.batch_size,
                     help="global batch size (default %(default)s)")
    opt.add_argument("--lr", type=float, default=defaults.lr, help="AdamW learning rate (default %(default)s)")
    opt.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="(default %(default)s)")
    opt.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs, help="(default %(default)s)")
    opt.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule, help="(default %(default)s)")
    opt.add_argument("--grad-clip", type=float, default=defaults.grad_clip,
                     help="gradient norm clipping, 0 disables it (default %(default)s)")
    opt.add_argument("--seeds", "--seed", nargs="+", type=int, default=[defaults.seed], dest="seeds",
                     metavar="SEED", help="one run per seed; several give mean ± std (default %(default)s)")

    run = p.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument("--threads", type=int, default=1,
                     help="intra-op CPU threads per process (default 1: molecular graphs are too small for "
                          "more threads to pay off; on 2 cores one thread trained pLSTM about 4x faster)")
    run.add_argument("--num-workers", type=int, default=0,
                     help="DataLoader worker processes, and processes converting molecules (graphs and "
                          "molecule features) when a data set is processed")
    run.add_argument("--out", help="output folder (default runs/<dataset>-<time>); runs of other models or seeds "
                                   "on the same data may share it, and its summary covers all of them")
    run.add_argument("--resume", action="store_true",
                     help="continue the runs in --out from their last checkpoints (finished runs are kept); "
                          "refused if the data or settings changed")
    run.add_argument("--overwrite", action="store_true",
                     help="start this command's model/seed runs in --out afresh (other runs are kept)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bars (also off when CI is set or stderr is not a terminal)")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict SMILES with a trained checkpoint, write CSV", epilog=EXIT_STATUS,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Predictions of a checkpoint written by `pyg-plstm train` (best.pt or "
                                   "last.pt), or the mean and standard deviation of several (an ensemble). "
                                   "Invalid SMILES are reported per row and left without a prediction; the "
                                   "exit status is then 1 unless --allow-invalid.")
    p.add_argument("--checkpoint", required=True, nargs="+", metavar="PATH",
                   help="best.pt / last.pt, or a run folder (every best.pt below it); several form an ensemble "
                        "whose CSV has the mean per target and a <target>_std column (population std over "
                        "the members)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--smiles", nargs="+", help="SMILES strings")
    src.add_argument("--csv", help="CSV file with a SMILES column")
    p.add_argument("--smiles-col", default="smiles", help="SMILES column of --csv (default: smiles)")
    p.add_argument("--descriptors", metavar="CSV",
                   help="descriptor file of these molecules, for a model trained with --descriptors (same "
                        "columns and key; rows are those of the SMILES given)")
    p.add_argument("--out", help="output CSV file (default: standard output); never one of the inputs")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--allow-invalid", action="store_true", help="exit 0 even if some rows were refused")


def _add_explain(sub: argparse._SubParsersAction) -> None:
    from pyg_plstm.explain import METHODS, explain_molecules
    from pyg_plstm.explain.drawing import FORMATS

    p = sub.add_parser("explain", help="draw atom and bond attributions of a checkpoint's predictions",
                       epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Attributions of a checkpoint written by `pyg-plstm train` for SMILES: one "
                                   "image per molecule and method under --out/<method>/, index.html showing them, "
                                   "scores.csv with every atom's and bond's score (RDKit indices of the SMILES as "
                                   "written). Invalid SMILES are reported per row; the exit status is then 1 unless "
                                   "--allow-invalid.")
    p.add_argument("--checkpoint", required=True, help="path to best.pt / last.pt")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--smiles", nargs="+", help="SMILES strings")
    src.add_argument("--csv", help="CSV file with a SMILES column")
    p.add_argument("--smiles-col", default="smiles", help="SMILES column of --csv (default: smiles)")
    p.add_argument("--out", required=True, help="output folder (refused if it holds files, unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its files")
    p.add_argument("--method", nargs="+", choices=METHODS, default=[METHODS[0]], metavar="METHOD",
                   help=f"one or more of {', '.join(METHODS)} (default: %(default)s)")
    p.add_argument("--target", default="0", help="the explained target: a name or an output index (default 0); "
                                                 "a classifier's logit is explained, its probability shown")
    p.add_argument("--format", nargs="+", choices=FORMATS, default=list(FORMATS), dest="formats",
                   help="image formats (default: %(default)s)")
    p.add_argument("--steps", type=int, default=_default(explain_molecules, "steps"),
                   help="integrated-gradients steps, of Captum's too (default %(default)s)")
    p.add_argument("--epochs", type=int, default=_default(explain_molecules, "epochs"),
                   help="GNNExplainer epochs (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=_default(explain_molecules, "batch_size"),
                   help="molecules per forward pass (default %(default)s)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--allow-invalid", action="store_true", help="exit 0 even if some rows were refused")


def build_parser() -> argparse.ArgumentParser:
    from pyg_plstm import __version__

    parser = argparse.ArgumentParser(prog="pyg-plstm", description="pLSTM on graphs: training, prediction, "
                                     "benchmarks.", epilog=EXIT_STATUS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_predict(sub)
    _add_explain(sub)
    sub.add_parser("long-range", add_help=False,
                   help="synthetic long-range benchmark (see `pyg-plstm long-range --help`)")
    return parser


def _check_train_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    positive = ["epochs", "batch_size", "hidden", "heads", "threads", "fp_size"]
    positive += ["layers"] if args.layers is not None else []
    for name in positive:
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.num_workers < 0:
        parser.error(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.fp_radius < 0:
        parser.error(f"--fp-radius must be >= 0, got {args.fp_radius}")
    if min(args.seeds) < 0:
        parser.error(f"--seeds must be >= 0, got {args.seeds}")
    if args.csv is None and (args.target_col or args.split_col):
        parser.error("--target-col/--split-col describe a --csv file; pass --csv too")
    if args.split_col and args.split not in ("auto", "file"):
        parser.error(f"--split-col is used by --split auto or file, not by --split {args.split}")
    if args.resume and args.out is None:
        parser.error("--resume needs --out, the folder of the run to continue")
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds has duplicates: {args.seeds}")
    if len(set(args.model)) != len(args.model):
        parser.error(f"--model has duplicates: {args.model}")


def _data_changes(data: Any) -> Callable[[Mapping[str, Any]], list[str]]:
    """How a finished run's data differs from ``data``: data set, task, split or data content (for
    :meth:`~pyg_plstm.train.run_folder.RunFolder.plan`)."""
    from pyg_plstm.train.fingerprint import PROCESSING_META, data_changes, scan_split
    from pyg_plstm.train.report import json_safe

    # Compare as stored: JSON turns tuples into lists and NaN into null.
    task, meta = json.loads(json.dumps(json_safe([data.task.to_dict(), data.meta])))
    fingerprint = {split: scan_split(split, dataset)[1] for split, dataset in data.splits.items()}

    def changes(record: Mapping[str, Any]) -> list[str]:
        conflicts = [f"task: {record['task']} there, {task} now"] if record.get("task") != task else []
        saved = record.get("meta", {})
        # The CSV's path may be spelled differently; its contents are compared by fingerprint.
        conflicts += [f"{key}: {saved.get(key)!r} there, {meta.get(key)!r} now"
                      for key in sorted((set(saved) | set(meta)) - {"csv", PROCESSING_META})
                      if saved.get(key) != meta.get(key)]
        return conflicts + data_changes(record.get("data"), fingerprint)

    return changes


def plstm_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``make_model`` arguments of pLSTM only: ``--plstm-config``, ``--transition``,
    ``--householder-steps`` and ``--plstm-option`` entries (last wins)."""
    overrides: dict[str, Any] = {}
    if args.plstm_config is not None:
        config = dict(CONFIGS[args.plstm_config])
        overrides["num_layers"] = config.pop("num_blocks", args.layers)
        overrides.update(config)
    if args.transition != _default(PLSTMConv, "transition"):
        overrides["transition"] = args.transition
    if args.householder_steps != _default(PLSTMConv, "householder_steps"):
        overrides["householder_steps"] = args.householder_steps
    allowed = set(model_arguments("plstm"))
    for entry in args.plstm_option:
        key, sep, text = entry.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in allowed:
            raise ValueError(f"--plstm-option {entry!r}: expected KEY=VALUE with KEY one of {sorted(allowed)}")
        try:
            overrides[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            overrides[key] = text.strip()
    if overrides.get("edge_features") == "input":
        # Edge features come from the encoded nodes: no bond features, no edge encoder.
        overrides.update(edge_dim=None, edge_encoder=None)
    return overrides


def _interrupted_note(args: argparse.Namespace) -> str:
    """Where an interrupted ``train`` left its runs, and how to go on."""
    if args.out is None:
        return "nothing was written"
    summary = Path(args.out).expanduser() / "summary.md"
    done = f"the finished runs are in {summary}" if summary.exists() else "no run had finished"
    if args.overwrite:
        return f"{done}; runs not finished keep what they held before; start them again with --overwrite"
    return f"{done}; continue with: pyg-plstm train ... --resume --out {args.out}"


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from pyg_plstm.train import distributed as D
    from pyg_plstm.train.compare import compare_models, model_config, run_config
    from pyg_plstm.train.data import prepare_data
    from pyg_plstm.train.ensemble import seed_ensembles
    from pyg_plstm.train.fingerprint import PROCESSING_META
    from pyg_plstm.train.report import write_report
    from pyg_plstm.train.run_folder import TRAIN_RUNS, RunFolder, run_settings
    from pyg_plstm.train.trainer import progress_enabled

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    env = D.setup(args.device)
    locks = contextlib.ExitStack()
    try:
        name = Path(args.csv).stem if args.csv else args.dataset
        if args.out is None:
            # Every process must write to the folder rank 0 picked.
            args.out = D.gather_shards(f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}", env)[0]
        folder = RunFolder(args.out, TRAIN_RUNS)
        out = folder.path
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                             schedule=args.schedule, grad_clip=args.grad_clip)
        options = {"hidden_channels": args.hidden, "num_layers": args.layers, "heads": args.heads,
                   "pooling": args.pooling, "dropout": args.dropout, "block": args.block}
        overrides = {"plstm": plstm_overrides(args),
                     **{m: {"radius": args.fp_radius, "size": args.fp_size} for m in ECFP_MODELS}}
        runs = [(m, s) for m in args.model for s in args.seeds]
        # Every run of this command is locked before it is checked, until the command ends.
        if env.is_main:
            locks.enter_context(folder.lock(runs))
        # Read-only checks, on every process: they must all stop if one does.
        folder.check_reports(args.overwrite, inputs=[args.csv, args.descriptors])
        folder.check_started(runs, args.resume, args.overwrite)
        # Rank 0 processes the raw data first so that the others only read the result.
        if not env.is_main:
            D.barrier(env)
        data = prepare_data(args.dataset, Path(args.root).expanduser(), args.csv, args.smiles_col,
                            args.target_col, args.split_col, args.split, args.split_seed, args.task,
                            args.atom_order, args.molecule_features, args.fp_radius, args.fp_size,
                            args.descriptors, args.descriptors_key, args.num_workers)
        if env.is_main:
            D.barrier(env)
        planned = {m: run_settings(run_config(m, config), {**model_config(m, data.task, data.encoders, **options),
                                                            **overrides.get(m, {})})
                   for m in args.model}
        # This command's own runs are checked by --resume (or replaced by --overwrite).
        folder.plan(folder.records(), planned, args.seeds, _data_changes(data), args.overwrite, keep=False)
        if env.is_main:
            sizes = ", ".join(f"{k} {v}" for k, v in data.meta["sizes"].items())
            processing = data.meta[PROCESSING_META]
            if processing and processing["skipped"]:
                sizes += f"; {processing['skipped']} of {processing['rows']} rows skipped, see the warning"
            print(f"data: {name} ({data.meta['split']} split: {sizes}); task: {data.task.type}, "
                  f"{data.task.num_tasks} {'classes' if data.task.type == 'multiclass' else 'target(s)'}, "
                  f"metric {data.task.metric}; output: {out}", flush=True)

        def report(_: Any = None) -> str:
            # Rebuilt from every finished run in the folder, so a shared --out keeps earlier runs.
            finished = folder.records(order=TRAINABLE)
            return write_report(out, finished, data.task, data.meta, seed_ensembles(out, finished, data.task))

        compare_models(data, args.model, config, args.seeds, out, options, overrides,
                       on_run_end=report if env.is_main else None,
                       resume=args.resume, device=args.device, num_workers=args.num_workers,
                       progress=progress_enabled(not args.no_progress))
        if env.is_main:
            print(f"\n{name}: {data.task.metric} at the best-validation epoch\n{report()}\n"
                  f"written to {out}/summary.md, summary.json, curves.png", flush=True)
        return EXIT_OK
    except KeyboardInterrupt:
        if env.is_main:
            print(f"\ninterrupted; {_interrupted_note(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        locks.close()
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


def _convert_rows(smiles: list[str], to_graph: MolToDAG) -> tuple[list[Any], list[int], dict[int, str]]:
    """The graphs of the SMILES ``to_graph`` accepts, their rows, and the refusal of every other row (also
    printed to stderr)."""
    graphs, ok, errors = [], [], {}
    for row, s in enumerate(smiles):
        try:
            graphs.append(to_graph.from_smiles(s))
            ok.append(row)
        except ValueError as err:
            errors[row] = str(err)
            print(f"row {row}: refused {s!r}: {err}", file=sys.stderr)
    return graphs, ok, errors


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from pyg_plstm.train.inference import Predictor, checkpoint_paths, predict_ensemble

    if args.batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    # Refuse an unusable --out before any work is done.
    paths = checkpoint_paths(args.checkpoint)
    out = None if args.out is None else check_output_file(args.out, [*paths, args.csv, args.descriptors],
                                                          args.overwrite)
    smiles = _read_smiles(args)
    members = [Predictor(path, args.device, args.batch_size, args.descriptors) for path in paths]
    if len(members) == 1:
        (values, errors), columns = members[0](smiles), members[0].columns
    else:
        mean, std, errors = predict_ensemble(members, smiles)
        print(f"ensemble of {len(members)} checkpoints: {', '.join(map(str, paths))}", file=sys.stderr)
        columns = members[0].columns + [f"{c}_std" for c in members[0].columns]
        values = np.concatenate([mean, std], axis=1)
    for row, err in errors.items():
        print(f"row {row}: refused {smiles[row]!r}: {err}", file=sys.stderr)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["row", "smiles"] + columns + ["error"])
    for row, s in enumerate(smiles):
        cells = [""] * len(columns) if row in errors else values[row].tolist()
        writer.writerow([row, s] + cells + [errors.get(row, "")])
    if out is not None:
        atomic_write(out, buf.getvalue())
        print(f"{len(smiles) - len(errors)} of {len(smiles)} rows predicted; written to {out}", file=sys.stderr)
    else:
        sys.stdout.write(buf.getvalue())
    return EXIT_INVALID_ROWS if errors and not args.allow_invalid else EXIT_OK


def _check_explain_out(args: argparse.Namespace) -> Path:
    """Refuse an ``--out`` that is a file, holds files (without ``--overwrite``) or would replace an input."""
    from pyg_plstm.explain.report import INDEX_FILE, SCORES_FILE

    out = check_output_dir(args.out)
    for name in (INDEX_FILE, SCORES_FILE):
        check_not_an_input(out / name, [args.checkpoint, args.csv])
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise OutputPathError(f"{out} is not empty; pass --overwrite to write into it (replacing its files), or "
                              "choose another --out")
    return out


def cmd_explain(args: argparse.Namespace) -> int:
    from pyg_plstm.explain import explain_molecules
    from pyg_plstm.explain.report import write_explanations
    from pyg_plstm.train.trainer import load_model, molecule_featurizer

    for name in ("batch_size", "steps", "epochs"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    out = _check_explain_out(args)
    model, ckpt = load_model(args.checkpoint, args.device)
    featurizer = molecule_featurizer(ckpt, args.checkpoint)
    smiles = _read_smiles(args)
    graphs, ok, errors = _convert_rows(smiles, featurizer)
    results = {method: explain_molecules(model, graphs, method, args.target, featurizer=featurizer,
                                         target_norm=ckpt.get("target_norm"), target_names=ckpt["meta"].get("targets"),
                                         batch_size=args.batch_size, steps=args.steps, epochs=args.epochs)
               for method in args.method}
    write_explanations(out, smiles, ok, errors, results, args.formats, binary=ckpt["task"]["type"] == "binary")
    print(f"{len(ok)} of {len(smiles)} rows explained ({', '.join(args.method)}); written to {out}/index.html",
          file=sys.stderr)
    return EXIT_INVALID_ROWS if errors and not args.allow_invalid else EXIT_OK


def _long_range(argv: list[str]) -> int:
    from pyg_plstm.experiments.long_range import main as long_range_main

    return long_range_main(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (see :data:`EXIT_STATUS`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # The benchmark parses its own options (including --help).
    if argv and argv[0] == "long-range":
        command, run = "long-range", lambda: _long_range(argv[1:])
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        if command == "train":
            _check_train_args(args, parser)
        run = lambda: {"train": cmd_train, "predict": cmd_predict, "explain": cmd_explain}[command](args)  # noqa: E731
    try:
        return run()
    except KeyboardInterrupt:
        print(f"\npyg-plstm {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, FloatingPointError, ImportError) as err:  # ImportError: a missing optional package
        # Most specific first: an output refusal is a ValueError, a failed download an OSError.
        codes = ((OutputPathError, EXIT_OUTPUT), (DOWNLOAD_ERRORS, EXIT_DATA_UNAVAILABLE), (Exception, EXIT_USAGE))
        print(f"pyg-plstm {command}: error: {err}", file=sys.stderr)
        return next(code for kind, code in codes if isinstance(err, kind))
