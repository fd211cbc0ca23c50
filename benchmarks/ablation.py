"""Model-quality ablation on the shipped molecule sets: one `pyg-plstm train` command per row.

    python -m benchmarks.ablation --run       # train the rows missing under --runs (3 seeds each, CLI defaults)
    python -m benchmarks.ablation             # collect: benchmarks/results/ablation.md and learning curves

Every row trains 3 seeds with the command line's default budget (40 epochs, AdamW 1e-3, cosine with
5 warm-up epochs, batch 32), the same for every model. Rows are ``(key, label, arguments)``; a run
folder is ``<runs>/<dataset>_<key>``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"solubility": [], "freesolv": ["--dataset", "freesolv", "--split", "random"]}
SEEDS = ["--seeds", "0", "1", "2"]
PAPER = ["--plstm-config", "paper"]
# The rows before the default's last change ran with the previous transition node.
SHARED = ["--plstm-option", "transition_node=shared"]
ROWS = [
    ("plstm_default", "pLSTM, the paper's init (gate bias -5, norm eps 1e-6; the previous default)", PAPER),
    ("plstm_eps", "pLSTM, paper init + norm eps 1e-2", PAPER + ["--plstm-option", "norm_eps=1e-2"]),
    ("plstm_bias0", "pLSTM, paper init + gate bias 0", PAPER + ["--plstm-option", "gate_bias=0"]),
    ("plstm_eps_bias0", "pLSTM, trainability fix: gate bias 0 + norm eps 1e-2 (shared transition node)", SHARED),
    ("plstm_fix_P", "fix, P-only blocks", SHARED + ["--block", "P"]),
    ("plstm_fix_D", "fix, D-only blocks", SHARED + ["--block", "D"]),
    ("plstm_fix_mlp", "fix, an MLP after every layer (the authors' block shape)",
     SHARED + ["--plstm-option", "mlp_per_layer=True"]),
    ("plstm_fix_4blocks", "fix, 4 blocks", SHARED + ["--layers", "4"]),
    ("plstm_eps_sum", "pLSTM, paper init + norm eps 1e-2, sum pooling",
     PAPER + ["--plstm-option", "norm_eps=1e-2", "--pooling", "sum"]),
    ("sw_p_in", "fix + the authors' P normalisation (over line edges into e)",
     SHARED + ["--plstm-option", "p_normalize=in"]),
    ("sw_tail", "**fix + the authors' transition node (tail of e'): the default**", []),
    ("sw_shallow", "fix + the authors' pruning order (shallowest first)",
     SHARED + ["--plstm-option", "prune_order=shallowest"]),
    ("sw_block", "fix + the authors' block (RMSNorm sub-blocks, MLP per layer, input edge features)",
     SHARED + ["--plstm-option", "norm=rms", "--plstm-option", "mlp_per_layer=True", "--plstm-option",
               "edge_features=input"]),
    ("sw_init", "fix + the authors' init (transition bias N(0, 100), q/k/v biases)",
     SHARED + ["--plstm-option", "init=authors", "--plstm-option", "qkv_bias=True"]),
    ("tail_P", "default, P-only blocks", ["--block", "P"]),
    ("tail_D", "default, D-only blocks", ["--block", "D"]),
    ("order_input", "default, atoms in SMILES/file order (`--atom-order input`, as the paper) instead of canonical",
     ["--atom-order", "input"]),
    ("bidirectional", "default, bidirectional blocks (every layer also on the reversed DAG; 1.48x parameters)",
     ["--plstm-option", "bidirectional=True"]),
    ("bidirectional_1block", "default, one bidirectional block (0.78x the parameters of the default)",
     ["--plstm-option", "bidirectional=True", "--layers", "1"]),
    ("reverse_pruning_own", "default, D layers on the reversed DAG pruned in their own direction",
     ["--plstm-option", "reverse_pruning=own"]),
    ("plstm_authors", "pLSTM, the authors' variant (`--plstm-config authors`)", ["--plstm-config", "authors"]),
    ("baselines", "GIN / GAT / GIN + virtual node (5 layers, OGB style)", ["--model", "gin", "gat", "gin-virtual"]),
    ("gin_sum", "GIN, sum pooling", ["--model", "gin", "--pooling", "sum"]),
]


def command(dataset: str, arguments: list[str]) -> list[str]:
    return ["train", *SEEDS, *DATASETS[dataset], *arguments]


def run(runs: Path) -> None:
    from pyg_plstm.cli import main

    for dataset in DATASETS:
        for key, _, arguments in ROWS:
            out = runs / f"{dataset}_{key}"
            if (out / "summary.json").is_file():
                continue
            print(f"[ablation] pyg-plstm {shlex.join(command(dataset, arguments))}", flush=True)
            main([*command(dataset, arguments), "--no-progress", "--out", str(out)])


def _rows(runs: Path, dataset: str) -> list[tuple[str, str, dict]]:
    found = []
    for key, label, arguments in ROWS:
        path = runs / f"{dataset}_{key}" / "summary.json"
        if path.is_file():
            summary = json.loads(path.read_text())["summary"]
            for entry in summary:
                # A row of several models names each; a row of one model carries its label.
                name = label if len(summary) == 1 else entry["model"].upper()
                found.append((name, shlex.join(["pyg-plstm", *command(dataset, arguments)]), entry))
    return found


def _cell(entry: dict, split: str) -> str:
    metric = entry[split]["rmse"]
    text = f"{metric['mean']:.3f}" if metric["std"] is None else f"{metric['mean']:.3f} ± {metric['std']:.3f}"
    return text if metric["n"] == len(SEEDS) - 1 else f"{text} (n = {metric['n']})"


def collect(runs: Path, out: Path) -> str:
    lines = ["# Model-quality ablation (test RMSE at the best-validation epoch, mean ± std over 3 seeds)", "",
             "Every row: 40 epochs, AdamW 1e-3, cosine with 5 warm-up epochs, batch 32, gradient clip 1; "
             "solubility uses the file split (valid from train), FreeSolv a random 80/10/10 split.", ""]
    for dataset in DATASETS:
        lines += [f"## {dataset}", "", "| model | train RMSE | test RMSE | command |", "|---|---|---|---|"]
        for name, cmd, entry in _rows(runs, dataset):
            lines.append(f"| {name} | {_cell(entry, 'train')} | {_cell(entry, 'test')} | `{cmd}` |")
        lines.append("")
    text = "\n".join(lines)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text(text)
    _plot_curves(runs, out / "ablation_curves.png")
    return text


def _plot_curves(runs: Path, path: Path) -> None:
    """Mean training loss and validation RMSE per epoch (over seeds) of the key rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    keys = {"plstm_default": "pLSTM, paper init", "plstm_eps": "pLSTM, + norm eps",
            "plstm_eps_bias0": "pLSTM, trainability fix", "sw_tail": "pLSTM default (fix + tail node)",
            "baselines": None}
    for col, dataset in enumerate(DATASETS):
        for key, label in keys.items():
            folder = runs / f"{dataset}_{key}"
            for model in sorted(p.name for p in folder.glob("*") if p.is_dir()):
                results = (folder / model).glob("seed*/result.json")
                histories = [json.loads(f.read_text())["result"]["history"] for f in results]
                if not histories:
                    continue
                n = min(len(h) for h in histories)
                loss = [sum(h[e]["loss"] for h in histories) / len(histories) for e in range(n)]
                valid = [sum(h[e]["valid"]["rmse"] for h in histories) / len(histories) for e in range(n)]
                name = label or model.upper()
                axes[0, col].plot(range(1, n + 1), loss, label=name)
                axes[1, col].plot(range(1, n + 1), valid, label=name)
        axes[0, col].set_title(f"{dataset}: training loss (normalised targets)")
        axes[1, col].set_title(f"{dataset}: validation RMSE")
        axes[1, col].set_xlabel("epoch")
        axes[0, col].set_yscale("log")
        axes[1, col].set_ylim(top=2.5 if dataset == "solubility" else 4.0)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="train the rows that --runs does not hold yet")
    parser.add_argument("--runs", default=os.path.join(ROOT, "runs", "ablation"), help="run folders")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"), help="report folder")
    args = parser.parse_args(argv)
    if args.run:
        run(Path(args.runs))
    print(collect(Path(args.runs), Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
