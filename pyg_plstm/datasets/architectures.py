r"""Neural architectures as DAGs with their accuracy: the ENAS data set of D-VAE ("NA", ``'enas6'``).

Every line of ``final_structures6.txt`` (shipped; D-VAE, Zhang et al., NeurIPS
2019, MIT licence) is a Python literal ``[[t0], [t1, s], ..., [t5, s, s, s, s,
s]], accuracy``, read with :func:`ast.literal_eval`. Operation layer ``i``
(0-based) is ``[type, skip_0, ..., skip_{i-1}]``. As D-VAE decodes it, the DAG
has ``layers + 2`` nodes in topological order: node ``0`` is the input (type
``0``), node ``i + 1`` is layer ``i`` (type ``type + 2``), the last node is the
output (type ``1``); the edges are ``i -> i + 1`` for every layer, ``j -> i +
1`` for every ``skip_j == 1`` and ``layers -> layers + 1``. Node features are
the one-hot types (:data:`NUM_NODE_TYPES` columns), ``y`` is ``[1, 1]`` (the
CIFAR-10 weight-sharing accuracy). The edges are kept as they are
(``ToDAG(directed=True)``): no orientation heuristic.
"""
from __future__ import annotations

import ast
import math
import os.path as osp
import random
from typing import Callable, Optional

import torch
from torch import Tensor
from torch_geometric.data import Data

from pyg_plstm.checks import check_input_file
from pyg_plstm.dag import ToDAG
from pyg_plstm.datasets.molecules import shipped_file
from pyg_plstm.datasets.processing import ProcessedDataset, apply_pre_transform, file_hash, options_key
from pyg_plstm.splits import column_split, random_split

__all__ = ["BURN_IN", "NUM_OPERATIONS", "NUM_NODE_TYPES", "SPLIT_METHODS", "NeuralArchitectures",
           "architecture_graph", "decode_architecture"]

#: The six operations of the ENAS macro space (node types 2 .. 7).
NUM_OPERATIONS = 6
#: Input, output and the operations.
NUM_NODE_TYPES = NUM_OPERATIONS + 2
#: Lines D-VAE skips before its split.
BURN_IN = 1000
#: ``'literature'`` (D-VAE's split) or ``'random'``.
SPLIT_METHODS = ("literature", "random")
_LITERATURE_TRAIN = 0.9
_FILE = "final_structures6.txt"


def decode_architecture(text: str) -> tuple[int, list[tuple[int, int]], list[int], float]:
    r"""``(num_nodes, edges, node_types, accuracy)`` of one line, decoded as the module notes say.

    Raises :class:`ValueError` saying what is wrong with the line.
    """
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as err:
        raise ValueError(f"not a Python literal ({type(err).__name__})") from None
    if not (isinstance(value, tuple) and len(value) == 2):
        raise ValueError("expected '[layers], accuracy'")
    layers, accuracy = value
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not math.isfinite(accuracy):
        raise ValueError(f"the accuracy {accuracy!r} is not a finite number")
    if not isinstance(layers, list) or not layers:
        raise ValueError("the layers must be a non-empty list")
    types, edges = [0], []
    for i, layer in enumerate(layers):
        if not (isinstance(layer, list) and len(layer) == i + 1):
            raise ValueError(f"layer {i} must be a list [type] + {i} skip flag(s), got {layer!r}")
        op, *skips = layer
        if isinstance(op, bool) or not isinstance(op, int) or not 0 <= op < NUM_OPERATIONS:
            raise ValueError(f"layer {i}: the operation type {op!r} is not an integer in [0, {NUM_OPERATIONS})")
        if any(isinstance(s, bool) or s not in (0, 1) for s in skips):
            raise ValueError(f"layer {i}: skip flags must be 0 or 1, got {skips!r}")
        types.append(op + 2)
        edges.append((i, i + 1))
        edges += [(j, i + 1) for j, flag in enumerate(skips) if flag == 1]
    output = len(layers) + 1
    types.append(1)
    edges.append((len(layers), output))
    return output + 1, edges, types, float(accuracy)


