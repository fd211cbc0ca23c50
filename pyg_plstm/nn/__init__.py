"""pLSTM layers and blocks, feature encoders and graph pooling (graph-level models: pyg_plstm.models)."""
from pyg_plstm.nn.block import LOCAL_CONVS, PLSTMBlock
from pyg_plstm.nn.conv import PLSTMConv, PLSTMGates
from pyg_plstm.nn.dagnn import DAGNNConv
from pyg_plstm.nn.encoders import ENCODERS, LinearEncoder, OGBEncoder, make_encoder
from pyg_plstm.nn.encoding import DAGEncoding, DegreeEncoding, node_depths
from pyg_plstm.nn.norm import MultiHeadRMSNorm
from pyg_plstm.nn.pool import POOLINGS, GraphPooling
from pyg_plstm.nn.scaler import Standardize

__all__ = ["ENCODERS", "LOCAL_CONVS", "POOLINGS", "DAGEncoding", "DAGNNConv", "DegreeEncoding", "GraphPooling",
           "LinearEncoder", "MultiHeadRMSNorm", "OGBEncoder", "PLSTMBlock", "PLSTMConv", "PLSTMGates", "Standardize",
           "make_encoder", "node_depths"]
