r"""Validation of the operator's input: the DAG's structure (:func:`check_structure`,
checked once per DAG view) and the operands against it (:func:`check_operands`), each
failure a ``ValueError`` naming the problem."""
from __future__ import annotations

from torch import Tensor

from pyg_plstm.checks import check_device
from pyg_plstm.dag import DAG
from pyg_plstm.ops.householder import Householder

__all__ = ["check_operands", "check_structure"]


def check_structure(dag: DAG) -> None:
    """Raise ``ValueError`` unless the DAG is consistent: index ranges, line
    edges joining edges that share a node, levels increasing along line edges,
    no edge joining two graphs of the batch. Checked once per DAG view."""
    dag.memo("checked", lambda: _check_structure(dag))


def _check_structure(dag: DAG) -> bool:
    ei, li, n, e = dag.edge_index, dag.line_index, dag.num_nodes, dag.num_edges
    if e and (int(ei.min()) < 0 or int(ei.max()) >= n):
        bad = int(((ei < 0) | (ei >= n)).any(0).nonzero()[0])
        raise ValueError(f"`dag_edge_index` column {bad} = {ei[:, bad].tolist()} points outside the {n} nodes")
    if dag.input_edge is not None and e and int(dag.input_edge.min()) < 0:
        raise ValueError("`input_edge` holds negative edge ids")
    if li.numel():
        if int(li.min()) < 0 or int(li.max()) >= e:
            bad = int(((li < 0) | (li >= e)).any(0).nonzero()[0])
            raise ValueError(f"`line_index` column {bad} = {li[:, bad].tolist()} refers to an edge outside [0, {e})")
        joined = ei[1, li[0]] == ei[0, li[1]]
        if not bool(joined.all()):
            bad = int((~joined).nonzero()[0])
            a, b = li[:, bad].tolist()
            raise ValueError(
                f"`line_index` column {bad} pairs edge {a} {ei[:, a].tolist()} with edge {b} "
                f"{ei[:, b].tolist()}, which do not share a node (need dst(e_in) == src(e_out))")
        level = dag.edge_level
        ordered = level[li[0]] < level[li[1]]
        if not bool(ordered.all()):
            bad = int((~ordered).nonzero()[0])
            a, b = li[:, bad].tolist()
            raise ValueError(
                f"`edge_level` is not a topological order of the line graph: edge {a} (level "
                f"{int(level[a])}) feeds edge {b} (level {int(level[b])}); is the graph acyclic?")
    if e and dag.num_graphs > 1:
        batch = dag.batch
        crossing = batch[ei[0]] != batch[ei[1]]
        if bool(crossing.any()):
            j = int(crossing.nonzero()[0])
            raise ValueError(
                f"DAG edge {j} = {ei[:, j].tolist()} joins graph {int(batch[ei[0, j]])} to graph "
                f"{int(batch[ei[1, j]])}; every edge must stay within one graph of `batch`")
    return True


def _shape_error(name: str, expected: str, got: Tensor) -> ValueError:
    return ValueError(f"`{name}` must have shape {expected}, got {list(got.shape)}")


def check_operands(query: Tensor, key: Tensor, value: Tensor, source: Tensor, transition: Tensor | Householder,
                   mark: Tensor, direct: Tensor, dag: DAG) -> None:
    """Raise ``ValueError`` naming the operand whose type, dtype, device or shape does not fit ``dag``.

    ``transition`` is ``[L, H]`` (scalars), ``[L, H, K, K]`` (matrices) or a
    :class:`~pyg_plstm.ops.householder.Householder` of ``[L, H]``,
    ``[L, H, n_h, K]`` and ``[L, H, n_h]`` tensors with ``n_h >= 1``.
    """
    if not isinstance(dag, DAG):
        raise ValueError(f"`dag` must be a pyg_plstm.DAG (e.g. from get_dag or prepare_dag), got {type(dag).__name__}")
    householder = isinstance(transition, Householder)
    if not householder and not isinstance(transition, Tensor):
        raise ValueError("`transition` must be a torch.Tensor ([L, H] or [L, H, K, K]) or a "
                         f"pyg_plstm.ops.Householder, got {type(transition).__name__}")
    parts = ({f"transition.{field}": t for field, t in zip(Householder._fields, transition)} if householder
             else {"transition": transition})
    named = {"query": query, "key": key, "value": value, "source": source, **parts, "mark": mark, "direct": direct}
    for name, t in named.items():
        if not isinstance(t, Tensor):
            raise ValueError(f"`{name}` must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"`{name}` must be a floating-point tensor, got {t.dtype}")
        if t.dtype != query.dtype:
            raise ValueError(f"`{name}` has dtype {t.dtype} but `query` has {query.dtype}; "
                             "cast all operands to one dtype")
        if t.device != query.device:
            raise ValueError(f"`{name}` is on {t.device} but `query` is on {query.device}")
    check_device("query", query.device, dag=dag.edge_index)
    if query.dim() != 3:
        raise _shape_error("query", "[N, H, K]", query)
    n, h, k = query.shape
    if n != dag.num_nodes:
        raise ValueError(f"`query` has {n} nodes but the DAG has {dag.num_nodes}")
    if key.shape != query.shape:
        raise _shape_error("key", f"[{n}, {h}, {k}] (like `query`)", key)
    if value.dim() != 3 or value.shape[:2] != (n, h):
        raise _shape_error("value", f"[{n}, {h}, V]", value)
    if direct.shape != (n, h):
        raise _shape_error("direct", f"[{n}, {h}]", direct)
    for name, t in (("source", source), ("mark", mark)):
        if t.shape != (dag.num_edges, h):
            raise _shape_error(name, f"[{dag.num_edges}, {h}] (one row per DAG edge)", t)
    lines = dag.num_line_edges
    if householder:
        scale, direction, beta = transition
        if scale.shape != (lines, h):
            raise _shape_error("transition.scale", f"[{lines}, {h}] (one row per line edge)", scale)
        if direction.dim() != 4 or direction.shape[:2] != (lines, h) or direction.size(-1) != k:
            raise _shape_error("transition.direction", f"[{lines}, {h}, n_h, {k}] (n_h reflections of the key "
                               "dimension per line edge)", direction)
        if direction.size(2) < 1:
            raise ValueError("`transition.direction` holds no reflections (n_h = 0); pass the scalar "
                             "`transition.scale` as the transition instead")
        if beta.shape != direction.shape[:3]:
            raise _shape_error("transition.beta", f"{list(direction.shape[:3])} (one per reflection)", beta)
    elif transition.shape not in ((lines, h), (lines, h, k, k)):
        raise _shape_error("transition", f"[{lines}, {h}] (one row per line edge) or [{lines}, {h}, {k}, {k}] "
                           "(a matrix on the key dimension per line edge)", transition)
