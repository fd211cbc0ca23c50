r"""Message-passing baselines in the style of OGB's graph-property GNNs: GIN / GINE, GCN, GAT,
and GIN with a virtual node.

Every model embeds node (and edge) features, applies :obj:`num_layers`
convolutions each followed by BatchNorm, ReLU (except after the last layer) and
dropout, pools the nodes of each graph and maps the result with a linear head
to ``[num_graphs, out_channels]``.
"""
from __future__ import annotations

from typing import Any, Optional

from torch import Tensor
from torch.nn import BatchNorm1d, Embedding, Linear, Module, ModuleList, ReLU, Sequential
from torch.nn.functional import dropout as apply_dropout
from torch.nn.init import zeros_
from torch_geometric.nn import GATConv, GCNConv, GINConv, GINEConv, global_add_pool
from torch_geometric.nn.inits import reset

from pyg_plstm.checks import check_choice, check_dropout, check_positive
from pyg_plstm.models.inputs import graph_edge_attr, graph_inputs, with_molecule_features
from pyg_plstm.nn.encoders import make_encoder
from pyg_plstm.nn.pool import GraphPooling
from pyg_plstm.nn.scaler import Standardize

__all__ = ["CONVS", "GNNBaseline"]

CONVS = ("gin", "gcn", "gat")


