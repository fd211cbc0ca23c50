"""Six molecular dev sets, every model side by side: one run per model x set x seed, one table.

    python -m benchmarks.molecules --run                  # train what is missing (resumable)
    python -m benchmarks.molecules --run --models gin gat # only these models
    python -m benchmarks.molecules                        # collect: table, seed ensembles, learning curves

Protocol (the same for every model): the file's train/test split (FreeSolv, which has none: a random
80/10/10 split, seed 0), 10 % of train carved out as validation with a fixed seed, seeds 0-2, the
command line's default optimisation budget (TrainConfig: 40 epochs, batch 32, AdamW 1e-3, cosine with 5
warm-up epochs) and no per-set tuning. chemprop's D-MPNN runs through its own v2 command line
(`pip install -e ".[bench]"`) on the same split indices for the same number of epochs, with its own
defaults otherwise (batch 64, its Noam schedule). ECFP4 + SVR (Tanimoto kernel) picks its C on the
validation split. Model selection is by validation RMSE everywhere. A neural run repeats bit for bit on
the same CPU and library versions, not across them (records made since 2026-12-07 name their environment);
the records of this table come from more than one environment.

Records go to ``benchmarks/results/molecules.json`` (one per model x set x seed, with the command that
reproduces it); the table to ``benchmarks/results/molecules.md`` and learning curves to
``benchmarks/results/molecules_curves.png`` (every model) and ``molecules_curves_plstm.png`` (the pLSTM
variants before/after beside GIN).
"""
from __future__ import annotations

import argparse
import csv
import functools
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from pyg_plstm.nn.conv import PREVIOUS_NORM_EPS
from pyg_plstm.train.significance import percentile_interval, rmse_difference_replicates

from benchmarks import harness

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RECORDS = RESULTS / "molecules.json"
SEEDS = (0, 1, 2)
PROTOCOL = "Protocol" + __doc__.split("Protocol")[1].split("Records")[0].rstrip()
#: Decimals of the test labels and predictions kept in a record (far below any RMSE difference reported).
PREDICTION_DIGITS = 5
#: Bootstrap replicates of every pLSTM-vs-rival difference in test RMSE.
BOOTSTRAP_REPLICATES = 2000
MOLECULEACE = ("CHEMBL4616_EC50", "CHEMBL262_Ki", "CHEMBL237_EC50", "CHEMBL233_Ki")


def _moleculeace(name: str) -> list[str]:
    return ["--csv", f"data/moleculeace/{name}.csv", "--target-col", "y", "--split-col", "split"]


#: Training arguments of every set: the shipped ones by name, the MoleculeACE files by path.
SETS: dict[str, list[str]] = {
    "solubility": ["--dataset", "solubility"],
    "freesolv": ["--dataset", "freesolv", "--split", "random"],
    **{name: _moleculeace(name) for name in MOLECULEACE},
}
#: Model keys of pLSTM with the previous norm offset (``norm_eps=1e-2``) start with this.
OFFSET_1E_2 = "plstm-norm-eps1e-2"
#: The default before one P-mode layer per block (a P-mode, then a D-mode layer in every hybrid block); the
#: ablations below were measured on it.
HYBRID_PD = "plstm-hybrid-pd"
_HYBRID_PD_ARGUMENTS = ["--model", "plstm", "--plstm-config", "hybrid-pd"]
#: Model key -> ``pyg-plstm train`` arguments; the :data:`CHEMPROP_MODELS` run through chemprop's own command line.
MODELS: dict[str, list[str]] = {
    "plstm": ["--model", "plstm"],
    HYBRID_PD: _HYBRID_PD_ARGUMENTS,
    f"{HYBRID_PD}-rdkit2d": [*_HYBRID_PD_ARGUMENTS, "--molecule-features", "rdkit2d"],
    "plstm-previous": ["--model", "plstm", "--plstm-config", "previous"],
    "plstm-mlp2": [*_HYBRID_PD_ARGUMENTS, "--plstm-option", "mlp_ratio=2"],
    # The P-then-D default before the norm offset 1, and the ablations measured on it.
    **{f"{OFFSET_1E_2}{suffix}": [*_HYBRID_PD_ARGUMENTS, "--plstm-option", f"norm_eps={PREVIOUS_NORM_EPS}",
                                  *arguments]
       for suffix, arguments in {"": [], "-no-local": ["--plstm-option", "local=None"], "-lr5e-4": ["--lr", "5e-4"],
                                 "-lr2e-3": ["--lr", "2e-3"], "-rdkit2d": ["--molecule-features", "rdkit2d"]}.items()},
    "gin": ["--model", "gin"],
    # The same small learning-rate search for every family: half, the default 1e-3 and twice it.
    "plstm-lr5e-4": ["--model", "plstm", "--lr", "5e-4"],
    "plstm-lr2e-3": ["--model", "plstm", "--lr", "2e-3"],
    f"{HYBRID_PD}-lr5e-4": [*_HYBRID_PD_ARGUMENTS, "--lr", "5e-4"],
    f"{HYBRID_PD}-lr2e-3": [*_HYBRID_PD_ARGUMENTS, "--lr", "2e-3"],
    "gin-lr5e-4": ["--model", "gin", "--lr", "5e-4"],
    "gin-lr2e-3": ["--model", "gin", "--lr", "2e-3"],
    "gat": ["--model", "gat"],
    "gat-lr5e-4": ["--model", "gat", "--lr", "5e-4"],
    "gat-lr2e-3": ["--model", "gat", "--lr", "2e-3"],
    "gin-virtual": ["--model", "gin-virtual"],
    "dagnn": ["--model", "dagnn"],
    "chemprop": [],
    "chemprop-rdkit2d": [],
    "ecfp-svr": ["--model", "ecfp-svr"],
    "ecfp-rf": ["--model", "ecfp-rf"],
    "plstm-rdkit2d": ["--model", "plstm", "--molecule-features", "rdkit2d"],
    "gin-rdkit2d": ["--model", "gin", "--molecule-features", "rdkit2d"],
    "gat-rdkit2d": ["--model", "gat", "--molecule-features", "rdkit2d"],
    "gin-virtual-rdkit2d": ["--model", "gin-virtual", "--molecule-features", "rdkit2d"],
    "dagnn-rdkit2d": ["--model", "dagnn", "--molecule-features", "rdkit2d"],
}
#: Rows of the ablation table; every model not in it nor in the learning-rate search stands in the headline table.
ABLATIONS = (HYBRID_PD, f"{HYBRID_PD}-rdkit2d", "plstm-previous", "plstm-mlp2", OFFSET_1E_2, f"{OFFSET_1E_2}-no-local",
             f"{OFFSET_1E_2}-rdkit2d")
