r"""Argument validators shared by the layers and models.

Each raises a :class:`ValueError` that names the argument and the value it got,
so a bad constructor argument fails where it was passed, not deep inside torch.
This module sits at the bottom of the package: it imports nothing from it.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = ["check_choice", "check_dropout", "check_positive"]


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
