r"""Residual pLSTM blocks."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch.nn import GELU, BatchNorm1d, Dropout, LayerNorm, Linear, ModuleList, RMSNorm, Sequential
from torch_geometric.nn import GINConv, GINEConv

from pyg_plstm.checks import check_choice, check_device, check_dropout
from pyg_plstm.dag import DAG, MODES, prepare_dag
from pyg_plstm.nn.conv import PLSTMConv

__all__ = ["BLOCK_NORMS", "LOCAL_CONVS", "PLSTMBlock", "make_norm", "undirected_edges"]

#: The pre-norms a block can use (LayerNorm, the authors' RMSNorm, BatchNorm over the nodes of a batch).
BLOCK_NORMS = ("layer", "rms", "batch")
#: Local message-passing layers a block can put before its pLSTM layers (:obj:`None`: none).
LOCAL_CONVS = ("gine", None)


def make_norm(kind: str, channels: int) -> torch.nn.Module:
    """A norm of :data:`BLOCK_NORMS` over :obj:`channels` features."""
    check_choice("norm", kind, BLOCK_NORMS)
    if kind == "batch":
        return BatchNorm1d(channels)
    # eps as LayerNorm's default (and the authors' RMSNorm).
    return LayerNorm(channels) if kind == "layer" else RMSNorm(channels, eps=1e-5)


def undirected_edges(dag: DAG, edge_attr: Optional[Tensor] = None) -> tuple[Tensor, Optional[Tensor]]:
    r"""The DAG's edges in both directions, ``[2, 2E]``, with the rows of
    :obj:`edge_attr` (indexed like the input ``edge_index``, as every layer
    takes it) that each DAG edge came from, repeated for the flipped copy.

    For an undirected input (every bond in both directions, with the same
    features both ways, as molecules have) this is the input graph again,
    whatever the orientation; a directed input is read both ways, each edge
    with its own features.
    """
    edge_index = torch.cat([dag.edge_index, dag.edge_index.flip(0)], dim=1)
    if edge_attr is None:
        return edge_index, None
    rows = edge_attr.index_select(0, dag.input_edges(edge_attr.size(0), "edge_attr"))
    return edge_index, torch.cat([rows, rows], dim=0)


class PLSTMBlock(torch.nn.Module):
    r"""Pre-norm residual pLSTM layers followed by a pre-norm residual MLP,
    optionally after a local message-passing layer.

    With :obj:`local="gine"` the block first mixes every node with its
    neighbours along the DAG's edges in both directions (for molecules: every
    bond both ways, see :func:`undirected_edges`), a GINE layer with the edge
    features (GIN without them), the way GPS pairs a local MPNN with a global
    mixer:

    .. math::
        \mathbf{X} \leftarrow \mathbf{X} + \mathrm{Dropout}\big(
        \mathrm{GINE}(\mathrm{LN}(\mathbf{X}), \mathbf{E})\big),
        \quad \mathrm{GINE}(\mathbf{H})_n = \mathrm{MLP}\Big((1 + \epsilon)\,
        \mathbf{h}_n + \sum_{m \sim n} \mathrm{ReLU}(\mathbf{h}_m + \mathbf{W}\mathbf{e}_{mn})\Big).

    Then, for every letter :math:`m` of :obj:`pattern` (the paper's graph block is
    :obj:`"PD"`: a P-mode layer, then a D-mode layer)

    .. math::
        \mathbf{X} \leftarrow \mathbf{X} + \mathrm{Dropout}\big(
        \mathrm{pLSTM}_m(\mathrm{LN}(\mathbf{X}))\big),

    then :math:`\mathbf{X} \leftarrow \mathbf{X} + \mathrm{Dropout}(
    \mathrm{MLP}(\mathrm{LN}(\mathbf{X})))` with a two-layer GELU MLP.
    The authors' code (:obj:`norm="rms", mlp_per_layer=True`) uses RMSNorm
    and follows *every* pLSTM layer with its own MLP: a :obj:`"PD"` block is
    two residual sub-blocks, pLSTM then MLP each. A :obj:`bidirectional`
    block reads the graph both ways in every layer, with a second layer of
    the same mode on the reversed DAG :math:`\mathcal{G}^{\top}`:

    .. math::
        \mathbf{X} \leftarrow \mathbf{X} + \mathrm{Dropout}\big(
        \mathrm{pLSTM}_m(\mathrm{LN}(\mathbf{X}); \mathcal{G}) +
        \mathrm{pLSTM}'_m(\mathrm{LN}(\mathbf{X}); \mathcal{G}^{\top})\big).

    Args:
        channels (int): Size of the node features (input and output).
        heads (int, optional): Heads of every pLSTM layer. (default: :obj:`4`)
        pattern (str, optional): Modes of the pLSTM layers, in order, e.g.
            :obj:`"PD"`, :obj:`"P"` or :obj:`"D"`. (default: :obj:`"PD"`)
        edge_dim (int, optional): Size of the edge features, if any.
        mlp_ratio (int, optional): Hidden size of the MLP in multiples of
            :obj:`channels`. (default: :obj:`4`)
        dropout (float, optional): Dropout on every residual branch and inside
            the MLP. (default: :obj:`0.0`)
        alpha (float, optional): P-mode normalisation offset.
            (default: :obj:`0.5`)
        form (str, optional): Operator form of the pLSTM layers.
            (default: :obj:`"auto"`)
        norm (str, optional): The pre-norms, :obj:`"layer"`
            (:class:`~torch.nn.LayerNorm`), :obj:`"rms"`
            (:class:`~torch.nn.RMSNorm`, gain only) or :obj:`"batch"`
            (:class:`~torch.nn.BatchNorm1d` over the nodes of the batch, as in
            GIN; in training mode a node's output then depends on the rest of
            the batch). (default: :obj:`"layer"`)
        mlp_per_layer (bool, optional): An MLP after every pLSTM layer instead
            of one after all of them. (default: :obj:`False`)
        bidirectional (bool, optional): Add to every pLSTM layer one on the
            reversed DAG (twice the layers' parameters) instead of reading
            one direction per block. (default: :obj:`False`)
        local (str, optional): A local message-passing layer before the pLSTM
            layers, :obj:`"gine"`, or :obj:`None`. (default: :obj:`None`)
        **conv_kwargs (optional): Further arguments of every
            :class:`PLSTMConv` (e.g. :obj:`p_normalize`,
            :obj:`transition_node`, :obj:`prune_order`, :obj:`qkv_bias`,
            :obj:`init`; :obj:`transition="householder"`,
            :obj:`householder_steps`, :obj:`negative_eigenvalues` for
            matrix transitions).
    """

    def __init__(
        self,
        channels: int,
        heads: int = 4,
        pattern: str = "PD",
        edge_dim: Optional[int] = None,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        alpha: float = 0.5,
        form: str = "auto",
        norm: str = BLOCK_NORMS[0],
        mlp_per_layer: bool = False,
        bidirectional: bool = False,
        local: Optional[str] = None,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(pattern, str) or not pattern or any(m not in MODES for m in pattern):
            raise ValueError(f"`pattern` must be a non-empty string of the modes {MODES}, e.g. 'PD', "
                             f"got {pattern!r}")
        check_dropout(dropout)
        check_choice("norm", norm, BLOCK_NORMS)
        check_choice("local", local, LOCAL_CONVS)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"`bidirectional` must be a bool, got {bidirectional!r}")
        self.channels = channels
        self.pattern = pattern
        self.mlp_per_layer = mlp_per_layer
        self.bidirectional = bidirectional
        self.local = local

        def make_convs() -> ModuleList:
            return ModuleList(PLSTMConv(channels, channels, heads, mode, edge_dim=edge_dim, alpha=alpha, form=form,
                                        **conv_kwargs) for mode in pattern)

        self.convs = make_convs()
        # The layers on the reversed DAG of a bidirectional block; empty otherwise.
        self.reverse_convs = make_convs() if bidirectional else ModuleList()

        if local is None:
            self.local_conv = self.local_norm = None
        else:
            mlp = Sequential(Linear(channels, 2 * channels), GELU(), Linear(2 * channels, channels))
            self.local_conv = (GINConv(mlp, train_eps=True) if edge_dim is None
                               else GINEConv(mlp, train_eps=True, edge_dim=edge_dim))
            self.local_norm = make_norm(norm, channels)

        num_mlps = len(pattern) if mlp_per_layer else 1
        self.conv_norms = ModuleList(make_norm(norm, channels) for _ in pattern)
        self.mlp_norms = ModuleList(make_norm(norm, channels) for _ in range(num_mlps))
        self.mlps = ModuleList(
            Sequential(Linear(channels, mlp_ratio * channels), GELU(), Dropout(dropout),
                       Linear(mlp_ratio * channels, channels))
            for _ in range(num_mlps))
        self.dropout = Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in [*self.convs, *self.reverse_convs]:
            conv.reset_parameters()
        if self.local_conv is not None:
            self.local_conv.reset_parameters()
            self.local_norm.reset_parameters()
        for norm in self.conv_norms:
            norm.reset_parameters()
        for norm, mlp in zip(self.mlp_norms, self.mlps):
            norm.reset_parameters()
            for lin in (mlp[0], mlp[3]):
                lin.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Optional[Tensor] = None,
        edge_attr: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        *,
        dag: Optional[DAG] = None,
        reverse: bool = False,
    ) -> Tensor:
        r"""Arguments as in :meth:`PLSTMConv.forward`; without :obj:`dag`, the
        DAG is built from :obj:`edge_index` once and shared by the block's layers.

        Args:
            x (torch.Tensor): Node features :math:`(N, C)`.
            edge_index (torch.Tensor, optional): Graph connectivity (when no :obj:`dag`).
            edge_attr (torch.Tensor, optional): Edge features, rows like :obj:`edge_index`.
            batch (torch.Tensor, optional): Graph of every node (when no :obj:`dag`).
            dag (DAG, optional): The prepared (batched) DAG, shared with other blocks.
            reverse (bool, optional): Run all layers on the reversed DAG (and, in a
                bidirectional block, the layers of the reversed DAG on the DAG).
        """
        if isinstance(x, Tensor):  # before the local layer mixes them; the type checks are PLSTMConv's
            check_device("x", x.device, dag=getattr(dag, "edge_index", None), edge_index=edge_index,
                         edge_attr=edge_attr, batch=batch)
        if dag is None:
            if edge_index is None:
                raise ValueError("pass `edge_index` or a prepared `dag`")
            dag = prepare_dag(edge_index, x.size(0), batch=batch)
            batch = None
        if self.local_conv is not None:
            # The DAG's edges both ways. An undirected input (each DAG edge merged from two input edges) is
            # that graph already, in the order of edge_index, which PyG's explain edge masks follow.
            undirected_input = edge_index is not None and edge_index.size(1) == 2 * dag.num_edges
            local_index, local_attr = ((edge_index, edge_attr) if undirected_input
                                       else undirected_edges(dag, edge_attr))
            h = self.local_norm(x)
            out = self.local_conv(h, local_index) if local_attr is None else self.local_conv(h, local_index, local_attr)
            x = x + self.dropout(out)
        mlps = iter(zip(self.mlp_norms, self.mlps))
        for i, (conv, norm) in enumerate(zip(self.convs, self.conv_norms)):
            h = norm(x)
            out = conv(h, edge_index, edge_attr, batch, dag=dag, reverse=reverse)
            if self.bidirectional:
                out = out + self.reverse_convs[i](h, edge_index, edge_attr, batch, dag=dag, reverse=not reverse)
            x = x + self.dropout(out)
            if self.mlp_per_layer or i == len(self.convs) - 1:
                mlp_norm, mlp = next(mlps)
                x = x + self.dropout(mlp(mlp_norm(x)))
        return x

    def prepare_structure(self, dag: DAG, reverse: bool = False) -> None:
        """:meth:`PLSTMConv.prepare_structure` of every layer, for a forward pass with the same :obj:`reverse`."""
        for conv in self.convs:
            conv.prepare_structure(dag, reverse)
        for conv in self.reverse_convs:
            conv.prepare_structure(dag, not reverse)

    def __repr__(self) -> str:
        both = ", bidirectional=True" if self.bidirectional else ""
        local = f", local={self.local!r}" if self.local is not None else ""
        return (f"{self.__class__.__name__}({self.channels}, heads={self.convs[0].heads}, "
                f"pattern={self.pattern!r}{both}{local})")
