"""pLSTM operator implementations: the reference loop, the level scan and the parallel form."""
from pyg_plstm.ops.level_scan import LevelSchedule, edge_states, level_schedule, plstm_dag_level_scan
from pyg_plstm.ops.parallel import ParallelSchedule, parallel_schedule, plstm_dag_parallel
from pyg_plstm.ops.reference import plstm_dag_reference

__all__ = ["LevelSchedule", "ParallelSchedule", "edge_states", "level_schedule", "parallel_schedule",
           "plstm_dag_level_scan", "plstm_dag_parallel", "plstm_dag_reference"]
