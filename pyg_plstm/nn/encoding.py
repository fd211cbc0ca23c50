r"""Positional encodings for graph-level pLSTM models."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Embedding
from torch_geometric.nn.encoding import PositionalEncoding
from torch_geometric.utils import degree

from pyg_plstm.checks import check_positive
from pyg_plstm.dag import DAG


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


def node_depths(dag: DAG) -> tuple[Tensor, Tensor]:
    r"""``(depth, height)`` of every node of :obj:`dag`: the number of edges on
    the longest path from a source to the node, and from the node to a sink.

    Read from the DAG's level schedules (an edge's level is the depth of its
    tail, its reversed level the height of its head), so nothing is sorted again.
    """
    src, dst = dag.edge_index
    depth = torch.zeros(dag.num_nodes, dtype=torch.long, device=src.device)
    height = torch.zeros_like(depth)
    depth.scatter_reduce_(0, dst, dag.edge_level + 1, "amax")
    height.scatter_reduce_(0, src, dag.edge_level_rev + 1, "amax")
    return depth, height


class DAGEncoding(torch.nn.Module):
    r"""Learned embeddings of where a node sits in its DAG, for inputs that are
    DAGs as given (computations, circuits, neural architectures):

    .. math::
        \mathrm{PE}(n) = \mathbf{E}^{\downarrow}[\min(\mathrm{depth}_n, L)]
        + \mathbf{E}^{\uparrow}[\min(\mathrm{height}_n, L)],

    with :math:`\mathrm{depth}_n` and :math:`\mathrm{height}_n` the longest
    paths from a source to :math:`n` and from :math:`n` to a sink
    (:func:`node_depths`) and :math:`L` = :obj:`max_depth` (deeper nodes share
    the last row). The pLSTM operator sums over paths with normalised gates,
    so a node's output does not tell how many steps lie behind or ahead of it;
    where a node's meaning depends on that (the layer index of an operation
    in a network), the encoding supplies it. The rows are learned rather than
    sinusoids as in :class:`DegreeEncoding`; the user guide's page on
    architectures gives the measurement behind that choice.

    Args:
        channels (int): Size of the encoding.
        max_depth (int, optional): The largest depth and height with a row
            of their own. (default: :obj:`64`)
    """

    def __init__(self, channels: int, max_depth: int = 64) -> None:
        super().__init__()
        check_positive(channels=channels, max_depth=max_depth)
        self.channels = channels
        self.max_depth = max_depth
        self.depth = Embedding(max_depth + 1, channels)
        self.height = Embedding(max_depth + 1, channels)

    def reset_parameters(self) -> None:
        self.depth.reset_parameters()
        self.height.reset_parameters()

    def forward(self, dag: DAG) -> Tensor:
        """Encodes every node of ``dag``, ``[num_nodes, channels]``."""
        depth, height = node_depths(dag)
        return self.depth(depth.clamp(max=self.max_depth)) + self.height(height.clamp(max=self.max_depth))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.channels}, max_depth={self.max_depth})"
