r"""Residual pLSTM blocks."""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor
from torch.nn import Dropout, GELU, LayerNorm, Linear, ModuleList, Sequential

from pyg_plstm.dag import DAG
from pyg_plstm.nn.conv import PLSTMConv
from pyg_plstm.nn.plan import DAGPlan, MODES


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
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must lie in [0, 1), got {dropout}")
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

    def forward(self, x: Tensor, dag: Union[DAG, DAGPlan], edge_attr: Optional[Tensor] = None,
                reverse: bool = False) -> Tensor:
        r"""Args:
            x (torch.Tensor): Node features :math:`(N, C)`.
            dag (DAG or DAGPlan): The (batched) DAG; pass a :class:`DAGPlan`
                to share level schedules with other blocks.
            edge_attr (torch.Tensor, optional): Features of the DAG edges.
            reverse (bool, optional): Run all layers on the reversed DAG.
        """
        plan = dag if isinstance(dag, DAGPlan) else DAGPlan(dag)
        for conv, norm in zip(self.convs, self.conv_norms):
            x = x + self.dropout(conv(norm(x), edge_attr=edge_attr, dag=plan, reverse=reverse))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, heads={self.convs[0].heads}, pattern={self.pattern!r})"
