"""Add a pLSTM layer to your own PyTorch Geometric model.

Two steps:

1. prepare the DAG once per graph with the :class:`pyg_plstm.ToDAG` transform
   (as ``pre_transform`` of a data set, or on a list of graphs);
2. call :class:`pyg_plstm.nn.PLSTMConv` like any other layer,
   ``conv(x, edge_index, edge_attr, batch)``; pass ``dag=get_dag(batch)``
   (:func:`pyg_plstm.get_dag`) to reuse the prepared DAG instead of building
   it from ``edge_index`` in every call, and to share its level schedules
   between layers.

Here a small GCN gets a pLSTM layer between its convolutions and learns
aqueous solubility from a few shipped molecules (plain PyG graphs from
``torch_geometric.utils.from_smiles``).

    python examples/add_plstm_to_your_model.py --molecules 400 --epochs 20
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

import pandas as pd
import torch
from rdkit import Chem, RDLogger
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import GCNConv, global_mean_pool
from torch_geometric.utils import from_smiles

from pyg_plstm import ToDAG, get_dag
from pyg_plstm.nn import PLSTMConv

SOLUBILITY = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "data", "solubility.csv")


class GCNWithPLSTM(torch.nn.Module):
    """GCN -> pLSTM (states flow along the DAG, both directions) -> GCN -> mean pool -> linear."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels)
        self.plstm = PLSTMConv(hidden_channels, hidden_channels, heads=4)
        self.conv2 = GCNConv(hidden_channels, hidden_channels)
        self.head = torch.nn.Linear(hidden_channels, out_channels)

    def forward(self, data: Data) -> Tensor:
        x = self.conv1(data.x, data.edge_index).relu()
        dag = get_dag(data)  # once per batch: every pLSTM call below shares its schedules
        # One pass along the DAG and one against it, residual like a transformer block.
        x = x + self.plstm(x, data.edge_index, dag=dag) + self.plstm(x, data.edge_index, dag=dag, reverse=True)
        x = self.conv2(x, data.edge_index).relu()
        return self.head(global_mean_pool(x, data.batch))


def load_graphs(limit: int) -> list[Data]:
    """The first ``limit`` parsable molecules of the shipped solubility set as DAG-prepared PyG graphs."""
    frame = pd.read_csv(SOLUBILITY)
    to_dag = ToDAG()
    graphs = []
    RDLogger.DisableLog("rdApp.*")  # the file has a few invalid SMILES; they are skipped below
    for smiles, y in zip(frame.smiles, frame.log_solubility):
        # PyG's from_smiles turns an invalid SMILES into an empty graph instead of failing.
        if Chem.MolFromSmiles(smiles) is None:
            continue
        data = from_smiles(smiles)
        data.x = data.x.float()
        data.y = torch.tensor([[float(y)]])
        graphs.append(to_dag(data))
        if len(graphs) == limit:
            break
    return graphs


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--molecules", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    graphs = load_graphs(args.molecules)
    loader = DataLoader(graphs, batch_size=32, shuffle=True)
    model = GCNWithPLSTM(graphs[0].num_node_features, args.hidden, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for batch in loader:
            loss = torch.nn.functional.mse_loss(model(batch), batch.y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * batch.num_graphs
        print(f"epoch {epoch:>3}: train MSE {total / len(graphs):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