class GNNBaseline(Module):
    r"""OGB-style GNN: encoders, :obj:`num_layers` convolutions, pooling and a linear head.

    .. math::
        \mathbf{H}^{(l)} = \mathrm{Dropout}\big(\mathrm{ReLU}\big(\mathrm{BN}\big(
        \mathrm{Conv}_l(\mathbf{H}^{(l-1)} + \mathbf{V}^{(l-1)}_{\mathrm{batch}},\
        \mathbf{E}_l)\big)\big)\big),
        \qquad \mathbf{y}_g = \mathbf{W}\, \mathrm{Pool}_{n \in g}\, \mathbf{h}^{(L)}_n

    with no ReLU after the last layer, :math:`\mathbf{E}_l` the encoded edge
    features of layer :math:`l` (if any) and :math:`\mathbf{V}` the virtual
    node states (zero without a virtual node),
    :math:`\mathbf{V}^{(l)} = \mathrm{MLP}_l\big(\sum_{n \in g}
    \mathbf{h}^{(l-1)}_n + \mathbf{V}^{(l-1)}\big)`.

    Args:
        conv (str): :obj:`"gin"`, :obj:`"gcn"` or :obj:`"gat"`. GIN becomes
            GINE and GAT uses edge features when an edge encoder is present;
            GCN ignores edge features (its convolution has no slot for them).
        in_channels (int, optional): Size of the node features; ignored by the
            :obj:`"ogb"` node encoder.
        out_channels (int): Outputs per graph.
        hidden_channels (int, optional): Width. (default: :obj:`96`)
        num_layers (int, optional): Number of convolutions. (default: :obj:`5`)
        heads (int, optional): Attention heads of GAT, which needs
            :obj:`hidden_channels` divisible by it. (default: :obj:`4`)
        edge_dim (int, optional): Size of the edge features for a
            :obj:`"linear"` edge encoder (which it implies when
            :obj:`edge_encoder` is :obj:`None`). (default: :obj:`None`)
        node_encoder (str, optional): :obj:`"linear"` or :obj:`"ogb"`.
            (default: :obj:`"linear"`)
        edge_encoder (str, optional): :obj:`"linear"`, :obj:`"ogb"` or
            :obj:`None` (no edge features). (default: :obj:`None`)
        pooling (str, optional): One of :data:`~pyg_plstm.nn.pool.POOLINGS`.
            (default: :obj:`"mean"`)
        dropout (float, optional): Dropout after every layer.
            (default: :obj:`0.0`)
        virtual_node (bool, optional): Add OGB's virtual node, a learnt
            per-graph state summed into every node before each layer and updated
            from the pooled nodes. (default: :obj:`False`)
        molecule_dim (int, optional): Molecule-level features per graph
            (``data.molecule_features``), standardised and concatenated with
            the pooled embedding before the head, as in
            :class:`~pyg_plstm.models.PLSTMNet`. (default: :obj:`None`, none)
    """

    def __init__(
        self,
        conv: str,
        in_channels: Optional[int],
        out_channels: int,
        hidden_channels: int = 96,
        num_layers: int = 5,
        heads: int = 4,
        edge_dim: Optional[int] = None,
        node_encoder: str = "linear",
        edge_encoder: Optional[str] = None,
        pooling: str = "mean",
        dropout: float = 0.0,
        virtual_node: bool = False,
        molecule_dim: Optional[int] = None,
    ) -> None:
        super().__init__()
        check_choice("conv", conv, CONVS)
        check_positive(out_channels=out_channels, hidden_channels=hidden_channels, num_layers=num_layers,
                       heads=heads)
        check_dropout(dropout)
        if conv == "gat" and hidden_channels % heads:
            raise ValueError(f"GAT needs `hidden_channels` ({hidden_channels}) divisible by `heads` ({heads})")
        if edge_encoder is None and edge_dim is not None:
            edge_encoder = "linear"
        self.conv = conv
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.dropout = dropout
        self.node_encoder = make_encoder(node_encoder, in_channels, hidden_channels, "node features")
        uses_edges = edge_encoder is not None and conv != "gcn"
        self.edge_encoders = ModuleList(
            make_encoder(edge_encoder, edge_dim, hidden_channels, "edge features") for _ in range(num_layers)
        ) if uses_edges else None
        self.convs = ModuleList(_make_conv(conv, hidden_channels, heads, uses_edges) for _ in range(num_layers))
        self.norms = ModuleList(BatchNorm1d(hidden_channels) for _ in range(num_layers))
        if virtual_node:
            self.virtual_emb = Embedding(1, hidden_channels)
            zeros_(self.virtual_emb.weight)  # as in OGB: before training the virtual node adds nothing
            self.virtual_mlps = ModuleList(
                Sequential(_mlp(hidden_channels), BatchNorm1d(hidden_channels), ReLU())
                for _ in range(num_layers - 1)
            )
        else:
            self.virtual_emb = self.virtual_mlps = None
        self.pool = GraphPooling(pooling, hidden_channels)
        self.molecule_scaler = Standardize(molecule_dim) if molecule_dim else None
        self.head = Linear(hidden_channels + (molecule_dim or 0), out_channels)

    def reset_parameters(self) -> None:
        for child in self.children():
            reset(child)
        if self.virtual_emb is not None:
            zeros_(self.virtual_emb.weight)

    def forward(self, data: Any) -> Tensor:
        """Maps a (batched) graph to ``[num_graphs, out_channels]``."""
        x, edge_index, batch, num_graphs = graph_inputs(data)
        h = self.node_encoder(x)
        edge_attr = None if self.edge_encoders is None else graph_edge_attr(data)
        virtual = None if self.virtual_emb is None else self.virtual_emb.weight.expand(num_graphs, -1)
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if virtual is not None:
                h = h + virtual[batch]
            if edge_attr is None:
                h_new = conv(h, edge_index)
            else:
                h_new = conv(h, edge_index, self.edge_encoders[layer](edge_attr))
            h_new = norm(h_new)
            last = layer == self.num_layers - 1
            if not last:
                h_new = h_new.relu()
                if virtual is not None:
                    virtual = self.virtual_mlps[layer](global_add_pool(h, batch, num_graphs) + virtual)
                    virtual = apply_dropout(virtual, self.dropout, self.training)
            h = apply_dropout(h_new, self.dropout, self.training)
        return self.head(with_molecule_features(self.pool(h, batch, num_graphs), data, self.molecule_scaler))

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.conv!r}, {self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
                f"virtual_node={self.virtual_emb is not None})")


def _mlp(channels: int) -> Sequential:
    """The 2-layer MLP of GIN (and of the virtual-node update)."""
    return Sequential(Linear(channels, 2 * channels), BatchNorm1d(2 * channels), ReLU(), Linear(2 * channels, channels))


def _make_conv(conv: str, channels: int, heads: int, uses_edges: bool) -> Module:
    if conv == "gin":
        return GINEConv(_mlp(channels), train_eps=True) if uses_edges else GINConv(_mlp(channels), train_eps=True)
    if conv == "gcn":
        return GCNConv(channels, channels)
    return GATConv(channels, channels // heads, heads=heads, edge_dim=channels if uses_edges else None)
