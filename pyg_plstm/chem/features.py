r"""Molecule-level features: Morgan (ECFP) fingerprints as bits or counts, RDKit's 2D descriptors.

ECFP4, the fingerprint of the classical baselines, is the Morgan fingerprint
of radius 2 hashed to 2,048 bits (:data:`FP_RADIUS`, :data:`FP_SIZE`):
every atom's circular environment up to ``radius`` bonds sets (or, for
counts, increments) one of ``size`` positions. The values are those of
RDKit's :func:`rdkit.Chem.rdFingerprintGenerator.GetMorganGenerator`.

:class:`MoleculeFeaturizer` concatenates any of :data:`MOLECULE_FEATURES`
into one float64 vector per molecule: ``morgan_count``, ``morgan_bits`` and
``rdkit2d``, every descriptor of RDKit's ``Descriptors.descList`` (as
``Descriptors.CalcMolDescriptors``), in that list's order. A descriptor RDKit
cannot compute for a molecule, or computes as infinite, is NaN here: the
feature scaler of the models (:class:`~pyg_plstm.nn.Standardize`) replaces it
by the training mean, so such values never reach a model unhandled.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from pyg_plstm.checks import check_positive
from pyg_plstm.chem.convert import parse_smiles, rdkit_quiet

__all__ = ["FP_RADIUS", "FP_SIZE", "MOLECULE_FEATURES", "MoleculeFeaturizer", "morgan_bits", "morgan_counts",
           "rdkit_descriptors", "fingerprints"]

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


def rdkit_descriptors(mol: Chem.Mol) -> np.ndarray:
    """RDKit's 2D descriptors of ``mol`` (float64, in the order of ``Descriptors.descList``); NaN where RDKit
    fails or gives an infinite value."""
    with rdkit_quiet():
        values = Descriptors.CalcMolDescriptors(mol, missingVal=float("nan"))
    array = np.array([values[name] for name, _ in Descriptors.descList], dtype=np.float64)
    array[~np.isfinite(array)] = np.nan
    return array


MOLECULE_FEATURES = ("morgan_count", "morgan_bits", "rdkit2d")


@dataclass(frozen=True)
class MoleculeFeaturizer:
    r"""Molecule-level features by name (any of :data:`MOLECULE_FEATURES`), concatenated in the given order.

    Args:
        names (tuple of str): The feature groups, e.g. ``("morgan_count", "rdkit2d")``.
        radius (int): Morgan radius of ``morgan_count`` / ``morgan_bits``.
        size (int): Morgan fingerprint length.
    """

    names: tuple[str, ...]
    radius: int = FP_RADIUS
    size: int = FP_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        unknown = [n for n in self.names if n not in MOLECULE_FEATURES]
        if unknown:
            raise ValueError(f"unknown molecule feature(s) {unknown}; choose from {MOLECULE_FEATURES}")
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"name each molecule feature once, got {list(self.names)}")
        _generator(self.radius, self.size)  # checks radius and size

    @property
    def columns(self) -> list[str]:
        """The name of every feature, in order."""
        columns = []
        for name in self.names:
            if name == "rdkit2d":
                columns += [descriptor for descriptor, _ in Descriptors.descList]
            else:
                columns += [f"{name}_{i}" for i in range(self.size)]
        return columns

    @property
    def dim(self) -> int:
        return sum(len(Descriptors.descList) if n == "rdkit2d" else self.size for n in self.names)

    def __call__(self, mol: Chem.Mol) -> np.ndarray:
        """The features of ``mol``, float64 ``[dim]`` (NaN for descriptors RDKit cannot compute)."""
        parts = {"morgan_count": lambda: morgan_counts(mol, self.radius, self.size),
                 "morgan_bits": lambda: morgan_bits(mol, self.radius, self.size),
                 "rdkit2d": lambda: rdkit_descriptors(mol)}
        return np.concatenate([parts[name]().astype(np.float64) for name in self.names])
