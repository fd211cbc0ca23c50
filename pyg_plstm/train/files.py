r"""Writing result files safely: atomic replacement, no clobbering, never onto an input.

Every file the pipelines write goes through :func:`atomic_open` (or
:func:`atomic_write`): the content goes to a temporary file in the target's
folder, which then replaces the target in one ``os.replace``. A crash or
Ctrl-C mid-write leaves the previous file whole, never a truncated one.
:func:`check_output_file` and :func:`check_output_dir` refuse unusable output
paths up front with an :class:`OutputPathError` that names the path.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Optional

__all__ = ["OutputPathError", "atomic_open", "atomic_write", "same_file", "check_not_an_input",
           "check_output_file", "check_output_dir"]

PathLike = str | os.PathLike


class OutputPathError(ValueError):
    """An output path that cannot or must not be written (the message names it and says why)."""


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


def _check_parents(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"cannot write {path}: {parent} is a file, not a folder")
            return


def check_output_file(path: PathLike, inputs: Iterable[Optional[PathLike]] = (), overwrite: bool = False) -> Path:
    """The file ``path`` may be written: not a folder, not an input, not existing unless ``overwrite``."""
    path = Path(path).expanduser()
    check_not_an_input(path, inputs)
    if path.is_dir():
        raise OutputPathError(f"{path} is a folder; give a file name to write to")
    if path.exists() and not overwrite:
        raise OutputPathError(f"{path} already exists; pass --overwrite to replace it, or choose another file")
    _check_parents(path)
    return path


def check_output_dir(path: PathLike) -> Path:
    """The folder ``path`` exists or can be created (it is not a file, nor inside one)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{path} is a file; the output must be a folder (give a new or existing folder)")
    _check_parents(path)
    return path


@contextlib.contextmanager
def atomic_open(path: PathLike) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` when the block ends without an exception."""
    path = Path(path)
    _check_parents(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A unique name in the target's folder: os.replace is atomic only within one file system,
        # and concurrent writers must not share a temporary file.
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        handle = open(tmp, "xb")
    except OSError as err:
        raise OutputPathError(f"cannot write {path}: {err.strerror or err}") from err
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise OutputPathError(f"cannot write {path}: {err.strerror or err}") from err
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: PathLike, data: str | bytes) -> None:
    """Replace ``path`` by ``data`` (text is written as UTF-8) in one atomic step."""
    with atomic_open(path) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
