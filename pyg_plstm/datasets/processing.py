r"""What every data set of this package shares: processed-file keys, safe loading and saving,
clear download errors.

* **Keys.** Processed files live in a directory named after a hash of the
  processing options (:func:`options_key`). Functions and transforms enter it
  through :func:`fingerprint`: code (nested functions included), default
  values, the values a closure captured, the globals the code reads, and an
  object's attributes, recursively. Two closures that differ only in a
  captured number get different keys. What cannot be fingerprinted (an object
  with hidden C-level state, e.g. a file handle) makes the data set process its
  raw data again on every load, with a one-line warning, instead of trusting
  files that may be stale.
* **Loading.** :class:`ProcessedDataset` reads processed files with
  ``torch.load(weights_only=True)`` only: a file that holds anything but
  tensors and plain containers (a planted pickle payload, a truncated or
  foreign file) is never unpickled; the data set is processed again, with a
  warning. PyG's ``pre_transform.pt`` / ``pre_filter.pt``, which PyG reads
  with ``weights_only=False``, are neither read nor written (the key replaces
  them).
* **Saving.** Processed files are written with :func:`~pyg_plstm.atomic.atomic_open`
  (a temporary file, flushed to disk, then renamed): a run interrupted or killed
  at any moment never leaves a half-written file under a processed file's name,
  and the next save removes a killed run's temporary file.
* **Downloads.** A failed download raises :class:`DownloadError` naming the
  URL and the folder where the raw files can be put by hand to work offline.
  What a failed, interrupted or killed download put into the raw folder is
  removed (at once, or by the next load), so a truncated raw file is never
  processed; raw files put there by hand are kept.
"""
from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import json
import logging
import os
import os.path as osp
import pickle
import shutil
import sys
import sysconfig
import types
import urllib.error
import warnings
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

from pyg_plstm.atomic import atomic_open, process_alive
from pyg_plstm.dag import DAGData

__all__ = [
    "DownloadError",
    "ProcessedDataset",
    "Unfingerprintable",
    "apply_pre_transform",
    "atomic_save",
    "check_num_workers",
    "file_hash",
    "fingerprint",
    "options_key",
]


class Unfingerprintable(ValueError):
    r"""Raised by :func:`fingerprint` for an object whose behaviour its state does not reveal."""


class DownloadError(urllib.error.URLError):
    r"""A raw file could not be downloaded; the message names the URL and the offline folder."""

    def __init__(self, url: str, folder: str, files: str, reason: BaseException) -> None:
        super().__init__(reason)
        self.url, self.folder = url, folder
        self.message = (f"cannot download {url} ({type(reason).__name__}: {reason}); to work offline, "
                        f"put {files} into {folder}")

    def __str__(self) -> str:
        return self.message


# ------------------------------------------------------------------ fingerprints

_MAX_DEPTH = 40
# Code of installed libraries is identified by its name and bytecode alone; the
# globals it reads (whole library modules) are not followed.
_LIBRARY_PATHS = tuple({osp.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "purelib", "platlib")})


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


def _is_library(obj: Any) -> bool:
    code = getattr(obj, "__code__", None)
    path = osp.realpath(code.co_filename) if code is not None else ""
    return path.startswith(_LIBRARY_PATHS)


def _code_text(code: types.CodeType) -> str:
    # frozenset constants (from `x in {...}`) are sorted: their order is randomised per process.
    consts = [_code_text(c) if isinstance(c, types.CodeType)
              else repr(sorted(map(repr, c))) if isinstance(c, frozenset) else repr(c) for c in code.co_consts]
    return _digest(code.co_code + repr((consts, code.co_names)).encode())


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


# Values whose repr says everything about them.
_PLAIN = (type(None), bool, int, float, complex, str, bytes, range, slice, enum.Enum, np.generic, np.dtype,
          torch.dtype, torch.device, torch.Size)


