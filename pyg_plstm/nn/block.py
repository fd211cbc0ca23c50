r"""Residual pLSTM blocks."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor
from torch.nn import GELU, Dropout, LayerNorm, Linear, ModuleList, RMSNorm, Sequential

from pyg_plstm.checks import check_choice, check_dropout
from pyg_plstm.dag import DAG, MODES, prepare_dag
from pyg_plstm.nn.conv import PLSTMConv

__all__ = ["BLOCK_NORMS", "PLSTMBlock"]

#: Pre-norms of a block: ours, then the authors' code's.
BLOCK_NORMS = ("layer", "rms")


class PLSTMBlock(torch.nn.Module):
    r"""Pre-norm residual pLSTM layers followed by a pre-norm residual MLP.

    For every letter :math:`m` of :obj:`pattern` (the paper's graph block is
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
            (:class:`~torch.nn.LayerNorm`) or :obj:`"rms"`
            (:class:`~torch.nn.RMSNorm`, gain only). (default: :obj:`"layer"`)
        mlp_per_layer (bool, optional): An MLP after every pLSTM layer instead
            of one after all of them. (default: :obj:`False`)
        bidirectional (bool, optional): Add to every pLSTM layer one on the
            reversed DAG (twice the layers' parameters) instead of reading
            one direction per block. (default: :obj:`False`)
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
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        if not isinstance(pattern, str) or not pattern or any(m not in MODES for m in pattern):
            raise ValueError(f"`pattern` must be a non-empty string of the modes {MODES}, e.g. 'PD', "
                             f"got {pattern!r}")
        check_dropout(dropout)
        check_choice("norm", norm, BLOCK_NORMS)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"`bidirectional` must be a bool, got {bidirectional!r}")
        self.channels = channels
        self.pattern = pattern
        self.mlp_per_layer = mlp_per_layer
        self.bidirectional = bidirectional

        def make_convs() -> ModuleList:
            return ModuleList(PLSTMConv(channels, channels, heads, mode, edge_dim=edge_dim, alpha=alpha, form=form,
                                        **conv_kwargs) for mode in pattern)

        self.convs = make_convs()
        # The layers on the reversed DAG of a bidirectional block; empty otherwise.
        self.reverse_convs = make_convs() if bidirectional else ModuleList()

        def make_norm() -> torch.nn.Module:
            # eps as LayerNorm's default (and the authors' RMSNorm).
            return LayerNorm(channels) if norm == "layer" else RMSNorm(channels, eps=1e-5)

        num_mlps = len(pattern) if mlp_per_layer else 1
        self.conv_norms = ModuleList(make_norm() for _ in pattern)
        self.mlp_norms = ModuleList(make_norm() for _ in range(num_mlps))
        self.mlps = ModuleList(
            Sequential(Linear(channels, mlp_ratio * channels), GELU(), Dropout(dropout),
                       Linear(mlp_ratio * channels, channels))
            for _ in range(num_mlps))
        self.dropout = Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in [*self.convs, *self.reverse_convs]:
            conv.reset_parameters()
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
        if dag is None:
            if edge_index is None:
                raise ValueError("pass `edge_index` or a prepared `dag`")
            dag = prepare_dag(edge_index, x.size(0), batch=batch)
            batch = None
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
        return (f"{self.__class__.__name__}({self.channels}, heads={self.convs[0].heads}, "
                f"pattern={self.pattern!r}{both})")
