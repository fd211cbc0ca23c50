r"""Explanations written to a folder: an image per molecule and method, ``index.html`` showing them, and
``scores.csv`` with the score of every atom and bond (RDKit indices of the molecule as given)."""
from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Mapping, Sequence

from pyg_plstm.explain.attribution import MoleculeAttribution
from pyg_plstm.explain.drawing import draw_attributions
from pyg_plstm.train.files import atomic_write

__all__ = ["INDEX_FILE", "SCORES_FILE", "SCORE_COLUMNS", "write_explanations", "shown_prediction"]

INDEX_FILE = "index.html"
SCORES_FILE = "scores.csv"
SCORE_COLUMNS = ("row", "smiles", "method", "target", "prediction", "kind", "index", "begin_atom", "end_atom",
                 "symbol", "score")


def shown_prediction(attribution: MoleculeAttribution, binary: bool) -> float:
    """The prediction as ``predict`` reports it: a classifier's probability, else the value in label units."""
    return 1 / (1 + math.exp(-attribution.prediction)) if binary else attribution.prediction


def _score_rows(row: int, smiles: str, item: MoleculeAttribution, binary: bool) -> list[list]:
    def text(score: float) -> str:
        return "" if math.isnan(score) else repr(float(score))

    head = [row, smiles, item.method, item.target, shown_prediction(item, binary)]
    rows = [head + ["atom", atom.GetIdx(), atom.GetIdx(), "", atom.GetSymbol(), text(score)]
            for atom, score in zip(item.mol.GetAtoms(), item.atom_scores)]
    rows += [head + ["bond", bond.GetIdx(), bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(),
                     f"{bond.GetBeginAtom().GetSymbol()}-{bond.GetEndAtom().GetSymbol()}", text(score)]
             for bond, score in zip(item.mol.GetBonds(), item.bond_scores)]
    return rows


def write_explanations(out: Path, smiles: Sequence[str], rows: Sequence[int], errors: Mapping[int, str],
                       results: Mapping[str, Sequence[MoleculeAttribution]], formats: Sequence[str],
                       binary: bool = False) -> None:
    r"""Write ``out/<method>/row<k>.<format>``, ``out/scores.csv`` and ``out/index.html``.

    ``results[method][i]`` explains the SMILES of row ``rows[i]``; ``errors`` holds the refused rows.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SCORE_COLUMNS)
    for method, attributions in results.items():
        for row, item in zip(rows, attributions):
            name = f"P({item.target})" if binary else item.target
            text = f"row {row}: {name} = {shown_prediction(item, binary):.3g}"
            for image_format in formats:
                draw_attributions(item, out / method / f"row{row}.{image_format}", captions=[text])
            writer.writerows(_score_rows(row, smiles[row], item, binary))
    atomic_write(out / SCORES_FILE, buf.getvalue())
    atomic_write(out / INDEX_FILE, _index(smiles, rows, errors, results, formats, binary))


def _index(smiles: Sequence[str], rows: Sequence[int], errors: Mapping[int, str],
           results: Mapping[str, Sequence[MoleculeAttribution]], formats: Sequence[str], binary: bool) -> str:
    shown = "png" if "png" in formats else formats[0]
    methods = list(results)
    target = next((items[0].target for items in results.values() if items), "")
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    lines = [f"<tr><th>row</th><th>SMILES</th><th>{'P(' + html.escape(target) + ')' if binary else html.escape(target)}"
             f"</th>{head}</tr>"]
    position = {row: i for i, row in enumerate(rows)}
    for row, text in enumerate(smiles):
        if row in errors:
            lines.append(f"<tr><td>{row}</td><td>{html.escape(text)}</td><td colspan='{len(methods) + 1}'>refused: "
                         f"{html.escape(errors[row])}</td></tr>")
            continue
        first = results[methods[0]][position[row]]
        cells = "".join(f"<td><a href='{m}/row{row}.{shown}'><img src='{m}/row{row}.{shown}' width='300' "
                        f"alt='{html.escape(m)} row {row}'></a></td>" for m in methods)
        lines.append(f"<tr><td>{row}</td><td>{html.escape(text)}</td>"
                     f"<td>{shown_prediction(first, binary):.4g}</td>{cells}</tr>")
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>pyg-plstm explanations</title>"
            "<style>td,th{border:1px solid #ccc;padding:4px;vertical-align:middle}table{border-collapse:collapse}"
            "</style></head><body>\n<h1>Atom and bond attributions</h1>\n<p>Red atoms and bonds push the "
            "explained output up, blue ones down (unsigned methods: red = important). Scores per atom and bond: "
            f"<a href='{SCORES_FILE}'>{SCORES_FILE}</a>.</p>\n<table>\n" + "\n".join(lines)
            + "\n</table>\n</body></html>\n")
