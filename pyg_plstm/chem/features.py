r"""Molecule-level features: Morgan (ECFP) fingerprints as bits or counts.

ECFP4, the fingerprint of the classical baselines, is the Morgan fingerprint
of radius 2 hashed to 2,048 bits (:data:`FP_RADIUS`, :data:`FP_SIZE`):
every atom's circular environment up to ``radius`` bonds sets (or, for
counts, increments) one of ``size`` positions. The values are those of
RDKit's :func:`rdkit.Chem.rdFingerprintGenerator.GetMorganGenerator`.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from pyg_plstm.checks import check_positive
from pyg_plstm.chem.convert import parse_smiles, rdkit_quiet

__all__ = ["FP_RADIUS", "FP_SIZE", "morgan_bits", "morgan_counts", "fingerprints"]

# ECFP4: diameter 4, i.e. radius 2; 2,048 bits as in MoleculeACE.
FP_RADIUS = 2
FP_SIZE = 2048


@lru_cache(maxsize=8)
def _generator(radius: int, size: int) -> rdFingerprintGenerator.FingeprintGenerator64:
    check_positive(size=size)
    if not isinstance(radius, int) or isinstance(radius, bool) or radius < 0:
        raise ValueError(f"`radius` must be an integer >= 0, got {radius!r}")
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=size)


def morgan_bits(mol: Chem.Mol, radius: int = FP_RADIUS, size: int = FP_SIZE) -> np.ndarray:
    """The Morgan fingerprint of ``mol`` as ``size`` bits (``uint8`` 0/1)."""
    return _generator(radius, size).GetFingerprintAsNumPy(mol).astype(np.uint8)


def morgan_counts(mol: Chem.Mol, radius: int = FP_RADIUS, size: int = FP_SIZE) -> np.ndarray:
    """The Morgan fingerprint of ``mol`` as ``size`` counts (``uint32``)."""
    return _generator(radius, size).GetCountFingerprintAsNumPy(mol).astype(np.uint32)


def fingerprints(smiles: Sequence[str], radius: int = FP_RADIUS, size: int = FP_SIZE
                 ) -> tuple[np.ndarray, dict[int, str]]:
    """Morgan bits ``[len(smiles), size]`` of every SMILES and ``{row: error}`` for those that cannot be parsed
    (their rows are zero); parsing is :func:`~pyg_plstm.chem.parse_smiles`'s."""
    matrix = np.zeros((len(smiles), size), dtype=np.uint8)
    errors = {}
    with rdkit_quiet():
        for row, text in enumerate(smiles):
            try:
                matrix[row] = morgan_bits(parse_smiles(text), radius, size)
            except (ValueError, TypeError) as err:
                errors[row] = str(err)
    return matrix, errors
