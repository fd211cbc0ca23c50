r"""Message-passing baselines (GIN, GINE, GCN, GAT, GIN + virtual node) and a model factory.

:func:`make_model` builds pLSTM or a baseline behind one signature so that
pipelines and benchmarks can compare them side by side. Every model maps a
(batched) PyG ``data`` object to ``[num_graphs, out_channels]``.

The baselines follow the structure of OGB's graph-property GNNs: node (and
edge) encoder, ``num_layers`` convolutions each followed by BatchNorm, ReLU
(except after the last layer) and dropout, graph pooling and a linear head.
"""
from __future__ import annotations

import os
from typing import Any, Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import (
    AttentionalAggregation,
    GATConv,
    GCNConv,
    GINConv,
    GINEConv,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

__all__ = ["MODEL_NAMES", "POOLINGS", "GNNBaseline", "make_model", "GraphPooling", "make_encoder"]

MODEL_NAMES = ("plstm", "gin", "gcn", "gat", "gin-virtual")
POOLINGS = ("mean", "sum", "max", "attention")
ENCODERS = ("linear", "ogb")

# OGB's default depth for its graph-property GNNs; pLSTM's paper config uses 2 blocks.
_DEFAULT_LAYERS = {"plstm": 2, "gin": 5, "gcn": 5, "gat": 5, "gin-virtual": 5}


class _LinearEncoder(nn.Module):
    """Linear embedding of dense (possibly integer-typed) features."""

    def __init__(self, in_channels: int, out_channels: int, what: str) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.what = what
        self.lin = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 1:
            x = x.unsqueeze(-1)
        if x.size(-1) != self.in_channels:
            raise ValueError(
                f"{self.what} have {x.size(-1)} channels but the model was built for {self.in_channels}"
            )
        # OGB-convention features are integer category ids; a linear encoder reads them as numbers.
        return self.lin(x.to(self.lin.weight.dtype))


class _OGBEncoder(nn.Module):
    """OGB's Atom/BondEncoder with a readable error for features outside its vocabularies."""

    def __init__(self, out_channels: int, what: str) -> None:
        super().__init__()
        os.environ.setdefault("OUTDATED_IGNORE", "1")
        from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
        from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

        atom = what == "node features"
        self.what = what
        self.dims = get_atom_feature_dims() if atom else get_bond_feature_dims()
        self.encoder = AtomEncoder(out_channels) if atom else BondEncoder(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != len(self.dims) or x.is_floating_point():
            raise ValueError(
                f"the 'ogb' encoder needs integer {self.what} of shape [*, {len(self.dims)}] in OGB's "
                f"convention, got {x.dtype} of shape {list(x.shape)}"
            )
        if x.numel():
            too_big = (x.min(0).values < 0) | (x.max(0).values >= torch.tensor(self.dims, device=x.device))
            if too_big.any():
                col = int(too_big.nonzero()[0])
                raise ValueError(
                    f"{self.what} column {col} holds values outside OGB's vocabulary [0, {self.dims[col]}); "
                    "featurize molecules with pyg_plstm.chem (OGB convention) or use a 'linear' encoder"
                )
        return self.encoder(x)


def make_encoder(kind: str, in_channels: Optional[int], out_channels: int, what: str) -> nn.Module:
    """Embed node (``what='node features'``) or edge features to ``out_channels``.

    ``'linear'`` needs ``in_channels``; ``'ogb'`` uses OGB's Atom/BondEncoder on
    integer features in OGB's convention and ignores ``in_channels``.
    """
    if kind == "linear":
        if in_channels is None or in_channels <= 0:
            raise ValueError(
                f"a 'linear' encoder for {what} needs a positive number of input channels, got {in_channels}"
            )
        return _LinearEncoder(in_channels, out_channels, what)
    if kind == "ogb":
        return _OGBEncoder(out_channels, what)
    raise ValueError(f"unknown encoder {kind!r} for {what}; choose one of {ENCODERS}")


class GraphPooling(nn.Module):
    """Readout ``(x, batch, num_graphs) -> [num_graphs, channels]``: mean, sum, max or attention."""

    def __init__(self, pooling: str, channels: int) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.pooling = pooling
        self.attention = (
            AttentionalAggregation(gate_nn=nn.Linear(channels, 1)) if pooling == "attention" else None
        )

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        if self.attention is not None:
            return self.attention(x, batch, dim_size=num_graphs)
        pool = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}[self.pooling]
        return pool(x, batch, num_graphs)


def _mlp(channels: int) -> nn.Sequential:
    """The 2-layer MLP of GIN (and of the virtual-node update)."""
    return nn.Sequential(
        nn.Linear(channels, 2 * channels),
        nn.BatchNorm1d(2 * channels),
        nn.ReLU(),
        nn.Linear(2 * channels, channels),
    )


class GNNBaseline(nn.Module):
    r"""OGB-style GNN: encoders, ``num_layers`` convolutions, pooling and a linear head.

    Args:
        conv: ``'gin'``, ``'gcn'`` or ``'gat'``; GIN becomes GINE and GAT uses
            ``edge_dim`` when an edge encoder is present. GCN ignores edge
            features (its convolution has no slot for them).
        virtual_node: add OGB's virtual node (a learnt per-graph vector summed
            into every node before each layer and updated from the pooled nodes).
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
    ) -> None:
        super().__init__()
        _check_positive(out_channels=out_channels, hidden_channels=hidden_channels, num_layers=num_layers,
                        heads=heads)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must lie in [0, 1), got {dropout}")
        if conv == "gat" and hidden_channels % heads:
            raise ValueError(f"GAT needs `hidden_channels` ({hidden_channels}) divisible by `heads` ({heads})")
        if edge_encoder is None and edge_dim is not None:
            edge_encoder = "linear"
        self.conv_type = conv
        self.dropout = dropout
        self.num_layers = num_layers
        self.node_encoder = make_encoder(node_encoder, in_channels, hidden_channels, "node features")
        use_edges = edge_encoder is not None and conv != "gcn"
        self.edge_encoders = nn.ModuleList(
            make_encoder(edge_encoder, edge_dim, hidden_channels, "edge features") for _ in range(num_layers)
        ) if use_edges else None
        self.convs = nn.ModuleList(self._conv(conv, hidden_channels, heads, use_edges) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden_channels) for _ in range(num_layers))
        if virtual_node:
            self.virtual_emb = nn.Embedding(1, hidden_channels)
            nn.init.zeros_(self.virtual_emb.weight)
            self.virtual_mlps = nn.ModuleList(
                nn.Sequential(_mlp(hidden_channels), nn.BatchNorm1d(hidden_channels), nn.ReLU())
                for _ in range(num_layers - 1)
            )
        else:
            self.virtual_emb = None
        self.pool = GraphPooling(pooling, hidden_channels)
        self.head = nn.Linear(hidden_channels, out_channels)

    @staticmethod
    def _conv(conv: str, channels: int, heads: int, use_edges: bool) -> nn.Module:
        if conv == "gin":
            return GINEConv(_mlp(channels), train_eps=True) if use_edges else GINConv(_mlp(channels), train_eps=True)
        if conv == "gcn":
            return GCNConv(channels, channels)
        if conv == "gat":
            return GATConv(channels, channels // heads, heads=heads, edge_dim=channels if use_edges else None)
        raise ValueError(f"unknown convolution {conv!r}")

    def forward(self, data: Any) -> Tensor:
        x, edge_index, batch, num_graphs = _graph_inputs(data)
        h = self.node_encoder(x)
        vn = None
        if self.virtual_emb is not None:
            vn = self.virtual_emb.weight.expand(num_graphs, -1)
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if vn is not None:
                h = h + vn[batch]
            if self.edge_encoders is not None:
                h_new = conv(h, edge_index, self.edge_encoders[layer](_edge_attr(data)))
            else:
                h_new = conv(h, edge_index)
            h_new = norm(h_new)
            last = layer == self.num_layers - 1
            if not last:
                h_new = h_new.relu()
            if vn is not None and not last:
                vn = self.virtual_mlps[layer](global_add_pool(h, batch, num_graphs) + vn)
                vn = nn.functional.dropout(vn, self.dropout, self.training)
            h = nn.functional.dropout(h_new, self.dropout, self.training)
        return self.head(self.pool(h, batch, num_graphs))


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


def _graph_inputs(data: Any) -> tuple[Tensor, Tensor, Tensor, int]:
    x = getattr(data, "x", None)
    if x is None:
        raise ValueError("the graph has no node features `x` (add some, e.g. with T.OneHotDegree or T.Constant)")
    edge_index = data.edge_index
    batch = getattr(data, "batch", None)
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        num_graphs = 1
    else:
        num_graphs = int(data.num_graphs)
    return x, edge_index, batch, num_graphs


def _edge_attr(data: Any) -> Tensor:
    edge_attr = getattr(data, "edge_attr", None)
    if edge_attr is None:
        raise ValueError("the model was built with an edge encoder but the graph has no `edge_attr`")
    return edge_attr


def make_model(
    name: str,
    in_channels: Optional[int],
    out_channels: int,
    hidden_channels: int = 96,
    num_layers: Optional[int] = None,
    heads: int = 4,
    edge_dim: Optional[int] = None,
    node_encoder: str = "linear",
    edge_encoder: Optional[str] = None,
    pooling: str = "mean",
    dropout: float = 0.0,
    **plstm_kwargs: Any,
) -> nn.Module:
    r"""Build pLSTM or a baseline by name (one of :data:`MODEL_NAMES`).

    ``num_layers`` is the number of pLSTM blocks or GNN layers; ``None`` picks
    the model's usual depth (2 pLSTM blocks, 5 GNN layers as in OGB).
    ``plstm_kwargs`` (``block``, ``pos_encoding``, ``form``, ``alpha``, ...) go to
    :class:`~pyg_plstm.nn.PLSTMNet` and are rejected for the baselines.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES}")
    if num_layers is None:
        num_layers = _DEFAULT_LAYERS[name]
    if name == "plstm":
        from pyg_plstm.nn import PLSTMNet

        return PLSTMNet(
            in_channels, hidden_channels=hidden_channels, out_channels=out_channels, num_blocks=num_layers,
            heads=heads, edge_dim=edge_dim, node_encoder=node_encoder, edge_encoder=edge_encoder,
            pooling=pooling, dropout=dropout, **plstm_kwargs,
        )
    if plstm_kwargs:
        raise ValueError(f"model {name!r} does not take the pLSTM-only argument(s) {sorted(plstm_kwargs)}")
    return GNNBaseline(
        "gin" if name == "gin-virtual" else name, in_channels, out_channels, hidden_channels=hidden_channels,
        num_layers=num_layers, heads=heads, edge_dim=edge_dim, node_encoder=node_encoder,
        edge_encoder=edge_encoder, pooling=pooling, dropout=dropout, virtual_node=name == "gin-virtual",
    )
