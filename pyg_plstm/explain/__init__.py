"""Explanations of molecular predictions: atom and bond attributions, drawings, faithfulness checks."""
from pyg_plstm.explain.attribution import METHODS, SIGNED, MoleculeAttribution, explain_molecules

__all__ = ["METHODS", "SIGNED", "MoleculeAttribution", "explain_molecules"]
