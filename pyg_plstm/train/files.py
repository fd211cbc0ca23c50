r"""Writing result files safely: atomic replacement, no clobbering, never onto an input, one writer per run.

Every file the pipelines write goes through :func:`~pyg_plstm.atomic.atomic_open`
(or :func:`~pyg_plstm.atomic.atomic_write`, re-exported here): a crash, Ctrl-C
or ``kill -9`` mid-write leaves the previous file whole, never a truncated one
(see :mod:`pyg_plstm.atomic`). :func:`check_output_file` and
:func:`check_output_dir` refuse unusable output paths up front with an
:class:`OutputPathError` that names the path.

A run folder has one writer at a time: :func:`run_lock` holds an exclusive
lock (``flock``, POSIX) on ``.<folder>.lock`` beside it, so a second process
writing the same run is refused while the first lives, and the lock of a
process that died is free again (the kernel drops it). :func:`replacing_dir`
builds a new run beside the old one and swaps it in only once it has finished.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator, Optional

from pyg_plstm.atomic import (
    OutputPathError,
    PathLike,
    atomic_open,
    atomic_write,
    check_parent_folders,
    process_alive,
)

__all__ = ["OutputPathError", "atomic_open", "atomic_write", "same_file", "check_not_an_input",
           "check_output_file", "check_output_dir", "process_alive", "run_lock",
           "replacing_dir"]


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


# Run folders whose lock this process holds, with the number of nested run_lock blocks:
# flock conflicts between two descriptors of one process too, and the CLI locks a run before fit does.
_HELD_LOCKS: dict[str, int] = {}


def _lock_path(run_dir: Path) -> Path:
    return run_dir.with_name(f".{run_dir.name}.lock")


def _open_locked(lock: Path, run_dir: Path) -> int:
    """A descriptor of ``lock`` holding its exclusive flock, or an :class:`OutputPathError` naming the holder."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputPathError(f"{run_dir} is being written by another pyg-plstm process (pid {holder}, "
                                  f"lock {lock}); wait for it to finish, or choose another --out") from None
        # The holder before us may have removed the file after we opened it: our lock is then on
        # an unlinked file that a third process cannot see; take the lock on the current file instead.
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _recover(run_dir: Path) -> None:
    """Finish or undo what a :func:`replacing_dir` of a killed process left (the lock is held)."""
    for leftover in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.new-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for old in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.old-*"):
        if run_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:  # killed between the two renames of the swap: the old run is whole
            os.replace(old, run_dir)


@contextlib.contextmanager
def run_lock(run_dir: PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of the run folder ``run_dir`` for the block (re-entrant within a process).

    Raises :class:`OutputPathError` naming the other process while one holds
    it. On entry, what a killed :func:`replacing_dir` left is cleaned up.
    """
    run_dir = Path(run_dir).expanduser()
    lock = _lock_path(run_dir)
    check_parent_folders(lock)
    key = str(lock.absolute())
    if key in _HELD_LOCKS:
        _HELD_LOCKS[key] += 1
        try:
            yield run_dir
        finally:
            _HELD_LOCKS[key] -= 1
        return
    # Folders made for the lock alone are removed with it: a refused command leaves nothing behind.
    made = [folder for folder in lock.parents if not folder.exists()]
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = _open_locked(lock, run_dir)
    except OSError as err:
        raise OutputPathError(f"cannot lock {run_dir}: {err.strerror or err}") from err
    _HELD_LOCKS[key] = 1
    try:
        _recover(run_dir)
        yield run_dir
    finally:
        del _HELD_LOCKS[key]
        lock.unlink(missing_ok=True)
        os.close(fd)  # releases the flock
        for folder in made:
            with contextlib.suppress(OSError):  # not empty: something was written there
                folder.rmdir()


@contextlib.contextmanager
def replacing_dir(target: PathLike) -> Iterator[Path]:
    """A new folder beside ``target`` that replaces it when the block ends without an exception.

    Until then ``target`` stays as it was; an exception removes the new folder.
    Use it under :func:`run_lock` of ``target``, which also completes or undoes
    a swap cut short by a kill.
    """
    target = Path(target)
    staging = target.with_name(f".{target.name}.new-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
