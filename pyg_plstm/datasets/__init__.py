r"""Graph data sets as prepared pLSTM DAG graphs (molecules, TU, neural architectures, synthetic
long-range tasks) and
:func:`load_dataset` to get one by name."""
from __future__ import annotations

from typing import Any

from torch_geometric.data import InMemoryDataset
from torch_geometric.datasets import MoleculeNet

from pyg_plstm.datasets.architectures import NeuralArchitectures
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
    "NeuralArchitectures",
    "OGBMolDataset",
    "SolubilityDataset",
    "TUDAGDataset",
    "dataset_class",
    "load_dataset",
    "long_range_dataset",
    "long_range_graph",
    "molecules_from_csv",
    "read_csv",
    "shipped_csv",
]


def dataset_class(name: str) -> tuple[type[InMemoryDataset], tuple[str, ...]]:
    """The class of data set ``name`` (see :func:`load_dataset`) and the name arguments it takes before
    ``root``; refuses an unknown name."""
    key = name.strip().lower()
    if key == "solubility":
        return SolubilityDataset, ()
    if key == "freesolv":
        return FreeSolvDataset, ()
    if key == "enas6":
        return NeuralArchitectures, ()
    if key.startswith("ogbg-mol"):
        return OGBMolDataset, (key,)
    if key.startswith("moleculenet:"):
        return MoleculeNetDataset, (key.split(":", 1)[1],)
    if key.startswith("tu:"):
        return TUDAGDataset, (name.strip().split(":", 1)[1],)
    if key in MoleculeNet.names:
        return MoleculeNetDataset, (key,)
    tu = {n.lower(): n for n in TU_PAPER_NAMES}
    if key in tu:
        return TUDAGDataset, (tu[key],)
    raise ValueError(
        f"unknown data set {name!r}; use 'solubility', 'freesolv', 'enas6', an 'ogbg-mol*' name, "
        f"'moleculenet:<name>' ({', '.join(MoleculeNet.names)}), or 'tu:<NAME>' "
        f"(e.g. {', '.join(TU_PAPER_NAMES)})"
    )


def load_dataset(name: str, root: str, **kwargs: Any) -> InMemoryDataset:
    r"""A data set of prepared DAG graphs by name; ``kwargs`` go to its class.

    ========================================  =====================================  ==========
    name                                      class                                  offline
    ========================================  =====================================  ==========
    ``'solubility'``, ``'freesolv'``          :class:`SolubilityDataset`,            yes
                                              :class:`FreeSolvDataset` (shipped)
    ``'enas6'`` (neural architectures)        :class:`NeuralArchitectures`           yes
                                              (shipped)
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
    cls, names = dataset_class(name)
    if cls is OGBMolDataset:
        # OGB's class takes its name before the root (as OGB's own does).
        return cls(*names, root, **kwargs)
    return cls(root, *names, **kwargs)
