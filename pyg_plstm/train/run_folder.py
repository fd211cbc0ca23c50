r"""Run folders: the output folder of a command that trains (model, seed) runs and reports over all of them.

``pyg-plstm train`` and ``pyg-plstm long-range`` keep their runs through
:class:`RunFolder`, each with its :class:`Layout` (where runs and their
records lie, which report files are rebuilt from them), under one set of rules:

* the folder is a folder, or can be made; its report files are rebuilt from
  every finished run in it, so several commands may share it, and a report file
  in a folder without finished runs belongs to someone else: it is replaced
  only with ``--overwrite`` (:meth:`RunFolder.check_reports`);
* a run has one writer at a time: :meth:`RunFolder.lock` holds an exclusive
  lock (``flock``, POSIX) on ``.<run>.lock`` beside every run of the command, so
  a second process writing one of them is refused while the first lives, and
  the lock of a process that died is free again (the kernel drops it);
* a finished run on other data refuses the command (its results cannot share
  a table), and so does a run of a planned model with other settings, unless it
  is one of the command's own runs and ``--overwrite`` retrains it
  (:meth:`RunFolder.plan`);
* a run is replaced only once its new run has finished: :func:`replacing_dir`
  builds a new run folder beside the old one and swaps it in at the end, and a
  record is written atomically (:meth:`RunFolder.write_record`).
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

from pyg_plstm.atomic import OutputPathError, PathLike, check_parent_folders
from pyg_plstm.train.files import atomic_write, check_not_an_input, check_output_dir
from pyg_plstm.train.report import REPORT_FILES, json_safe

__all__ = ["RESULT_FILE", "TRAIN_RUNS", "Layout", "RunFolder", "load_runs", "record_settings", "replacing_dir",
           "run_lock", "run_settings", "settings_changes"]

# What a finished run of `pyg-plstm train` leaves in its folder.
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class Layout:
    """Where a command keeps its runs in a run folder.

    ``run`` and ``record`` are paths relative to the folder with ``{model}``
    and ``{seed}`` fields: what one run writes (a folder or a file) and its
    record once finished, a JSON dict with at least ``fields``. ``reports``
    are the files rebuilt from every record; ``what`` names a run in messages.
    """

    run: str
    record: str
    reports: tuple[str, ...]
    what: str
    fields: tuple[str, ...] = ("model", "seed", "result")


# pyg-plstm train: <model>/seed<k>/ holds checkpoints, test predictions and, once finished, result.json.
TRAIN_RUNS = Layout(run="{model}/seed{seed}", record=f"{{model}}/seed{{seed}}/{RESULT_FILE}", reports=REPORT_FILES,
                    what="pyg-plstm run")


def run_settings(config: Mapping[str, Any], model_config: Mapping[str, Any]) -> dict[str, Any]:
    """What makes runs of one model comparable across seeds: its ``make_model`` arguments and its
    :class:`~pyg_plstm.train.TrainConfig` fields but the seed, as stored in JSON."""
    settings = {"model_config": dict(model_config), "config": {k: v for k, v in config.items() if k != "seed"}}
    return json.loads(json.dumps(json_safe(settings)))


def record_settings(record: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`run_settings` of a run record."""
    return run_settings(record.get("config", {}), record.get("model_config", {}))