#: The learning-rate search: family (its model key at the command line's default rate) -> rate -> model key.
LR_SEARCH: dict[str, dict[str, str]] = {
    family: {"5e-4": f"{family}-lr5e-4", "1e-3": family, "2e-3": f"{family}-lr2e-3"}
    for family in ("plstm", HYBRID_PD, "gin", "gat", OFFSET_1E_2)}
#: The families pLSTM is compared with, each at its own best by set.
RIVALS = ("gin", "gat", "chemprop")
#: chemprop models -> the molecule features (:data:`~pyg_plstm.chem.MOLECULE_FEATURES`) they are given. chemprop gets
#: the very matrix the other models get, standardised on the training split as theirs are
#: (:class:`~pyg_plstm.nn.Standardize`), through its ``--descriptors-path``. Its own ``rdkit_2d`` featurizer is
#: not used: on the MoleculeACE sets RDKit's ``Ipc`` reaches 1e119, beyond float32, and chemprop 2.3.1 then
#: predicts NaN for every molecule.
CHEMPROP_MODELS: dict[str, tuple[str, ...]] = {"chemprop": (), "chemprop-rdkit2d": ("rdkit2d",)}
LABELS = {"plstm": "pLSTM (default: BatchNorm, GINE + one P-mode pLSTM layer per block, norm offset 1)",
          HYBRID_PD: "pLSTM P then D (the default before: GINE + a P-mode and a D-mode layer per block)",
          "plstm-previous": "pLSTM (the default before the hybrid blocks: LayerNorm, PD pLSTM blocks, norm offset "
                            "1e-2)",
          "plstm-mlp2": "ablation: P then D with block MLPs of 2x width (not 4x)",
          OFFSET_1E_2: "ablation: P then D with the pLSTM output norm's offset 1e-2 (the default before)",
          f"{OFFSET_1E_2}-no-local": "ablation: P then D with norm offset 1e-2, without GINE",
          f"{OFFSET_1E_2}-lr5e-4": "ablation: P then D with norm offset 1e-2, learning rate 5e-4",
          f"{OFFSET_1E_2}-lr2e-3": "ablation: P then D with norm offset 1e-2, learning rate 2e-3",
          f"{OFFSET_1E_2}-rdkit2d": "ablation: P then D with norm offset 1e-2 + RDKit 2D descriptors",
          "plstm-lr5e-4": "pLSTM (default), learning rate 5e-4", "plstm-lr2e-3": "pLSTM (default), learning rate 2e-3",
          f"{HYBRID_PD}-lr5e-4": "pLSTM P then D, learning rate 5e-4",
          f"{HYBRID_PD}-lr2e-3": "pLSTM P then D, learning rate 2e-3",
          f"{HYBRID_PD}-rdkit2d": "pLSTM P then D + RDKit 2D descriptors",
          "gin-lr5e-4": "GIN, learning rate 5e-4", "gin-lr2e-3": "GIN, learning rate 2e-3",
          "gat-lr5e-4": "GAT, learning rate 5e-4", "gat-lr2e-3": "GAT, learning rate 2e-3",
          "gin": "GIN", "gat": "GAT", "dagnn": "DAGNN",
          "gin-virtual": "GIN + virtual node", "chemprop": "chemprop D-MPNN",
          "chemprop-rdkit2d": "chemprop D-MPNN + RDKit 2D descriptors", "ecfp-svr": "ECFP4 + SVR",
          "ecfp-rf": "ECFP4 + random forest", "plstm-rdkit2d": "pLSTM (default) + RDKit 2D descriptors",
          "gin-rdkit2d": "GIN + RDKit 2D descriptors", "gat-rdkit2d": "GAT + RDKit 2D descriptors",
          "gin-virtual-rdkit2d": "GIN + virtual node + RDKit 2D descriptors",
          "dagnn-rdkit2d": "DAGNN + RDKit 2D descriptors"}


def train_command(set_name: str, model: str, seed: int, out: Path) -> list[str]:
    return ["train", *SETS[set_name], *MODELS[model], "--seeds", str(seed), "--no-progress", "--out", str(out)]


