r"""Writing a file so that a kill at any moment leaves either the old file or the new one, never a part.

:func:`atomic_open` (or :func:`atomic_write`) writes to a temporary file in
the target's folder, flushes it to disk and then replaces the target in one
``os.replace``. An exception or Ctrl-C mid-write removes the temporary file;
the temporary file of a writer killed outright (``kill -9``) names its
process and is removed by the next write of the same file once that process
is gone. A temporary file never carries the target's name, so nothing reads
it in the target's place. Every file the package writes goes through here
(run folders: :mod:`pyg_plstm.train.run_folder`; reports: :mod:`pyg_plstm.train.files`; processed data sets:
:mod:`pyg_plstm.datasets.processing`). This module imports nothing from the package.
"""
from __future__ import annotations

import contextlib
import glob
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

__all__ = ["OutputPathError", "atomic_open", "atomic_write", "check_parent_folders", "process_alive"]

PathLike = str | os.PathLike


class OutputPathError(ValueError):
    """An output path that cannot or must not be written (the message names it and says why)."""


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def check_parent_folders(path: Path) -> None:
    """Refuse ``path`` with an :class:`OutputPathError` when a folder above it is a file."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"cannot write {path}: {parent} is a file, not a folder")
            return


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files of ``path`` left by writers that no longer run (killed mid-write)."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = tmp.name[len(prefix):].split(".")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: PathLike) -> Iterator[BinaryIO]:
    """A binary file whose content replaces ``path`` when the block ends without an exception."""
    path = Path(path)
    check_parent_folders(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        # A unique name in the target's folder: os.replace is atomic only within one file system,
        # and concurrent writers must not share a temporary file. The pid tells whether its writer lives.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
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
