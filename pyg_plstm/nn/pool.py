r"""Graph readout: node states to one vector per graph."""
from __future__ import annotations

from torch import Tensor
from torch.nn import Linear, Module
from torch_geometric.nn import AttentionalAggregation, global_add_pool, global_max_pool, global_mean_pool

from pyg_plstm.checks import check_choice, check_positive

__all__ = ["POOLINGS", "GraphPooling"]

_POOL_FUNCTIONS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}
POOLINGS = (*_POOL_FUNCTIONS, "attention")


class GraphPooling(Module):
    r"""Readout :math:`\mathbf{r}_g = \mathrm{Pool}_{n \in g}\, \mathbf{h}_n`
    by mean, sum, max or attention,

    .. math::
        \mathbf{r}_g = \sum_{n \in g} \mathrm{softmax}_{n \in g}
        \big(\mathbf{w}^{\top}\mathbf{h}_n + b\big)\, \mathbf{h}_n

    for :obj:`"attention"` (:class:`~torch_geometric.nn.aggr.AttentionalAggregation`
    with a linear gate). Graphs without nodes pool to zero.

    Args:
        pooling (str): One of :data:`POOLINGS`.
        channels (int): Size of the node states.
    """

    def __init__(self, pooling: str, channels: int) -> None:
        super().__init__()
        check_choice("pooling", pooling, POOLINGS)
        check_positive(channels=channels)
        self.pooling = pooling
        self.channels = channels
        self.attention = (
            AttentionalAggregation(gate_nn=Linear(channels, 1)) if pooling == "attention" else None
        )

    def reset_parameters(self) -> None:
        if self.attention is not None:
            self.attention.reset_parameters()

    def forward(self, x: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """Pools ``x`` ``[num_nodes, channels]`` by the graph ids ``batch`` to ``[num_graphs, channels]``."""
        if self.attention is not None:
            return self.attention(x, batch, dim_size=num_graphs)
        return _POOL_FUNCTIONS[self.pooling](x, batch, num_graphs)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.pooling!r}, {self.channels})"