def _rmse(pred: list[float], true: list[float]) -> Optional[float]:
    if not pred:
        return None
    return math.sqrt(sum((p - t) ** 2 for p, t in zip(pred, true)) / len(pred))


def _cliff_flags(set_name: str) -> dict[str, bool]:
    """SMILES -> activity-cliff flag of a MoleculeACE file (empty for the other sets)."""
    if set_name not in MOLECULEACE:
        return {}
    with open(ROOT / "data" / "moleculeace" / f"{set_name}.csv", newline="") as f:
        return {row["smiles"]: row["cliff_mol"] == "1" for row in csv.DictReader(f)}


def _prepared(set_name: str, data_root: Path):
    """The splits the command line trains on (same arguments, same processed data)."""
    from pyg_plstm.cli import build_parser
    from pyg_plstm.train.data import prepare_data

    args = build_parser().parse_args(["train", *SETS[set_name]])
    return prepare_data(args.dataset, root=data_root, csv=args.csv, smiles_col=args.smiles_col,
                        target_cols=args.target_col, split_col=args.split_col, split=args.split,
                        split_seed=args.split_seed)


def _test_errors(set_name: str, predictions: list[float], graphs: Any, cliffs: dict[str, bool]) -> dict[str, Any]:
    true = [float(g.y.view(-1)[0]) for g in graphs]
    flags = [cliffs.get(g.smiles, False) for g in graphs]
    cliff_pred = [p for p, c in zip(predictions, flags) if c]
    cliff_true = [t for t, c in zip(true, flags) if c]
    return {"test_rmse_check": _rmse(predictions, true),
            "cliff_rmse": _rmse(cliff_pred, cliff_true) if set_name in MOLECULEACE else None,
            **test_values(true, predictions)}


def test_values(true: list[float], predictions: list[float]) -> dict[str, list[float]]:
    """A record's test labels and predictions (rounded: the seed ensembles are computed from them)."""
    return {"test_labels": [round(v, PREDICTION_DIGITS) for v in true],
            "test_predictions": [round(v, PREDICTION_DIGITS) for v in predictions]}


def environment() -> dict[str, str]:
    """Where a record was made: a run repeats bit for bit on the same CPU and library versions, not across them."""
    from importlib.metadata import version

    import torch

    machine = harness.machine(torch.device("cpu"))
    return {**{key: machine[key] for key in ("cpu", "python", "torch")},
            **{package: version(package) for package in ("torch_geometric", "rdkit", "numpy")}}


def _record_from_run(set_name: str, model: str, seed: int, out: Path, command: list[str], data_root: Path) -> dict:
    """The benchmark record of a finished ``pyg-plstm train`` run (cliff RMSE from the test predictions
    the run saved at its best epoch, or from its best checkpoint)."""
    from pyg_plstm.train import load_model, predict
    from pyg_plstm.train.ensemble import load_test_predictions

    run_dir = out / MODELS[model][1] / f"seed{seed}"
    result = json.loads((run_dir / "result.json").read_text())
    run = result["result"]
    best = run["best"]
    test = _prepared(set_name, data_root).splits["test"]
    saved = load_test_predictions(run_dir)
    if saved is not None:
        values = saved[1].reshape(-1).tolist()
    else:
        net, ckpt = load_model(run_dir / "best.pt")
        values = predict(net, test, ckpt.get("target_norm")).view(-1).tolist()
    errors = _test_errors(set_name, values, test, _cliff_flags(set_name))
    if abs(errors.pop("test_rmse_check") - best["test"]["rmse"]) > 1e-4:
        raise RuntimeError(f"{run_dir}: the test predictions do not reproduce the recorded test RMSE")
    return {
        "model": model, "set": set_name, "seed": seed,
        "test_rmse": best["test"]["rmse"], "cliff_rmse": errors["cliff_rmse"],
        "train_rmse": best["train"]["rmse"], "valid_rmse": best["valid"]["rmse"],
        "best_epoch": run["best_epoch"], "epochs": result["config"].get("epochs"),
        "s_per_epoch": run["seconds_per_epoch"], "cpu_s_per_epoch": run["cpu_seconds_per_epoch"],
        "num_parameters": run["num_parameters"],
        "command": shlex.join(["pyg-plstm", *command]),
        "curve": {"loss": [h["loss"] for h in run["history"]],
                  "valid_rmse": [h["valid"]["rmse"] for h in run["history"]]},
        "test_labels": errors["test_labels"], "test_predictions": errors["test_predictions"],
        "environment": environment(),
    }


def _chemprop_version() -> str:
    from importlib.metadata import version

    return version("chemprop")


