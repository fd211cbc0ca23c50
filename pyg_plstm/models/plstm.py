r"""Graph-level pLSTM model: pLSTM blocks between feature encoders and a pooled head."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch.nn import GELU, Dropout, Linear, ModuleList, Sequential
from torch_geometric.nn.inits import reset

from pyg_plstm.checks import check_choice, check_dropout, check_positive
from pyg_plstm.dag import DAG, get_dag
from pyg_plstm.models.inputs import graph_edge_attr, graph_inputs, with_molecule_features
from pyg_plstm.nn.block import PLSTMBlock, make_norm
from pyg_plstm.nn.conv import AUTHORS_CONV_OPTIONS, PAPER_GATE_BIAS, PAPER_NORM_EPS, PREVIOUS_NORM_EPS
from pyg_plstm.nn.encoders import make_encoder
from pyg_plstm.nn.encoding import DAGEncoding, DegreeEncoding
from pyg_plstm.nn.pool import GraphPooling
from pyg_plstm.nn.scaler import Standardize

__all__ = ["CONFIGS", "EDGE_FEATURES", "POS_ENCODINGS", "PLSTMNet"]

POS_ENCODINGS = ("degree", "dag", None)
EDGE_FEATURES = ("layer", "input")

CONFIGS: dict[str, dict[str, Any]] = {
    # The graph setup of the pLSTM paper: 2 PD blocks, 96 channels, 4 heads, its gate and norm init.
    "paper": dict(hidden_channels=96, num_blocks=2, heads=4, block="PD", gate_bias=PAPER_GATE_BIAS,
                  norm_eps=PAPER_NORM_EPS, transition_node="shared", norm="layer", local=None),
    # The paper's setup as the authors' code computes it (ml-jku/plstm edge layer and block,
    # ml-jku/plstm_experiments TU model): their edge layer (p_normalize, transition_node,
    # prune_order, biases, init), two residual RMSNorm sub-blocks per PD block, edge features
    # from the encoded input, mean pooling.
    "authors": dict(hidden_channels=96, num_blocks=2, heads=4, block="PD", pooling="mean",
                    edge_features="input", norm="rms", mlp_per_layer=True, local=None, **AUTHORS_CONV_OPTIONS),
    # The defaults before the hybrid blocks: pLSTM layers alone in every block (P then D), LayerNorm, norm
    # offset 1e-2.
    "previous": dict(norm="layer", local=None, norm_eps=PREVIOUS_NORM_EPS, block="PD"),
    # The default before one P-mode layer per block: the hybrid blocks with a P-mode, then a D-mode layer.
    "hybrid-pd": dict(block="PD"),
    # Inputs that are DAGs as given (neural architectures, circuits): every node's depth and height
    # embedded, pLSTM layers alone along the given direction, P then D (benchmarks.architectures measures it,
    # with the norm offset 1e-2 it was chosen with; the offset 1 and one P layer per block were chosen on
    # molecules).
    "dag": dict(pos_encoding="dag", local=None, norm_eps=PREVIOUS_NORM_EPS, block="PD"),
}


class PLSTMNet(torch.nn.Module):
    r"""Graph-level pLSTM: node (and edge) encoders, an optional degree
    encoding, :obj:`num_blocks` hybrid :class:`PLSTMBlock` s (a local GINE
    layer, then the pLSTM layers, then an MLP) on alternately forward
    and reversed DAGs (both ways in every block with :obj:`bidirectional=True`),
    pooling and an MLP head.

    .. math::
        \mathbf{H}^{(0)} &= \mathrm{Enc}(\mathbf{X}) + \mathrm{PE}(\deg)

        \mathbf{H}^{(b)} &= \mathrm{Block}_b(\mathbf{H}^{(b-1)};\
        \mathcal{G} \text{ if } b \text{ odd else } \mathcal{G}^{\top})

        \mathbf{y}_g &= \mathrm{MLP}\big(\mathrm{Pool}_{n \in g}\,
        \mathrm{LN}(\mathbf{h}^{(B)}_n)\big)

    All blocks share one :class:`~pyg_plstm.DAG` per forward pass, so every view of
    the DAG is sorted into levels at most once. The model outputs one row of
    :obj:`out_channels` logits/values per graph; losses (and masking of
    missing multi-task labels) are left to the trainer.

    Args:
        in_channels (int, optional): Size of the node features; ignored by the
            :obj:`"ogb"` node encoder.
        hidden_channels (int, optional): Width of the model. (default: :obj:`96`)
        out_channels (int, optional): Outputs per graph. (default: :obj:`1`)
        num_blocks (int, optional): Number of blocks. (default: :obj:`2`)
        heads (int, optional): Heads of every pLSTM layer. (default: :obj:`4`)
        block (str, optional): Layer pattern of each block, :obj:`"P"`,
            :obj:`"PD"` (the paper's graph block; with the other defaults
            the :obj:`"hybrid-pd"` config, the default before) or
            :obj:`"D"`. After the GINE layer one P-mode layer per block
            fitted the six molecular benchmark sets about as well as P then
            D, in about 70 % of the time per epoch.
            (default: :obj:`"P"`)
        edge_dim (int, optional): Size of the edge features for a
            :obj:`"linear"` edge encoder (which it implies when
            :obj:`edge_encoder` is :obj:`None`). (default: :obj:`None`)
        node_encoder (str, optional): :obj:`"linear"`, or :obj:`"ogb"` (OGB's
            :class:`AtomEncoder` on integer OGB-convention features).
            (default: :obj:`"linear"`)
        edge_encoder (str, optional): :obj:`"linear"`, :obj:`"ogb"` (OGB's
            :class:`BondEncoder`) or :obj:`None` (no edge features; the layers
            use the mean of the endpoint features). (default: :obj:`None`)
        pos_encoding (str, optional): :obj:`"degree"` (:class:`DegreeEncoding`),
            :obj:`"dag"` (:class:`~pyg_plstm.nn.DAGEncoding`: longest paths
            from a source and to a sink, for inputs that are DAGs as given; the
            :obj:`"dag"` config) or :obj:`None`. (default: :obj:`"degree"`)
        pooling (str, optional): :obj:`"mean"`, :obj:`"sum"`, :obj:`"max"` or
            :obj:`"attention"`. (default: :obj:`"mean"`)
        dropout (float, optional): Dropout in the blocks and the head.
            (default: :obj:`0.0`)
        form (str, optional): Operator form of the pLSTM layers.
            (default: :obj:`"auto"`)
        alpha (float, optional): P-mode normalisation offset.
            (default: :obj:`0.5`)
        edge_features (str, optional): Without an edge encoder, the
            :math:`\mathbf{f}_e` of the pLSTM layers: :obj:`"layer"`, the mean
            of the endpoint features of each layer's own input, or
            :obj:`"input"`, :math:`\frac{1}{2}(\mathbf{h}^{(0)}_u +
            \mathbf{h}^{(0)}_w)` of the encoded input, computed once and used
            by every layer (the authors' code). (default: :obj:`"layer"`)
        norm (str, optional): The norms of the blocks and before the pooling:
            :obj:`"batch"` (BatchNorm over the nodes of the batch, as GIN),
            :obj:`"layer"` or :obj:`"rms"` (the latter two keep a LayerNorm
            before the pooling). LayerNorm normalises every node's features
            on its own, and on ChEMBL activity sets the model then fits
            about half as fast as GIN, with or without the pLSTM layers.
            (default: :obj:`"batch"`)
        local (str, optional): The local message-passing layer of every block
            (see :class:`~pyg_plstm.nn.PLSTMBlock`): :obj:`"gine"` (a GINE
            layer over the undirected graph before the pLSTM layers), or
            :obj:`None` (pLSTM layers alone, the previous default; the
            :obj:`"previous"` config). (default: :obj:`"gine"`)
        molecule_dim (int, optional): Molecule-level features per graph
            (``data.molecule_features``, ``[num_graphs, molecule_dim]``),
            standardised (:class:`~pyg_plstm.nn.Standardize`, fitted on the
            training rows) and concatenated with the pooled embedding before
            the head. (default: :obj:`None`, none)
        **block_kwargs (optional): Further arguments of every
            :class:`~pyg_plstm.nn.PLSTMBlock` and its layers (e.g.
            :obj:`norm`, :obj:`mlp_per_layer`, :obj:`bidirectional`, :obj:`p_normalize`,
            :obj:`transition_node`, :obj:`prune_order`, :obj:`qkv_bias`,
            :obj:`init`; :obj:`transition="householder"`,
            :obj:`householder_steps`, :obj:`negative_eigenvalues` for
            matrix transitions).
    """

    def __init__(
        self,
        in_channels: Optional[int],
        hidden_channels: int = 96,
        out_channels: int = 1,
        num_blocks: int = 2,
        heads: int = 4,
        block: str = "P",
        edge_dim: Optional[int] = None,
        node_encoder: str = "linear",
        edge_encoder: Optional[str] = None,
        pos_encoding: Optional[str] = "degree",
        pooling: str = "mean",
        dropout: float = 0.0,
        form: str = "auto",
        alpha: float = 0.5,
        edge_features: str = EDGE_FEATURES[0],
        norm: str = "batch",
        local: Optional[str] = "gine",
        molecule_dim: Optional[int] = None,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        check_positive(hidden_channels=hidden_channels, out_channels=out_channels, num_blocks=num_blocks,
                       heads=heads)
        check_choice("pos_encoding", pos_encoding, POS_ENCODINGS)
        if pos_encoding == "degree" and hidden_channels % 2:
            raise ValueError(f"pos_encoding='degree' needs an even `hidden_channels`, got {hidden_channels}")
        check_dropout(dropout)
        check_choice("edge_features", edge_features, EDGE_FEATURES)
        if edge_encoder is None and edge_dim is not None:
            edge_encoder = "linear"
        if edge_features == "input" and edge_encoder is not None:
            raise ValueError(f"edge_features='input' makes the endpoint mean of the encoded input the edge "
                             f"features, so it takes no edge encoder (got edge_encoder={edge_encoder!r})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.edge_features = edge_features

        self.node_encoder = make_encoder(node_encoder, in_channels, hidden_channels, "node features")
        self.edge_encoder = (None if edge_encoder is None
                             else make_encoder(edge_encoder, edge_dim, hidden_channels, "edge features"))
        self.pos_encoding = pos_encoding
        self.pos_encoder = {"degree": DegreeEncoding, "dag": DAGEncoding, None: lambda _: None}[pos_encoding](
            hidden_channels)
        with_edge_features = edge_encoder is not None or edge_features == "input"
        self.blocks = ModuleList(
            PLSTMBlock(hidden_channels, heads, block, edge_dim=hidden_channels if with_edge_features else None,
                       dropout=dropout, alpha=alpha, form=form, norm=norm, local=local, **block_kwargs)
            for _ in range(num_blocks))
        # The configurations measured with layer or RMS pre-norms had a LayerNorm here; they keep it.
        self.norm = make_norm("batch" if norm == "batch" else "layer", hidden_channels)
        self.pool = GraphPooling(pooling, hidden_channels)
        self.molecule_scaler = Standardize(molecule_dim) if molecule_dim else None
        self.head = Sequential(Linear(hidden_channels + (molecule_dim or 0), hidden_channels), GELU(),
                               Dropout(dropout), Linear(hidden_channels, out_channels))

    def reset_parameters(self) -> None:
        for child in self.children():
            reset(child)

    @classmethod
    def from_config(cls, name: str, in_channels: Optional[int], out_channels: int = 1,
                    **overrides: Any) -> "PLSTMNet":
        """A named configuration (:obj:`"paper"`, :obj:`"authors"`, :obj:`"dag"`; see :data:`CONFIGS`), with
        keyword overrides."""
        if name not in CONFIGS:
            raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
        return cls(in_channels, out_channels=out_channels, **{**CONFIGS[name], **overrides})

    def forward(self, data: Any) -> Tensor:
        """Maps a (batched) :class:`~pyg_plstm.DAGData` to ``[num_graphs, out_channels]``."""
        h, batch, num_graphs = self._encode(data)
        return self.head(with_molecule_features(self.pool(h, batch, num_graphs), data, self.molecule_scaler))

    def node_embeddings(self, data: Any) -> Tensor:
        """The normalised node states fed to the pooling, ``[num_nodes, hidden_channels]``."""
        return self._encode(data)[0]

    def _encode(self, data: Any) -> tuple[Tensor, Tensor, int]:
        x, edge_index, batch, num_graphs = graph_inputs(data)
        dag = get_dag(data)
        h = self.node_encoder(x)
        if self.pos_encoding == "degree":
            h = h + self.pos_encoder(dag.edge_index, dag.num_nodes)
        elif self.pos_encoding == "dag":
            h = h + self.pos_encoder(dag)
        # Edge features stay indexed like edge_index; every layer gathers them to its DAG edges.
        if self.edge_features == "input":
            edge_attr = 0.5 * (h[edge_index[0]] + h[edge_index[1]])
        elif self.edge_encoder is not None:
            edge_attr = self.edge_encoder(graph_edge_attr(data))
        else:
            edge_attr = None
        for i, block in enumerate(self.blocks):
            h = block(h, edge_index, edge_attr, dag=dag, reverse=i % 2 == 1)
        return self.norm(h), batch, num_graphs

    def prepare_structure(self, dag: DAG) -> None:
        r"""Builds everything :meth:`forward` derives from :obj:`dag` (views,
        structure checks, schedules of every layer) ahead of time, cached on
        :obj:`dag`. Passed to :class:`~pyg_plstm.dag.DAGCollater`, it moves
        that host work into the data loader (its worker processes when
        ``num_workers > 0``), so the forward pass does none."""
        for i, block in enumerate(self.blocks):
            block.prepare_structure(dag, reverse=i % 2 == 1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, {self.out_channels}, "
                f"num_blocks={len(self.blocks)}, block={self.blocks[0].pattern!r})")
