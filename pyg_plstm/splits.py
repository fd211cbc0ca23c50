r"""Train/valid/test splits for graph data sets.

Every function returns index tensors in the layout of OGB's
``get_idx_split()``: a dict of sorted :class:`torch.LongTensor` under
``'train'``, ``'valid'`` and ``'test'`` (``stratified_kfold`` returns one dict
with ``'train'`` and ``'test'`` per fold). All splits are deterministic: the
same input and seed give the same indices.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    "column_split",
    "murcko_scaffold",
    "random_split",
    "scaffold_split",
    "stratified_kfold",
]

_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "valid": "valid",
    "validation": "valid",
    "val": "valid",
    "dev": "valid",
    "test": "test",
    "testing": "test",
}


def _check_fracs(frac_train: float, frac_valid: float, frac_test: float) -> None:
    fracs = (frac_train, frac_valid, frac_test)
    if min(fracs) < 0 or not math.isclose(sum(fracs), 1.0, abs_tol=1e-6):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fracs}")


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"`{name}` must be an integer >= 0, got {value!r}")


def _as_split(train: Sequence[int], valid: Sequence[int], test: Sequence[int]) -> dict[str, Tensor]:
    return {name: torch.tensor(sorted(idx), dtype=torch.long)
            for name, idx in (("train", train), ("valid", valid), ("test", test))}


def random_split(
    num_items: int,
    frac_train: float = 0.8,
    frac_valid: float = 0.1,
    frac_test: float = 0.1,
    seed: int = 0,
) -> dict[str, Tensor]:
    r"""A seeded random split of ``range(num_items)``.

    The first ``round(frac_train * n)`` items of a seeded permutation go to
    train, the next ``round(frac_valid * n)`` to valid, the rest to test.
    """
    _check_fracs(frac_train, frac_valid, frac_test)
    _check_count("num_items", num_items)
    _check_count("seed", seed)
    perm = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed)).tolist()
    n_train = round(frac_train * num_items)
    n_valid = min(round(frac_valid * num_items), num_items - n_train)
    return _as_split(perm[:n_train], perm[n_train:n_train + n_valid], perm[n_train + n_valid:])


def murcko_scaffold(smiles: str, include_chirality: bool = True) -> str:
    r"""The Bemis-Murcko scaffold of a molecule as canonical SMILES (``''`` for acyclic molecules)."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    from pyg_plstm.chem import parse_smiles, rdkit_quiet

    mol = parse_smiles(smiles)
    with rdkit_quiet():
        return MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=include_chirality)


def scaffold_split(
    smiles: Sequence[str],
    frac_train: float = 0.8,
    frac_valid: float = 0.1,
    frac_test: float = 0.1,
    include_chirality: bool = True,
) -> dict[str, Tensor]:
    r"""The deterministic Bemis-Murcko scaffold split of Hu et al. (2020), used by OGB.

    Molecules are grouped by scaffold (:func:`murcko_scaffold`; all acyclic
    molecules share the empty scaffold). Groups are ordered by size, largest
    first, ties by their first index, *larger first* (exactly as in the
    reference implementation of Hu et al., which sorts ``(size, first
    index)`` in reverse). Each group then goes as a whole to train if it fits
    within ``frac_train * n``, else to valid if train + valid stay within
    ``(frac_train + frac_valid) * n``, else to test. Scaffolds never straddle
    two parts; rare scaffolds end up in valid/test.
    """
    _check_fracs(frac_train, frac_valid, frac_test)
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(smiles):
        try:
            scaffold = murcko_scaffold(s, include_chirality)
        except ValueError as err:
            raise ValueError(f"item {i}: {err}") from None
        groups.setdefault(scaffold, []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (len(g), g[0]), reverse=True)

    n = len(smiles)
    train_cut, valid_cut = frac_train * n, (frac_train + frac_valid) * n
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    for group in ordered:
        if len(train) + len(group) <= train_cut:
            train += group
        elif len(train) + len(valid) + len(group) <= valid_cut:
            valid += group
        else:
            test += group
    return _as_split(train, valid, test)


def column_split(values: Sequence[str], frac_valid: float = 0.1, seed: int = 0) -> dict[str, Tensor]:
    r"""The split a data file defines in its own column.

    ``values`` holds one label per item: ``train``/``training``,
    ``valid``/``validation``/``val``/``dev`` or ``test``/``testing``
    (case-insensitive). When no item is labelled valid, a validation set of
    ``round(frac_valid * n_train)`` items is carved from the train items by a
    seeded permutation, so the file's test set stays untouched.
    """
    parts: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    for i, value in enumerate(values):
        name = _SPLIT_NAMES.get(str(value).strip().lower())
        if name is None:
            raise ValueError(f"item {i}: unknown split label {value!r}; expected one of {sorted(_SPLIT_NAMES)}")
        parts[name].append(i)
    if not parts["valid"] and parts["train"]:
        if not 0 <= frac_valid < 1:
            raise ValueError(f"frac_valid must be in [0, 1), got {frac_valid}")
        _check_count("seed", seed)
        train = parts["train"]
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
        n_valid = round(frac_valid * len(train))
        parts["valid"] = [train[j] for j in perm[:n_valid]]
        parts["train"] = [train[j] for j in perm[n_valid:]]
    return _as_split(parts["train"], parts["valid"], parts["test"])


def stratified_kfold(
    labels: Sequence[int] | Tensor, n_splits: int = 10, seed: Optional[int] = 0
) -> list[dict[str, Tensor]]:
    r"""Stratified k-fold cross-validation folds, the TU benchmark protocol.

    Uses :class:`sklearn.model_selection.StratifiedKFold` with
    ``shuffle=True, random_state=seed``, the setup of Xu et al. (GIN, 2019)
    that later TU results (including pLSTM's) follow, so fold ``k`` is the
    same as theirs for the same seed. ``seed=None`` keeps the data order
    (no shuffling). Returns ``n_splits`` dicts ``{'train', 'test'}``.
    """
    from sklearn.model_selection import StratifiedKFold

    if isinstance(labels, Tensor):
        labels = labels.view(-1).tolist()
    labels = list(labels)
    skf = StratifiedKFold(n_splits=n_splits, shuffle=seed is not None, random_state=seed)
    return [{"train": torch.tensor(train, dtype=torch.long), "test": torch.tensor(test, dtype=torch.long)}
            for train, test in skf.split([[0]] * len(labels), labels)]