def _write_rows(path: Path, rows: list[tuple[str, float]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["smiles", "y"])
        writer.writerows(rows)


def _chemprop_descriptors(features: tuple[str, ...], smiles: list[str], train: list[int]) -> Optional[np.ndarray]:
    """The molecule features of every SMILES, standardised on the ``train`` rows as the other models' are
    (read-only; computed once for the seeds of a set)."""
    return _standardised_features(tuple(features), tuple(smiles), tuple(train)) if features else None


@functools.lru_cache(maxsize=1)
def _standardised_features(features: tuple[str, ...], smiles: tuple[str, ...], train: tuple[int, ...]) -> np.ndarray:
    import torch

    from pyg_plstm.chem import parse_smiles
    from pyg_plstm.chem.features import MoleculeFeaturizer
    from pyg_plstm.nn import Standardize

    featurizer = MoleculeFeaturizer(features)
    matrix = torch.from_numpy(np.stack([featurizer(parse_smiles(s)) for s in smiles]))
    standardised = Standardize(featurizer.dim).fit(matrix[list(train)])(matrix).numpy()
    standardised.flags.writeable = False
    return standardised


def _descriptor_arguments(descriptors: Optional[np.ndarray], rows: list[int], path: Path) -> list[str]:
    """chemprop's arguments for the ``rows`` of ``descriptors`` (written to ``path``), already scaled."""
    if descriptors is None:
        return []
    np.savez(path, descriptors[rows])
    return ["--descriptors-path", str(path), "--no-descriptor-scaling"]


def _chemprop_predict(chemprop: str, model_path: Path, rows: list[tuple[str, float]], work: Path,
                      extra: list[str]) -> list[float]:
    inputs, preds = work / "predict_in.csv", work / "predict_out.csv"
    _write_rows(inputs, rows)
    subprocess.run([chemprop, "predict", "-i", str(inputs), "-s", "smiles", "--model-paths", str(model_path),
                    "-o", str(preds), "--accelerator", "cpu", "--devices", "1", "-n", "0", *extra],
                   check=True, capture_output=True, text=True)
    with open(preds, newline="") as f:
        reader = csv.DictReader(f)
        column = [c for c in reader.fieldnames if c not in ("smiles",)][-1]
        values = [row[column] for row in reader]
    missing = [i for i, value in enumerate(values) if value == ""]
    if missing:
        raise RuntimeError(f"chemprop predicted no value (NaN) for {len(missing)} of {len(values)} molecules "
                           f"(first: {rows[missing[0]][0]!r}) with {model_path}")
    return [float(value) for value in values]


def run_chemprop(set_name: str, seed: int, out: Path, data_root: Path, epochs: int, model: str = "chemprop") -> dict:
    """chemprop v2's D-MPNN (``model``, one of :data:`CHEMPROP_MODELS`) through its command line on this
    benchmark's split indices."""
    chemprop = shutil.which("chemprop") or str(Path(sys.executable).with_name("chemprop"))
    if not Path(chemprop).exists():
        raise RuntimeError("chemprop is not installed: pip install -e '.[bench]'")
    prepared = _prepared(set_name, data_root)
    rows, split_indices = [], {}
    for split, key in (("train", "train"), ("valid", "val"), ("test", "test")):
        graphs = prepared.splits[split]
        split_indices[key] = list(range(len(rows), len(rows) + len(graphs)))
        rows += [(g.smiles, float(g.y.view(-1)[0])) for g in graphs]
    out.mkdir(parents=True, exist_ok=True)
    data_path, splits_path, save_dir = out / "data.csv", out / "splits.json", out / f"seed{seed}"
    _write_rows(data_path, rows)
    splits_path.write_text(json.dumps([split_indices]))
    descriptors = _chemprop_descriptors(CHEMPROP_MODELS[model], [smiles for smiles, _ in rows], split_indices["train"])
    extra = _descriptor_arguments(descriptors, list(range(len(rows))), out / "descriptors.npz")
    if save_dir.exists():
        shutil.rmtree(save_dir)
    command = [chemprop, "train", "-i", str(data_path), "-s", "smiles", "--target-columns", "y",
               "--task-type", "regression", "--splits-file", str(splits_path), "--epochs", str(epochs),
               "--pytorch-seed", str(seed), "-o", str(save_dir), "--accelerator", "cpu", "--devices", "1",
               "-n", "0", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    children = os.times()
    done = subprocess.run(command, check=False, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    cpu = (os.times().children_user + os.times().children_system) - (children.children_user + children.children_system)
    (out / f"seed{seed}.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"chemprop train failed ({done.returncode}); see {out / f'seed{seed}.log'}")
    model_path = next(save_dir.rglob("best*.pt"))
    checkpoints = sorted(save_dir.rglob("best-epoch=*.ckpt"))
    best_epoch = int(re.search(r"best-epoch=(\d+)", checkpoints[-1].name).group(1)) + 1 if checkpoints else None
    with tempfile.TemporaryDirectory() as tmp:
        predictions = {split: _chemprop_predict(chemprop, model_path, [rows[i] for i in idx], Path(tmp),
                                                _descriptor_arguments(descriptors, idx, Path(tmp) / f"{split}.npz"))
                       for split, idx in split_indices.items()}
    true = {split: [rows[i][1] for i in idx] for split, idx in split_indices.items()}
    errors = _test_errors(set_name, predictions["test"], prepared.splits["test"], _cliff_flags(set_name))
    curve = _chemprop_curve(save_dir)
    shown = [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in command[1:]]
    written = ["data.csv", "splits.json"] + (["descriptors.npz"] if descriptors is not None else [])
    return {
        "model": model, "set": set_name, "seed": seed,
        "test_rmse": _rmse(predictions["test"], true["test"]), "cliff_rmse": errors["cliff_rmse"],
        "train_rmse": _rmse(predictions["train"], true["train"]),
        "valid_rmse": _rmse(predictions["val"], true["val"]),
        "best_epoch": best_epoch, "epochs": epochs, "s_per_epoch": wall / epochs, "cpu_s_per_epoch": cpu / epochs,
        "num_parameters": None, "version": _chemprop_version(),
        "command": shlex.join(["chemprop", *shown]) + f"  # {', '.join(written)}: written by benchmarks.molecules",
        "curve": curve, "test_labels": errors["test_labels"], "test_predictions": errors["test_predictions"],
        "environment": environment(),
    }


def _chemprop_curve(save_dir: Path) -> dict[str, list[float]]:
    """Per-epoch training loss and validation RMSE from chemprop's CSV log, where it wrote one."""
    logs = sorted(save_dir.rglob("metrics.csv"))
    if not logs:
        return {}
    losses: dict[int, float] = {}
    valid: dict[int, float] = {}
    with open(logs[-1], newline="") as f:
        for row in csv.DictReader(f):
            epoch = int(row["epoch"]) if row.get("epoch") else None
            if epoch is None:
                continue
            if row.get("train_loss_epoch"):
                losses[epoch] = float(row["train_loss_epoch"])
            if row.get("val/mse"):  # on chemprop's scaled targets
                valid[epoch] = math.sqrt(float(row["val/mse"]))
    return {"loss": [losses[e] for e in sorted(losses)], "valid_rmse": [valid[e] for e in sorted(valid)]}


def load_records() -> list[dict]:
    return harness.load_records(RECORDS)


def save_record(record: dict) -> None:
    """Add (or replace) one record; several benchmark processes (e.g. one per model) may share the file."""
    harness.save_record(RECORDS, record, ("model", "set", "seed"),
                        lambda r: (*harness.table_position(MODELS, r["model"]),
                                   *harness.table_position(SETS, r["set"]), r["seed"]),
                        {"protocol": PROTOCOL})


def run(runs: Path, models: list[str], sets: list[str], seeds: list[int], data_root: Path,
        add_predictions: bool = False) -> None:
    """Train and record the missing runs; with ``add_predictions``, records without test predictions count as
    missing (rebuilt from their run folder where it is still there, else retrained)."""
    from pyg_plstm.cli import main
    from pyg_plstm.train import TrainConfig

    done = {(r["model"], r["set"], r["seed"]) for r in load_records()
            if not add_predictions or r.get("test_predictions") is not None}
    for set_name in sets:
        for model in models:
            for seed in seeds:
                if (model, set_name, seed) in done:
                    continue
                out = runs / set_name / model
                print(f"[molecules] {model} on {set_name}, seed {seed}", flush=True)
                if model in CHEMPROP_MODELS:
                    record = run_chemprop(set_name, seed, out, data_root, TrainConfig().epochs, model)
                else:
                    command = train_command(set_name, model, seed, out)
                    run_dir = out / MODELS[model][1] / f"seed{seed}"
                    if not (run_dir / "result.json").is_file():
                        # An interrupted run (a killed queue) continues from its last epoch.
                        resume = ["--resume"] if (run_dir / "last.pt").is_file() else []
                        status = main([*command, *resume, "--root", str(data_root)])
                        if status:
                            raise RuntimeError(f"pyg-plstm {shlex.join(command)} exited {status}")
                    record = _record_from_run(set_name, model, seed, out, command[:-2], data_root)
                save_record(record)


def _mean_std(values: list[float]) -> tuple[float, Optional[float]]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _cell(values: list[Optional[float]], digits: int = 3) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _mean_over_seeds(by_key: dict[tuple[str, str], list[dict]], model: str, set_name: str,
                     key: str) -> Optional[float]:
    """The mean of ``key`` over the seeds of a complete (all :data:`SEEDS`) model x set, else ``None``."""
    values = [r.get(key) for r in by_key.get((model, set_name), [])]
    return sum(values) / len(values) if len(values) == len(SEEDS) and None not in values else None


def _score_table(by_key: dict[tuple[str, str], list[dict]], models: list[str], sets: list[str],
                 key: str, labels: Optional[dict[str, str]] = None) -> list[str]:
    """Mean ± std over seeds per set and the mean over the sets (complete rows only) of ``key``."""
    lines = ["| model | " + " | ".join(sets) + " | mean over sets |", "|---" * (len(sets) + 2) + "|"]
    for model in models:
        cells, means = [], []
        for s in sets:
            rs = by_key.get((model, s), [])
            partial = "" if len(rs) in (0, len(SEEDS)) else f" (n={len(rs)})"
            cells.append(_cell([r[key] for r in rs]) + partial)
            if rs:
                means.append(_mean_std([r[key] for r in rs])[0])
        mean = f"{sum(means) / len(means):.3f}" if len(means) == len(sets) else "–"
        lines.append(f"| {(labels or LABELS)[model]} | " + " | ".join(cells) + f" | {mean} |")
    return lines


def chosen_learning_rates(by_key: dict[tuple[str, str], list[dict]], sets: list[str]) -> dict[str, dict[str, Any]]:
    """Family -> ``{"model": key, "rate": rate, "rates": searched}``: among the rates a family has complete
    on every one of ``sets`` (at least two), the one with the lowest validation RMSE averaged over the sets."""
    chosen = {}
    for family, rates in LR_SEARCH.items():
        means = {}
        for rate, model in rates.items():
            values = [_mean_over_seeds(by_key, model, s, "valid_rmse") for s in sets]
            if all(v is not None for v in values):
                means[rate] = sum(values) / len(values)
        if len(means) >= 2:
            rate = min(means, key=means.get)
            chosen[family] = {"model": rates[rate], "rate": rate, "rates": list(means)}
    return chosen


def collect(records: list[dict]) -> str:
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        by_key.setdefault((r["model"], r["set"]), []).append(r)
    models = [m for m in MODELS if any(k[0] == m for k in by_key)]
    sets = [s for s in SETS if any(k[1] == s for k in by_key)]
    searched = {m for rates in LR_SEARCH.values() for m in rates.values()} - set(LR_SEARCH)
    headline = [m for m in models if m not in ABLATIONS and m not in searched]
    chemprop = next((r.get("version") for r in records if r["model"] == "chemprop"), None)
    lines = ["# Six molecular dev sets: every model side by side", "",
             "Generated by `python -m benchmarks.molecules` from `benchmarks/results/molecules.json`; "
             "do not edit by hand.", "", PROTOCOL.replace("\n", " "),
             "", f"chemprop version: {chemprop}" if chemprop else "", "",
             "## Test RMSE (mean ± std over seeds; lower is better)", "",
             *_score_table(by_key, headline, sets, "test_rmse")]
    ablations = [m for m in models if m in ABLATIONS]
    if ablations:
        lines += ["", "## Ablations of the pLSTM default: test RMSE", "", *_score_table(by_key, ablations, sets,
                                                                                       "test_rmse")]
    lines += _learning_rate_search(by_key, models, sets)
    for title, key in (("Activity-cliff molecules: test RMSE", "cliff_rmse"),
                       ("Train RMSE at the best-validation epoch", "train_rmse"),
                       ("Best epoch", "best_epoch"), ("Seconds per epoch (wall)", "s_per_epoch")):
        cols = [s for s in sets if key != "cliff_rmse" or s in MOLECULEACE]
        lines += ["", f"## {title}", "", "| model | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
        for model in models:
            digits = 1 if key == "best_epoch" else (2 if key == "s_per_epoch" else 3)
            cells = [_cell([r[key] for r in by_key.get((model, s), [])], digits) for s in cols]
            lines.append(f"| {LABELS[model]} | " + " | ".join(cells) + " |")
    lines += _ensembles(by_key, models, sets)
    lines += _comparison(by_key, sets, {"plstm": "plstm", "gin": "gin", "gat": "gat", "chemprop": "chemprop"},
                         "pLSTM (default) against the best of GIN, GAT and chemprop, every model at its default "
                         "learning rate")
    chosen = chosen_learning_rates(by_key, sets)
    if "plstm" in chosen:
        unsearched = [LABELS[family] for family in ("plstm", *RIVALS) if family in LR_SEARCH and family not in chosen]
        picks = {family: chosen[family]["model"] if family in chosen else family for family in LR_SEARCH}
        lines += _comparison(by_key, sets, {**picks, "chemprop": "chemprop"},
                             "Every searched family at the learning rate its validation chose (chemprop: its own "
                             "schedule" + "".join(f"; {name}: not searched, at the default" for name in unsearched)
                             + ")")
    lines += ["", "## Commands", ""]
    for model in models:
        example = next(r for r in records if r["model"] == model)
        lines.append(f"- {LABELS[model]}: `{example['command']}`")
    lines.append("")
    return "\n".join(lines)


def _learning_rate_search(by_key: dict[tuple[str, str], list[dict]], models: list[str],
                          sets: list[str]) -> list[str]:
    """The search's validation and test RMSE per family and learning rate, and the rate each family's
    six-set mean validation RMSE chooses."""
    rows = [(family, rate, model) for family, rates in LR_SEARCH.items() for rate, model in rates.items()
            if model in models]
    if not any(model in models and model not in LR_SEARCH for _, _, model in rows):
        return []
    labels = {model: f"{LABELS[family].split(' (')[0]}, lr {rate}" for family, rate, model in rows}
    searched = [model for _, _, model in rows]
    chosen = chosen_learning_rates(by_key, sets)
    lines = ["", "## The learning-rate search (the same three rates for every searched family)", "",
             "Every other setting as in the headline table. The rate is chosen per family, not per set, by the "
             "validation RMSE averaged over the sets; the test RMSE of every rate is shown, but the choice reads "
             "validation only.", "",
             "### Validation RMSE", "", *_score_table(by_key, searched, sets, "valid_rmse", labels), "",
             "### Test RMSE", "", *_score_table(by_key, searched, sets, "test_rmse", labels)]
    if chosen:
        lines += ["", "Chosen by validation: " + "; ".join(
            f"{LABELS[family].split(' (')[0]} lr {pick['rate']} (of {', '.join(pick['rates'])})"
            for family, pick in chosen.items()) + "."]
    return lines


def _ensembles(by_key: dict[tuple[str, str], list[dict]], models: list[str], sets: list[str]) -> list[str]:
    """Per model and set, the ensemble of its seeds: test RMSE of the mean prediction and the Spearman
    correlation of its errors with the seeds' spread (records that kept their test predictions only)."""
    from pyg_plstm.train.ensemble import ensemble, error_rank_correlation

    rows = []
    for model in models:
        cells, means = [], []
        for s in sets:
            rs = [r for r in by_key.get((model, s), []) if r.get("test_predictions") is not None]
            if len(rs) < 2:
                cells.append("–")
                continue
            labels = np.asarray(rs[0]["test_labels"])
            if any(r["test_labels"] != rs[0]["test_labels"] for r in rs):
                raise ValueError(f"the seeds of {model} on {s} hold test predictions for different labels")
            mean, std = ensemble([np.asarray(r["test_predictions"]) for r in rs])
            rmse = float(np.sqrt(np.mean((mean - labels) ** 2)))
            means.append(rmse)
            correlation = error_rank_correlation(labels, mean, std)
            cells.append(f"{rmse:.3f} ({'–' if math.isnan(correlation) else f'{correlation:+.2f}'})")
        if means:
            total = f"{sum(means) / len(means):.3f}" if len(means) == len(sets) else "–"
            rows.append(f"| {LABELS[model]} | " + " | ".join(cells) + f" | {total} |")
    if not rows:
        return []
    return ["", "## Seed ensembles: test RMSE of the seeds' mean prediction (Spearman of |error| vs the seeds' "
            "std)", "", "Models whose records kept their test predictions; the ensemble of 3 seeds costs 3 trainings. "
            "A Spearman correlation of – : the seeds' predictions do not differ (a deterministic model).",
            "", "| model | " + " | ".join(sets) + " | mean over sets |", "|---" * (len(sets) + 2) + "|", *rows]


def _comparison(by_key: dict[tuple[str, str], list[dict]], sets: list[str], chosen: dict[str, str],
                title: str) -> list[str]:
    """pLSTM (the model ``chosen["plstm"]``) against the best of the chosen GIN, GAT and chemprop models per set,
    and its train RMSE against the chosen GIN's."""
    def mean(family: str, set_name: str, key: str) -> Optional[float]:
        return _mean_over_seeds(by_key, chosen.get(family, family), set_name, key)

    bootstraps: dict[tuple[str, str], Optional[tuple[float, np.ndarray]]] = {}

    def difference(rival: str, set_name: str) -> Optional[tuple[float, np.ndarray]]:
        """pLSTM minus ``rival`` on ``set_name``, bootstrapped once per pair (the best rival of a set is
        often the best by mean too)."""
        if (rival, set_name) not in bootstraps:
            bootstraps[rival, set_name] = _rmse_difference(by_key, chosen["plstm"], chosen[rival], set_name)
        return bootstraps[rival, set_name]

    rows = []
    for s in sets:
        ours, gin = mean("plstm", s, "test_rmse"), mean("gin", s, "train_rmse")
        best = [(mean(m, s, "test_rmse"), m) for m in RIVALS]
        if ours is None or gin is None or any(v is None for v, _ in best):
            continue
        value, name = min(best)
        bootstrap = difference(name, s)
        rows.append((s, ours, value, LABELS[chosen[name]], mean("plstm", s, "train_rmse") / gin, bootstrap))
    if not rows:
        return []
    wins = sum(ours <= best for _, ours, best, _, _, _ in rows)
    lines = ["", f"## {title}", "",
             "| set | pLSTM test RMSE | best rival | rival | pLSTM − rival, 95 % interval | pLSTM train RMSE / GIN's |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {ours:.3f} | {best:.3f} | {name} | {_interval_cell(bootstrap)} | {ratio:.2f} |"
              for s, ours, best, name, ratio, bootstrap in rows]
    n = len(rows)
    means = {m: sum(mean(m, r[0], "test_rmse") for r in rows) / n for m in RIVALS}
    svr = [(mean("ecfp-svr", r[0], "test_rmse"), r[1]) for r in rows]
    best_rival = min(means, key=means.get)
    lines += ["", f"Over these {n} sets pLSTM's mean test RMSE is {sum(r[1] for r in rows) / n:.3f}; the best "
              f"rival by its mean is {LABELS[chosen[best_rival]]} at {means[best_rival]:.3f} (the per-set best "
              f"rivals together: {sum(r[2] for r in rows) / n:.3f}). pLSTM is at or below the best rival on {wins} "
              f"of {n} sets; its train RMSE at the best epoch is {sum(r[4] for r in rows) / n:.2f}x GIN's on average."]
    lines += ["", _separation(rows, [difference(best_rival, r[0]) for r in rows], LABELS[chosen[best_rival]])]
    if all(value is not None for value, _ in svr):
        beaten = sum(ours < value for value, ours in svr)
        lines += ["", f"{LABELS['ecfp-svr']}: mean test RMSE {sum(v for v, _ in svr) / n:.3f}; pLSTM is below it on "
                  f"{beaten} of {n} sets."]
    return lines


def _rmse_difference(by_key: dict[tuple[str, str], list[dict]], model: str, rival: str,
                     set_name: str) -> Optional[tuple[float, np.ndarray]]:
    """:func:`~pyg_plstm.train.significance.rmse_difference_replicates` of ``model`` minus ``rival`` on
    ``set_name``, where both have every seed with its test predictions, else ``None``."""
    runs = [[r for r in by_key.get((m, set_name), []) if r.get("test_predictions") is not None]
            for m in (model, rival)]
    if any(len(rs) != len(SEEDS) for rs in runs):
        return None
    labels = runs[0][0]["test_labels"]
    if any(r["test_labels"] != labels for rs in runs for r in rs):
        raise ValueError(f"{model} and {rival} on {set_name} hold test predictions for different labels")
    first, second = ([np.asarray(r["test_predictions"], dtype=np.float64).reshape(-1) for r in rs] for rs in runs)
    return rmse_difference_replicates(np.asarray(labels, dtype=np.float64).reshape(-1), np.stack(first),
                                      np.stack(second), replicates=BOOTSTRAP_REPLICATES)


def _interval_cell(bootstrap: Optional[tuple[float, np.ndarray]]) -> str:
    if bootstrap is None:
        return "– (no kept predictions)"
    low, high = percentile_interval(bootstrap[1])
    return f"{bootstrap[0]:+.3f} [{low:+.3f}, {high:+.3f}]"


def _separation(rows: list[tuple], to_best_by_mean: list[Optional[tuple[float, np.ndarray]]], best_by_mean: str) -> str:
    """What the bootstrap intervals of the comparison tell apart: per set, and for the mean over the sets."""
    intervals = [percentile_interval(row[-1][1]) for row in rows if row[-1] is not None]
    lower, higher = sum(high < 0 for _, high in intervals), sum(low > 0 for low, _ in intervals)
    missing = (f" (on {len(rows) - len(intervals)} of {len(rows)} sets a model kept no test predictions)"
               if len(intervals) < len(rows) else "")
    text = (f"The 95 % bootstrap intervals ({BOOTSTRAP_REPLICATES:,} replicates; test molecules redrawn, the same "
            f"for both models, and each model's seeds redrawn) tell pLSTM apart from the best rival on "
            f"{lower + higher} of {len(intervals)} sets{missing}: lower on {lower}, higher on {higher}.")
    if all(d is not None for d in to_best_by_mean):
        difference = sum(d[0] for d in to_best_by_mean) / len(rows)
        low, high = percentile_interval(sum(d[1] for d in to_best_by_mean) / len(rows))
        text += (f" pLSTM minus {best_by_mean} in the mean over the {len(rows)} sets: {difference:+.3f} "
                 f"[{low:+.3f}, {high:+.3f}].")
    return text


#: The before/after figure: the pLSTM variants of the ablation beside GIN.
PLSTM_CURVES = ("plstm", HYBRID_PD, OFFSET_1E_2, "plstm-previous", f"{OFFSET_1E_2}-no-local", "gin")


def learning_rate_styles() -> dict[str, dict[str, str]]:
    """Line styles of the learning-rate figure: a colour per family, a dash pattern per rate."""
    dashes = dict(zip(("5e-4", "1e-3", "2e-3"), (":", "-", "--")))
    return {model: {"color": f"C{i}", "linestyle": dashes[rate]}
            for i, rates in enumerate(LR_SEARCH.values()) for rate, model in rates.items()}


def plot_curves(records: list[dict], path: Path, models: tuple[str, ...] = tuple(MODELS),
                styles: Optional[dict[str, dict[str, str]]] = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    sets = [s for s in SETS if any(r["set"] == s for r in records)]
    # Past matplotlib's ten colours, the dash pattern tells the models apart.
    styles = styles or {model: {"color": f"C{i % 10}", "linestyle": ("-", "--", ":", "-.")[i // 10 % 4]}
                        for i, model in enumerate(models)}
    fig, axes = plt.subplots(2, len(sets), figsize=(3.2 * len(sets), 6), squeeze=False)
    for col, set_name in enumerate(sets):
        for model in models:
            rs = [r for r in records if r["set"] == set_name and r["model"] == model and r.get("curve")]
            for row, key in enumerate(("loss", "valid_rmse")):
                curves = [r["curve"][key] for r in rs if r["curve"].get(key)]
                if not curves:
                    continue
                length = min(len(c) for c in curves)
                mean = [sum(c[e] for c in curves) / len(curves) for e in range(length)]
                axes[row][col].plot(range(1, length + 1), mean, label=LABELS[model], **styles.get(model, {}))
        axes[0][col].set_title(set_name, fontsize=9)
        axes[0][col].set_yscale("log")
        axes[1][col].set_xlabel("epoch")
    axes[0][0].set_ylabel("training loss (own scale)")
    axes[1][0].set_ylabel("validation RMSE")
    # The legend goes below the panels (the labels are long, and inside a panel they would cover its curves);
    # the figure grows by its rows.
    lines = {line.get_label(): line for ax in axes.flat for line in ax.get_lines()}
    columns = 3
    legend_height = 0.17 * -(-len(lines) // columns) + 0.2
    fig.set_size_inches(3.2 * len(sets), 6 + legend_height)
    fig.legend(list(lines.values()), list(lines), loc="lower center", ncol=columns, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_height / (6 + legend_height), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="store_true", help="train the missing runs first")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--add-predictions", action="store_true",
                        help="with --run: also redo the records that kept no test predictions (for the ensembles)")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "molecules", help="run folders")
    parser.add_argument("--data-root", type=Path, default=ROOT / "runs" / "data", help="processed data")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if args.run:
        run(args.runs, args.models, args.sets, args.seeds, args.data_root, args.add_predictions)
    records = load_records()
    if records:
        (RESULTS / "molecules.md").write_text(collect(records))
        plot_curves(records, RESULTS / "molecules_curves.png")
        plot_curves(records, RESULTS / "molecules_curves_plstm.png", PLSTM_CURVES)
        styles = learning_rate_styles()
        plot_curves(records, RESULTS / "molecules_curves_lr.png", tuple(styles), styles)
        print(f"wrote {RESULTS / 'molecules.md'}, molecules_curves.png, molecules_curves_plstm.png and "
              f"molecules_curves_lr.png ({len(records)} records)")


if __name__ == "__main__":
    main()
