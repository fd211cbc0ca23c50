r"""Preparing graphs for pLSTM: :func:`prepare_dag`, the :class:`ToDAG` transform,
:class:`DAGData` and :func:`get_dag`.

Everything the operator needs about the structure is computed here once per
graph (in a transform or during dataset processing), never in a forward pass.
"""
from __future__ import annotations

import copy
import operator
from bisect import bisect_left
from dataclasses import dataclass
from itertools import compress
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.transforms import BaseTransform

from pyg_plstm.checks import check_choice, check_device
from pyg_plstm.dag.graph import (
    check_directed,
    cycle_error,
    line_graph,
    node_rank,
    orient_arrays,
    peel_depth,
    validated_edges,
)
from pyg_plstm.dag.multitree import PRUNE_ORDERS, multitree_mask, select_parents
from pyg_plstm.dag.structure import DAG, check_batch

__all__ = ["DAGCollater", "DAGData", "DAGLoader", "RandomPruning", "ToDAG", "get_dag", "prepare_dag",
           "pruned_in_order", "repruned"]

# The DAG a DAGCollater built for a batch travels in the batch object's __dict__, outside PyG's
# storage, so that batching, separating and moving the batch's tensors leave it alone.
_COLLATED_DAG = "_pyg_plstm_dag"

_STRUCTURE_KEYS = ("dag_edge_index", "dag_input_edge", "line_index", "edge_level", "edge_level_rev",
                   "multitree_mask")


@dataclass
class PreparedUnion:
    """Prepared structure of a disjoint union of graphs, as NumPy arrays."""

    edge_index: np.ndarray
    kept: np.ndarray
    line_index: np.ndarray
    edge_level: np.ndarray
    edge_level_rev: np.ndarray
    multitree_mask: np.ndarray


def prepare_union(
    ei: np.ndarray, num_nodes: int, rank: np.ndarray, directed: Optional[bool],
    node_graph: Optional[np.ndarray] = None, name_node: Callable[[int], str] = lambda node: f"node {node}",
) -> PreparedUnion:
    """Everything :class:`DAG` holds, for graphs that are already validated.

    ``name_node(node)`` names a node in error messages (e.g. with the graph
    of a union it belongs to).
    """
    dag, kept = orient_arrays(ei, num_nodes, rank, directed, node_graph)
    depth = peel_depth(dag, num_nodes)
    if (depth < 0).any():
        raise cycle_error(dag, depth, name_node)
    return _prepared(dag, kept, num_nodes, rank, depth, node_graph)


def prepare_numbered_graph(ei: np.ndarray, num_nodes: int) -> dict[str, Tensor]:
    """The structure attributes of one undirected simple graph whose nodes
    are numbered in the orientation order, without the general orientation
    pass: equal to :func:`split_union` of
    ``prepare_union(ei, num_nodes, arange(num_nodes), False)``, computed by
    plain Python passes over the edges (for molecules, a few dozen edges,
    several times faster than NumPy's per-call costs).

    ``ei`` must hold both directions of every edge, sorted by ``(src, dst)``,
    no self-loops, no duplicates (molecules renumbered by their canonical
    ranks). The DAG is then the forward columns (``src < dst``) in their
    order, acyclic by construction and sorted by source, so every node's
    in-edges precede its out-edges: one pass in edge order gives the
    longest-path depths, one in reverse order the heights, and the node
    order is a topological order for the pruning.
    """
    src_all, dst_all = ei.tolist()
    forward = list(map(operator.lt, src_all, dst_all))
    kept = list(compress(range(len(forward)), forward))
    src = list(compress(src_all, forward))
    dst = list(compress(dst_all, forward))
    depth = [0] * num_nodes
    for s, d in zip(src, dst):
        if depth[d] <= depth[s]:
            depth[d] = depth[s] + 1
    height = [0] * num_nodes
    for s, d in zip(reversed(src), reversed(dst)):
        if height[s] <= height[d]:
            height[s] = height[d] + 1
    out_ptr = [bisect_left(src, v) for v in range(num_nodes + 1)]
    line_in: list[int] = []
    line_out: list[int] = []
    in_edges: list[list[int]] = [[] for _ in range(num_nodes)]
    for e, d in enumerate(dst):
        following = range(out_ptr[d], out_ptr[d + 1])
        line_in += [e] * len(following)
        line_out += following
        in_edges[d].append(e)
    # select_parents with ranks = node index: deepest source first, then the lower source (the stable sort
    # keeps the ascending sources); bitsets of line-graph ancestors over the edge ids. A node's first
    # in-edge is always kept.
    ancestors = [0] * num_nodes
    selected = [True] * len(src)
    for u, edges in enumerate(in_edges):
        if len(edges) == 1:
            e = edges[0]
            ancestors[u] = ancestors[src[e]] | (1 << e)
        elif edges:
            edges.sort(key=lambda e: -depth[src[e]])
            acc = 0
            for e in edges:
                anc = ancestors[src[e]] | (1 << e)
                if acc & anc:
                    selected[e] = False
                else:
                    acc |= anc
            ancestors[u] = acc

    def index_array(values: list) -> Tensor:
        return torch.from_numpy(np.array(values, dtype=np.int64))

    return {
        "dag_edge_index": index_array([src, dst]),
        "dag_input_edge": index_array(kept),
        "line_index": index_array([line_in, line_out]),
        "edge_level": index_array(list(map(depth.__getitem__, src))),
        "edge_level_rev": index_array(list(map(height.__getitem__, dst))),
        "multitree_mask": torch.from_numpy(np.array(list(map(selected.__getitem__, line_in)), dtype=bool)),
    }


