r"""The one structure pLSTM runs on: a (batched) DAG, its views and its caches."""
from __future__ import annotations

import copyreg
import io
import math
import pickle
from typing import Any, Callable, Hashable, Optional, TypeVar

import torch
from torch import Tensor

from pyg_plstm.checks import check_device
from pyg_plstm.dag.graph import check_integer_index, check_num_nodes, edge_levels
from pyg_plstm.dag.multitree import multitree_mask

__all__ = ["DAG", "MODES", "check_batch", "edge_checksum"]

MODES = ("P", "D")

T = TypeVar("T")


# Index dtypes every torch gather and scatter accepts (uint8 would even be read as a mask).
_INDEX_DTYPES = (torch.int64, torch.int32)


def _check_index(name: str, value: Any, rows: Optional[int], device: Optional[torch.device]) -> Tensor:
    if not isinstance(value, Tensor) or value.dtype not in _INDEX_DTYPES:
        raise ValueError(f"`{name}` must be an integer tensor, got "
                         f"{getattr(value, 'dtype', type(value).__name__)} (int64 or int32 needed)")
    if rows is not None and (value.dim() != 2 or value.size(0) != rows):
        raise ValueError(f"`{name}` must have shape [{rows}, *], got {list(value.shape)}")
    if device is not None and value.device != device:
        raise ValueError(f"`{name}` is on {value.device} but `edge_index` is on {device}")
    if value.device.type == "meta":
        raise ValueError(f"`{name}` is on the meta device (it has no values); materialise it on a real device")
    return value


# Arithmetic modulo a prime below 2**31: every product of two residues fits in int64, on every device.
_PRIME = 2_147_483_647
_NODE_FACTOR, _POSITION_FACTOR = 1_000_003, 48_271


def edge_checksum(edge_index: Tensor) -> int:
    """An order-sensitive checksum of an ``[2, E]`` edge list: one pass over it, equal for equal
    edge lists on any device, and different (but for a ~1e-9 chance) when an edge or its position differs."""
    src, dst = edge_index.long()
    position = torch.arange(1, src.numel() + 1, device=src.device) % _PRIME
    edge = (src % _PRIME * _NODE_FACTOR + dst % _PRIME) % _PRIME
    weight = position * _POSITION_FACTOR % _PRIME + 1
    return int((edge * weight % _PRIME).sum() % _PRIME)


def check_batch(batch: Optional[Tensor], num_nodes: int, num_graphs: Optional[int],
                device: torch.device) -> tuple[Optional[Tensor], int]:
    """``batch`` and the number of graphs, after checking that ``batch`` is an
    integer tensor with one sorted, non-negative graph id per node (as in a PyG
    ``Batch``) below ``num_graphs``; ``num_graphs`` defaults to ``batch.max() + 1``."""
    if num_graphs is not None and (isinstance(num_graphs, bool) or not isinstance(num_graphs, int)
                                   or num_graphs < 0):
        raise ValueError(f"`num_graphs` must be a non-negative int, got {num_graphs!r}")
    if batch is None:
        return None, 1 if num_graphs is None else num_graphs
    if not isinstance(batch, Tensor) or batch.dtype not in _INDEX_DTYPES:
        raise ValueError(f"`batch` must be an integer tensor of graph ids, got "
                         f"{getattr(batch, 'dtype', type(batch).__name__)} (int64 or int32 needed)")
    if batch.shape != (num_nodes,):
        raise ValueError(f"`batch` must have shape [{num_nodes}] (one graph id per node), got {list(batch.shape)}")
    if batch.device != device:
        raise ValueError(f"`batch` is on {batch.device} but `edge_index` is on {device}")
    if not num_nodes:
        return batch, 0 if num_graphs is None else num_graphs
    first, last = int(batch[0]), int(batch[-1])
    if first < 0:
        raise ValueError(f"`batch` holds a negative graph id ({first})")
    drops = batch[1:] < batch[:-1]
    if bool(drops.any()):
        i = int(drops.nonzero()[0]) + 1
        raise ValueError(
            f"the nodes of each graph must be contiguous and graphs in order (as in a PyG Batch), but "
            f"`batch` goes from {int(batch[i - 1])} to {int(batch[i])} at node {i}")
    if num_graphs is None:
        return batch, last + 1
    if last >= num_graphs:
        raise ValueError(f"`batch` holds graph id {last} but the batch has only {num_graphs} graphs")
    return batch, num_graphs


