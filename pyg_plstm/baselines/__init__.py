r"""Classical baselines beside the graph models: fingerprints into a Tanimoto SVM or a random forest."""
from pyg_plstm.baselines.ecfp import ECFP_MODELS, SVR_C_GRID, ECFPModel, ecfp_config
from pyg_plstm.baselines.forest import NodeForest
from pyg_plstm.baselines.svm import TanimotoSVM, tanimoto

__all__ = ["ECFP_MODELS", "SVR_C_GRID", "ECFPModel", "NodeForest", "TanimotoSVM", "ecfp_config", "tanimoto"]
