r"""Molecule-level feature vectors of data set rows: RDKit-computed features and a user's descriptor file.

:class:`MoleculeFeatures` gives every molecule (a SMILES and its row
number) one float64 vector: the features of a
:class:`~pyg_plstm.chem.features.MoleculeFeaturizer` followed by the columns
of a :class:`DescriptorTable`. Data sets store it per graph as
``molecule_features`` (``[1, dim]``), the models concatenate it, scaled, with
the pooled graph embedding, and ``predict`` computes it again from the SMILES.

A descriptor file is a CSV with a key column and numeric descriptor columns:

* keyed by SMILES (``key='smiles'``, the default; any column name can be
  given): molecules are matched by RDKit's canonical SMILES, so the file may
  spell them differently from the data set;
* keyed by row (``key='row'``): the 0-based data row of the data set's CSV
  (of the SMILES list, in ``predict``).

The file must be complete: an empty, NaN or infinite cell, a key given twice,
an unparsable SMILES key, or a molecule of the data set that the file lacks
raise :class:`ValueError` naming the file, row and column (RDKit's own
descriptors follow another rule, see :mod:`pyg_plstm.chem.features`).
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping, Optional

import numpy as np
from rdkit import Chem

from pyg_plstm.chem import parse_smiles, rdkit_quiet
from pyg_plstm.chem.features import MoleculeFeaturizer
from pyg_plstm.datasets.molecules import check_columns, read_csv
from pyg_plstm.datasets.processing import file_hash

__all__ = ["DescriptorTable", "MoleculeFeatures"]


def _canonical(smiles: str) -> str:
    with rdkit_quiet():
        return Chem.MolToSmiles(parse_smiles(smiles))


class DescriptorTable:
    r"""A user's descriptor file (see the module notes).

    Args:
        path (str): The CSV file.
        key (str): The key column: ``'row'`` for row numbers, any other name
            for a column of SMILES. (default: ``'smiles'``)
    """

    def __init__(self, path: str, key: str = "smiles") -> None:
        self.path, self.key = str(path), key
        frame = read_csv(self.path)
        check_columns(frame, [key], self.path)
        self.columns = [c for c in frame.columns if c != key]
        if not self.columns:
            raise ValueError(f"descriptor file {self.path} has no descriptor column besides its key {key!r}")
        self.digest = file_hash(self.path)
        self.values: dict[Any, np.ndarray] = {}
        for row, record in enumerate(frame.itertuples(index=False)):
            cells = dict(zip(frame.columns, record))
            vector = np.empty(len(self.columns))
            for j, column in enumerate(self.columns):
                try:
                    vector[j] = float(cells[column])
                except ValueError:
                    vector[j] = math.nan
                if not math.isfinite(vector[j]):
                    raise ValueError(f"descriptor file {self.path}, row {row}, column {column!r}: {cells[column]!r} "
                                     "is not a finite number; descriptor files must be complete (fill the value "
                                     "or drop the column)")
            name = self._key_of(cells[key], row)
            if name in self.values:
                raise ValueError(f"descriptor file {self.path}, row {row}: key {cells[key]!r} occurs twice")
            self.values[name] = vector

    def _key_of(self, cell: str, row: int) -> Any:
        if self.key == "row":
            try:
                return int(cell)
            except ValueError:
                raise ValueError(f"descriptor file {self.path}, row {row}: row number {cell!r} is not an "
                                 "integer") from None
        try:
            return _canonical(cell)
        except ValueError as err:
            raise ValueError(f"descriptor file {self.path}, row {row}: {err}") from None

    def lookup(self, smiles: str, row: int) -> np.ndarray:
        """The descriptors of the molecule ``smiles`` at data row ``row``; refused if the file lacks it."""
        name = row if self.key == "row" else _canonical(smiles)
        if name not in self.values:
            what = f"row {row}" if self.key == "row" else f"molecule {smiles!r} (row {row})"
            raise ValueError(f"{what} is not in descriptor file {self.path} (keyed by {self.key!r})")
        return self.values[name]

    def __repr__(self) -> str:
        return f"DescriptorTable({self.path!r}, key={self.key!r}, {len(self.values)} rows, {len(self.columns)} columns)"


class MoleculeFeatures:
    r"""The molecule-level vector of a row: computed features, then a descriptor file's columns.

    Args:
        featurizer (MoleculeFeaturizer, optional): RDKit-computed features.
        descriptors (DescriptorTable, optional): A user's descriptor file.
    """

    def __init__(self, featurizer: Optional[MoleculeFeaturizer] = None,
                 descriptors: Optional[DescriptorTable] = None) -> None:
        if featurizer is None and descriptors is None:
            raise ValueError("molecule features need a featurizer, a descriptor file or both")
        self.featurizer, self.descriptors = featurizer, descriptors

    @property
    def columns(self) -> list[str]:
        return ((self.featurizer.columns if self.featurizer else [])
                + (self.descriptors.columns if self.descriptors else []))

    @property
    def dim(self) -> int:
        return ((self.featurizer.dim if self.featurizer else 0)
                + (len(self.descriptors.columns) if self.descriptors else 0))

    @property
    def key(self) -> str:
        """What the vectors depend on, for processed-data keys (the descriptor file by its contents)."""
        return json.dumps(self.to_meta() | {"digest": self.descriptors.digest if self.descriptors else None},
                          sort_keys=True)

    def __call__(self, smiles: str, row: int) -> np.ndarray:
        """The vector of molecule ``smiles`` at data row ``row`` (float64 ``[dim]``)."""
        parts = []
        if self.featurizer is not None:
            with rdkit_quiet():
                parts.append(self.featurizer(parse_smiles(smiles)))
        if self.descriptors is not None:
            parts.append(self.descriptors.lookup(smiles, row))
        return np.concatenate(parts)

    def to_meta(self) -> dict[str, Any]:
        """Plain data to rebuild these features (:meth:`from_meta`): stored with a run."""
        featurizer = self.featurizer
        return {"names": list(featurizer.names) if featurizer else [],
                "radius": featurizer.radius if featurizer else None,
                "size": featurizer.size if featurizer else None,
                "descriptors": None if self.descriptors is None else {
                    "key": self.descriptors.key, "columns": self.descriptors.columns},
                "dim": self.dim}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], descriptors: Optional[str] = None) -> "MoleculeFeatures":
        """The features recorded by :meth:`to_meta`; ``descriptors`` is the descriptor file for the molecules at
        hand, required (with the same columns) when the record names one and refused otherwise."""
        featurizer = (MoleculeFeaturizer(tuple(meta["names"]), meta["radius"], meta["size"])
                      if meta["names"] else None)
        recorded = meta.get("descriptors")
        if recorded is None and descriptors is not None:
            raise ValueError("the model was trained without a descriptor file; do not pass one")
        table = None
        if recorded is not None:
            if descriptors is None:
                raise ValueError(f"the model was trained with descriptors from a file (columns "
                                 f"{recorded['columns'][:5]}{' ...' if len(recorded['columns']) > 5 else ''}, "
                                 f"keyed by {recorded['key']!r}); pass a descriptor file with them for these "
                                 "molecules (--descriptors)")
            table = DescriptorTable(descriptors, recorded["key"])
            if table.columns != recorded["columns"]:
                raise ValueError(f"descriptor file {descriptors} has the columns {table.columns}, the model was "
                                 f"trained on {recorded['columns']}")
        return cls(featurizer, table)

    def __repr__(self) -> str:
        return f"MoleculeFeatures({self.featurizer!r}, {self.descriptors!r}, dim={self.dim})"
