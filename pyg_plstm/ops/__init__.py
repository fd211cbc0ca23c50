"""pLSTM operator implementations: the reference loop and the level scan.

The parallel form lives in :mod:`pyg_plstm.ops.parallel` (it builds on
:mod:`pyg_plstm.functional`, which imports this package).
"""
from pyg_plstm.ops.level_scan import LevelSchedule, edge_states, level_schedule, plstm_dag_level_scan
from pyg_plstm.ops.reference import plstm_dag_reference

__all__ = ["LevelSchedule", "edge_states", "level_schedule", "plstm_dag_level_scan", "plstm_dag_reference"]