def architecture_graph(text: str) -> Data:
    r"""One line as a directed :class:`~torch_geometric.data.Data` (not yet prepared with ``ToDAG``)."""
    num_nodes, edges, types, accuracy = decode_architecture(text)
    x = torch.zeros(num_nodes, NUM_NODE_TYPES)
    x[torch.arange(num_nodes), torch.tensor(types)] = 1.0
    edge_index = torch.tensor(edges, dtype=torch.long).t().contiguous()
    return Data(x=x, edge_index=edge_index, y=torch.tensor([[accuracy]]), num_nodes=num_nodes)


def _read_graphs(path: str) -> list[Data]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().rstrip().splitlines()
    if not lines:
        raise ValueError(f"{path} holds no architectures")
    graphs = []
    for number, line in enumerate(lines, start=1):
        try:
            graphs.append(architecture_graph(line))
        except ValueError as err:
            raise ValueError(f"{path}, line {number}: {err}: {line[:80]!r}") from None
    return graphs


class NeuralArchitectures(ProcessedDataset):
    r"""The 20,020 ENAS architectures of D-VAE (``'enas6'``) as prepared DAGs, one per line of the file.

    Args:
        root: directory for the processed files (``<root>/processed/``).
        path: a file in the same format (default: the shipped
            ``final_structures6.txt``). A malformed line raises
            :class:`ValueError` naming the file, the line number (from 1) and
            what is wrong.
        transform, pre_transform, pre_filter, force_reload, log: as in
            :class:`~torch_geometric.data.InMemoryDataset`.

    Graph ``i`` is line ``i + 1`` of the file (unless a ``pre_filter`` drops
    graphs); :meth:`get_idx_split` gives D-VAE's split by default.
    """

    def __init__(self, root: str, path: Optional[str] = None, transform: Optional[Callable] = None,
                 pre_transform: Optional[Callable] = None, pre_filter: Optional[Callable] = None,
                 force_reload: bool = False, log: bool = True) -> None:
        self.path = path if path is not None else shipped_file(_FILE, "neural_architectures")
        check_input_file(self.path, "architecture file")
        self.key, opaque = options_key(version=1, file=file_hash(self.path), pre_transform=pre_transform,
                                       pre_filter=pre_filter)
        self.setup(root, transform, pre_transform, pre_filter, force_reload, opaque, log)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, "processed", f"architectures_{self.key}")

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt"]

    def load_processed(self) -> None:
        self.load(self.processed_paths[0])

    def process(self) -> None:
        graphs = ToDAG(directed=True).prepare_many(_read_graphs(self.path))
        if self.pre_filter is not None:
            graphs = [g for g in graphs if self.pre_filter(g)]
        if self.pre_transform is not None:
            graphs = [apply_pre_transform(self.pre_transform, g, f"line {i + 1}") for i, g in enumerate(graphs)]
        self.save_graphs(graphs, self.processed_paths[0])

    def get_idx_split(self, method: str = "literature", frac_train: float = 0.8, frac_valid: float = 0.1,
                      frac_test: float = 0.1, seed: int = 0, burn_in: int = BURN_IN) -> dict[str, Tensor]:
        r"""Indices ``{'train', 'valid', 'test'}`` of the graphs.

        ``'literature'``: D-VAE's split. The first ``burn_in`` graphs are left
        out, the others shuffled with ``random.Random(0).shuffle``; the first
        90 % are train, the rest test. ``frac_valid`` of the train graphs
        (seeded by ``seed``) become valid (``0``: none). ``'random'``: a
        seeded ``frac_train`` / ``frac_valid`` / ``frac_test`` split of all
        graphs.
        """
        if method == "random":
            return random_split(len(self), frac_train, frac_valid, frac_test, seed)
        if method != "literature":
            raise ValueError(f"unknown split method {method!r}; choose one of {SPLIT_METHODS}")
        if isinstance(burn_in, bool) or not isinstance(burn_in, int) or not 0 <= burn_in < len(self):
            raise ValueError(f"`burn_in` must be an integer in [0, {len(self)}), got {burn_in!r}")
        order = list(range(len(self) - burn_in))
        random.Random(0).shuffle(order)
        labels = ["train"] * len(order)
        for i in order[int(len(order) * _LITERATURE_TRAIN):]:
            labels[i] = "test"
        return {name: idx + burn_in for name, idx in column_split(labels, frac_valid, seed).items()}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({len(self)}, {osp.basename(self.path)})"
