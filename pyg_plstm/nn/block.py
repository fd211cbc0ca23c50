r"""Residual pLSTM blocks."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import GELU, Dropout, LayerNorm, Linear, ModuleList, Sequential

from pyg_plstm.checks import check_dropout
from pyg_plstm.dag import DAG, MODES, prepare_dag
from pyg_plstm.nn.conv import PLSTMConv


class PLSTMBlock(torch.nn.Module):
    r"""Pre-norm residual pLSTM layers followed by a pre-norm residual MLP.

    For every letter :math:`m` of :obj:`pattern` (the paper's graph block is
    :obj:`"PD"`: a P-mode layer, then a D-mode layer)

    .. math::
        \mathbf{X} \leftarrow \mathbf{X} + \mathrm{Dropout}\big(
        \mathrm{pLSTM}_m(\mathrm{LN}(\mathbf{X}))\big),

    then :math:`\mathbf{X} \leftarrow \mathbf{X} + \mathrm{Dropout}(
    \mathrm{MLP}(\mathrm{LN}(\mathbf{X})))` with a two-layer GELU MLP.

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
    ) -> None:
        super().__init__()
        if not isinstance(pattern, str) or not pattern or any(m not in MODES for m in pattern):
            raise ValueError(f"`pattern` must be a non-empty string of the modes {MODES}, e.g. 'PD', "
                             f"got {pattern!r}")
        check_dropout(dropout)
        self.channels = channels
        self.pattern = pattern
        self.convs = ModuleList(
            PLSTMConv(channels, channels, heads, mode, edge_dim=edge_dim, alpha=alpha, form=form)
            for mode in pattern)
        self.conv_norms = ModuleList(LayerNorm(channels) for _ in pattern)
        self.mlp_norm = LayerNorm(channels)
        self.mlp = Sequential(Linear(channels, mlp_ratio * channels), GELU(), Dropout(dropout),
                              Linear(mlp_ratio * channels, channels))
        self.dropout = Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv, norm in zip(self.convs, self.conv_norms):
            conv.reset_parameters()
            norm.reset_parameters()
        self.mlp_norm.reset_parameters()
        for lin in (self.mlp[0], self.mlp[3]):
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
            reverse (bool, optional): Run all layers on the reversed DAG.
        """
        if dag is None:
            if edge_index is None:
                raise ValueError("pass `edge_index` or a prepared `dag`")
            dag = prepare_dag(edge_index, x.size(0), batch=batch)
            batch = None
        for conv, norm in zip(self.convs, self.conv_norms):
            x = x + self.dropout(conv(norm(x), edge_index, edge_attr, batch, dag=dag, reverse=reverse))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, heads={self.convs[0].heads}, pattern={self.pattern!r})"
