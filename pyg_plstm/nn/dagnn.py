r"""The DAGNN layer (Thost & Chen, ICLR 2021): nodes in topological order, attention over the
predecessors' states of the same layer, a GRU update."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import GRUCell, Linear, Module
from torch_geometric.utils import scatter, softmax

from pyg_plstm.checks import check_positive
from pyg_plstm.dag import DAG, node_depth
from pyg_plstm.ops.structures import LevelSchedule, sort_levels

__all__ = ["DAGNNConv", "node_schedule"]


def node_schedule(dag: DAG) -> LevelSchedule:
    r"""The DAG's nodes sorted by topological level (longest path from a source), and its edges by the
    level of their target: the level schedule of the scan with nodes as states and edges as links
    (cached on the DAG view)."""
    def build() -> LevelSchedule:
        src, dst = dag.edge_index
        level = torch.zeros(dag.num_nodes, dtype=torch.long, device=dst.device)
        # An edge's level is its source's depth, so a node's depth is one more than its deepest in-edge's.
        level.scatter_reduce_(0, dst, dag.edge_level.long() + 1, "amax")
        return sort_levels(dag.edge_index, level)

    return dag.memo("node_schedule", build)


class DAGNNConv(Module):
    r"""One DAGNN layer in one direction of the DAG (Thost & Chen, "Directed Acyclic Graph Neural
    Networks", ICLR 2021).

    Nodes are taken in topological order; node :math:`v` attends over its
    predecessors' states of this layer and updates with a GRU whose input is
    its state :math:`\mathbf{x}_v` from the layer below:

    .. math::
        \alpha_{uv} &= \mathrm{softmax}_{u \in \mathcal{P}(v)}\big(
        \mathbf{w}^{\top}(\mathbf{h}_u + \mathbf{e}_{uv})\big),
        \qquad \mathbf{m}_v = \sum_{u \in \mathcal{P}(v)} \alpha_{uv}\, \mathbf{h}_u

        \mathbf{h}_v &= \mathrm{GRU}(\mathbf{x}_v, \mathbf{m}_v)

    with :math:`\mathbf{m}_v = 0` for sources and :math:`\mathbf{e}_{uv}`
    the (optional) edge features. The authors score
    :math:`\mathbf{w}^{\top}[\mathbf{x}_v \Vert \mathbf{h}_u + \mathbf{e}_{uv}] + b`; its
    :math:`\mathbf{x}_v` part and bias are the same for all predecessors of
    :math:`v`, so the softmax cancels them and they are left out here. :meth:`forward` computes one topological
    level per step, batched over its nodes (:func:`node_schedule`);
    :meth:`reference` is the obviously-correct loop, one node at a time.

    Args:
        in_channels (int): Size of :math:`\mathbf{x}`.
        out_channels (int): Size of :math:`\mathbf{h}` (and of the edge features).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        check_positive(in_channels=in_channels, out_channels=out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.score = Linear(out_channels, 1, bias=False)
        self.gru = GRUCell(in_channels, out_channels)

    def reset_parameters(self) -> None:
        self.score.reset_parameters()
        self.gru.reset_parameters()

    def forward(self, x: Tensor, dag: DAG, edge_attr: Optional[Tensor] = None) -> Tensor:
        r"""States ``[N, out_channels]`` of the nodes of ``dag`` (with edges as given: pass
        ``dag.reverse()`` for the reversed pass) from ``x`` ``[N, in_channels]``; ``edge_attr``
        ``[E, out_channels]`` follows ``dag.edge_index``."""
        schedule = node_schedule(dag)
        inputs = x[schedule.edge_perm]  # level order
        edge_score = None if edge_attr is None else self.score(edge_attr)[schedule.line_perm]
        blocks = [self.gru(inputs[:schedule.edge_ptr[1]], None)] if dag.num_nodes else []
        for level in range(1, schedule.num_levels):
            start, end = schedule.edge_ptr[level], schedule.edge_ptr[level + 1]
            lines = slice(schedule.fwd_ptr[level], schedule.fwd_ptr[level + 1])
            done = torch.cat(blocks)
            source, target = done[schedule.line_src[lines]], schedule.line_dst[lines] - start
            score = self.score(source)
            if edge_score is not None:
                score = score + edge_score[lines]
            weight = softmax(score, target, num_nodes=end - start)
            message = scatter(weight * source, target, 0, dim_size=end - start, reduce="sum")
            blocks.append(self.gru(inputs[start:end], message))
        if not blocks:
            return x.new_zeros(0, self.out_channels)
        return torch.cat(blocks)[schedule.edge_pos]

    def reference(self, x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor] = None) -> Tensor:
        r""":meth:`forward` one node at a time, in topological order (slow; for tests)."""
        num_nodes = x.size(0)
        depth = node_depth(edge_index, num_nodes)
        order = sorted(range(num_nodes), key=lambda n: depth[n])
        states: dict[int, Tensor] = {}
        for v in order:
            edges = [e for e in range(edge_index.size(1)) if int(edge_index[1, e]) == v]
            message = x.new_zeros(self.out_channels)
            if edges:
                keys = [states[int(edge_index[0, e])] + (0 if edge_attr is None else edge_attr[e]) for e in edges]
                scores = torch.stack([self.score(k) for k in keys]).view(-1)
                weights = torch.softmax(scores, 0)
                message = sum(w * states[int(edge_index[0, e])] for w, e in zip(weights, edges))
            states[v] = self.gru(x[v].unsqueeze(0), message.unsqueeze(0)).squeeze(0)
        return torch.stack([states[v] for v in range(num_nodes)]) if num_nodes else x.new_zeros(0, self.out_channels)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels})"
