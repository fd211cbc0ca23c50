"""pLSTM (parallelizable Linear Source Transition Mark networks) for PyTorch Geometric."""
import os

# Set once, before any submodule can import ogb: importing ogb checks PyPI for a newer release unless told not
# to, and the package must work offline. A user's own setting wins.
os.environ.setdefault("OUTDATED_IGNORE", "1")

from pyg_plstm.dag import DAG, DAGData, ToDAG, get_dag, prepare_dag  # noqa: E402

__version__ = "0.1.0"

__all__ = ["DAG", "DAGData", "ToDAG", "get_dag", "prepare_dag", "__version__"]