def _prepared(dag: np.ndarray, kept: np.ndarray, num_nodes: int, rank: np.ndarray, depth: np.ndarray,
              node_graph: Optional[np.ndarray]) -> PreparedUnion:
    height = peel_depth(dag[::-1].copy(), num_nodes)
    line = line_graph(dag, num_nodes).numpy()
    src = dag[0]
    if node_graph is None:
        bit = np.arange(src.size)
    else:
        # Ancestor bitsets never mix graphs, so number edges from 0 within each graph.
        first = np.searchsorted(node_graph[src], node_graph[src], side="left")
        bit = np.arange(src.size) - first
    selected = select_parents(dag, num_nodes, rank, depth, bit)
    return PreparedUnion(dag, kept, line, depth[dag[0]], height[dag[1]], selected[line[0]])


def split_union(prep: PreparedUnion, node_graph: np.ndarray, node_offset: np.ndarray,
                edge_offset: np.ndarray) -> list[dict[str, Tensor]]:
    """The structure attributes of every graph of a prepared union, numbered
    within the graph (``node_offset``/``edge_offset``: the first node and
    input edge of every graph, plus the totals). Every tensor owns its memory."""
    num_graphs = node_offset.size - 1
    dag_graph = node_graph[prep.edge_index[0]]
    dag_ptr = np.searchsorted(dag_graph, np.arange(num_graphs + 1)).tolist()
    line_ptr = np.searchsorted(dag_graph[prep.line_index[0]], np.arange(num_graphs + 1)).tolist()
    out = []
    for g in range(num_graphs):
        e0, e1, l0, l1 = dag_ptr[g], dag_ptr[g + 1], line_ptr[g], line_ptr[g + 1]
        out.append({
            "dag_edge_index": torch.from_numpy(prep.edge_index[:, e0:e1] - node_offset[g]),
            "dag_input_edge": torch.from_numpy(prep.kept[e0:e1] - edge_offset[g]),
            "line_index": torch.from_numpy(prep.line_index[:, l0:l1] - e0),
            "edge_level": torch.from_numpy(prep.edge_level[e0:e1].copy()),
            "edge_level_rev": torch.from_numpy(prep.edge_level_rev[e0:e1].copy()),
            "multitree_mask": torch.from_numpy(prep.multitree_mask[l0:l1].copy()),
        })
    return out


def prepare_dag(
    edge_index: Tensor,
    num_nodes: int,
    order: Optional[Tensor] = None,
    directed: Optional[bool] = None,
    batch: Optional[Tensor] = None,
    num_graphs: Optional[int] = None,
) -> DAG:
    """Orientation (see :func:`~pyg_plstm.dag.orient`), line graph, levels in
    both directions and multitree mask of one graph or a disjoint union of
    graphs (``batch``), in one go.

    ``directed=None`` detects undirected input per graph of ``batch``, as
    :class:`ToDAG` does. The returned DAG's ``input_edge`` maps every DAG edge
    to its column in ``edge_index``, so ``edge_attr[dag.input_edge]`` are the
    features of the DAG edges.
    """
    if not isinstance(edge_index, Tensor):
        raise ValueError(f"`edge_index` must be a tensor of shape [2, num_edges], got {type(edge_index).__name__}")
    check_directed(directed)
    ei = validated_edges(edge_index, num_nodes, None)
    batch, num_graphs = check_batch(batch, num_nodes, num_graphs, edge_index.device)
    node_graph = None if batch is None else batch.detach().cpu().numpy().astype(np.int64)
    prep = prepare_union(ei, num_nodes, node_rank(order, num_nodes), directed, node_graph)
    device = edge_index.device

    def as_tensor(array: np.ndarray) -> Tensor:
        return torch.from_numpy(array).to(device)

    return DAG(
        as_tensor(prep.edge_index), as_tensor(prep.line_index), num_nodes,
        edge_level=as_tensor(prep.edge_level), edge_level_rev=as_tensor(prep.edge_level_rev),
        multitree_mask=as_tensor(prep.multitree_mask), input_edge=as_tensor(prep.kept),
        batch=batch, num_graphs=num_graphs, input_edge_index=edge_index)


