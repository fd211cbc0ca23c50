r"""Benchmark graph data sets (OGB, MoleculeNet, TU) as prepared pLSTM DAG graphs.

These wrap the loaders of OGB and PyG, which download the raw files on first
use; processing is local and stored next to them, in a directory named after
the processing options so that different options never share stale files.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import warnings
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.datasets import MoleculeNet, TUDataset
from torch_geometric.transforms import Compose
from tqdm import tqdm

from pyg_plstm.chem import MolToDAG, atom_order, parse_smiles, reorder_nodes
from pyg_plstm.dag import DAGData, ToDAG
from pyg_plstm.datasets.molecules import (
    _convert_rows,
    _describe,
    _MoleculeSplits,
    options_key,
    read_csv,
)

# Importing ogb checks PyPI for a newer release unless told not to.
os.environ.setdefault("OUTDATED_IGNORE", "1")

from ogb.graphproppred import PygGraphPropPredDataset  # noqa: E402
from ogb.io.read_graph_pyg import read_graph_pyg  # noqa: E402

__all__ = ["MoleculeNetDataset", "OGBMolDataset", "TUDAGDataset", "TU_PAPER_NAMES"]

TU_PAPER_NAMES = ("MUTAG", "NCI1", "PROTEINS", "PTC_FM")


class OGBMolDataset(PygGraphPropPredDataset):
    r"""An OGB ``ogbg-mol*`` data set (e.g. ``'ogbg-molhiv'``, ``'ogbg-molesol'``) of DAG graphs.

    OGB's own atom/bond features (the same vocabulary as
    :func:`pyg_plstm.chem.from_smiles`) are kept; ``y`` is float ``[1, T]``
    with NaN for missing labels (OGB stores NaN-free classification labels as
    long; cast if your loss needs it). ``smiles`` is taken from OGB's
    ``mapping/mol.csv.gz``. Use OGB's official scaffold split via
    :meth:`get_idx_split` and its ``Evaluator``.

    Args:
        name: the OGB name, ``'ogbg-mol...'``.
        root: OGB's root folder (the data set lives in
            ``<root>/ogbg_mol.../``, its raw layout as downloaded by OGB).
        order: ``'canonical'`` renumbers the atoms by RDKit canonical rank
            (computed from the mapping SMILES), so the graphs equal
            :func:`~pyg_plstm.chem.from_smiles` output up to OGB's
            order-dependent chirality tags; ``'input'`` keeps OGB's atom order.
        transform, pre_transform: as in PyG; ``pre_transform`` runs after
            the DAG preparation.
    """

    def __init__(
        self,
        name: str,
        root: str = "dataset",
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        order: str = "canonical",
    ) -> None:
        if not name.startswith("ogbg-mol"):
            raise ValueError(f"{name!r} is not an OGB molecule data set (ogbg-mol*)")
        if order not in ("canonical", "input"):
            raise ValueError(f"order must be 'canonical' or 'input' for OGB data, got {order!r}")
        self.order = order
        self.key = options_key(version=1, order=order, pre_transform=_describe(pre_transform))
        super().__init__(name, root, transform, pre_transform)
        # OGB's __init__ reads the processed file with a bare `torch.load`,
        # which defaults to weights_only=True from torch 2.6 on and then
        # refuses pickled Data objects. `process` therefore stores plain dicts
        # of tensors (loadable under either default) that become DAGData here.
        if isinstance(self._data, dict):
            self.data = DAGData.from_dict(self._data)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, f"processed_dag_{self.key}")

    @property
    def processed_file_names(self) -> str:
        return "data.pt"

    def _mapping_smiles(self) -> Optional[list[str]]:
        path = osp.join(self.root, "mapping", "mol.csv.gz")
        if not osp.isfile(path):
            return None
        frame = pd.read_csv(path, compression="gzip")
        column = next((c for c in frame.columns if str(c).lower() == "smiles"), None)
        return None if column is None else frame[column].astype(str).tolist()

    @staticmethod
    def _canonical_rank(smiles: str, num_nodes: int) -> Optional[Tensor]:
        try:
            mol = parse_smiles(smiles)
        except ValueError:
            return None
        return atom_order(mol, "canonical") if mol.GetNumAtoms() == num_nodes else None

    def process(self) -> None:
        graphs = read_graph_pyg(self.raw_dir, add_inverse_edge=self.meta_info["add_inverse_edge"] == "True",
                                binary=self.binary)
        labels = pd.read_csv(osp.join(self.raw_dir, "graph-label.csv.gz"), compression="gzip",
                             header=None).values.astype(np.float32)
        smiles = self._mapping_smiles()
        if self.order == "canonical" and smiles is None:
            raise ValueError(f"order='canonical' needs the SMILES in {self.root}/mapping/mol.csv.gz; "
                             "it is missing, use order='input'")
        unranked: list[str] = []
        for i, g in enumerate(tqdm(graphs, desc=f"Preparing {self.name}", disable=None)):
            g.y = torch.from_numpy(labels[i]).view(1, -1)
            if smiles is not None:
                g.smiles = smiles[i]
            if self.order == "canonical":
                rank = self._canonical_rank(smiles[i], g.num_nodes)
                if rank is None:
                    unranked.append(f"graph {i} {smiles[i]!r}")
                else:
                    g.x, g.edge_index, g.edge_attr = reorder_nodes(g.x, g.edge_index, g.edge_attr, rank)
        if unranked:
            warnings.warn(f"{self.name}: {len(unranked)} graphs keep OGB's atom order because the installed "
                          f"RDKit reads their SMILES differently (first: {', '.join(unranked[:3])})",
                          stacklevel=2)
        data_list = ToDAG().prepare_many(graphs)
        if self.pre_transform is not None:
            data_list = [self.pre_transform(data) for data in data_list]
        data, slices = self.collate(data_list)
        torch.save((data.to_dict(), slices), self.processed_paths[0])


class MoleculeNetDataset(_MoleculeSplits, MoleculeNet):
    r"""A MoleculeNet data set through PyG's :class:`~torch_geometric.datasets.MoleculeNet`
    (same names: ``'ESOL'``, ``'FreeSolv'``, ``'Lipo'``, ``'HIV'``, ``'BACE'``,
    ``'BBBP'``, ``'Tox21'``, ...), re-featurised from SMILES into DAG graphs.

    PyG downloads the raw CSV to ``<root>/<name>/raw/``; the rows are then
    converted with ``featurizer`` (OGB features, canonical order by default)
    using the same robust row handling as
    :class:`~pyg_plstm.datasets.MoleculeCSVDataset` (invalid SMILES skipped
    with one warning or raised per ``on_error``; ``report`` attribute).
    No official split: :meth:`get_idx_split` gives the scaffold split by
    default.
    """

    def __init__(
        self,
        root: str,
        name: str,
        featurizer: Optional[MolToDAG] = None,
        on_error: str = "skip",
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
    ) -> None:
        self.featurizer = featurizer or MolToDAG()
        self.on_error = on_error
        self.key = options_key(version=1, featurizer=repr(self.featurizer), on_error=on_error,
                               pre_transform=_describe(pre_transform), pre_filter=_describe(pre_filter))
        super().__init__(root, name, transform, pre_transform, pre_filter, force_reload=force_reload)
        with open(self.processed_paths[1], encoding="utf-8") as f:
            self.report: dict[str, Any] = json.load(f)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, self.name, f"processed_dag_{self.key}")

    @property
    def target_cols(self) -> list[str]:
        r"""Names of the target columns of the raw CSV, in the order of ``y``."""
        return list(self.report["num_missing"])

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt", "report.json"]

    def process(self) -> None:
        # PyG's own process() splits lines on commas after deleting quoted
        # text with a greedy regex; a CSV reader keeps the columns intact.
        frame = read_csv(self.raw_paths[0])
        _, _, _, smiles_idx, y_idx = self.names[self.name]
        targets = frame.iloc[:, y_idx]
        targets = targets.to_frame() if isinstance(targets, pd.Series) else targets
        data_list, report = _convert_rows(
            self.raw_paths[0],
            list(range(len(frame))),
            frame.iloc[:, smiles_idx].tolist(),
            targets.values.tolist(),
            [str(c) for c in targets.columns],
            self.featurizer,
            self.on_error,
            self.pre_filter,
            self.pre_transform,
        )
        self.save(data_list, self.processed_paths[0])
        with open(self.processed_paths[1], "w", encoding="utf-8") as f:
            json.dump(report, f)


class TUDAGDataset(TUDataset):
    r"""A TU data set (e.g. the pLSTM paper's ``'MUTAG'``, ``'NCI1'``,
    ``'PROTEINS'``, ``'PTC_FM'``) through PyG's
    :class:`~torch_geometric.datasets.TUDataset`, with
    :class:`~pyg_plstm.dag.ToDAG` applied before ``pre_transform``.

    Bonds/edges are oriented by node index (the order of the TU files). Use
    :func:`~pyg_plstm.splits.stratified_kfold` on ``dataset.y`` for the
    10-fold protocol. Arguments as in :class:`~torch_geometric.datasets.TUDataset`.
    """

    def __init__(
        self,
        root: str,
        name: str,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        use_node_attr: bool = False,
        use_edge_attr: bool = False,
        cleaned: bool = False,
    ) -> None:
        to_dag = ToDAG() if pre_transform is None else Compose([ToDAG(), pre_transform])
        self.key = options_key(version=1, pre_transform=_describe(to_dag), pre_filter=_describe(pre_filter))
        super().__init__(root, name, transform, to_dag, pre_filter, force_reload, use_node_attr,
                         use_edge_attr, cleaned)
        # TUDataset drops continuous edge attributes from `edge_attr` after
        # loading; the DAG copy of the edge features must match.
        dag_attr = getattr(self._data, "dag_edge_attr", None)
        if dag_attr is not None and self._data.edge_attr is not None:
            self._data.dag_edge_attr = dag_attr[:, dag_attr.size(1) - self._data.edge_attr.size(1):]

    @property
    def processed_dir(self) -> str:
        return f"{super().processed_dir}_dag_{self.key}"
