r"""Benchmark graph data sets (OGB, MoleculeNet, TU) as prepared pLSTM DAG graphs.

These wrap the loaders of OGB and PyG, which download the raw files on first
use; processing is local and stored next to them, in a directory named after
the processing options so that different options never share stale files.
Processed files are read with ``torch.load(weights_only=True)`` only, and a
failed download names the URL and the folder where the raw files can be put
by hand (:mod:`pyg_plstm.datasets.processing`).
"""
from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import shutil
import warnings
from typing import Any, Callable, Optional

import numpy as np
import ogb.graphproppred
import pandas as pd
import torch
from ogb.graphproppred import PygGraphPropPredDataset
from ogb.io.read_graph_pyg import read_graph_pyg
from ogb.utils.url import download_url, extract_zip
from torch import Tensor
from torch_geometric.datasets import MoleculeNet, TUDataset
from torch_geometric.io import read_tu_data
from tqdm import tqdm

from pyg_plstm.chem import MolToDAG, atom_order, parse_smiles, reorder_nodes
from pyg_plstm.dag import ToDAG
from pyg_plstm.datasets.molecules import (
    MoleculeSplits,
    MoleculeVector,
    convert_rows,
    molecule_key,
    read_csv,
    warn_skipped,
)
from pyg_plstm.datasets.processing import (
    ProcessedDataset,
    apply_pre_transform,
    atomic_save,
    check_num_workers,
    options_key,
)

__all__ = ["MoleculeNetDataset", "OGBMolDataset", "TUDAGDataset", "TU_PAPER_NAMES"]

TU_PAPER_NAMES = ("MUTAG", "NCI1", "PROTEINS", "PTC_FM")