def pruned_in_order(dag: DAG, prune_order: str) -> DAG:
    """``dag`` with its D-mode multitree chosen by ``prune_order`` (see
    :func:`~pyg_plstm.dag.multitree_mask`).

    ``"deepest"`` is the pruning a DAG is prepared with: ``dag`` itself is
    returned. Another order is computed from the structure on first use
    (:func:`repruned`), so data prepared once serves every order.
    """
    check_choice("prune_order", prune_order, PRUNE_ORDERS)
    return dag if prune_order == "deepest" else repruned(dag, prune_order)


def repruned(dag: DAG, prune_order: str = "deepest") -> DAG:
    """``dag`` with its multitree recomputed from its own edges, in its own
    direction (ties broken by node index, i.e. the node order the DAG was
    oriented by when nodes are numbered by it).

    For a reversed view, :meth:`~pyg_plstm.DAG.reverse` keeps the forward
    pruning; ``repruned(dag.reverse())`` prunes the reversed DAG as if it had
    been prepared that way. Cached on ``dag``, so the layers that share it
    share the pruning and its schedules.
    """
    check_choice("prune_order", prune_order, PRUNE_ORDERS)

    def build() -> DAG:
        mask = multitree_mask(dag.edge_index, dag.line_index, dag.num_nodes, prune_order=prune_order)
        return DAG(dag.edge_index, dag.line_index, dag.num_nodes, edge_level=dag.edge_level,
                   edge_level_rev=dag.edge_level_rev, multitree_mask=mask.to(dag.edge_index.device),
                   input_edge=dag.input_edge, batch=dag.batch, num_graphs=dag.num_graphs,
                   input_edge_index=dag.input_edge_index)
    return dag.memo(("repruned", prune_order), build)


class RandomPruning(BaseTransform):
    r"""Draw the D-mode multitree of a prepared graph afresh on every call
    (functional name: ``random_pruning``): a data augmentation.

    The pruning keeps, at every node, the in-edges whose ancestries are
    disjoint, trying the deepest first; ties are broken by a random node
    ranking drawn from ``generator`` (torch's global generator by default, so
    a seeded run is reproducible) instead of the node order. As a data set's
    ``transform`` it gives D-mode layers another multitree every epoch, so no
    path of the DAG is always cut. The input graph is not modified.
    """

    def __init__(self, generator: Optional[torch.Generator] = None) -> None:
        self.generator = generator

    def forward(self, data: Data) -> Data:
        missing = [k for k in ("dag_edge_index", "line_index") if getattr(data, k, None) is None]
        if missing:
            raise ValueError(f"RandomPruning needs a prepared graph (missing {', '.join(missing)}); apply "
                             "pyg_plstm.ToDAG() first")
        out = copy.copy(data)
        rank = torch.randperm(data.num_nodes, generator=self.generator)
        out.multitree_mask = multitree_mask(data.dag_edge_index, data.line_index, data.num_nodes, order=rank)
        return out


