"""Explanations on the shipped molecules: one picture per method and the faithfulness numbers.

    python -m benchmarks.explain [--out docs/explain] [--epochs 6] [--seed 0]

Trains small pLSTM and GIN models (checkpoints written by ``fit``, loaded back with ``load_model``):

* known answer: the label is the number of aromatic nitrogens (RDKit SMARTS ``n``) of each shipped
  solubility molecule; the top-k precision of every method's atom scores on the first held-out molecules
  that have one, against the k/N of k random atoms;
* deletion: a log-solubility model; the mean absolute prediction change when the top-attributed
  10-50 % of atoms are masked, against as many random atoms.

Writes ``<out>/<model>-<method>.png`` (three shipped molecules, solubility models; log S predicted and
measured) and ``<out>/faithfulness.md``. Every method of ``pyg_plstm.explain.METHODS`` is measured, so Captum must be
installed (``pip install -e ".[bench]"``).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional, Sequence

import pandas as pd
import torch
from rdkit import Chem

from pyg_plstm.chem import MolToDAG, parse_smiles, rdkit_quiet
from pyg_plstm.datasets.molecules import shipped_csv
from pyg_plstm.explain import METHODS, draw_attributions, explain_molecules
from pyg_plstm.explain.attribution import check_installed
from pyg_plstm.explain.faithfulness import DELETION_FRACTIONS, DeletionCurve, deletion_curve, substructure_precision
from pyg_plstm.train import Task, TrainConfig, fit, load_model
from pyg_plstm.train.files import atomic_write

KNOWN_ANSWER = "n"  # aromatic nitrogen
PICTURED = ("Oc1ccc(cc1)C(=O)O", "c1ccc2ncccc2c1", "CC(=O)Nc1ccc(O)cc1")
MODELS = ("gin", "plstm")  # GIN first: its rows are written within minutes
EXPLAINER_EPOCHS = 20  # GNNExplainer's optimisation steps per molecule
INTEGRATION_STEPS = 8  # of both integrated gradients (Captum's runs one molecule and one step per pass)
DELETION_MOLECULES = 30  # held-out molecules of the deletion curves
KNOWN_ANSWER_MOLECULES = 30  # held-out molecules with an aromatic nitrogen of the top-k precision


def shipped_molecules(label: Callable[[Chem.Mol, float], float], limit: Optional[int] = None) -> list:
    """Graphs of the shipped solubility molecules RDKit reads, labelled ``label(mol, log_solubility)``."""
    featurizer = MolToDAG()
    frame = pd.read_csv(shipped_csv("solubility"))
    graphs = []
    for smiles, log_s in zip(frame.smiles, frame.log_solubility):
        try:
            mol = parse_smiles(smiles)
        except ValueError:  # the few SMILES RDKit refuses
            continue
        graphs.append(featurizer(smiles, y=label(mol, float(log_s))))
        if limit is not None and len(graphs) == limit:
            break
    return graphs


def aromatic_nitrogens(mol: Chem.Mol, _: float) -> float:
    return float(len(mol.GetSubstructMatches(Chem.MolFromSmarts(KNOWN_ANSWER))))


def log_solubility(_: Chem.Mol, value: float) -> float:
    return value


def train(model: str, graphs: list, out: Path, epochs: int, seed: int, target: str, **options) -> Path:
    """Train ``model`` (small) on 80 % of ``graphs`` (every fifth held out); returns ``best.pt``."""
    splits = {"train": [g for i, g in enumerate(graphs) if i % 5], "valid": graphs[::5]}
    settings = dict(name=model, in_channels=None, out_channels=1, hidden_channels=32, num_layers=2, heads=2,
                    node_encoder="ogb", edge_encoder="ogb", **options)
    fit(settings, Task("regression", 1), splits, TrainConfig(epochs=epochs, lr=3e-3, warmup_epochs=1, seed=seed),
        out, device="cpu", meta={"featurizer": asdict(MolToDAG()), "targets": [target]}, log=lambda line: None)
    return out / "best.pt"


def explain_checkpoint(checkpoint: Path, molecules: Sequence, method: str, seed: int = 0) -> tuple:
    """The checkpoint's model, its ``target_norm`` and the attributions of ``molecules``."""
    model, ckpt = load_model(checkpoint)
    norm = ckpt.get("target_norm")
    return model, norm, explain_molecules(model, molecules, method, featurizer=MolToDAG(**ckpt["meta"]["featurizer"]),
                                          target_norm=norm, target_names=ckpt["meta"]["targets"], seed=seed,
                                          epochs=EXPLAINER_EPOCHS, steps=INTEGRATION_STEPS)


def known_answer_precision(checkpoint: Path, graphs: list, methods: Sequence[str] = METHODS) -> dict:
    """Top-k precision per method on the first held-out molecules of ``graphs`` that have an aromatic nitrogen."""
    held_out = [g for g in graphs[::5] if float(g.y) > 0][:KNOWN_ANSWER_MOLECULES]
    return {method: substructure_precision(explain_checkpoint(checkpoint, held_out, method)[2], KNOWN_ANSWER)
            for method in methods}


