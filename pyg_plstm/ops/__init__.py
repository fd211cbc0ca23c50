"""pLSTM operator implementations: the reference loop and the level scan."""
from pyg_plstm.ops.level_scan import LevelSchedule, level_schedule, plstm_dag_level_scan
from pyg_plstm.ops.reference import plstm_dag_reference

__all__ = ["LevelSchedule", "level_schedule", "plstm_dag_level_scan", "plstm_dag_reference"]
