"""pLSTM layers, blocks and graph-level models."""
from pyg_plstm.nn.block import PLSTMBlock
from pyg_plstm.nn.conv import PLSTMConv, PLSTMGates
from pyg_plstm.nn.encoding import DegreeEncoding
from pyg_plstm.nn.model import PLSTMNet
from pyg_plstm.nn.norm import MultiHeadRMSNorm
from pyg_plstm.nn.plan import DAGPlan

__all__ = ["DAGPlan", "DegreeEncoding", "MultiHeadRMSNorm", "PLSTMBlock", "PLSTMConv", "PLSTMGates", "PLSTMNet"]