def deletion(checkpoint: Path, graphs: list, methods: Sequence[str] = METHODS, seed: int = 0) -> dict:
    """Deletion curves per method on the first held-out molecules of ``graphs``."""
    held_out = graphs[::5][:DELETION_MOLECULES]
    curves = {}
    for method in methods:
        model, norm, attributions = explain_checkpoint(checkpoint, held_out, method)
        curves[method] = deletion_curve(model, attributions, target_norm=norm, seed=seed)
    return curves


def picture_name(model: str, method: str) -> str:
    return f"{model}-{method}.png"


def _captions(attributions: Sequence) -> list[str]:
    """Name, prediction and measured value of pictured shipped molecules."""
    frame = pd.read_csv(shipped_csv("solubility"))
    with rdkit_quiet():
        known = {Chem.CanonSmiles(s): (n, v) for s, n, v in zip(frame.smiles, frame.name, frame.log_solubility)
                 if Chem.MolFromSmiles(s) is not None}
    captions = []
    for item in attributions:
        name, measured = known[Chem.CanonSmiles(item.smiles)]
        captions.append(f"{name.replace('_', ' ')}: predicted {item.prediction:.2f}, measured {measured:.2f}")
    return captions


def _deletion_rows(model: str, curves: dict[str, DeletionCurve]) -> list[str]:
    return [f"| {model} | {method} | " + " | ".join(f"{a:.3f} / {r:.3f}" for a, r in zip(c.attributed, c.random))
            + f" | {c.ratio:.2f} |" for method, c in curves.items()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/explain", help="folder of the pictures and faithfulness.md")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    for method in METHODS:
        check_installed(method)
    torch.set_num_threads(1)
    start = time.time()
    counts, solubility = shipped_molecules(aromatic_nitrogens), shipped_molecules(log_solubility)
    precision_rows, deletion_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        # Pictures first, and the report rewritten after every measurement: a run cut short keeps what it measured.
        for model in MODELS:
            regressor = train(model, solubility, Path(tmp) / f"sol-{model}", args.epochs, args.seed, "log_solubility")
            for method in METHODS:
                pictured = explain_checkpoint(regressor, PICTURED, method)[2]
                draw_attributions(pictured, out / picture_name(model, method), captions=_captions(pictured))
            deletion_rows += _deletion_rows(model, deletion(regressor, solubility, seed=args.seed))
            _write_report(out, args, start, precision_rows, deletion_rows)
            counter = train(model, counts, Path(tmp) / f"count-{model}", args.epochs, args.seed,
                            "aromatic nitrogens", pooling="sum")
            for method, result in known_answer_precision(counter, counts).items():
                precision_rows.append(f"| {model} | {method} | {result.precision:.3f} | {result.random:.3f} | "
                                      f"{result.molecules} |")
            _write_report(out, args, start, precision_rows, deletion_rows)
    return 0


def _write_report(out: Path, args: argparse.Namespace, start: float, precision_rows: list[str],
                  deletion_rows: list[str]) -> None:
    fractions = DELETION_FRACTIONS
    lines = [
        "# Faithfulness of the attributions",
        "",
        f"Written by `python -m benchmarks.explain --epochs {args.epochs} --seed {args.seed}` "
        f"({time.time() - start:.0f} s wall time on a shared CPU, one thread); small models (32 channels, "
        "2 blocks / layers), every fifth shipped solubility molecule held out and measured; GNNExplainer "
        f"with {EXPLAINER_EPOCHS} epochs per molecule, both integrated gradients with {INTEGRATION_STEPS} steps "
        "(`integrated_gradients` from the mean encoded atom of the molecule, Captum's from zero).",
        "",
        f"## Known answer: the label counts aromatic nitrogens (`{KNOWN_ANSWER}`)",
        "",
        "Top-k precision of the atom scores (k = aromatic nitrogens of the molecule) on the first "
        f"{KNOWN_ANSWER_MOLECULES} held-out molecules with one (and other atoms), against k/N for k random atoms.",
        "",
        "| model | method | top-k precision | random | molecules |",
        "|---|---|---|---|---|",
        *precision_rows,
        "",
        "## Deletion: log-solubility models",
        "",
        "Mean |change of the prediction| (log S units) when the top-attributed fraction of atoms (by absolute "
        "score) is masked (encoded features replaced by the mean encoded atom of the molecule) / when as many "
        "random atoms are (mean of 10 draws); "
        f"ratio: area under the first curve over the area under the second; the first {DELETION_MOLECULES} held-out "
        "molecules.",
        "",
        "| model | method | " + " | ".join(f"{f:.0%}" for f in fractions) + " | ratio |",
        "|---|---|" + "---|" * len(fractions) + "---|",
        *deletion_rows,
        "",
        "## Pictures",
        "",
        "The solubility models on " + ", ".join(f"`{s}`" for s in PICTURED) + " (red: pushes the predicted log S "
        "up, blue: down; unsigned methods use the red half).",
        "",
        *[f"### {model}, {method}\n\n![{model}, {method}]({picture_name(model, method)})\n"
          for model in MODELS for method in METHODS],
    ]
    atomic_write(out / "faithfulness.md", "\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