def settings_changes(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Every setting that differs between two :func:`run_settings`, as ``"name: <saved> there, <current> now"``."""
    changes = []
    for group in ("model_config", "config"):
        old, new = saved.get(group, {}), current.get(group, {})
        changes += [f"{key}: {old.get(key, '<unset>')!r} there, {new.get(key, '<unset>')!r} now"
                    for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return changes


class RunFolder:
    """The output folder ``path`` of a command keeping its runs as ``layout`` says (refused if it is a file)."""

    def __init__(self, path: PathLike, layout: Layout) -> None:
        self.path = check_output_dir(path)
        self.layout = layout

    def run_path(self, model: str, seed: int) -> Path:
        """What run ``(model, seed)`` writes: its folder or file."""
        return self.path / self.layout.run.format(model=model, seed=seed)

    def record_path(self, model: str, seed: int) -> Path:
        """The record of run ``(model, seed)`` once it has finished."""
        return self.path / self.layout.record.format(model=model, seed=seed)

    def _record_paths(self) -> list[Path]:
        return sorted(self.path.glob(self.layout.record.format(model="*", seed="*")))

    def records(self, order: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The records of the finished runs, models in ``order`` (others after them, by name), then by seed."""
        records = []
        for path in self._record_paths():
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise ValueError(f"{path} is not a readable run record: {err}") from err
            missing = [field for field in self.layout.fields if not isinstance(record, dict) or field not in record]
            if missing:
                raise ValueError(f"{path} is not a {self.layout.what} record (it has no {', '.join(missing)})")
            records.append(record)

        def key(record: Mapping[str, Any]) -> tuple[int, str, int]:
            model = record["model"]
            return (order.index(model) if model in order else len(order), model, record["seed"])

        return sorted(records, key=key)

    @contextlib.contextmanager
    def lock(self, runs: Iterable[tuple[str, int]]) -> Iterator[None]:
        """Hold the :func:`run_lock` of every ``(model, seed)`` run for the block: a second command writing one of
        them meanwhile is refused instead of mixing its files with this one's."""
        with contextlib.ExitStack() as stack:
            for model, seed in runs:
                stack.enter_context(run_lock(self.run_path(model, seed)))
            yield

    def check_reports(self, overwrite: bool, inputs: Iterable[Optional[PathLike]] = ()) -> None:
        """Refuse report files that are ``inputs`` of the command, and report files of a folder without finished
        runs (someone else's) unless ``overwrite``."""
        inputs = list(inputs)
        for name in self.layout.reports:
            check_not_an_input(self.path / name, inputs)
        foreign = [self.path / name for name in self.layout.reports if (self.path / name).exists()]
        if foreign and not self._record_paths() and not overwrite:
            raise OutputPathError(f"{foreign[0]} exists but {self.path} holds no finished {self.layout.what}; pass "
                                  "--overwrite to replace it, or choose another --out")

    def check_started(self, runs: Iterable[tuple[str, int]], resume: bool, overwrite: bool) -> None:
        """Refuse runs the folder already holds (finished or not) unless they are to be continued (``resume``)
        or started over (``overwrite``)."""
        if resume or overwrite:
            return
        for model, seed in runs:
            path = self.run_path(model, seed)
            held = sorted(path.iterdir()) if path.is_dir() else [path] if path.exists() else []
            if held:
                raise OutputPathError(f"{self.path} already holds runs ({held[0]}); pass --resume to continue them, "
                                      "--overwrite to start them over, or choose another --out")

    def plan(self, records: Iterable[Mapping[str, Any]], planned: Mapping[str, Mapping[str, Any]],
             seeds: Sequence[int], data_changes: Callable[[Mapping[str, Any]], list[str]], overwrite: bool,
             keep: bool) -> set[tuple[str, int]]:
        r"""Check that the command's runs can join the finished ``records``; return those of its own runs kept.

        Args:
            planned: the :func:`run_settings` of every model the command trains.
            seeds: the seeds it trains them with.
            data_changes: how a record's data differs from the command's, as
                ``"name: <there> there, <now> now"`` lines (none: the same data).
            overwrite: retrain the command's own runs made with other settings.
            keep: keep the command's own finished runs made with the same
                settings (returned); otherwise they are left to ``--resume`` /
                ``--overwrite`` (see :meth:`check_started`) and none is returned.

        Raises :class:`OutputPathError` for a run on other data, and for a run of
        a planned model with other settings but an own run to ``overwrite``: the
        runs of one table share their data, and the seeds of one model their settings.
        """
        kept = set()
        for record in records:
            model, seed = record["model"], record["seed"]
            conflicts = data_changes(record)
            if conflicts:
                raise OutputPathError(f"{self.path} holds a finished run on other data ({model} seed {seed}):\n  "
                                      + "\n  ".join(conflicts) + "\nits results cannot share a table with this "
                                      "run's; choose another --out")
            if model not in planned or (seed in seeds and not keep):
                continue
            changes = settings_changes(record_settings(record), planned[model])
            if not changes:
                if seed in seeds:
                    kept.add((model, seed))
            elif seed not in seeds or not overwrite:
                advice = ("pass --overwrite to retrain it, or choose another --out" if seed in seeds else
                          "the seeds of one model must share their settings to share a table; choose another --out")
                raise OutputPathError(f"{self.path} holds {model} seed {seed} made with other settings:\n  "
                                      + "\n  ".join(changes) + "\n" + advice)
        return kept

    def write_record(self, record: Mapping[str, Any]) -> None:
        """Record a finished run (atomically); runs of its model with other settings go: one table row, one
        setting."""
        model, seed = record["model"], record["seed"]
        for stale in self.records():
            if stale["model"] == model and settings_changes(record_settings(stale), record_settings(record)):
                self.record_path(model, stale["seed"]).unlink()
        atomic_write(self.record_path(model, seed), json.dumps(json_safe(record), indent=2))


def load_runs(out_dir: PathLike) -> list[dict[str, Any]]:
    """The finished runs of ``pyg-plstm train`` in ``out_dir``: the records ``<model>/seed<k>/result.json``
    written by :func:`~pyg_plstm.train.fit`, by model name and seed.

    Records are dicts with ``model``, ``seed``, ``result`` (a
    :meth:`~pyg_plstm.train.RunResult.to_dict`) and the run's settings
    (``config``, ``model_config``, ``task``, ``meta``, ``data``).
    """
    return RunFolder(out_dir, TRAIN_RUNS).records()


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
