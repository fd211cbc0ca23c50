r"""Content fingerprints of the training data, so a resumed or merged run is known to use the same data.

A fingerprint holds, per split, the number of graphs, and SHA-256 digests of
the split's indices into its data set, of its labels and of every other
attribute of its graphs (the features), in order. :func:`data_changes` names
what differs between two fingerprints.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_geometric.data import Dataset as PyGDataset

__all__ = ["scan_split", "data_changes", "PROCESSING_META"]

# The entry of a run's ``meta`` that reports how the raw rows were read (how many were skipped, and
# why): it follows from the data, whose content the fingerprint compares, so settings checks skip it.
PROCESSING_META = "processing"

# What a change of each digest means.
_PARTS = {"indices": "other graphs (the split's indices changed)", "labels": "labels changed",
          "features": "features (graph contents) changed"}


def _update(digest: Any, key: str, value: Any) -> None:
    digest.update(key.encode())
    if isinstance(value, Tensor):
        digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    else:
        digest.update(repr(value).encode())


def _tensor_digest(value: Tensor) -> str:
    digest = hashlib.sha256()
    _update(digest, "", value)
    return digest.hexdigest()


def scan_split(name: str, dataset: Dataset) -> tuple[Tensor, dict[str, Any]]:
    """The labels of split ``name`` (``[num_graphs, num_targets]``, float64, NaN = missing) and its fingerprint.

    Raises :class:`ValueError` naming the graph if one has no labels ``y`` or a
    different number of them than the split's first graph.
    """
    features = hashlib.sha256()
    rows = []
    for i in range(len(dataset)):
        graph = dataset[i]
        y = getattr(graph, "y", None)
        if y is None:
            raise ValueError(f"graph {i} of the {name!r} split has no labels `y`")
        rows.append(y.reshape(1, -1))
        if rows[-1].size(1) != rows[0].size(1):
            raise ValueError(f"graph {i} of the {name!r} split has {rows[-1].size(1)} label(s), graph 0 has "
                             f"{rows[0].size(1)}")
        for key in sorted(graph.keys()):
            if key != "y":
                _update(features, key, graph[key])
    labels = torch.cat(rows).double()
    # A split cut from a PyG data set knows which of its graphs it holds; any other is taken in order.
    indices = dataset.indices() if isinstance(dataset, PyGDataset) else range(len(dataset))
    return labels, {"graphs": len(dataset), "indices": _tensor_digest(torch.as_tensor(list(indices))),
                    "labels": _tensor_digest(labels), "features": features.hexdigest()}


def data_changes(saved: Optional[Mapping[str, Mapping[str, Any]]],
                 current: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What differs between fingerprints ``saved`` and ``current`` (``{split: scan_split(...)[1]}``), one line each."""
    if saved is None:
        return ["the earlier run records no fingerprint of its data (made by an older pyg-plstm)"]
    changes = []
    for split in sorted(set(saved) | set(current)):
        if split not in current:
            changes.append(f"split {split!r}: in the earlier run, absent now")
        elif split not in saved:
            changes.append(f"split {split!r}: absent in the earlier run, present now")
        elif saved[split]["graphs"] != current[split]["graphs"]:
            changes.append(f"split {split!r}: {saved[split]['graphs']} graphs in the earlier run, "
                           f"{current[split]['graphs']} now")
        else:
            changes += [f"split {split!r}: {what}" for part, what in _PARTS.items()
                        if saved[split][part] != current[split][part]]
    return changes