class DAGData(Data):
    r"""A :class:`~torch_geometric.data.Data` carrying a prepared DAG.

    Besides the usual attributes it holds ``dag_edge_index``,
    ``dag_input_edge`` (the ``edge_index`` column each DAG edge came from),
    ``line_index``, ``edge_level``, ``edge_level_rev`` and ``multitree_mask``.
    When batched, ``line_index`` is shifted by the number of DAG edges of the
    preceding graphs, ``dag_input_edge`` by their number of input edges, and
    levels are concatenated unchanged, so level ``l`` of the batch is level
    ``l`` of every graph in it.
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "line_index":
            return self.dag_edge_index.size(1)
        if key == "dag_input_edge":
            return self.edge_index.size(1)
        if key in ("edge_level", "edge_level_rev", "multitree_mask"):
            return 0
        return super().__inc__(key, value, *args, **kwargs)

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> "DAGData":
        r"""The graph with the attributes of ``mapping``, in its order (``None`` values dropped).

        Equal to ``DAGData(**mapping)`` when ``mapping`` lists ``x``,
        ``edge_index``, ``edge_attr`` and ``y`` first (the keyword arguments
        ``Data`` sets first), and several times faster for a small graph:
        ``Data`` stores keyword arguments one by one, each through attribute
        hooks that look for cached values to invalidate (a failed look-up, a
        few microseconds per attribute), and a new graph has none.
        """
        data = cls()
        data._store._mapping.update((key, value) for key, value in mapping.items() if value is not None)
        return data


# Host work (checks with data-dependent answers): eager under torch.compile, a graph break.
@torch.compiler.disable
def get_dag(data: Data) -> DAG:
    """The :class:`~pyg_plstm.DAG` of a prepared (possibly batched) :class:`DAGData`,
    with its ``batch`` vector and number of graphs: the one :class:`DAGCollater`
    built for the batch (with everything cached on it) while the batch stays
    on the device it was built on, else a new one."""
    if not isinstance(data, Data):
        raise ValueError(f"get_dag needs a prepared torch_geometric Data/Batch, got {type(data).__name__}")
    missing = [k for k in _STRUCTURE_KEYS if getattr(data, k, None) is None]
    if missing:
        raise ValueError(
            f"the graph has no prepared DAG (missing {', '.join(missing)}); apply "
            "pyg_plstm.ToDAG() as a (pre_)transform first"
        )
    edge_index = getattr(data, "edge_index", None)
    if isinstance(edge_index, Tensor):
        check_device("edge_index", edge_index.device, **{key: data[key] for key in _STRUCTURE_KEYS})
    collated = data.__dict__.get(_COLLATED_DAG)
    if collated is not None and collated.edge_index.device == data.dag_edge_index.device:
        return collated
    batch = getattr(data, "batch", None)
    num_graphs = None
    if isinstance(data, Batch):
        num_graphs = data.num_graphs
    elif batch is not None and getattr(data, "ptr", None) is not None:
        # A Batch prepared as a whole (ToDAG after batching) keeps `batch` and `ptr` as plain attributes.
        num_graphs = data.ptr.numel() - 1
    return DAG(
        data.dag_edge_index, data.line_index, data.num_nodes,
        edge_level=data.edge_level, edge_level_rev=data.edge_level_rev, multitree_mask=data.multitree_mask,
        input_edge=data.dag_input_edge, batch=batch, num_graphs=num_graphs,
        input_edge_index=edge_index)


class DAGCollater:
    r"""``collate_fn`` of a :class:`torch.utils.data.DataLoader` over prepared
    graphs: batches them as PyG's loader does and builds the batch's
    :class:`~pyg_plstm.DAG` there, in the loader's worker processes when
    ``num_workers > 0``.

    ``prepare(dag)`` (e.g. :meth:`PLSTMNet.prepare_structure
    <pyg_plstm.models.PLSTMNet.prepare_structure>`) builds whatever a model
    derives from the structure (views, checks, schedules), cached on the DAG;
    :func:`get_dag` of the batch returns that DAG, so the model's forward pass
    does no host-side structure work. Moving the batch to another device
    leaves the DAG behind: :func:`get_dag` then builds a new one there.
    """

    def __init__(self, prepare: Optional[Callable[[DAG], Any]] = None) -> None:
        if prepare is not None and not callable(prepare):
            raise ValueError(f"`prepare` must be callable (it receives the batch's DAG), got {type(prepare).__name__}")
        self.prepare = prepare

    def __call__(self, data_list: Sequence[Data]) -> Batch:
        batch = Batch.from_data_list(data_list)
        dag = get_dag(batch)
        if self.prepare is not None:
            self.prepare(dag)
        batch.__dict__[_COLLATED_DAG] = dag
        return batch


class DAGLoader(torch.utils.data.DataLoader):
    r"""A :class:`torch.utils.data.DataLoader` of prepared graphs whose batches
    carry their DAG, built by :class:`DAGCollater` with ``prepare``; every
    other argument is the DataLoader's."""

    def __init__(self, dataset: Any, *args: Any, prepare: Optional[Callable[[DAG], Any]] = None,
                 **kwargs: Any) -> None:
        if "collate_fn" in kwargs:
            raise ValueError("DAGLoader batches with DAGCollater; pass `prepare` instead of `collate_fn`")
        super().__init__(dataset, *args, collate_fn=DAGCollater(prepare), **kwargs)


