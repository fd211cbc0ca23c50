r"""From a data set name (or a CSV) to splits, a :class:`Task` and the model's input encoders."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import Tensor
from torch_geometric.data import InMemoryDataset

from pyg_plstm.chem.features import FP_RADIUS, FP_SIZE
from pyg_plstm.train.fingerprint import PROCESSING_META
from pyg_plstm.train.metrics import Task

__all__ = ["PreparedData", "SPLIT_METHODS", "TASK_CHOICES", "prepare_data", "detect_task", "ogb_task", "tu_encoders"]

SPLIT_METHODS = ("auto", "file", "scaffold", "random")
TASK_CHOICES = ("auto", "regression", "binary")
_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass
class PreparedData:
    """A data set ready for :func:`~pyg_plstm.train.fit`.

    ``encoders`` holds the input-related keyword arguments of
    :func:`~pyg_plstm.models.make_model`; ``meta`` is plain data describing
    the data set (stored in checkpoints, used by ``predict``).
    """

    dataset: InMemoryDataset
    splits: dict[str, InMemoryDataset]
    task: Task
    encoders: dict[str, Any]
    meta: dict[str, Any]


def detect_task(y: Tensor, task: str = "auto") -> Task:
    """``binary`` when every label is 0/1/missing (and ``task='auto'``), else regression."""
    if task not in TASK_CHOICES:
        raise ValueError(f"unknown task {task!r}; choose one of {TASK_CHOICES}")
    y = y.reshape(y.size(0), -1).double()
    if task == "auto":
        labelled = y[~torch.isnan(y)]
        task = "binary" if labelled.numel() and bool(((labelled == 0) | (labelled == 1)).all()) else "regression"
    elif task == "binary":
        labelled = y[~torch.isnan(y)]
        bad = labelled[(labelled != 0) & (labelled != 1)]
        if bad.numel():
            raise ValueError(f"task 'binary' needs 0/1 labels (NaN = missing), found {float(bad[0])}")
    return Task(task, y.size(1))


def ogb_task(dataset: Any) -> Task:
    """The task an OGB graph-property data set defines (scored by its ``Evaluator``)."""
    kind = {"binary classification": "binary", "regression": "regression",
            "multiclass classification": "multiclass"}[dataset.task_type]
    num_tasks = dataset.num_classes if kind == "multiclass" else dataset.num_tasks
    return Task(kind, int(num_tasks), metric=dataset.eval_metric, ogb_name=dataset.name)


def tu_encoders(dataset: Any) -> dict[str, Any]:
    """Linear encoders for the one-hot node (and edge) labels of a TU data set."""
    edge_dim = dataset.num_edge_features or None
    return {"in_channels": dataset.num_node_features, "edge_dim": edge_dim, "node_encoder": "linear",
            "edge_encoder": "linear" if edge_dim else None}


def _molecule_encoders(dataset: Any) -> dict[str, Any]:
    featurizer = getattr(dataset, "featurizer", None)
    if featurizer is None or featurizer.features == "ogb":
        return {"in_channels": None, "edge_dim": None, "node_encoder": "ogb", "edge_encoder": "ogb"}
    return {"in_channels": dataset.num_node_features, "edge_dim": dataset.num_edge_features,
            "node_encoder": "linear", "edge_encoder": "linear"}


def _split(dataset: Any, kind: str, method: str, seed: int) -> tuple[dict[str, Tensor], str]:
    from pyg_plstm.splits import random_split

    if method not in SPLIT_METHODS:
        raise ValueError(f"unknown split {method!r}; choose one of {SPLIT_METHODS}")
    if kind == "molecules":
        if method == "auto":
            method = "file" if dataset.report.get("split") is not None else "scaffold"
        return dataset.get_idx_split(method, *_FRACTIONS, seed=seed), method
    if kind == "architectures" and method == "auto":
        return dataset.get_idx_split("literature", frac_valid=_FRACTIONS[1], seed=seed), "literature"
    if method == "random":
        return random_split(len(dataset), *_FRACTIONS, seed=seed), method
    if method != "auto":
        raise ValueError(f"split {method!r} does not apply to {kind} data sets; use 'auto' or 'random'")
    if kind == "ogb":
        return dataset.get_idx_split(), "official"
    return random_split(len(dataset), *_FRACTIONS, seed=seed), "random"


def _order_arguments(dataset: str, atom_order: Optional[str]) -> dict[str, Any]:
    """The keyword arguments of ``load_dataset`` that set the atom order of data set ``dataset``."""
    from pyg_plstm.chem import MolToDAG
    from pyg_plstm.datasets import NeuralArchitectures, OGBMolDataset, TUDAGDataset, dataset_class

    if atom_order is None:
        return {}
    cls = dataset_class(dataset)[0]
    if issubclass(cls, TUDAGDataset):
        raise ValueError(f"--atom-order applies to molecule sets; TU data set {dataset!r} keeps the node order "
                         "of its files")
    if issubclass(cls, NeuralArchitectures):
        raise ValueError(f"--atom-order applies to molecule sets; {dataset!r} holds DAGs, kept as they are")
    if issubclass(cls, OGBMolDataset):
        return {"order": atom_order}
    return {"featurizer": MolToDAG(order=atom_order)}


def _feature_arguments(dataset: Optional[str], features: Optional[Any], num_workers: int) -> dict[str, Any]:
    """The keyword arguments of data set ``dataset``'s class (``None``: a CSV) for molecule features
    ``features`` and ``num_workers`` processing processes; refused for sets without SMILES rows."""
    from pyg_plstm.datasets import NeuralArchitectures, OGBMolDataset, TUDAGDataset, dataset_class

    cls = None if dataset is None else dataset_class(dataset)[0]
    if cls is not None and issubclass(cls, (OGBMolDataset, TUDAGDataset, NeuralArchitectures)):
        if features is not None:
            raise ValueError(f"molecule features apply to CSV files, the shipped sets and MoleculeNet sets, not "
                             f"to {dataset!r}")
        return {}
    return {"num_workers": num_workers, **({"molecule_features": features} if features is not None else {})}


def _processing_summary(report: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """What a run records of a molecule set's processing report: rows read, graphs made, rows skipped
    (with the first reasons), filtered and blank (``None`` for sets without one, e.g. OGB and TU)."""
    if report is None:
        return None
    return {"rows": report["num_rows"], "graphs": report["num_graphs"], "skipped": report["num_failed"],
            "first_skipped": report["failed"][:5], "filtered": report["num_filtered"],
            "blank": report.get("num_blank", 0)}


def prepare_data(
    dataset: Optional[str] = "solubility",
    root: str | os.PathLike = "datasets",
    csv: Optional[str | os.PathLike] = None,
    smiles_col: str = "smiles",
    target_cols: Optional[Sequence[str]] = None,
    split_col: Optional[str] = None,
    split: str = "auto",
    split_seed: int = 0,
    task: str = "auto",
    atom_order: Optional[str] = None,
    molecule_features: Sequence[str] = (),
    fp_radius: int = FP_RADIUS,
    fp_size: int = FP_SIZE,
    descriptors: Optional[str | os.PathLike] = None,
    descriptors_key: str = "smiles",
    num_workers: int = 0,
) -> PreparedData:
    r"""Load a data set by name (see :func:`pyg_plstm.datasets.load_dataset`) or from ``csv``.

    Splits: ``'auto'`` is OGB's official split, a file's split column, the
    scaffold split for other molecule sets, D-VAE's split for ``'enas6'``
    (its train part split 90/10 into train and valid by ``split_seed``) and a
    seeded random split for TU sets; ``'random'`` (80/10/10, ``split_seed``), ``'scaffold'`` and ``'file'``
    choose explicitly. ``task`` (molecules only) overrides the detection of
    binary vs regression targets. ``atom_order`` (molecules only; ``None``:
    :class:`~pyg_plstm.chem.MolToDAG`'s default, canonical) numbers the atoms,
    and so orients the bonds: ``'canonical'``, ``'input'`` (the SMILES or
    file order, as the pLSTM paper used) or ``'bfs'`` (not for OGB sets).

    Molecule-level features (CSV, shipped and MoleculeNet sets): any of
    :data:`~pyg_plstm.chem.features.MOLECULE_FEATURES` (Morgan ones with
    ``fp_radius``, ``fp_size``) and the columns of a ``descriptors`` CSV keyed
    by SMILES or row (``descriptors_key``; see
    :mod:`pyg_plstm.datasets.descriptors`), computed in data processing with
    ``num_workers`` processes; ``encoders`` then holds ``molecule_dim`` and
    ``meta['molecule_features']`` records them for ``predict``.
    """
    from pyg_plstm.chem import ORDERS, MolToDAG
    from pyg_plstm.chem.features import MoleculeFeaturizer
    from pyg_plstm.datasets import MoleculeCSVDataset, NeuralArchitectures, OGBMolDataset, TUDAGDataset, load_dataset
    from pyg_plstm.datasets.descriptors import DescriptorTable, MoleculeFeatures

    if atom_order is not None and atom_order not in ORDERS:
        raise ValueError(f"unknown atom order {atom_order!r}; choose one of {ORDERS}")
    features = None
    if molecule_features or descriptors is not None:
        computed = MoleculeFeaturizer(tuple(molecule_features), fp_radius, fp_size) if molecule_features else None
        table = None if descriptors is None else DescriptorTable(str(descriptors), descriptors_key)
        features = MoleculeFeatures(computed, table)
    extra = _feature_arguments(None if csv is not None else dataset, features, num_workers)
    root = Path(root)
    if csv is not None:
        if not target_cols:
            raise ValueError("a CSV data set needs --target-col (the column(s) to predict)")
        name = Path(csv).stem
        featurizer = None if atom_order is None else MolToDAG(order=atom_order)
        ds = MoleculeCSVDataset(str(root / "csv" / name), str(csv), smiles_col, list(target_cols), split_col,
                                featurizer=featurizer, **extra)
    elif dataset is None:
        raise ValueError("name a data set or pass a CSV file")
    else:
        name = dataset
        ds = load_dataset(dataset, str(root), **_order_arguments(dataset, atom_order), **extra)
    if len(ds) == 0:
        raise ValueError(f"data set {name!r} holds no graphs")

    if isinstance(ds, OGBMolDataset):
        kind, detected = "ogb", ogb_task(ds)
        encoders = _molecule_encoders(ds)
    elif isinstance(ds, TUDAGDataset):
        kind, detected = "tu", Task("multiclass", ds.num_classes)
        encoders = tu_encoders(ds)
    elif isinstance(ds, NeuralArchitectures):
        kind, detected = "architectures", Task("regression", 1)
        encoders = tu_encoders(ds)
    else:
        kind, detected = "molecules", detect_task(ds.y, task)
        encoders = _molecule_encoders(ds)
    if features is not None:
        encoders["molecule_dim"] = features.dim
    if kind != "molecules" and task != "auto":
        raise ValueError(f"--task applies to molecule sets; {name!r} defines its own task ({detected.type})")
    if kind == "tu" and ds.num_node_features == 0:
        raise ValueError(f"TU data set {name!r} has no node features; pyg-plstm needs some")

    idx, method = _split(ds, kind, split, split_seed)
    splits = {s: ds[i] for s, i in idx.items() if len(i)}
    featurizer = getattr(ds, "featurizer", None)
    atom_order = featurizer.order if isinstance(featurizer, MolToDAG) else getattr(ds, "order", None)
    targets = list(getattr(ds, "target_cols", None) or [f"task_{t}" for t in range(detected.num_tasks)])
    meta = {
        "dataset": name,
        "csv": str(csv) if csv is not None else None,
        "split": method,
        "split_seed": split_seed,
        "targets": targets if detected.type != "multiclass" else [f"class_{c}" for c in range(detected.num_tasks)],
        "featurizer": asdict(featurizer) if is_dataclass(featurizer) else None,
        "atom_order": atom_order,
        "sizes": {s: len(d) for s, d in splits.items()},
        PROCESSING_META: _processing_summary(getattr(ds, "report", None)),
    }
    if features is not None:
        meta["molecule_features"] = features.to_meta()
    return PreparedData(ds, splits, detected, encoders, meta)
