r"""Positional encodings for graph-level pLSTM models."""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn.encoding import PositionalEncoding
from torch_geometric.utils import degree


class DegreeEncoding(torch.nn.Module):
    r"""Sinusoidal encoding of the node degree, as in the pLSTM paper's graph
    models:

    .. math::
        \mathrm{PE}(n)_{2i} = \sin(d_n \omega_i), \quad
        \mathrm{PE}(n)_{2i+1} = \cos(d_n \omega_i),

    with :math:`d_n` the number of DAG edges at node :math:`n` (in plus out,
    i.e. the degree of the underlying simple graph) and :math:`\omega_i`
    log-spaced in :math:`[10^{-4}, 1]`.

    Args:
        channels (int): Size of the encoding (even).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f"the degree encoding needs an even number of channels, got {channels}")
        self.channels = channels
        self.encoding = PositionalEncoding(channels)

    def reset_parameters(self) -> None:
        self.encoding.reset_parameters()

    def forward(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        """Encodes the degrees of the ``num_nodes`` nodes of ``edge_index``."""
        return self.encoding(degree(edge_index.flatten(), num_nodes))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels})"
