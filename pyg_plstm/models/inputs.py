r"""What a graph-level model reads from a (batched) PyG data object, validated."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor

from pyg_plstm.checks import check_device
from pyg_plstm.nn.scaler import Standardize

__all__ = ["GraphInputs", "graph_edge_attr", "graph_inputs", "with_molecule_features"]

# Applying ToDAG() to a Batch keeps its `batch` vector but returns a plain DAGData, which
# has no `num_graphs`; that is the usual way to get here with a batch vector and no count.
_BATCHED_BEFORE_PREPARATION = (
    "the graph has a `batch` vector but no `num_graphs`, so it is not a torch_geometric Batch; was "
    "pyg_plstm.ToDAG() applied after batching? Prepare every graph on its own (e.g. ToDAG() as the "
    "data set's pre_transform) and batch the prepared graphs (DataLoader or Batch.from_data_list)"
)


class GraphInputs(NamedTuple):
    """Node features, edges and graph assignment of a (batched) graph."""

    x: Tensor
    edge_index: Tensor
    batch: Tensor
    num_graphs: int


# The checks read values (id ranges, counts): eager under torch.compile, one graph break.
@torch.compiler.disable
def graph_inputs(data: Any) -> GraphInputs:
    r"""The node features ``x``, ``edge_index``, graph id per node ``batch`` and
    ``num_graphs`` of a :class:`~torch_geometric.data.Data` (one graph, ``batch``
    all zeros) or :class:`~torch_geometric.data.Batch`.

    Raises a :class:`ValueError` naming the problem when ``x`` or ``edge_index``
    is missing or malformed, when ``batch`` is not an integer vector with one
    entry per node, when its graph ids fall outside ``[0, num_graphs)`` or leave
    a graph without nodes that the batch's ``ptr`` does not declare empty, and
    when a batch vector comes without ``num_graphs`` (a batch prepared by
    :class:`~pyg_plstm.ToDAG` after batching).
    """
    x = getattr(data, "x", None)
    if x is None:
        raise ValueError("the graph has no node features `x` (add some, e.g. with T.OneHotDegree or T.Constant)")
    if not isinstance(x, Tensor) or x.dim() == 0:
        raise ValueError(f"node features `x` must be a tensor with one row per node, got {_describe(x)}")
    num_nodes = x.size(0)
    edge_index = _checked_edge_index(getattr(data, "edge_index", None), num_nodes, x.device)
    batch = getattr(data, "batch", None)
    if batch is None:
        return GraphInputs(x, edge_index, torch.zeros(num_nodes, dtype=torch.long, device=x.device), 1)
    if not isinstance(batch, Tensor) or not _is_integer(batch) or batch.shape != (num_nodes,):
        raise ValueError(f"`batch` must be an integer tensor of shape [{num_nodes}] (one graph id per node), "
                         f"got {_describe(batch)}")
    if batch.device != x.device:
        raise ValueError(f"`batch` is on {batch.device} but the node features `x` are on {x.device}")
    num_graphs = getattr(data, "num_graphs", None)
    if num_graphs is None:
        raise ValueError(_BATCHED_BEFORE_PREPARATION)
    num_graphs = int(num_graphs)
    if num_nodes:
        low, high = (int(v) for v in torch.aminmax(batch))
        if low < 0 or high >= num_graphs:
            raise ValueError(f"graph ids in `batch` must lie in [0, {num_graphs}) for a batch of {num_graphs} "
                             f"graph(s), got ids from {low} to {high}")
    counts = torch.bincount(batch, minlength=num_graphs)
    ptr = getattr(data, "ptr", None)
    if ptr is not None:
        if not torch.equal(counts, ptr.diff().to(counts)):
            raise ValueError(f"graph ids in `batch` disagree with the batch's `ptr`: nodes per graph "
                             f"{counts.tolist()} in `batch`, {ptr.diff().tolist()} in `ptr`")
    elif (counts == 0).any():
        missing = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"graph ids in `batch` have a gap: no node belongs to graph(s) {missing} of "
                         f"0..{num_graphs - 1}")
    return GraphInputs(x, edge_index, batch, num_graphs)


def graph_edge_attr(data: Any) -> Tensor:
    """``data.edge_attr``, for a model built with an edge encoder."""
    edge_attr = getattr(data, "edge_attr", None)
    if edge_attr is None:
        raise ValueError("the model was built with an edge encoder but the graph has no `edge_attr`")
    if not isinstance(edge_attr, Tensor):
        raise ValueError(f"`edge_attr` must be a tensor with one row per edge, got {_describe(edge_attr)}")
    check_device("x", data.x.device, edge_attr=edge_attr)
    return edge_attr


def _checked_edge_index(edge_index: Any, num_nodes: int, device: torch.device) -> Tensor:
    if edge_index is None:
        raise ValueError("the graph has no `edge_index`")
    if not isinstance(edge_index, Tensor) or not _is_integer(edge_index) or edge_index.dim() != 2 \
            or edge_index.size(0) != 2:
        raise ValueError(f"`edge_index` must be an integer tensor of shape [2, num_edges], got {_describe(edge_index)}")
    if edge_index.device != device:
        raise ValueError(f"`edge_index` is on {edge_index.device} but the node features `x` are on {device}")
    if edge_index.numel():
        low, high = (int(v) for v in torch.aminmax(edge_index))
        if low < 0 or high >= num_nodes:
            raise ValueError(f"`edge_index` refers to node {low if low < 0 else high} but the graph has "
                             f"{num_nodes} nodes (indices must lie in [0, {num_nodes}))")
    return edge_index


def _is_integer(tensor: Tensor) -> bool:
    return not (tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool)


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"{value.dtype} of shape {list(value.shape)}"
    return type(value).__name__


def with_molecule_features(pooled: Tensor, data: Any, scaler: Optional[Standardize]) -> Tensor:
    r"""The pooled graph embeddings ``[num_graphs, C]`` followed by the graphs' ``molecule_features``
    (``[num_graphs, D]``) standardised by ``scaler``; ``pooled`` itself for a model without molecule features
    (``scaler=None``). Raises a :class:`ValueError` when the graphs lack the features or carry another number."""
    if scaler is None:
        return pooled
    features = getattr(data, "molecule_features", None)
    if features is None:
        raise ValueError(f"the model was trained with {scaler.num_features} molecule-level features per graph, "
                         "but the graphs carry no `molecule_features`; compute them as in training (e.g. "
                         "pyg-plstm predict does so from the SMILES)")
    expected = (pooled.size(0), scaler.num_features)
    if not isinstance(features, Tensor) or tuple(features.shape) != expected:
        raise ValueError(f"`molecule_features` must have shape {list(expected)} (graphs x the model's molecule "
                         f"features), got {_describe(features)}")
    check_device("x", pooled.device, molecule_features=features)
    return torch.cat([pooled, scaler(features).to(pooled.dtype)], dim=-1)
