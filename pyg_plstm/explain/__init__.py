"""Explanations of molecular predictions: atom and bond attributions, drawings, faithfulness checks."""
from pyg_plstm.explain.attribution import METHODS, SIGNED, MoleculeAttribution, explain_molecules
from pyg_plstm.explain.drawing import draw_attributions
from pyg_plstm.explain.faithfulness import deletion_curve, substructure_precision

__all__ = ["METHODS", "SIGNED", "MoleculeAttribution", "deletion_curve", "draw_attributions", "explain_molecules",
           "substructure_precision"]
