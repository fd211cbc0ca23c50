r"""DAG preparation for pLSTM: orientation, line graph, levels, multitree pruning,
and the :class:`DAG` structure every operator form and layer runs on."""
from pyg_plstm.dag.graph import edge_levels, line_graph, node_depth, orient
from pyg_plstm.dag.multitree import multitree_mask
from pyg_plstm.dag.prepare import (
    DAGCollater,
    DAGData,
    DAGLoader,
    RandomPruning,
    ToDAG,
    get_dag,
    prepare_dag,
    pruned_in_order,
    repruned,
)
from pyg_plstm.dag.structure import DAG, MODES

__all__ = [
    "DAG",
    "DAGCollater",
    "DAGData",
    "DAGLoader",
    "MODES",
    "RandomPruning",
    "ToDAG",
    "edge_levels",
    "get_dag",
    "line_graph",
    "multitree_mask",
    "node_depth",
    "orient",
    "prepare_dag",
    "pruned_in_order",
    "repruned",
]
