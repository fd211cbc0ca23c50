"""Graph-level models: pLSTM, the GNN baselines and the :func:`make_model` registry."""
from pyg_plstm.models.dagnn import DAGNN
from pyg_plstm.models.gnn import CONVS, GNNBaseline
from pyg_plstm.models.inputs import GraphInputs, graph_edge_attr, graph_inputs
from pyg_plstm.models.plstm import CONFIGS, POS_ENCODINGS, PLSTMNet
from pyg_plstm.models.registry import make_model, model_arguments, model_names, register_model
from pyg_plstm.nn.pool import POOLINGS

# The built-in models; model_names() also lists models registered later.
MODEL_NAMES = model_names()

__all__ = [
    "CONFIGS", "CONVS", "DAGNN", "MODEL_NAMES", "POOLINGS", "POS_ENCODINGS", "GNNBaseline", "GraphInputs", "PLSTMNet",
    "graph_edge_attr", "graph_inputs", "make_model", "model_arguments", "model_names", "register_model",
]
