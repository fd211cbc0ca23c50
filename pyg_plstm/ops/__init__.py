r"""The pLSTM operator's forms, one module each, all with one signature
``(query, key, value, source, transition, mark, direct, dag)``:

* :mod:`~pyg_plstm.ops.reference`: the reference loop, one edge at a time;
* :mod:`~pyg_plstm.ops.scan`: the level scan, one step per topological level;
* :mod:`~pyg_plstm.ops.parallel`: the dense quadratic form for small graphs;
* :mod:`~pyg_plstm.ops.sparse`: the same sum over reachable pairs only.

:mod:`~pyg_plstm.ops.common` holds the level loops three forms share,
:mod:`~pyg_plstm.ops.structures` what the forms derive from the DAG's structure,
:mod:`~pyg_plstm.ops.validation` the checks of structure and operands and
:mod:`~pyg_plstm.ops.cost` the measured cost model that picks a form;
:mod:`~pyg_plstm.ops.householder` is the structured matrix transition (scan and reference forms).
:func:`pyg_plstm.functional.plstm_dag` validates and dispatches.
"""
from pyg_plstm.ops.common import is_scalar
from pyg_plstm.ops.cost import (
    FORMS,
    MAX_PARALLEL_NODES,
    choose_form,
    dense_form_costs,
    estimated_node_pairs,
    form_costs,
)
from pyg_plstm.ops.householder import Householder
from pyg_plstm.ops.parallel import plstm_parallel
from pyg_plstm.ops.reference import plstm_reference
from pyg_plstm.ops.scan import edge_states, plstm_scan
from pyg_plstm.ops.sparse import plstm_sparse
from pyg_plstm.ops.structures import (
    LevelSchedule,
    ParallelLayout,
    Reachability,
    level_schedule,
    parallel_layout,
    reachability,
)
from pyg_plstm.ops.validation import check_operands, check_structure

__all__ = [
    "Householder", "is_scalar",
    "FORMS", "MAX_PARALLEL_NODES", "LevelSchedule", "ParallelLayout", "Reachability", "check_operands",
    "check_structure", "choose_form", "edge_states", "level_schedule", "parallel_layout", "plstm_reference",
    "plstm_parallel", "plstm_scan", "plstm_sparse", "dense_form_costs", "reachability", "estimated_node_pairs",
    "form_costs",
]
