"""pLSTM (parallelizable Linear Source Transition Mark networks) for PyTorch Geometric."""
from pyg_plstm.dag import DAG, DAGData, ToDAG, get_dag, prepare_dag

__version__ = "0.1.0"

__all__ = ["DAG", "DAGData", "ToDAG", "get_dag", "prepare_dag", "__version__"]
