"""pLSTM and GNN baselines on OGB's molecular property benchmarks (``ogbg-mol*``).

The structure and arguments follow OGB's official example
``examples/graphproppred/mol/main_pyg.py`` (``--gnn --device --drop_ratio
--num_layer --emb_dim --batch_size --epochs --num_workers --dataset
--filename``): train with Adam, evaluate train/valid/test with OGB's
``Evaluator`` every epoch, report the scores at the best validation epoch.
``--gnn plstm`` swaps the message-passing network for pLSTM; the graphs are
OGB's own (same features), prepared as DAGs by
:class:`pyg_plstm.datasets.OGBMolDataset`.

    python examples/ogbg_mol.py --dataset ogbg-molhiv --gnn plstm --emb_dim 96
    python examples/ogbg_mol.py --dataset ogbg-molhiv --gnn gin-virtual
"""
from __future__ import annotations

import os

# Importing ogb otherwise checks PyPI for a newer release.
os.environ.setdefault("OUTDATED_IGNORE", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ogb.graphproppred import Evaluator  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pyg_plstm.datasets import OGBMolDataset  # noqa: E402
from pyg_plstm.models import MODEL_NAMES, make_model  # noqa: E402
from pyg_plstm.train.data import ogb_task  # noqa: E402
from pyg_plstm.train.metrics import Task, masked_loss  # noqa: E402
from pyg_plstm.train.trainer import progress_enabled, seed_everything  # noqa: E402


def train(model: torch.nn.Module, device: torch.device, loader: DataLoader, optimizer: torch.optim.Optimizer,
          task: Task, progress: bool) -> None:
    model.train()
    for batch in tqdm(loader, desc="Iteration", disable=not progress):
        batch = batch.to(device)
        # BatchNorm cannot normalise a batch of one node (as in OGB's example).
        if batch.x.size(0) == 1:
            continue
        loss, count = masked_loss(task, model(batch), batch.y)
        optimizer.zero_grad()
        (loss / max(count, 1)).backward()
        optimizer.step()


@torch.no_grad()
def evaluate(model: torch.nn.Module, device: torch.device, loader: DataLoader, evaluator: Evaluator,
             progress: bool) -> float:
    model.eval()
    y_true, y_pred = [], []
    for batch in tqdm(loader, desc="Iteration", disable=not progress):
        batch = batch.to(device)
        y_pred.append(model(batch).cpu())
        y_true.append(batch.y.view(y_pred[-1].shape).cpu())
    scores = evaluator.eval({"y_true": torch.cat(y_true).numpy(), "y_pred": torch.cat(y_pred).numpy()})
    return float(scores[evaluator.eval_metric])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="GNN / pLSTM baselines on ogbg-mol* data with PyTorch Geometric")
    parser.add_argument("--device", type=int, default=0, help="which GPU to use if any (default: 0)")
    parser.add_argument("--gnn", choices=MODEL_NAMES, default="plstm", help="model (default: plstm)")
    parser.add_argument("--drop_ratio", type=float, default=0.5, help="dropout ratio (default: 0.5)")
    parser.add_argument("--num_layer", type=int, default=None,
                        help="message-passing layers / pLSTM blocks (default: 5 / 2)")
    parser.add_argument("--emb_dim", type=int, default=300, help="dimensionality of hidden units (default: 300)")
    parser.add_argument("--heads", type=int, default=4, help="heads of pLSTM / GAT (default: 4)")
    parser.add_argument("--batch_size", type=int, default=32, help="input batch size for training (default: 32)")
    parser.add_argument("--epochs", type=int, default=100, help="number of epochs to train (default: 100)")
    parser.add_argument("--num_workers", type=int, default=0, help="number of workers (default: 0)")
    parser.add_argument("--dataset", default="ogbg-molhiv", help="dataset name (default: ogbg-molhiv)")
    parser.add_argument("--root", default="dataset", help="OGB's dataset folder (default: dataset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--filename", default="", help="filename to output result (default: none)")
    args = parser.parse_args(argv)

    device = torch.device(f"cuda:{args.device}") if torch.cuda.is_available() else torch.device("cpu")
    seed_everything(args.seed)
    progress = progress_enabled()
    dataset = OGBMolDataset(args.dataset, root=args.root)
    task = ogb_task(dataset)
    split_idx = dataset.get_idx_split()
    evaluator = Evaluator(args.dataset)
    train_loader = DataLoader(dataset[split_idx["train"]], batch_size=args.batch_size, shuffle=True,
                              num_workers=args.num_workers)
    loaders = {split: DataLoader(dataset[split_idx[split]], batch_size=args.batch_size, shuffle=False,
                                 num_workers=args.num_workers) for split in ("train", "valid", "test")}

    model = make_model(args.gnn, None, task.out_channels, hidden_channels=args.emb_dim, num_layers=args.num_layer,
                       heads=args.heads, node_encoder="ogb", edge_encoder="ogb", dropout=args.drop_ratio).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)

    curves: dict[str, list[float]] = {"train": [], "valid": [], "test": []}
    for epoch in range(1, args.epochs + 1):
        print(f"=====Epoch {epoch}")
        print("Training...")
        train(model, device, train_loader, optimizer, task, progress)
        print("Evaluating...")
        perf = {split: evaluate(model, device, loader, evaluator, progress) for split, loader in loaders.items()}
        print({"Train": perf["train"], "Validation": perf["valid"], "Test": perf["test"]})
        for split, score in perf.items():
            curves[split].append(score)

    higher_is_better = task.type != "regression"
    pick = np.argmax if higher_is_better else np.argmin
    best_val_epoch = int(pick(np.array(curves["valid"])))
    best_train = float(max(curves["train"]) if higher_is_better else min(curves["train"]))
    print("Finished training!")
    print(f"Best validation score: {curves['valid'][best_val_epoch]}")
    print(f"Test score: {curves['test'][best_val_epoch]}")
    if args.filename:
        torch.save({"Val": curves["valid"][best_val_epoch], "Test": curves["test"][best_val_epoch],
                    "Train": curves["train"][best_val_epoch], "BestTrain": best_train}, args.filename)
    return 0


if __name__ == "__main__":
    sys.exit(main())