class ToDAG(BaseTransform):
    r"""Prepare a graph for pLSTM (functional name: ``to_dag``).

    Orients ``edge_index`` into a DAG (see :func:`orient`) using the node
    ranking in ``data[order_attr]`` when present (node index otherwise) and
    returns a :class:`DAGData` with every attribute of the input plus the
    DAG structure (``dag_edge_index``, ``dag_input_edge``, ``line_index``,
    levels, ``multitree_mask``). The input object is not modified.

    :meth:`prepare_many` prepares a whole list in one vectorised pass (the
    per-level work is shared by all graphs), which is several times faster
    for data sets of small graphs; results are identical to calling the
    transform on each graph.

    Args:
        order_attr: name of the per-node ranking attribute (e.g. canonical
            atom ranks for molecules).
        directed: ``None`` detects undirected input (per graph), ``True``
            keeps edge directions (input must be acyclic), ``False`` orients
            by order.
    """

    def __init__(self, order_attr: str = "order", directed: Optional[bool] = None) -> None:
        check_directed(directed)
        self.order_attr = order_attr
        self.directed = directed

    def forward(self, data: Data) -> DAGData:
        return self._prepare([data], describe_graph=False)[0]

    def prepare_many(self, graphs: Sequence[Data], chunk_size: int = 2048) -> list[DAGData]:
        """:meth:`forward` for every graph of ``graphs``; errors name the graph's position."""
        out: list[DAGData] = []
        for start in range(0, len(graphs), chunk_size):
            out += self._prepare(graphs[start:start + chunk_size], describe_graph=True, offset=start)
        return out

    def _prepare(self, graphs: Sequence[Data], describe_graph: bool, offset: int = 0) -> list[DAGData]:
        where = (lambda g: f"graph {offset + g}: ") if describe_graph else (lambda g: "")
        sizes, index_arrays, ranks, graph_ids = [], [], [], []
        next_graph = 0
        for g, data in enumerate(graphs):
            if getattr(data, "edge_index", None) is None:
                raise ValueError(f"{where(g)}the graph has no `edge_index`")
            n = data.num_nodes
            if n is None:
                raise ValueError(f"{where(g)}cannot infer the number of nodes; set `num_nodes` or `x`")
            try:
                ei = validated_edges(data.edge_index, n, data.edge_attr)
                ranks.append(node_rank(getattr(data, self.order_attr, None), n))
                # A whole Batch keeps its graphs apart: each is detected as directed or not on its own.
                inner, count = check_batch(getattr(data, "batch", None), n, None, data.edge_index.device)
            except ValueError as err:
                raise ValueError(f"{where(g)}{err}") from None
            graph_ids.append(np.full(n, next_graph) if inner is None else inner.cpu().numpy() + next_graph)
            next_graph += count
            sizes.append(n)
            index_arrays.append(ei)
        node_offset = np.zeros(len(graphs) + 1, dtype=np.int64)
        np.cumsum(sizes, out=node_offset[1:])
        total = int(node_offset[-1])
        node_graph = np.repeat(np.arange(len(graphs)), sizes)
        ei = np.concatenate([a + o for a, o in zip(index_arrays, node_offset[:-1])], axis=1) \
            if index_arrays else np.zeros((2, 0), dtype=np.int64)
        # Ranks only ever compare nodes of one graph: offset them to keep each graph's order.
        rank = np.concatenate([r + o for r, o in zip(ranks, node_offset[:-1])]) if ranks else np.zeros(0, np.int64)
        edge_offset = np.zeros(len(graphs) + 1, dtype=np.int64)
        np.cumsum([a.shape[1] for a in index_arrays], out=edge_offset[1:])

        def name_node(node: int) -> str:
            g = int(node_graph[node])
            local = f"node {node - int(node_offset[g])}"
            return f"{local} of graph {offset + g}" if describe_graph else local

        union_graph = np.concatenate(graph_ids) if graph_ids else np.zeros(0, np.int64)
        prep = prepare_union(ei, total, rank, self.directed, union_graph, name_node)
        out = []
        for g, (data, structure) in enumerate(zip(graphs, split_union(prep, node_graph, node_offset, edge_offset))):
            item = DAGData(**data.to_dict())
            item.num_nodes = sizes[g]
            for key, value in structure.items():
                setattr(item, key, value)
            out.append(item)
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(order_attr={self.order_attr!r}, directed={self.directed})"


torch.serialization.add_safe_globals([DAGData])