class DAG:
    r"""A (batched) DAG prepared for pLSTM, and everything derived from it.

    It holds the structure of the operator

    .. math::
        C_e = \sum_{(e', e) \in \mathcal{L}} T_{e'e}\, C_{e'} + S_e\, k_u v_u^\top,
        \qquad
        y_n = \sum_{e:\, \mathrm{dst}(e) = n} M_e\, C_e^\top q_n + D_n (q_n^\top k_n)\, v_n:

    the DAG edges :math:`e = (u \to w)`, the line graph :math:`\mathcal{L}`
    (pairs of edges that meet at a node), the topological level of every edge
    in both directions, the D-mode multitree pruning, the graph of every node
    of a mini-batch and the input edge every DAG edge came from. Whatever an
    operator form or a layer derives from the structure (level schedules,
    padding layouts, validation) is cached on the DAG by :meth:`memo`, and
    the views (:meth:`reverse`, :meth:`multitree`, :meth:`view`) are cached
    too, so a model builds one DAG per forward pass with :func:`get_dag` and
    all its layers share the work.

    A pickled DAG (e.g. sent by a data loader's worker process) keeps its
    views and caches, packed into one buffer per dtype.

    Users rarely build one by hand: :func:`~pyg_plstm.get_dag` reads it from
    a batch prepared by :class:`~pyg_plstm.ToDAG`, and
    :func:`~pyg_plstm.prepare_dag` builds it from an ``edge_index``. Levels and
    the multitree mask, when not given, are computed on first use.

    Args:
        edge_index: ``[2, E]`` DAG edges ``src -> dst``.
        line_index: ``[2, L]`` line-graph edges ``(e_in, e_out)`` with
            ``dst(e_in) == src(e_out)``.
        num_nodes: number of nodes ``N``.
        edge_level: ``[E]`` topological level of each edge (longest path to its source).
        edge_level_rev: ``[E]`` level of each edge in the reversed DAG.
        multitree_mask: ``[L]`` line edges kept in D-mode (in both directions).
        input_edge: ``[E]`` for every DAG edge, the column of the input
            ``edge_index`` it was made from (``edge_attr`` rows follow it).
        batch: ``[N]`` graph id of every node, sorted (PyG's ``batch``
            vector); ``None`` for a single graph.
        num_graphs: number of graphs (``batch.max() + 1`` when omitted; more
            when a batch ends with graphs without nodes).
        input_edge_index: the input ``edge_index`` the DAG was prepared from
            (:func:`~pyg_plstm.get_dag` and :func:`~pyg_plstm.prepare_dag` record
            it), so that :meth:`check_input` can tell whether an ``edge_index``
            a layer gets belongs to this DAG.
    """

    def __init__(
        self,
        edge_index: Tensor,
        line_index: Tensor,
        num_nodes: int,
        *,
        edge_level: Optional[Tensor] = None,
        edge_level_rev: Optional[Tensor] = None,
        multitree_mask: Optional[Tensor] = None,
        input_edge: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        num_graphs: Optional[int] = None,
        input_edge_index: Optional[Tensor] = None,
    ) -> None:
        self.edge_index = _check_index("edge_index", edge_index, 2, None)
        device = edge_index.device
        self.line_index = _check_index("line_index", line_index, 2, device)
        self.num_nodes = check_num_nodes(num_nodes)
        per_edge = {"edge_level": edge_level, "edge_level_rev": edge_level_rev, "input_edge": input_edge}
        for name, value in per_edge.items():
            if value is not None and _check_index(name, value, None, device).shape != (self.num_edges,):
                raise ValueError(f"`{name}` must have shape [{self.num_edges}] (one entry per DAG edge), "
                                 f"got {list(value.shape)}")
        if multitree_mask is not None and (
                not isinstance(multitree_mask, Tensor) or multitree_mask.dtype != torch.bool
                or multitree_mask.shape != (self.num_line_edges,)):
            raise ValueError(f"`multitree_mask` must be a bool tensor of shape [{self.num_line_edges}], got "
                             f"{getattr(multitree_mask, 'dtype', type(multitree_mask).__name__)} "
                             f"{list(getattr(multitree_mask, 'shape', []))}")
        check_device("edge_index", device, multitree_mask=multitree_mask)
        self._edge_level = edge_level
        self._edge_level_rev = edge_level_rev
        self._multitree_mask = multitree_mask
        self.input_edge = input_edge
        self._batch, self.num_graphs = check_batch(batch, self.num_nodes, num_graphs, device)
        if input_edge_index is not None:
            _check_index("input_edge_index", input_edge_index, 2, device)
        self.input_edge_index = input_edge_index
        # An in-place change of the recorded input after preparation makes the DAG stale.
        self._input_version = None if input_edge_index is None else input_edge_index._version
        self._memo: dict[Hashable, Any] = {}
        # What depends on the nodes and the batch only is shared by every view.
        self._node_memo: dict[Hashable, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        # A tensor's version counter does not travel with it (a data loader's worker process pickles batches
        # with their DAG): send whether the recorded input was already modified instead.
        state["_input_version"] = None if self.input_edge_index is None else self._input_modified()
        return state

    def __reduce__(self) -> tuple[Callable[..., "DAG"], tuple[Any, ...]]:
        # A data loader's worker process sends each tensor of a batch through its own shared-memory file
        # (about half a millisecond each), and a prepared DAG caches dozens of small index tensors (its views,
        # schedules and reachable pairs): they travel packed into one buffer per dtype instead.
        if self.edge_index.device.type != "cpu":
            return copyreg.__newobj__, (type(self),), self.__getstate__()  # type: ignore[return-value]
        return _unpack, _pack(self)

    def __setstate__(self, state: dict[str, Any]) -> None:
        modified = state.pop("_input_version")
        self.__dict__.update(state)
        self._input_version = None
        if self.input_edge_index is not None:
            # -1 never equals a version: a DAG that was stale before pickling stays stale.
            self._input_version = -1 if modified else self.input_edge_index._version

    def _input_modified(self) -> bool:
        return self.input_edge_index._version != self._input_version

    # Sizes ------------------------------------------------------------------

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    @property
    def num_line_edges(self) -> int:
        return self.line_index.size(1)

    @property
    def num_levels(self) -> int:
        return int(self.edge_level.max()) + 1 if self.num_edges else 0

    # Levels and pruning (computed on first use when not given) --------------

    @property
    def edge_level(self) -> Tensor:
        if self._edge_level is None:
            self._edge_level = edge_levels(self.edge_index, self.num_nodes).to(self.edge_index.device)
        return self._edge_level

    @property
    def edge_level_rev(self) -> Tensor:
        if self._edge_level_rev is None:
            self._edge_level_rev = edge_levels(self.edge_index, self.num_nodes, reverse=True).to(
                self.edge_index.device)
        return self._edge_level_rev

    @property
    def multitree_mask(self) -> Tensor:
        if self._multitree_mask is None:
            self._multitree_mask = multitree_mask(self.edge_index, self.line_index, self.num_nodes).to(
                self.edge_index.device)
        return self._multitree_mask

    # Graphs of a mini-batch -------------------------------------------------

    @property
    def batch(self) -> Tensor:
        """``[N]`` graph id of every node (zeros for a single graph)."""
        if self._batch is None:
            self._batch = torch.zeros(self.num_nodes, dtype=torch.long, device=self.edge_index.device)
        return self._batch

    @property
    def graph_sizes(self) -> Tensor:
        """``[num_graphs]`` nodes per graph."""
        return self.memo("graph_sizes", lambda: torch.bincount(self.batch, minlength=self.num_graphs), nodes_only=True)

    @property
    def ptr(self) -> Tensor:
        """``[num_graphs + 1]`` offsets of the graphs' nodes (PyG's ``ptr``)."""
        return self.memo("ptr", lambda: torch.cat([self.graph_sizes.new_zeros(1), self.graph_sizes.cumsum(0)]),
                         nodes_only=True)

    @property
    def max_graph_nodes(self) -> int:
        """Nodes of the largest graph."""
        return self.memo("max_graph_nodes", lambda: int(self.graph_sizes.max()) if self.num_graphs else 0,
                         nodes_only=True)

    # Views ------------------------------------------------------------------

    def reverse(self) -> "DAG":
        """The same DAG with every edge flipped (cached; the D-mode pruning is kept, not redone)."""
        return self.memo("reverse", self._flipped)

    def _flipped(self) -> "DAG":
        flipped = DAG(
            self.edge_index.flip(0), self.line_index.flip(0), self.num_nodes,
            edge_level=self._edge_level_rev, edge_level_rev=self._edge_level,
            multitree_mask=self.multitree_mask, input_edge=self.input_edge,
            batch=self._batch, num_graphs=self.num_graphs, input_edge_index=self.input_edge_index)
        flipped._memo["reverse"] = self
        flipped._node_memo = self._node_memo
        return flipped

    def multitree(self) -> "DAG":
        """Only the line edges kept for D-mode (cached)."""
        return self.memo("multitree", self._pruned)

    def _pruned(self) -> "DAG":
        mask = self.multitree_mask
        pruned = DAG(
            self.edge_index, self.line_index[:, mask], self.num_nodes,
            edge_level=self._edge_level, edge_level_rev=self._edge_level_rev,
            multitree_mask=torch.ones(int(mask.sum()), dtype=torch.bool, device=mask.device),
            input_edge=self.input_edge, batch=self._batch, num_graphs=self.num_graphs,
            input_edge_index=self.input_edge_index)
        pruned._memo["multitree"] = pruned
        pruned._node_memo = self._node_memo
        return pruned

    def view(self, mode: str, reverse: bool = False) -> "DAG":
        """The DAG a layer of ``mode`` (``"P"``: full line graph, ``"D"``: multitree) runs on."""
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}")
        dag = self.multitree() if mode == "D" else self
        return dag.reverse() if reverse else dag

    # Belonging ----------------------------------------------------------------

    def check_input(self, edge_index: Tensor) -> None:
        """Raise a :class:`ValueError` unless ``edge_index`` is the input the DAG was prepared from.

        The recorded tensor itself passes at once; another one must have the
        same number of edges and the same :func:`edge_checksum` (computed once
        for the recorded input). Of a DAG without a recorded input (built by
        hand), only the dtype and device of ``edge_index`` are checked.
        """
        if not isinstance(edge_index, Tensor):
            raise ValueError(f"`edge_index` must be a tensor of shape [2, num_edges], got {type(edge_index).__name__}")
        check_integer_index(edge_index)
        check_device("dag", self.edge_index.device, edge_index=edge_index)
        recorded = self.input_edge_index
        if recorded is None:
            return
        # Tensor versions are invisible to torch.compile's tracing; compiled calls skip that check.
        if not torch.compiler.is_compiling() and self._input_modified():
            raise ValueError("the `edge_index` the DAG was prepared from has been modified in place since; "
                             "prepare the DAG again")
        if edge_index is recorded:
            return
        if edge_index.shape != recorded.shape:
            raise ValueError(f"`edge_index` has {edge_index.size(1)} edges but the DAG was prepared from one with "
                             f"{recorded.size(1)}; pass the DAG of this graph (e.g. get_dag(batch) of this batch)")
        if edge_checksum(edge_index) != self.memo("input_checksum", lambda: edge_checksum(recorded),
                                                  nodes_only=True):
            raise ValueError("`edge_index` is not the edge list the DAG was prepared from (same number of edges, "
                             "other edges); pass the DAG of this graph (e.g. get_dag(batch) of this batch)")

    def input_edges(self, num_rows: int, what: str) -> Tensor:
        """:obj:`input_edge` (the input edge every DAG edge came from), checked
        once per DAG against the ``num_rows`` rows of ``what`` it will index
        (e.g. ``edge_attr`` given like the input ``edge_index``)."""
        def check() -> Tensor:
            if self.input_edge is None:
                raise ValueError(f"the DAG does not know which input edge each of its edges came from, so {what} "
                                 "cannot be mapped; build it with ToDAG/get_dag or prepare_dag")
            if self.num_edges and int(self.input_edge.max()) >= num_rows:
                raise ValueError(f"{what} has {num_rows} rows but the DAG's edges come from input edges up to "
                                 f"{int(self.input_edge.max())}; pass one row per input edge (edge_index column)")
            return self.input_edge
        return self.memo(("input_edge", num_rows), check)

    # Caches -----------------------------------------------------------------

    def memo(self, key: Hashable, build: Callable[[], T], nodes_only: bool = False) -> T:
        """``build()`` on the first call with ``key``, the same object afterwards.

        The structure never changes, so anything derived from it (schedules,
        layouts, validation) is built once per DAG and shared by every layer.
        With ``nodes_only``, the value depends on the nodes and the batch only
        (not on the edges) and is shared by all views of the DAG.
        """
        memo = self._node_memo if nodes_only else self._memo
        if key not in memo:
            memo[key] = build()
        return memo[key]

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
                f"num_line_edges={self.num_line_edges}, num_graphs={self.num_graphs})")


