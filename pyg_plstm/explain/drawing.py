r"""Attributions drawn on the molecule with RDKit's ``rdMolDraw2D``: atoms and bonds coloured by a diverging
colour map, a colour bar, the prediction in the caption; SVG or PNG; several molecules in a grid."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from matplotlib import colormaps
from rdkit.Chem.Draw import rdMolDraw2D
from rdkit.Geometry import Point2D

from pyg_plstm.checks import check_positive
from pyg_plstm.explain.attribution import MoleculeAttribution
from pyg_plstm.train.files import atomic_write

__all__ = ["FORMATS", "COLOUR_MAP", "draw_attributions", "caption"]

FORMATS = ("png", "svg")
#: Red pushes the explained output up, blue down (unsigned scores use the red half).
COLOUR_MAP = "RdBu_r"
_LEGEND_HEIGHT = 56
_BAR_STEPS = 64


def caption(attribution: MoleculeAttribution, name: Optional[str] = None) -> str:
    """``name`` (default: the SMILES) and the model's prediction of the explained target."""
    title = name if name is not None else (attribution.smiles or "")
    return f"{title}: {attribution.target} = {attribution.prediction:.3g}"


def _limit(values: Sequence[Optional[np.ndarray]]) -> float:
    finite = [np.abs(v[np.isfinite(v)]) for v in values if v is not None and np.isfinite(v).any()]
    largest = max((float(v.max()) for v in finite), default=0.0)
    return largest if largest > 0 else 1.0


def _colours(scores: np.ndarray, limit: float, cmap) -> dict[int, tuple[float, float, float]]:
    return {i: tuple(float(c) for c in cmap(0.5 + 0.5 * float(s) / limit)[:3])
            for i, s in enumerate(scores) if math.isfinite(s)}


def _format(path: Optional[Union[str, os.PathLike]], image_format: Optional[str]) -> str:
    if image_format is None:
        suffix = Path(path).suffix.lower().lstrip(".") if path is not None else "svg"
        image_format = suffix
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format {image_format!r} (from the file name or `image_format`); choose "
                         f"one of {FORMATS}")
    return image_format


def draw_attributions(
    attributions: Union[MoleculeAttribution, Sequence[MoleculeAttribution]],
    path: Optional[Union[str, os.PathLike]] = None,
    *,
    image_format: Optional[str] = None,
    size: tuple[int, int] = (400, 320),
    columns: int = 3,
    captions: Optional[Sequence[str]] = None,
    colour_map: str = COLOUR_MAP,
) -> Union[str, bytes]:
    r"""Draw one molecule's attributions, or a grid of several on one colour scale.

    Atoms and bonds are filled with ``colour_map`` at ``0.5 + 0.5 s / s_max``
    (white at zero; ``s_max`` the largest absolute atom score of the drawing,
    and separately the largest bond score), so a signed method shows red
    atoms pushing the output up and blue ones pushing it down. A colour bar
    with both ranges runs along the bottom. Atoms without a score (no node in
    the model's graph) stay uncoloured.

    Args:
        attributions: Results of :func:`~pyg_plstm.explain.explain_molecules`
            (with a molecule).
        path: Write the image there too (its suffix picks the format).
        image_format: ``"png"`` or ``"svg"`` (default: from ``path``, else SVG).
        size: Width and height of each molecule's panel in pixels.
        columns: Panels per row of a grid.
        captions: One caption per molecule (default :func:`caption`).

    Returns:
        The SVG text or the PNG bytes.
    """
    items = [attributions] if isinstance(attributions, MoleculeAttribution) else list(attributions)
    if not items:
        raise ValueError("nothing to draw: no attributions given")
    for position, item in enumerate(items):
        if not isinstance(item, MoleculeAttribution):
            raise TypeError(f"attribution {position}: expected a MoleculeAttribution, got {type(item).__name__}")
        if item.mol is None:
            raise ValueError(f"attribution {position} has no molecule to draw (a prepared graph without SMILES)")
    if captions is not None and len(captions) != len(items):
        raise ValueError(f"{len(captions)} captions for {len(items)} molecules")
    width, height = size
    check_positive(width=width, height=height, columns=columns)
    image_format = _format(path, image_format)
    columns = min(columns, len(items))
    rows = math.ceil(len(items) / columns)
    canvas = (width * columns, height * rows + _LEGEND_HEIGHT)
    drawer = (rdMolDraw2D.MolDraw2DCairo if image_format == "png" else rdMolDraw2D.MolDraw2DSVG)(
        *canvas, width, height)
    options = drawer.drawOptions()
    options.fillHighlights = True
    options.continuousHighlight = True
    options.legendFraction = 0.16
    cmap = colormaps[colour_map]
    atom_limit = _limit([item.atom_scores for item in items])
    bond_limit = _limit([item.bond_scores for item in items])
    for k, item in enumerate(items):
        atoms = _colours(item.atom_scores, atom_limit, cmap)
        bonds = _colours(item.bond_scores, bond_limit, cmap)
        drawer.SetOffset(width * (k % columns), height * (k // columns))
        drawer.DrawMolecule(item.mol, highlightAtoms=list(atoms), highlightAtomColors=atoms,
                            highlightBonds=list(bonds), highlightBondColors=bonds,
                            legend=captions[k] if captions is not None else caption(item))
    methods = ", ".join(dict.fromkeys(item.method for item in items))
    _draw_colour_bar(drawer, canvas, cmap, atom_limit, bond_limit, all(not item.signed for item in items), methods)
    drawer.FinishDrawing()
    image = drawer.GetDrawingText()
    if path is not None:
        atomic_write(path, image)
    return image


def _draw_colour_bar(drawer: rdMolDraw2D.MolDraw2D, canvas: tuple[int, int], cmap, atom_limit: float,
                     bond_limit: float, unsigned: bool, methods: str) -> None:
    drawer.SetOffset(0, 0)
    width, height = canvas
    top = height - _LEGEND_HEIGHT + 6
    bar = max(60, min(320, width - 160))
    left = (width - bar) / 2
    low = 0.5 if unsigned else 0.0
    drawer.SetFillPolys(True)
    for step in range(_BAR_STEPS):
        value = low + (1 - low) * (step + 0.5) / _BAR_STEPS
        drawer.SetColour(tuple(float(c) for c in cmap(value)[:3]))
        x0 = left + bar * step / _BAR_STEPS
        drawer.DrawRect(Point2D(x0, top), Point2D(x0 + bar / _BAR_STEPS + 0.5, top + 14), rawCoords=True)
    drawer.SetColour((0.0, 0.0, 0.0))
    drawer.SetFontSize(13)
    sign = "" if unsigned else "+/-"
    ends = ("0", "higher") if unsigned else ("lower", "higher")
    drawer.DrawString(ends[0], Point2D(left - 6, top + 7), 2, rawCoords=True)
    drawer.DrawString(ends[1], Point2D(left + bar + 6, top + 7), 1, rawCoords=True)
    drawer.DrawString(f"{methods}: atoms {sign}{atom_limit:.2g}, bonds {sign}{bond_limit:.2g}",
                      Point2D(width / 2, top + 30), 0, rawCoords=True)
