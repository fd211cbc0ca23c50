r"""Do the attributions point at what the model uses? Two measurements.

* :func:`substructure_precision` (a known answer): for a model trained to
  count a substructure, the share of the top-:math:`k` atoms (by score, with
  :math:`k` the number of substructure atoms in the molecule) that belong to
  the substructure, against :math:`k / N`, the expected share of :math:`k`
  atoms drawn at random.
* :func:`deletion_curve`: the mean absolute change of the prediction when the
  top-attributed fraction of atoms (by absolute score) is masked, against the
  same number of atoms drawn at random. Masking an atom replaces its encoded
  features by the integrated-gradients baseline, the mean encoded atom of its
  molecule (:func:`~pyg_plstm.explain.attribution.atom_baseline`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from rdkit import Chem
from torch import Tensor
from torch.nn import Module
from torch_geometric.data import Batch

from pyg_plstm.checks import check_positive
from pyg_plstm.explain.attribution import ExplainedOutput, MoleculeAttribution, atom_baseline

__all__ = ["DELETION_FRACTIONS", "SubstructurePrecision", "DeletionCurve", "substructure_precision", "deletion_curve"]


#: The masked fractions of :func:`deletion_curve`.
DELETION_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)


@dataclass
class SubstructurePrecision:
    """Mean top-k precision over the molecules holding the substructure (and other atoms too)."""

    precision: float
    random: float
    molecules: int


@dataclass
class DeletionCurve:
    """Mean absolute prediction change per masked fraction, top-attributed atoms vs random atoms."""

    fractions: list[float]
    attributed: list[float]
    random: list[float]

    @property
    def ratio(self) -> float:
        """Area under the attributed curve over the area under the random one (> 1: faithful)."""
        return float(np.sum(self.attributed) / max(np.sum(self.random), 1e-12))


def substructure_precision(attributions: Sequence[MoleculeAttribution], smarts: str) -> SubstructurePrecision:
    r"""Top-:math:`k` precision of the atom scores for the atoms matching ``smarts`` (see the module
    docstring); molecules without a match, or with every atom matched, are left out."""
    pattern = Chem.MolFromSmarts(smarts)
    if pattern is None:
        raise ValueError(f"invalid SMARTS {smarts!r}")
    precisions, chance = [], []
    for position, item in enumerate(attributions):
        if item.mol is None:
            raise ValueError(f"attribution {position} has no molecule to match {smarts!r} in")
        scored = np.flatnonzero(np.isfinite(item.atom_scores))
        wanted = {a for match in item.mol.GetSubstructMatches(pattern) for a in match} & set(scored.tolist())
        if not wanted or len(wanted) == len(scored):
            continue
        k = len(wanted)
        top = scored[np.argsort(-item.atom_scores[scored], kind="stable")[:k]]
        precisions.append(len(wanted & set(top.tolist())) / k)
        chance.append(k / len(scored))
    if not precisions:
        raise ValueError(f"no molecule has atoms matching {smarts!r} (and others)")
    return SubstructurePrecision(float(np.mean(precisions)), float(np.mean(chance)), len(precisions))


def _masked_outputs(output: ExplainedOutput, data: Batch, keep: Tensor) -> Tensor:
    nodes = output.encode(data)
    keep = keep.unsqueeze(-1)
    with torch.no_grad(), output.encoded_nodes(keep * nodes + (1 - keep) * atom_baseline(nodes, data.batch)):
        return output(data)


def deletion_curve(
    model: Module,
    attributions: Sequence[MoleculeAttribution],
    fractions: Sequence[float] = DELETION_FRACTIONS,
    *,
    target_norm: Optional[Mapping[str, Tensor]] = None,
    random_repeats: int = 10,
    seed: int = 0,
    batch_size: int = 64,
) -> DeletionCurve:
    r"""Mean :math:`|f(x) - f(x \setminus S)|` for :math:`S` the top ``fraction`` of atoms by absolute
    score (at least one atom) and for :math:`S` random atoms of the same size (``random_repeats`` draws).

    ``model`` and ``target_norm`` are those the attributions were computed with.
    """
    check_positive(random_repeats=random_repeats, batch_size=batch_size)
    if not attributions:
        raise ValueError("no attributions to measure")
    if any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"`fractions` must lie in (0, 1], got {list(fractions)}")
    columns = {item.output for item in attributions}
    if len(columns) != 1:
        raise ValueError(f"the attributions explain different outputs {sorted(columns)}; measure one at a time")
    was_training = model.training
    device = next(model.parameters()).device
    output = ExplainedOutput(model.eval(), columns.pop(), target_norm)
    rng = np.random.default_rng(seed)
    attributed, random = np.zeros(len(fractions)), np.zeros(len(fractions))
    try:
        for start in range(0, len(attributions), batch_size):
            chunk = attributions[start:start + batch_size]
            data = Batch.from_data_list([item.graph for item in chunk]).to(device)
            full = _masked_outputs(output, data, torch.ones(data.num_nodes, device=device))
            for f, fraction in enumerate(fractions):
                orders = [np.argsort(-np.abs(item.node_scores), kind="stable") for item in chunk]
                attributed[f] += _change(output, data, full, chunk, orders, fraction)
                for _ in range(random_repeats):
                    orders = [rng.permutation(len(item.node_scores)) for item in chunk]
                    random[f] += _change(output, data, full, chunk, orders, fraction) / random_repeats
    finally:
        model.train(was_training)
    return DeletionCurve(list(map(float, fractions)), (attributed / len(attributions)).tolist(),
                         (random / len(attributions)).tolist())


def _change(output: ExplainedOutput, data: Batch, full: Tensor, chunk: Sequence[MoleculeAttribution],
            orders: Sequence[np.ndarray], fraction: float) -> float:
    """The summed absolute output change with the first ``fraction`` of every molecule's ``order`` masked."""
    keep = torch.ones(data.num_nodes, device=full.device)
    for k, order in enumerate(orders):
        count = max(1, int(round(fraction * len(order))))
        keep[int(data.ptr[k]) + torch.as_tensor(order[:count], device=full.device)] = 0
    return float((_masked_outputs(output, data, keep) - full).abs().sum())