class _PackingPickler(pickle.Pickler):
    """Pickles a CPU :class:`DAG` with its caches: the tensors it was built
    from (``external``, which the batch that carries the DAG holds too) are
    left to the outer pickler; every other CPU tensor becomes a slice of one
    flat buffer per dtype."""

    def __init__(self, file: io.BytesIO, external: list[Tensor]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.ids: dict[int, tuple[Any, ...]] = {id(t): ("external", i) for i, t in enumerate(external)}
        self.parts: dict[torch.dtype, list[Tensor]] = {}
        self.sizes: dict[torch.dtype, int] = {}
        self.keep: list[Tensor] = []  # ids stay unique while the tensors are alive

    def persistent_id(self, obj: Any) -> Optional[tuple[Any, ...]]:
        if not isinstance(obj, Tensor):
            return None
        if id(obj) in self.ids:
            return self.ids[id(obj)]
        if obj.device.type != "cpu" or obj.layout != torch.strided or obj.requires_grad:
            return None
        offset = self.sizes.get(obj.dtype, 0)
        self.parts.setdefault(obj.dtype, []).append(obj.reshape(-1))
        self.sizes[obj.dtype] = offset + obj.numel()
        self.ids[id(obj)] = pid = ("packed", obj.dtype, offset, tuple(obj.shape))
        self.keep.append(obj)
        return pid

    def reducer_override(self, obj: Any) -> Any:
        # Every DAG in the state (the views refer back to the top one) by its plain state, not by __reduce__.
        if isinstance(obj, DAG):
            return copyreg.__newobj__, (type(obj),), obj.__getstate__()
        return NotImplemented


class _UnpackingUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, buffers: dict[torch.dtype, Tensor], external: list[Tensor]) -> None:
        super().__init__(file)
        self.buffers, self.external = buffers, external

    def persistent_load(self, pid: tuple[Any, ...]) -> Tensor:
        if pid[0] == "external":
            return self.external[pid[1]]
        _, dtype, offset, shape = pid
        return self.buffers[dtype][offset:offset + math.prod(shape)].view(shape)


def _pack(dag: DAG) -> tuple[bytes, dict[torch.dtype, Tensor], list[Tensor]]:
    external = [value for value in dag.__dict__.values() if isinstance(value, Tensor)]
    file = io.BytesIO()
    pickler = _PackingPickler(file, external)
    pickler.dump(dag)
    buffers = {dtype: torch.cat(parts) for dtype, parts in pickler.parts.items()}
    return file.getvalue(), buffers, external


def _unpack(payload: bytes, buffers: dict[torch.dtype, Tensor], external: list[Tensor]) -> DAG:
    return _UnpackingUnpickler(io.BytesIO(payload), buffers, external).load()
