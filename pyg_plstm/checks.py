r"""Argument validators shared by the layers and models.

Each raises a :class:`ValueError` that names the argument and the value it got
(:func:`check_input_file` an :class:`OSError` naming the path), so a bad
argument fails where it was passed, not deep inside torch.
This module sits at the bottom of the package: it imports nothing from it.
"""
from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_choice", "check_device", "check_dropout", "check_input_file", "check_positive"]


def check_positive(**values: Any) -> None:
    """Require every keyword argument to be a positive :class:`int` (``bool`` is refused).

    Example: ``check_positive(heads=heads, hidden_channels=hidden_channels)``.
    """
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


def check_dropout(dropout: Any, name: str = "dropout") -> None:
    """Require a probability in :math:`[0, 1)` (a dropout of 1 would zero every activation)."""
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"`{name}` must lie in [0, 1), got {dropout!r}")


def check_choice(name: str, value: Any, choices: Collection[Any]) -> None:
    """Require ``value`` to be one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}")


def check_device(reference: str, device: torch.device, **tensors: Any) -> None:
    """Require every keyword argument that is a tensor to be on ``device``, the device of the argument
    named ``reference`` (other values are left to the type checks). Compares devices only: no data
    moves, no host synchronisation.

    Example: ``check_device("x", x.device, edge_index=edge_index, dag=dag.edge_index)``.
    """
    for name, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.device != device:
            raise ValueError(f"`{name}` is on {tensor.device} but `{reference}` is on {device}; "
                             "move them to one device")


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is an existing file; else a :class:`FileNotFoundError`
    or :class:`IsADirectoryError` naming ``what`` (e.g. ``"CSV file"``) and the path."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory; give the file itself")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path