class OGBMolDataset(ProcessedDataset, PygGraphPropPredDataset):
    r"""An OGB ``ogbg-mol*`` data set (e.g. ``'ogbg-molhiv'``, ``'ogbg-molesol'``) of DAG graphs.

    OGB's own atom/bond features (the same vocabulary as
    :func:`pyg_plstm.chem.from_smiles`) are kept; ``y`` is float ``[1, T]``
    with NaN for missing labels (OGB stores NaN-free classification labels as
    long; cast if your loss needs it). ``smiles`` is taken from OGB's
    ``mapping/mol.csv.gz``. Use OGB's official scaffold split via
    :meth:`get_idx_split` and its ``Evaluator``.

    Unlike OGB's own class, this one never asks questions on the terminal: a
    folder holding an older release raises :class:`ValueError`, and the
    download does not stop for a confirmation.

    Args:
        name: the OGB name, ``'ogbg-mol...'``.
        root: OGB's root folder (the data set lives in
            ``<root>/ogbg_mol.../``, its raw layout as downloaded by OGB).
        order: ``'canonical'`` renumbers the atoms by RDKit canonical rank
            (computed from the mapping SMILES), so the graphs equal
            :func:`~pyg_plstm.chem.from_smiles` output up to OGB's
            order-dependent chirality tags; ``'input'`` keeps OGB's atom order.
        transform, pre_transform: as in PyG; ``pre_transform`` runs after
            the DAG preparation and must return the graph.
        force_reload: process the raw files again.
    """

    def __init__(
        self,
        name: str,
        root: str = "dataset",
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        order: str = "canonical",
        force_reload: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name.startswith("ogbg-mol"):
            raise ValueError(f"{name!r} is not an OGB molecule data set (ogbg-mol*)")
        if order not in ("canonical", "input"):
            raise ValueError(f"order must be 'canonical' or 'input' for OGB data, got {order!r}")
        master = pd.read_csv(osp.join(osp.dirname(ogb.graphproppred.__file__), "master.csv"), index_col=0,
                             keep_default_na=False)
        if name not in master:
            known = [n for n in master.keys() if n.startswith("ogbg-mol")]
            raise ValueError(f"unknown OGB data set {name!r}; OGB's molecule sets are {known}")
        # The attributes OGB's __init__ sets (which cannot be called: it reads
        # the processed file with a bare torch.load and may prompt on stdin).
        self.name = name
        self.order = order
        self.meta_info = master[name]
        self.dir_name = "_".join(name.split("-"))
        if osp.exists(osp.join(root, self.dir_name + "_pyg")):
            self.dir_name += "_pyg"
        self.original_root = root
        self.root = osp.join(root, self.dir_name)
        self.download_name = self.meta_info["download_name"]
        self.num_tasks = int(self.meta_info["num tasks"])
        self.eval_metric = self.meta_info["eval metric"]
        self.task_type = self.meta_info["task type"]
        self.__num_classes__ = int(self.meta_info["num classes"])
        self.binary = self.meta_info["binary"] == "True"
        release = osp.join(self.root, f"RELEASE_v{self.meta_info['version']}.txt")
        if not osp.exists(release) and all(osp.exists(p) for p in self.raw_paths):
            raise ValueError(f"{self.root} holds no {osp.basename(release)}: it is an older OGB release of "
                             f"{name}; delete the folder to download the current one")
        self.key, opaque = options_key(version=2, order=order, pre_transform=pre_transform)
        self.setup(self.root, transform, pre_transform, None, force_reload, opaque)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, f"processed_dag_{self.key}")

    @property
    def processed_file_names(self) -> str:
        return "data.pt"

    def raw_source(self) -> tuple[str, str, str]:
        return (self.meta_info["url"], self.root,
                f"the contents of the zip's {self.download_name}/ folder (raw/, mapping/, split/, "
                f"RELEASE_v{self.meta_info['version']}.txt)")

    def download(self) -> None:
        # OGB's download_url would reuse the archive a killed download left half-written.
        with contextlib.suppress(FileNotFoundError):
            os.remove(osp.join(self.original_root, self.meta_info["url"].rpartition("/")[2]))
        path = download_url(self.meta_info["url"], self.original_root)
        extract_zip(path, self.original_root)
        os.unlink(path)
        shutil.rmtree(self.root)
        shutil.move(osp.join(self.original_root, self.download_name), self.root)

    def load_processed(self) -> None:
        self.load(self.processed_paths[0])

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
        if len(labels) != len(graphs):
            raise ValueError(f"{self.raw_dir}: {len(graphs)} graphs but {len(labels)} label rows")
        smiles = self._mapping_smiles()
        if smiles is not None and len(smiles) != len(graphs):
            raise ValueError(f"{self.root}/mapping/mol.csv.gz has {len(smiles)} SMILES for {len(graphs)} graphs")
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
            data_list = [apply_pre_transform(self.pre_transform, data, f"graph {i} of {self.name}")
                         for i, data in enumerate(data_list)]
        self.save_graphs(data_list, self.processed_paths[0])