class _Fingerprinter:
    def __init__(self) -> None:
        self.path: set[int] = set()  # ids of the objects being described (cycles)

    def __call__(self, obj: Any, where: str = "") -> str:
        if isinstance(obj, _PLAIN):
            return f"{type(obj).__name__}:{obj!r}"
        if id(obj) in self.path:
            return "<cycle>"
        if len(self.path) > _MAX_DEPTH:
            raise Unfingerprintable(f"{where or 'the object'} nests deeper than {_MAX_DEPTH} levels")
        self.path.add(id(obj))
        try:
            return self._describe(obj, where)
        finally:
            self.path.discard(id(obj))

    def _describe(self, obj: Any, where: str) -> str:
        if isinstance(obj, (list, tuple)):
            return f"{type(obj).__name__}[{','.join(self(v, where) for v in obj)}]"
        if isinstance(obj, dict):
            items = sorted(f"{self(k, where)}={self(v, where)}" for k, v in obj.items())
            return f"{type(obj).__name__}{{{','.join(items)}}}"
        if isinstance(obj, (set, frozenset)):
            return f"{type(obj).__name__}{{{','.join(sorted(self(v, where) for v in obj))}}}"
        if isinstance(obj, Tensor):
            if obj.layout != torch.strided or obj.device.type == "meta":
                raise Unfingerprintable(f"{where or 'the object'} holds a {obj.layout} tensor on {obj.device}")
            flat = obj.detach().cpu().contiguous().reshape(-1)
            return f"tensor:{obj.dtype}:{tuple(obj.shape)}:{_digest(flat.view(torch.uint8).numpy().tobytes())}"
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                return f"ndarray:{obj.shape}:{self(obj.tolist(), where)}"
            return f"ndarray:{obj.dtype}:{obj.shape}:{_digest(np.ascontiguousarray(obj).tobytes())}"
        if isinstance(obj, types.ModuleType):
            return f"module:{obj.__name__}"
        if isinstance(obj, logging.Logger):  # infrastructure; its handlers hold streams and locks
            return f"logger:{obj.name}"
        if isinstance(obj, functools.partial):
            return f"partial({self(obj.func, where)},{self(obj.args, where)},{self(obj.keywords, where)})"
        if isinstance(obj, types.MethodType):
            return f"method({self(obj.__func__, where)},{self(obj.__self__, where)})"
        if isinstance(obj, types.FunctionType):
            return self._function(obj)
        if isinstance(obj, (types.BuiltinFunctionType, types.WrapperDescriptorType, types.MethodDescriptorType,
                            types.MethodWrapperType)):
            owner = getattr(obj, "__self__", None)
            bound = "" if owner is None or isinstance(owner, types.ModuleType) else self(owner, where)
            return f"builtin:{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj)}({bound})"
        if isinstance(obj, type):
            return self._class(obj)
        return self._instance(obj, where)

    def _function(self, fn: types.FunctionType) -> str:
        name = f"{fn.__module__}.{fn.__qualname__}"
        parts = [name, _code_text(fn.__code__), self(fn.__defaults__, name), self(fn.__kwdefaults__, name)]
        cells = fn.__closure__ or ()
        for var, cell in zip(fn.__code__.co_freevars, cells):
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not filled yet
                value = None
            parts.append(f"{var}={self(value, f'the variable {var!r} captured by {name}')}")
        if not _is_library(fn):
            for var in sorted(_global_names(fn.__code__) & fn.__globals__.keys()):
                parts.append(f"{var}={self(fn.__globals__[var], f'the global {var!r} read by {name}')}")
        return f"function({';'.join(parts)})"

    def _class(self, cls: type) -> str:
        # Its own methods' code (so that editing a transform's body changes the
        # key) and plain class constants.
        members = []
        for key, value in sorted(vars(cls).items()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                members += [f"{key}:{_code_text(f.__code__)}" for f in (value.fget, value.fset, value.fdel)
                            if isinstance(f, types.FunctionType)]
            elif isinstance(value, types.FunctionType):
                members.append(f"{key}:{_code_text(value.__code__)}")
            elif not key.startswith("__") and isinstance(value, (type(None), bool, int, float, str, tuple)):
                members.append(f"{key}={value!r}")
        return f"class:{cls.__module__}.{cls.__qualname__}[{','.join(members)}]"

    def _instance(self, obj: Any, where: str) -> str:
        cls = type(obj)
        hidden = [k for k in cls.__mro__[:-1] if not _defined_in_python(k)]
        if hidden:
            # A C-level object (a file, a lock, an RDKit molecule): its state is not in its attributes.
            raise Unfingerprintable(f"{where + ' is ' if where else ''}a {cls.__module__}.{cls.__qualname__} "
                                    f"object, whose state is hidden in {hidden[0].__qualname__}")
        state: dict[str, Any] = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
        for klass in cls.__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                    state[slot] = getattr(obj, slot)
        return f"object({self._class(cls)},{self(state, where or f'a {cls.__qualname__} object')})"


def _defined_in_python(cls: type) -> bool:
    # C extension classes come from .so/.pyd files or built-in modules;
    # __main__ (a script, a notebook) defines Python classes only.
    module = sys.modules.get(cls.__module__)
    return cls.__module__ == "__main__" or str(getattr(module, "__file__", None) or "").endswith(".py")


def fingerprint(obj: Any) -> str:
    r"""A text that identifies what ``obj`` (a function, transform, or plain value) does,
    stable across processes (no memory addresses).

    See the module notes for what enters it. Raises :class:`Unfingerprintable`
    for objects whose behaviour their state does not reveal.
    """
    return _Fingerprinter()(obj)


def options_key(**parts: Any) -> tuple[str, list[str]]:
    r"""A short hash naming the processed directory for these options, and the
    reasons why some of them could not be fingerprinted (an empty list when all
    could; otherwise the caller must not trust existing processed files)."""
    described, opaque = {}, []
    for name, value in parts.items():
        try:
            described[name] = fingerprint(value)
        except Unfingerprintable as err:
            described[name] = f"<unfingerprintable {type(value).__qualname__}>"
            opaque.append(f"{name}: {err}")
    return _digest(json.dumps(described, sort_keys=True).encode())[:12], opaque


def file_hash(path: str) -> str:
    r"""SHA-1 of a file's contents."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------ processing helpers

def check_num_workers(num_workers: Any) -> int:
    r"""``num_workers`` must be an integer >= 0 (``0``: convert in this process)."""
    if not isinstance(num_workers, int) or isinstance(num_workers, bool) or num_workers < 0:
        raise ValueError(f"`num_workers` must be an integer >= 0 (0 converts in this process), got {num_workers!r}")
    return num_workers


def apply_pre_transform(pre_transform: Callable, data: Data, where: str) -> Data:
    r"""``pre_transform(data)``, refusing anything but a graph as its result (e.g. ``None``
    from a transform that forgot ``return data``)."""
    out = pre_transform(data)
    if not isinstance(out, Data):
        raise TypeError(f"pre_transform returned {type(out).__name__} for {where}; it must return the graph "
                        "(a torch_geometric.data.Data)")
    return out


def atomic_save(obj: Any, path: str) -> None:
    r"""``torch.save`` (or JSON for a ``.json`` path) through :func:`~pyg_plstm.atomic.atomic_open`:
    a kill at any moment leaves ``path`` whole or absent, and a killed writer's temporary file is
    removed by the next save of ``path``."""
    with atomic_open(path) as handle:
        if path.endswith(".json"):
            handle.write(json.dumps(obj).encode())
        else:
            torch.save(obj, handle)


def _check_root(root: str) -> None:
    if osp.exists(root) and not osp.isdir(root):
        raise NotADirectoryError(f"the data set root {root} is a file; pass a folder (it is created if missing)")


class ProcessedDataset(InMemoryDataset):
    r"""The loading, saving and downloading rules of the module notes, for an
    :class:`~torch_geometric.data.InMemoryDataset`.

    Subclasses list it before the PyG/OGB class they extend, call
    :meth:`setup` instead of that class's ``__init__`` (which would read the
    processed files with PyG's unsafe fallback), implement
    :meth:`load_processed` and, if they download, :meth:`raw_source`.
    """

    def setup(self, root: str, transform: Optional[Callable], pre_transform: Optional[Callable],
              pre_filter: Optional[Callable], force_reload: bool, opaque: Sequence[str], log: bool = True) -> None:
        r"""Download and process as needed, then load (processing again if the files cannot be read safely).

        ``opaque``: the options :func:`options_key` could not fingerprint; if
        any, the raw data is processed again whatever is on disk.
        """
        _check_root(root)
        if opaque and not force_reload:
            warnings.warn(f"{type(self).__name__}: processing again, since the processed files cannot be "
                          f"matched to {'; '.join(opaque)}", stacklevel=3)
            force_reload = True
        InMemoryDataset.__init__(self, root, transform, pre_transform, pre_filter, log=log,
                                 force_reload=force_reload)
        try:
            self.load_processed()
        except Exception as err:  # anything a foreign, planted or truncated file can cause
            if isinstance(err, pickle.UnpicklingError):
                reason = "they hold Python objects other than tensors and plain containers, never unpickled here"
            else:
                reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            warnings.warn(f"{type(self).__name__}: cannot use the processed files in {self.processed_dir} "
                          f"({reason}); processing the raw data again", stacklevel=3)
            self.process()
            try:
                self.load_processed()
            except Exception as again:
                raise ValueError(f"cannot load the processed files just written to {self.processed_dir}: "
                                 f"{again}") from again

    def load_processed(self) -> None:
        r"""Read the processed files (with :meth:`load`) and set the attributes they hold."""
        raise NotImplementedError

    def raw_source(self) -> tuple[str, str, str]:
        r"""The download URL, the folder for raw files put there by hand, and a description of them."""
        raise NotImplementedError

    def load(self, path: str, data_cls: type = DAGData) -> tuple:
        r"""Read a processed file with ``torch.load(weights_only=True)`` and set ``data`` and
        ``slices`` from it; returns everything the file holds."""
        out = torch.load(path, weights_only=True)
        if not (isinstance(out, tuple) and 2 <= len(out) <= 4 and isinstance(out[0], dict)):
            raise ValueError(f"{path} does not hold a processed data set")
        if isinstance(out[-1], type) and issubclass(out[-1], Data):
            data_cls = out[-1]
        self.data, self.slices = data_cls.from_dict(out[0]), out[1]
        return out

    def save_graphs(self, data_list: Sequence[Data], path: str, *extra: Any) -> None:
        r"""Collate ``data_list`` and save it atomically in :meth:`load`'s format."""
        data, slices = self.collate(data_list)
        atomic_save((data.to_dict(), slices, *extra, type(data)), path)

    def _process(self) -> None:
        # PyG's version also reads/writes pre_transform.pt with weights_only=False.
        if not self.force_reload and all(osp.exists(p) for p in self.processed_paths):
            return
        os.makedirs(self.processed_dir, exist_ok=True)
        self.process()

    def _download(self) -> None:
        marker = osp.join(self.raw_dir, _DOWNLOADING)
        _discard_interrupted_download(marker)
        if all(osp.exists(p) for p in self.raw_paths):
            return
        os.makedirs(self.raw_dir, exist_ok=True)
        atomic_save({"pid": os.getpid(), "before": os.listdir(self.raw_dir)}, marker)
        try:
            self.download()
        except BaseException as err:
            _discard_interrupted_download(marker, force=True)
            if not isinstance(err, Exception):
                raise
            url, folder, files = self.raw_source()  # urllib, fsspec/aiohttp, zip errors: the library decides
            raise DownloadError(url, folder, files, err) from err
        with contextlib.suppress(FileNotFoundError):  # a download may replace the whole folder (OGB's)
            os.remove(marker)


# Written into the raw folder while a download runs: what was there before, and the downloading process.
# PyG's and OGB's download_url reuse any file already there, so a download killed midway would
# otherwise leave a truncated raw file that is processed (or a truncated archive that fails) forever.
_DOWNLOADING = ".downloading.json"


def _discard_interrupted_download(marker: str, force: bool = False) -> None:
    """Remove what a download that did not finish put into the raw folder of ``marker`` (every entry
    not listed in it), then the marker; a download whose process still runs is left alone unless ``force``."""
    try:
        with open(marker, encoding="utf-8") as f:
            record = json.load(f)
        before, pid = set(record["before"]), int(record["pid"])
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):  # not a marker this package wrote: nothing to go by
        os.remove(marker)
        return
    if not force and pid != os.getpid() and process_alive(pid):
        return
    folder = osp.dirname(marker)
    for name in set(os.listdir(folder)) - before - {osp.basename(marker)}:
        path = osp.join(folder, name)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    os.remove(marker)
