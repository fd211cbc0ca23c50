r"""DAGNN (Thost & Chen, ICLR 2021) as a graph-level baseline: stacked :class:`~pyg_plstm.nn.DAGNNConv`
layers over the DAG and over its reverse, read out from the sinks and the sources."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch.nn import Dropout, Linear, Module, ModuleList
from torch_geometric.nn.inits import reset

from pyg_plstm.checks import check_dropout, check_positive
from pyg_plstm.dag import DAG, get_dag
from pyg_plstm.models.inputs import graph_edge_attr, graph_inputs, with_molecule_features
from pyg_plstm.nn.dagnn import DAGNNConv, node_schedule
from pyg_plstm.nn.encoders import make_encoder
from pyg_plstm.nn.pool import GraphPooling
from pyg_plstm.nn.scaler import Standardize

__all__ = ["DAGNN"]


class DAGNN(Module):
    r"""DAGNN: node (and edge) encoders, :obj:`num_layers` :class:`~pyg_plstm.nn.DAGNNConv` layers
    in each direction of the DAG, a readout from the sinks (forward pass) and the sources (reversed
    pass), and a linear head.

    .. math::
        \mathbf{h}^{(0)} = \mathrm{Enc}(\mathbf{X}), \qquad
        \mathbf{h}^{(l)}_{\rightarrow} = \mathrm{DAGNN}_l^{\rightarrow}(\mathbf{h}^{(l-1)}_{\rightarrow};\
        \mathcal{G}), \qquad
        \mathbf{h}^{(l)}_{\leftarrow} = \mathrm{DAGNN}_l^{\leftarrow}(\mathbf{h}^{(l-1)}_{\leftarrow};\
        \mathcal{G}^{\top})

        \mathbf{y}_g = \mathbf{W}\,\mathrm{Dropout}\Big[
        \mathrm{Pool}_{n \in \mathrm{sinks}(g)}\,\big\Vert_{l=0}^{L} \mathbf{h}^{(l)}_{\rightarrow, n}
        \ \Big\Vert\
        \mathrm{Pool}_{n \in \mathrm{sources}(g)}\,\big\Vert_{l=0}^{L} \mathbf{h}^{(l)}_{\leftarrow, n}\Big]

    with :math:`\mathbf{h}^{(0)}_{\rightarrow} = \mathbf{h}^{(0)}_{\leftarrow} = \mathbf{h}^{(0)}`. The
    two directions run independently, as in the authors' code. On an undirected input (molecules)
    the DAG is the one :class:`~pyg_plstm.ToDAG` oriented, as for pLSTM.

    Args:
        in_channels (int, optional): Size of the node features; ignored by the
            :obj:`"ogb"` node encoder.
        out_channels (int): Outputs per graph.
        hidden_channels (int, optional): Width. (default: :obj:`96`)
        num_layers (int, optional): Layers per direction. (default: :obj:`2`)
        edge_dim (int, optional): Size of the edge features for a
            :obj:`"linear"` edge encoder (which it implies when
            :obj:`edge_encoder` is :obj:`None`). (default: :obj:`None`)
        node_encoder (str, optional): :obj:`"linear"` or :obj:`"ogb"`.
            (default: :obj:`"linear"`)
        edge_encoder (str, optional): :obj:`"linear"`, :obj:`"ogb"` or
            :obj:`None`; encoded edge features join the attention scores.
            (default: :obj:`None`)
        pooling (str, optional): Pooling over the sinks and over the sources,
            one of :data:`~pyg_plstm.nn.pool.POOLINGS` (the authors use
            :obj:`"max"`). (default: :obj:`"max"`)
        dropout (float, optional): Dropout before the head. (default: :obj:`0.0`)
        molecule_dim (int, optional): Molecule-level features per graph,
            standardised and joined to the readout as in
            :class:`~pyg_plstm.models.PLSTMNet`. (default: :obj:`None`, none)
    """

    def __init__(
        self,
        in_channels: Optional[int],
        out_channels: int,
        hidden_channels: int = 96,
        num_layers: int = 2,
        edge_dim: Optional[int] = None,
        node_encoder: str = "linear",
        edge_encoder: Optional[str] = None,
        pooling: str = "max",
        dropout: float = 0.0,
        molecule_dim: Optional[int] = None,
    ) -> None:
        super().__init__()
        check_positive(out_channels=out_channels, hidden_channels=hidden_channels, num_layers=num_layers)
        check_dropout(dropout)
        if edge_encoder is None and edge_dim is not None:
            edge_encoder = "linear"
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.node_encoder = make_encoder(node_encoder, in_channels, hidden_channels, "node features")
        self.edge_encoder = (None if edge_encoder is None
                             else make_encoder(edge_encoder, edge_dim, hidden_channels, "edge features"))
        self.forward_convs = ModuleList(DAGNNConv(hidden_channels, hidden_channels) for _ in range(num_layers))
        self.reverse_convs = ModuleList(DAGNNConv(hidden_channels, hidden_channels) for _ in range(num_layers))
        readout = hidden_channels * (num_layers + 1)
        self.pool = GraphPooling(pooling, readout)
        self.dropout = Dropout(dropout)
        self.molecule_scaler = Standardize(molecule_dim) if molecule_dim else None
        self.head = Linear(2 * readout + (molecule_dim or 0), out_channels)

    def reset_parameters(self) -> None:
        for child in self.children():
            reset(child)

    def forward(self, data: Any) -> Tensor:
        """Maps a (batched) :class:`~pyg_plstm.DAGData` to ``[num_graphs, out_channels]``."""
        x, edge_index, batch, num_graphs = graph_inputs(data)
        dag = get_dag(data)
        dag.check_input(edge_index)
        h = self.node_encoder(x)
        edge_attr = None
        if self.edge_encoder is not None:
            edge_attr = self.edge_encoder(graph_edge_attr(data))[dag.input_edge]
        pooled = []
        for view, convs in ((dag, self.forward_convs), (dag.reverse(), self.reverse_convs)):
            states = [h]
            for conv in convs:
                states.append(conv(states[-1], view, edge_attr))
            # This direction's last nodes, without out-edges in its view: the sinks, or the sources when reversed.
            last = torch.ones(dag.num_nodes, dtype=torch.bool, device=h.device)
            last[view.edge_index[0]] = False
            pooled.append(self.pool(torch.cat(states, dim=-1)[last], batch[last], num_graphs))
        out = self.dropout(torch.cat(pooled, dim=-1))
        return self.head(with_molecule_features(out, data, self.molecule_scaler))

    def prepare_structure(self, dag: DAG) -> None:
        r"""Builds the level schedules of both directions ahead of time, cached on :obj:`dag` (see
        :meth:`PLSTMNet.prepare_structure <pyg_plstm.models.PLSTMNet.prepare_structure>`)."""
        node_schedule(dag)
        node_schedule(dag.reverse())

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers})")