class MoleculeNetDataset(MoleculeSplits, ProcessedDataset, MoleculeNet):
    r"""A MoleculeNet data set through PyG's :class:`~torch_geometric.datasets.MoleculeNet`
    (same names: ``'ESOL'``, ``'FreeSolv'``, ``'Lipo'``, ``'HIV'``, ``'BACE'``,
    ``'BBBP'``, ``'Tox21'``, ...), re-featurised from SMILES into DAG graphs.

    PyG downloads the raw CSV to ``<root>/<name>/raw/``; the rows are then
    converted with ``featurizer`` (OGB features, canonical order by default)
    using the same robust row handling as
    :class:`~pyg_plstm.datasets.MoleculeCSVDataset` (invalid SMILES skipped
    with one warning or raised per ``on_error``; ``report`` attribute;
    ``num_workers``; ``molecule_features``). No official split:
    :meth:`get_idx_split` gives the scaffold split by default.
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
        num_workers: int = 0,
        molecule_features: Optional[MoleculeVector] = None,
    ) -> None:
        self.name = str(name).lower()
        if self.name not in self.names:
            raise ValueError(f"unknown MoleculeNet data set {name!r}; choose one of "
                             f"{sorted(v[0] for v in self.names.values())}")
        if featurizer is not None and not isinstance(featurizer, MolToDAG):
            raise TypeError(f"featurizer must be a pyg_plstm.chem.MolToDAG, got {type(featurizer).__name__}")
        self.featurizer = featurizer or MolToDAG()
        self.on_error = on_error
        self.num_workers = check_num_workers(num_workers)
        self.molecule_features = molecule_features
        self.key, opaque = options_key(version=2, featurizer=self.featurizer, on_error=on_error,
                                       pre_transform=pre_transform, pre_filter=pre_filter,
                                       **molecule_key(molecule_features))
        self.setup(root, transform, pre_transform, pre_filter, force_reload, opaque)

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

    def raw_source(self) -> tuple[str, str, str]:
        url = self.url.format(self.names[self.name][1])
        unpacked = " (unpacked)" if url.endswith(".gz") else ""
        return url, self.raw_dir, f"that file{unpacked}, named {self.raw_file_names}"

    def load_processed(self) -> None:
        self.load(self.processed_paths[0])
        with open(self.processed_paths[1], encoding="utf-8") as f:
            self.report: dict[str, Any] = json.load(f)
        warn_skipped(self.report)

    def process(self) -> None:
        # PyG's own process() splits lines on commas after deleting quoted
        # text with a greedy regex; a CSV reader keeps the columns intact.
        frame = read_csv(self.raw_paths[0])
        _, _, _, smiles_idx, y_idx = self.names[self.name]
        targets = frame.iloc[:, y_idx]
        targets = targets.to_frame() if isinstance(targets, pd.Series) else targets
        data_list, report = convert_rows(
            self.raw_paths[0],
            list(range(len(frame))),
            frame.iloc[:, smiles_idx].tolist(),
            targets.values.tolist(),
            [str(c) for c in targets.columns],
            self.featurizer,
            self.on_error,
            self.pre_filter,
            self.pre_transform,
            self.num_workers,
            self.molecule_features,
        )
        self.save_graphs(data_list, self.processed_paths[0])
        atomic_save(report, self.processed_paths[1])


class TUDAGDataset(ProcessedDataset, TUDataset):
    r"""A TU data set (e.g. the pLSTM paper's ``'MUTAG'``, ``'NCI1'``,
    ``'PROTEINS'``, ``'PTC_FM'``) through PyG's
    :class:`~torch_geometric.datasets.TUDataset`, with
    :class:`~pyg_plstm.dag.ToDAG` applied after ``pre_filter`` and before
    ``pre_transform`` (which must return the graph).

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
        self.name = name
        self.cleaned = cleaned
        self.use_node_attr = use_node_attr
        self.use_edge_attr = use_edge_attr
        self.key, opaque = options_key(version=2, pre_transform=pre_transform, pre_filter=pre_filter)
        self.setup(root, transform, pre_transform, pre_filter, force_reload, opaque)

    @property
    def processed_dir(self) -> str:
        return f"{super().processed_dir}_dag_{self.key}"

    def raw_source(self) -> tuple[str, str, str]:
        url = f"{self.cleaned_url if self.cleaned else self.url}/{self.name}.zip"
        needed = ", ".join(self.raw_file_names)
        return url, self.raw_dir, f"the unpacked {self.name}_*.txt files of that zip ({needed}, ...)"

    def process(self) -> None:
        self.data, self.slices, sizes = read_tu_data(self.raw_dir, self.name)
        self._data_list = None
        graphs = [self.get(i) for i in range(len(self))]
        if self.pre_filter is not None:
            graphs = [g for g in graphs if self.pre_filter(g)]
        graphs = ToDAG().prepare_many(graphs)
        if self.pre_transform is not None:
            graphs = [apply_pre_transform(self.pre_transform, g, f"graph {i} of {self.name}")
                      for i, g in enumerate(graphs)]
        self._data_list = None
        self.save_graphs(graphs, self.processed_paths[0], sizes)

    def load_processed(self) -> None:
        out = self.load(self.processed_paths[0])
        if len(out) != 4:
            raise ValueError(f"{self.processed_paths[0]} does not hold a TU data set")
        self.sizes = out[2]
        # Continuous attributes come first; TUDataset drops them unless asked to keep them.
        if self._data.x is not None and not self.use_node_attr:
            self._data.x = self._data.x[:, self.num_node_attributes:]
        if self._data.edge_attr is not None and not self.use_edge_attr:
            self._data.edge_attr = self._data.edge_attr[:, self.num_edge_attributes:]
