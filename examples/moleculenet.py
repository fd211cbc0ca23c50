"""pLSTM vs GNN baselines on a MoleculeNet data set with the scaffold split.

Uses the library's pipeline: :func:`~pyg_plstm.train.data.prepare_data`
(download, DAG preparation, Bemis-Murcko scaffold split 80/10/10),
:func:`~pyg_plstm.train.compare.compare_models` (every model × seed, selected
at the best validation epoch) and :func:`~pyg_plstm.train.report.write_report`
(``summary.md``/``summary.json``/``curves.png``). Regression sets (ESOL,
FreeSolv, Lipophilicity) are scored by RMSE, classification sets (BBBP, BACE,
HIV, Tox21, ...) by ROC-AUC averaged over tasks with NaN-masked labels.

    python examples/moleculenet.py --dataset esol --models plstm gin --seeds 0 1 2
    python examples/moleculenet.py --dataset bbbp --epochs 50
"""
from __future__ import annotations

import os

# Importing ogb (through pyg_plstm.datasets) otherwise checks PyPI for a newer release.
os.environ.setdefault("OUTDATED_IGNORE", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from pyg_plstm.models import MODEL_NAMES  # noqa: E402
from pyg_plstm.train import TrainConfig  # noqa: E402
from pyg_plstm.train.compare import compare_models  # noqa: E402
from pyg_plstm.train.data import prepare_data  # noqa: E402
from pyg_plstm.train.report import write_report  # noqa: E402
from pyg_plstm.train.trainer import progress_enabled  # noqa: E402


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="esol",
                        help="MoleculeNet name: esol, freesolv (shipped copy), lipo, bbbp, bace, hiv, tox21, ...")
    parser.add_argument("--root", default="dataset", help="download/processing folder (default: dataset)")
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=["plstm", "gin"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--layers", type=int, default=None, help="pLSTM blocks / GNN layers (default: 2 / 5)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None, help="output folder (default: runs/moleculenet-<dataset>)")
    args = parser.parse_args(argv)

    data = prepare_data(args.dataset, args.root, split="scaffold")
    print(f"{args.dataset}: {data.meta['sizes']} (scaffold split), {data.task.type}, metric {data.task.metric}")
    out = args.out or f"runs/moleculenet-{args.dataset}"
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         warmup_epochs=min(5, args.epochs - 1))
    options = {"hidden_channels": args.hidden, "num_layers": args.layers, "heads": args.heads}
    runs = compare_models(data, args.models, config, args.seeds, out, options, device=args.device,
                          progress=progress_enabled())
    print(write_report(out, runs, data.task, data.meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
