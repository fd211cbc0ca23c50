r"""Writing result files safely: atomic replacement, no clobbering, never onto an input.

Every file the pipelines write goes through :func:`~pyg_plstm.atomic.atomic_open`
(or :func:`~pyg_plstm.atomic.atomic_write`, re-exported here): a crash, Ctrl-C
or ``kill -9`` mid-write leaves the previous file whole, never a truncated one
(see :mod:`pyg_plstm.atomic`). :func:`check_output_file` and
:func:`check_output_dir` refuse unusable output paths up front with an
:class:`OutputPathError` that names the path. Folders of training runs (one
writer per run, runs replaced only once finished) are
:mod:`pyg_plstm.train.run_folder`'s.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from pyg_plstm.atomic import OutputPathError, PathLike, atomic_open, atomic_write, check_parent_folders

__all__ = ["OutputPathError", "atomic_open", "atomic_write", "same_file", "check_not_an_input",
           "check_output_file", "check_output_dir"]


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file (symlinks and hard links included)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def check_not_an_input(path: PathLike, inputs: Iterable[Optional[PathLike]]) -> None:
    """Refuse ``path`` if it is one of ``inputs`` (``None`` entries are skipped)."""
    for source in inputs:
        if source is not None and same_file(path, source):
            raise OutputPathError(f"refusing to write {path}: it is an input of this command ({source})")


def check_output_file(path: PathLike, inputs: Iterable[Optional[PathLike]] = (), overwrite: bool = False) -> Path:
    """The file ``path`` may be written: not a folder, not an input, not existing unless ``overwrite``."""
    path = Path(path).expanduser()
    check_not_an_input(path, inputs)
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give a file name to write to")
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it, or choose another file")
    check_parent_folders(path)
    return path


def check_output_dir(path: PathLike) -> Path:
    """The folder ``path`` exists or can be created (it is not a file, nor inside one)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} is a file; the output must be a folder (give a new or existing folder)")
    check_parent_folders(path)
    return path
