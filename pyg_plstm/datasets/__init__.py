r"""Graph data sets as prepared pLSTM DAG graphs (molecules, TU, synthetic long-range tasks) and
:func:`load_dataset` to get one by name."""
from __future__ import annotations

from typing import Any

from torch_geometric.data import InMemoryDataset
from torch_geometric.datasets import MoleculeNet

from pyg_plstm.datasets.benchmarks import TU_PAPER_NAMES, MoleculeNetDataset, OGBMolDataset, TUDAGDataset
from pyg_plstm.datasets.molecules import (
    FreeSolvDataset,
    MoleculeCSVDataset,
    SolubilityDataset,
    molecules_from_csv,
    read_csv,
    shipped_csv,
)
from pyg_plstm.datasets.processing import DownloadError
from pyg_plstm.datasets.synthetic import long_range_dataset, long_range_graph

__all__ = [
    "DownloadError",
    "FreeSolvDataset",
    "MoleculeCSVDataset",
    "MoleculeNetDataset",
    "OGBMolDataset",
    "SolubilityDataset",
    "TUDAGDataset",
    "load_dataset",
    "long_range_dataset",
    "long_range_graph",
    "molecules_from_csv",
    "read_csv",
    "shipped_csv",
]


def load_dataset(name: str, root: str, **kwargs: Any) -> InMemoryDataset:
    r"""A data set of prepared DAG graphs by name; ``kwargs`` go to its class.

    ========================================  =====================================  ==========
    name                                      class                                  offline
    ========================================  =====================================  ==========
    ``'solubility'``, ``'freesolv'``          :class:`SolubilityDataset`,            yes
                                              :class:`FreeSolvDataset` (shipped)
    ``'ogbg-mol*'`` (e.g. ``'ogbg-molhiv'``)  :class:`OGBMolDataset`                 downloads
    ``'moleculenet:<name>'``, or a bare       :class:`MoleculeNetDataset`            downloads
    MoleculeNet name other than FreeSolv
    (``'esol'``, ``'hiv'``, ``'bbbp'``, ...)
    ``'tu:<NAME>'``, or ``'MUTAG'``,          :class:`TUDAGDataset`                  downloads
    ``'NCI1'``, ``'PROTEINS'``, ``'PTC_FM'``
    ========================================  =====================================  ==========

    Names are case-insensitive except after ``'tu:'`` (TU names are). A bare
    ``'freesolv'`` is the shipped copy; ``'moleculenet:freesolv'`` downloads
    PyG's. Offline, a download raises :class:`DownloadError` (an
    :class:`OSError`) naming the URL and the folder where the raw files can be
    put by hand.
    """
    key = name.strip().lower()
    if key == "solubility":
        return SolubilityDataset(root, **kwargs)
    if key == "freesolv":
        return FreeSolvDataset(root, **kwargs)
    if key.startswith("ogbg-mol"):
        return OGBMolDataset(key, root, **kwargs)
    if key.startswith("moleculenet:"):
        return MoleculeNetDataset(root, key.split(":", 1)[1], **kwargs)
    if key.startswith("tu:"):
        return TUDAGDataset(root, name.strip().split(":", 1)[1], **kwargs)
    if key in MoleculeNet.names:
        return MoleculeNetDataset(root, key, **kwargs)
    tu = {n.lower(): n for n in TU_PAPER_NAMES}
    if key in tu:
        return TUDAGDataset(root, tu[key], **kwargs)
    raise ValueError(
        f"unknown data set {name!r}; use 'solubility', 'freesolv', an 'ogbg-mol*' name, "
        f"'moleculenet:<name>' ({', '.join(MoleculeNet.names)}), or 'tu:<NAME>' "
        f"(e.g. {', '.join(TU_PAPER_NAMES)})"
    )
