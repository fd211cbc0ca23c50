r"""Molecular property data sets from CSV files, as prepared pLSTM DAG graphs.

:class:`MoleculeCSVDataset` reads any CSV with a SMILES column and numeric
target columns; :class:`SolubilityDataset` and :class:`FreeSolvDataset` are
the two data sets shipped with the package (usable offline).

Each row becomes a :class:`~pyg_plstm.dag.DAGData` through
:class:`~pyg_plstm.chem.MolToDAG` with ``y`` of shape ``[1, T]`` (float, NaN
for a missing value) and the input ``smiles``. Processing happens once per set
of options: the processed files live in ``<root>/processed/dag_<key>/`` where
``key`` hashes the CSV contents, the column choice, the featuriser and the
``pre_transform``/``pre_filter`` (their code, defaults, captured values and
state; see :mod:`pyg_plstm.datasets.processing`), so changing any of them
re-processes instead of silently reusing stale graphs. Processed files are
read with ``torch.load(weights_only=True)`` only.

CSV handling:

* read with pandas (quoted fields with commas are fine), every cell as text;
  column names are stripped of surrounding whitespace; a name that occurs
  twice in the header, or a row with more cells than the header, raises
  :class:`ValueError` (pandas would silently rename the column or shift the
  row);
* encoding: UTF-8 (a byte-order mark is accepted), falling back to Latin-1
  with a warning; an explicit ``encoding`` is used as is and a decoding
  failure raises :class:`ValueError` naming file and encoding;
* a missing column raises :class:`ValueError` naming it and listing the
  available ones; rows whose cells are all empty are dropped (counted);
* target cells that are empty or ``nan``/``na``/``n/a``/``none``/``null``
  (any case) are missing (NaN); anything else that is not a finite float32
  number is a row error, like an invalid SMILES or one too large for RDKit
  (see :data:`~pyg_plstm.chem.MAX_SMILES_ATOMS`);
* row errors are skipped with one warning (count and first examples) when
  ``on_error='skip'``, or raise :class:`ValueError` naming the row (0-based
  data row, header and blank lines not counted) and column when
  ``on_error='raise'``;
* duplicate molecules (same canonical SMILES) are kept and counted.

``num_workers > 0`` converts the rows in that many processes; the graphs are
identical, in the same order, to those of ``num_workers=0``.

The summary is in ``dataset.report`` (a dict, also stored as JSON next to the
processed data).
"""
from __future__ import annotations

import codecs
import json
import logging
import math
import multiprocessing
import os.path as osp
import warnings
from functools import partial
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm import tqdm

from pyg_plstm.checks import check_input_file
from pyg_plstm.chem import MolToDAG
from pyg_plstm.dag import DAGData
from pyg_plstm.datasets.processing import (
    ProcessedDataset,
    apply_pre_transform,
    atomic_save,
    check_num_workers,
    file_hash,
    options_key,
)
from pyg_plstm.splits import column_split, random_split, scaffold_split

__all__ = [
    "FreeSolvDataset",
    "MoleculeCSVDataset",
    "MoleculeSplits",
    "MoleculeVector",
    "SolubilityDataset",
    "check_columns",
    "molecule_key",
    "convert_rows",
    "warn_skipped",
    "molecules_from_csv",
    "parse_target",
    "read_csv",
    "shipped_csv",
    "shipped_file",
]

log = logging.getLogger(__name__)

ON_ERROR = ("skip", "raise")
_MISSING = frozenset({"", "nan", "na", "n/a", "none", "null"})
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)
_EXAMPLES = 5  # failures quoted in a warning
_REPORTED = 20  # failures / duplicates kept in the report


def parse_target(text: str) -> float:
    r"""A target cell as a float: missing markers give NaN, other non-numbers raise :class:`ValueError`."""
    value = text.strip()
    if value.lower() in _MISSING:
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{text!r} is not a finite number")
    if abs(number) > _FLOAT32_MAX:
        raise ValueError(f"{text!r} is outside the float32 range of the targets")
    return number


def _first_line_with_nul(path: str) -> Optional[int]:
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if b"\x00" in line:
                return number
    return None


def read_csv(path: str, encoding: Optional[str] = None) -> pd.DataFrame:
    r"""Read a CSV file with every cell as text (``''`` when empty); see the module notes on encodings."""
    check_input_file(path, "CSV file")
    encodings = [encoding] if encoding else ["utf-8-sig", "latin-1"]
    try:
        wide = bool(encoding) and codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r} for {path}") from None
    if not wide:
        # pandas before 3.0 cuts a cell at a NUL byte ('C\x00C' would be read as methane).
        line = _first_line_with_nul(path)
        if line is not None:
            raise ValueError(f"{path}: line {line} holds a NUL byte (\\x00), which no CSV of SMILES holds; "
                             f"is it a binary or UTF-16 file (pass its encoding)?")
    for enc in encodings:
        try:
            # header=None: pandas would otherwise rename a repeated column
            # ('y' -> 'y.1') and turn the first column into the index when
            # the rows are longer than the header, both silently.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=enc, header=None)
            break
        except UnicodeDecodeError as e:
            if enc == encodings[-1]:
                raise ValueError(f"cannot decode {path} as {enc}: {e}") from None
        except LookupError:
            raise ValueError(f"unknown encoding {enc!r} for {path}") from None
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path} is empty (not even a header row)") from None
        except pd.errors.ParserError as e:
            raise ValueError(f"cannot parse {path} as CSV (is a row longer than the header?): {e}") from None
    if enc != encodings[0]:
        warnings.warn(f"{path} is not valid UTF-8; read it as {enc}", stacklevel=2)
    names = [str(c).strip() for c in frame.iloc[0].fillna("")]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise ValueError(f"{path}: the header names column(s) {repeated} more than once; rename them")
    frame = frame.iloc[1:].reset_index(drop=True)
    frame.columns = names
    # Short rows are padded with NaN whatever keep_default_na says.
    return frame.fillna("")


def check_columns(frame: pd.DataFrame, names: Sequence[str], path: str) -> None:
    r"""Raise :class:`ValueError` naming the first of ``names`` that ``frame`` (from ``path``) lacks."""
    for name in names:
        if name not in frame.columns:
            raise ValueError(f"column {name!r} not found in {path}; available columns: {list(frame.columns)}")


def _as_list(cols: Union[str, Sequence[str], None]) -> list[str]:
    if cols is None:
        return []
    return [cols] if isinstance(cols, str) else list(cols)


# A row to convert: SMILES, target cells (None: no targets), row number.
Row = tuple[str, Optional[Sequence[str]], int]
# Molecule-level features of a row from its SMILES and row number, e.g. a datasets.descriptors.MoleculeFeatures.
MoleculeVector = Callable[[str, int], np.ndarray]


def _target_list(cols: Union[str, Sequence[str], None]) -> list[str]:
    """The target column names as a list; a name given twice would train two copies of one task."""
    names = _as_list(cols)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"target column(s) {repeated} named more than once; name each target once")
    return names


def _targets(target_names: Sequence[str], cells: Optional[Sequence[str]]) -> Optional[list[float]]:
    r"""The target cells of a row as floats (``None`` without target columns)."""
    if cells is None:
        return None
    y = []
    for name, cell in zip(target_names, cells):
        try:
            y.append(parse_target(cell))
        except ValueError as e:
            raise ValueError(f"column {name!r}: {e}") from None
    return y


def _convert_chunk(featurizer: MolToDAG, target_names: Sequence[str], molecule_features: Optional[MoleculeVector],
                   rows: Sequence[Row]) -> list[tuple[Optional[DAGData], str]]:
    r"""``(prepared graph, canonical SMILES)`` or ``(None, the reason it failed)``
    per row, by :meth:`MolToDAG.convert_many <pyg_plstm.chem.MolToDAG.convert_many>`."""
    parsed: list[Union[list[float], None, str]] = []
    for _, cells, _ in rows:
        try:
            parsed.append(_targets(target_names, cells))
        except ValueError as e:
            parsed.append(str(e))
    valid = [k for k, y in enumerate(parsed) if not isinstance(y, str)]
    converted = iter(featurizer.convert_many([rows[k][0] for k in valid], [parsed[k] for k in valid]))
    results = [(None, y) if isinstance(y, str) else next(converted) for y in parsed]
    if molecule_features is not None:
        for (graph, _), (smiles, _, number) in zip(results, rows):
            if graph is not None:
                # Not a row error: features that cannot be had for a valid molecule (a descriptor file lacking
                # it) are refused whatever on_error says.
                graph.molecule_features = torch.from_numpy(molecule_features(smiles, number)).reshape(1, -1)
    return results


def _convert_chunk_to_arrays(featurizer: MolToDAG, target_names: Sequence[str],
                             molecule_features: Optional[MoleculeVector],
                             rows: Sequence[Row]) -> list[tuple[Optional[dict], str]]:
    # Tensors sent between processes travel as shared-memory handles, one file
    # descriptor each; NumPy arrays travel as plain bytes.
    return [(None if graph is None else {k: v.numpy() if isinstance(v, Tensor) else v
                                         for k, v in graph.to_dict().items()}, text)
            for graph, text in _convert_chunk(featurizer, target_names, molecule_features, rows)]


def _from_arrays(graph: dict) -> DAGData:
    # The worker's to_dict() keeps the graph's attribute order, the one from_mapping needs.
    return DAGData.from_mapping({k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                                 for k, v in graph.items()})


_CHUNK = 256  # rows per task (one list of results per chunk)


def _converted(featurizer: MolToDAG, target_names: Sequence[str], molecule_features: Optional[MoleculeVector],
               rows: Sequence[Row], num_workers: int) -> Iterator[tuple[Optional[DAGData], str]]:
    r"""``(prepared graph or None, canonical SMILES or error)`` per row, in the order of ``rows``."""
    size = _CHUNK if num_workers == 0 else max(16, min(_CHUNK, math.ceil(len(rows) / (4 * num_workers))))
    chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
    if num_workers == 0:
        for chunk in chunks:
            yield from _convert_chunk(featurizer, target_names, molecule_features, chunk)
        return
    with multiprocessing.get_context().Pool(num_workers) as pool:
        # imap keeps the input order, so the result does not depend on the workers.
        for chunk in pool.imap(partial(_convert_chunk_to_arrays, featurizer, target_names, molecule_features),
                               chunks):
            for graph, text in chunk:
                yield (None if graph is None else _from_arrays(graph)), text


def convert_rows(
    source: str,
    rows: Sequence[int],
    smiles: Sequence[str],
    targets: Optional[Sequence[Sequence[str]]],
    target_names: Sequence[str],
    featurizer: MolToDAG,
    on_error: str,
    pre_filter: Optional[Callable] = None,
    pre_transform: Optional[Callable] = None,
    num_workers: int = 0,
    molecule_features: Optional[MoleculeVector] = None,
) -> tuple[list[DAGData], dict[str, Any]]:
    r"""The row loop of the CSV and MoleculeNet data sets: graphs plus a report.

    ``rows[k]`` is the row number that messages name for ``smiles[k]`` and
    ``targets[k]`` (the target cells as text, in the order of
    ``target_names``); see the module notes for errors and ``num_workers``.
    ``molecule_features(smiles, row)`` (a
    :class:`~pyg_plstm.datasets.descriptors.MoleculeFeatures`), if given,
    becomes each graph's ``molecule_features`` (``[1, dim]``, float64); a
    valid molecule it refuses (one a descriptor file lacks) raises its
    :class:`ValueError`, whatever ``on_error`` says.
    """
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if not isinstance(featurizer, MolToDAG):
        raise TypeError(f"featurizer must be a pyg_plstm.chem.MolToDAG, got {type(featurizer).__name__}")
    check_num_workers(num_workers)
    graphs: list[DAGData] = []
    canonicals: list[str] = []
    positions: list[int] = []
    failed: list[dict[str, Any]] = []
    num_failed = 0
    tasks = list(zip(smiles, targets if targets is not None else [None] * len(smiles), rows))
    results = _converted(featurizer, target_names, molecule_features, tasks, num_workers)
    try:
        with tqdm(results, total=len(rows), desc=f"Processing {osp.basename(source)}", unit="mol",
                  disable=None) as progress:
            for k, (graph, text) in enumerate(progress):
                if graph is None:
                    if on_error == "raise":
                        raise ValueError(f"{source}, row {rows[k]}: {text}")
                    num_failed += 1
                    if len(failed) < _REPORTED:
                        failed.append({"row": rows[k], "smiles": smiles[k], "error": text})
                    continue
                graphs.append(graph)
                canonicals.append(text)
                positions.append(k)
    finally:
        results.close()  # stops the worker processes at once

    data_list: list[DAGData] = []
    kept: list[int] = []
    kept_smiles: list[str] = []
    num_filtered = 0
    first_row: dict[str, int] = {}
    duplicates: list[dict[str, Any]] = []
    num_duplicates = 0
    missing = [0] * len(target_names)
    for data, canonical, k in zip(graphs, canonicals, positions):
        if pre_filter is not None and not pre_filter(data):
            num_filtered += 1
            continue
        y = data.get("y")
        row = rows[k]
        if pre_transform is not None:
            data = apply_pre_transform(pre_transform, data, f"{source}, row {row}")
        if canonical in first_row:
            num_duplicates += 1
            if len(duplicates) < _REPORTED:
                duplicates.append({"row": row, "first_row": first_row[canonical], "smiles": canonical})
        else:
            first_row[canonical] = row
        if y is not None:
            for t, value in enumerate(y.view(-1).tolist()):
                missing[t] += math.isnan(value)
        data_list.append(data)
        kept.append(row)
        kept_smiles.append(smiles[k])

    if num_duplicates:
        log.info("%s: %d duplicate molecules (same canonical SMILES) kept", source, num_duplicates)
    report = {
        "source": source,
        "num_rows": len(rows),
        "num_graphs": len(data_list),
        "num_failed": num_failed,
        "failed": failed,
        "num_filtered": num_filtered,
        "num_duplicates": num_duplicates,
        "duplicates": duplicates,
        "num_missing": dict(zip(target_names, missing)),
        "rows": kept,
        "smiles": kept_smiles,
    }
    if not data_list:
        warn_skipped(report)  # the reasons of the failures
        raise ValueError(f"{source}: no molecule left out of {len(rows)} rows "
                         f"({num_failed} failed, {num_filtered} filtered)")
    return data_list, report


def warn_skipped(report: dict[str, Any]) -> None:
    r"""One warning naming the rows of ``report`` (from :func:`convert_rows`) that could not be converted,
    if any: the data sets repeat it on every load, so cached data is never silently smaller than its file."""
    if report["num_failed"]:
        examples = "; ".join(f"row {f['row']}: {f['error']}" for f in report["failed"][:_EXAMPLES])
        warnings.warn(f"{report['source']}: skipped {report['num_failed']} of {report['num_rows']} rows that "
                      f"could not be converted (first: {examples})", stacklevel=3)


def molecules_from_csv(
    csv_path: str,
    smiles_col: str = "smiles",
    target_cols: Union[str, Sequence[str], None] = None,
    split_col: Optional[str] = None,
    featurizer: Optional[MolToDAG] = None,
    on_error: str = "skip",
    encoding: Optional[str] = None,
    pre_filter: Optional[Callable] = None,
    pre_transform: Optional[Callable] = None,
    num_workers: int = 0,
    molecule_features: Optional[MoleculeVector] = None,
) -> tuple[list[DAGData], dict[str, Any]]:
    r"""Convert a CSV of SMILES and targets into a list of DAG graphs and a report, in memory.

    This is the processing step of :class:`MoleculeCSVDataset`; see the module
    notes for the handling of encodings, missing values and bad rows, and
    :func:`convert_rows` for ``molecule_features``.
    """
    data_list, report = _read_molecules(csv_path, smiles_col, target_cols, split_col, featurizer, on_error, encoding,
                                        pre_filter, pre_transform, num_workers, molecule_features)
    warn_skipped(report)
    return data_list, report


def _read_molecules(
    csv_path: str,
    smiles_col: str,
    target_cols: Union[str, Sequence[str], None],
    split_col: Optional[str],
    featurizer: Optional[MolToDAG],
    on_error: str,
    encoding: Optional[str],
    pre_filter: Optional[Callable],
    pre_transform: Optional[Callable],
    num_workers: int,
    molecule_features: Optional[MoleculeVector],
) -> tuple[list[DAGData], dict[str, Any]]:
    """:func:`molecules_from_csv` without the warning (the data set gives it on every load)."""
    featurizer = featurizer or MolToDAG()
    targets = _target_list(target_cols)
    frame = read_csv(csv_path, encoding)
    check_columns(frame, [smiles_col, *targets, *_as_list(split_col)], csv_path)
    blank = frame.apply(lambda column: column.str.strip().eq("")).all(axis=1)
    rows = [i for i, is_blank in enumerate(blank.tolist()) if not is_blank]
    data_list, report = convert_rows(
        csv_path,
        rows,
        frame[smiles_col].iloc[rows].tolist(),
        frame[targets].iloc[rows].values.tolist() if targets else None,
        targets,
        featurizer,
        on_error,
        pre_filter,
        pre_transform,
        num_workers,
        molecule_features,
    )
    report["num_blank"] = len(frame) - len(rows)
    if split_col is not None:
        report["split"] = frame[split_col].iloc[report["rows"]].tolist()
    return data_list, report


def molecule_key(molecule_features: Optional[MoleculeVector]) -> dict[str, Any]:
    """The processed-data key entry of ``molecule_features``: none without them, so that data sets processed
    before molecule features existed keep their keys."""
    return {} if molecule_features is None else {"molecule_features": getattr(molecule_features, "key",
                                                                              molecule_features)}


class MoleculeSplits:
    r"""``get_idx_split`` for data sets with a ``report`` holding ``smiles`` (and maybe ``split``)."""

    report: dict[str, Any]

    def get_idx_split(
        self,
        method: str = "auto",
        frac_train: float = 0.8,
        frac_valid: float = 0.1,
        frac_test: float = 0.1,
        seed: int = 0,
    ) -> dict[str, Tensor]:
        r"""Indices ``{'train', 'valid', 'test'}`` of the graphs, like OGB's ``get_idx_split``.

        Args:
            method: ``'file'`` (the split column; valid carved from train,
                ``frac_valid`` of the train rows, when the file has none),
                ``'scaffold'`` (:func:`~pyg_plstm.splits.scaffold_split`),
                ``'random'`` (seeded) or ``'auto'`` (``'file'`` when a split
                column was given, else ``'scaffold'``).
        """
        has_column = self.report.get("split") is not None
        if method == "auto":
            method = "file" if has_column else "scaffold"
        if method == "file":
            if not has_column:
                raise ValueError("this data set has no split column; use method='scaffold' or 'random'")
            return column_split(self.report["split"], frac_valid=frac_valid, seed=seed)
        if method == "scaffold":
            return scaffold_split(self.report["smiles"], frac_train, frac_valid, frac_test)
        if method == "random":
            return random_split(len(self.report["smiles"]), frac_train, frac_valid, frac_test, seed)
        raise ValueError(f"unknown split method {method!r}; choose 'auto', 'file', 'scaffold' or 'random'")


class MoleculeCSVDataset(MoleculeSplits, ProcessedDataset):
    r"""Any CSV of SMILES and numeric targets as an in-memory data set of DAG graphs.

    Args:
        root: directory for the processed files (``<root>/processed/``).
        csv_path: the CSV file (read in place, never copied).
        smiles_col: name of the SMILES column.
        target_cols: target column(s); ``y`` has shape ``[1, len(target_cols)]``.
            ``None`` gives graphs without ``y``.
        split_col: optional column with train/valid/test labels, used by
            :meth:`get_idx_split`.
        featurizer: conversion options (default :class:`~pyg_plstm.chem.MolToDAG`:
            OGB features, canonical atom order).
        on_error: ``'skip'`` (warn once, with a count and examples) or
            ``'raise'`` for rows that cannot be converted.
        encoding: file encoding; ``None`` tries UTF-8, then Latin-1.
        transform, pre_transform, pre_filter, force_reload, log: as in
            :class:`~torch_geometric.data.InMemoryDataset`; ``pre_transform``
            must return the graph.
        num_workers: processes converting the rows (``0``: this one); the
            result does not depend on it.
        molecule_features: a
            :class:`~pyg_plstm.datasets.descriptors.MoleculeFeatures` giving
            every graph ``molecule_features`` (``[1, dim]``, float64); part of
            the processed-data key (a descriptor file by its contents). A
            molecule a descriptor file lacks raises :class:`ValueError`.

    Example::

        dataset = MoleculeCSVDataset("runs/mydata", "my.csv", "smiles", ["logS"])
        split = dataset.get_idx_split("scaffold")
        loader = DataLoader(dataset[split["train"]], batch_size=64, shuffle=True)
    """

    def __init__(
        self,
        root: str,
        csv_path: str,
        smiles_col: str = "smiles",
        target_cols: Union[str, Sequence[str], None] = None,
        split_col: Optional[str] = None,
        featurizer: Optional[MolToDAG] = None,
        on_error: str = "skip",
        encoding: Optional[str] = None,
        transform: Optional[Callable] = None,
        pre_transform: Optional[Callable] = None,
        pre_filter: Optional[Callable] = None,
        force_reload: bool = False,
        log: bool = True,
        num_workers: int = 0,
        molecule_features: Optional[MoleculeVector] = None,
    ) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        check_input_file(csv_path, "CSV file")
        if featurizer is not None and not isinstance(featurizer, MolToDAG):
            raise TypeError(f"featurizer must be a pyg_plstm.chem.MolToDAG, got {type(featurizer).__name__}")
        self.csv_path = csv_path
        self.smiles_col = smiles_col
        self.target_cols = _target_list(target_cols)
        self.split_col = split_col
        self.featurizer = featurizer or MolToDAG()
        self.on_error = on_error
        self.encoding = encoding
        self.num_workers = check_num_workers(num_workers)
        self.molecule_features = molecule_features
        # Known before InMemoryDataset.__init__ asks for processed_dir.
        self.key, opaque = options_key(
            version=2,
            csv=file_hash(csv_path),
            smiles_col=smiles_col,
            target_cols=self.target_cols,
            split_col=split_col,
            featurizer=self.featurizer,
            on_error=on_error,
            encoding=encoding,
            pre_transform=pre_transform,
            pre_filter=pre_filter,
            **molecule_key(molecule_features),
        )
        self.setup(root, transform, pre_transform, pre_filter, force_reload, opaque, log)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, "processed", f"dag_{self.key}")

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt", "report.json"]

    def load_processed(self) -> None:
        self.load(self.processed_paths[0])
        with open(self.processed_paths[1], encoding="utf-8") as f:
            self.report: dict[str, Any] = json.load(f)
        warn_skipped(self.report)

    def process(self) -> None:
        data_list, report = _read_molecules(
            self.csv_path,
            self.smiles_col,
            self.target_cols,
            self.split_col,
            self.featurizer,
            self.on_error,
            self.encoding,
            self.pre_filter,
            self.pre_transform,
            self.num_workers,
            self.molecule_features,
        )
        self.save_graphs(data_list, self.processed_paths[0])
        atomic_save(report, self.processed_paths[1])

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({len(self)}, {osp.basename(self.csv_path)})"


_PACKAGED = osp.join(osp.dirname(osp.abspath(__file__)), "_data")
_CHECKOUT = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), "data")
SHIPPED = ("solubility", "freesolv")


def shipped_csv(name: str) -> str:
    r"""Path of a CSV shipped with the package: ``'solubility'`` or ``'freesolv'``.

    The copies in ``pyg_plstm/datasets/_data/`` are installed with the package
    (package data); in a source checkout the repository's ``data/`` folder is
    the fallback.
    """
    if name not in SHIPPED:
        raise ValueError(f"no shipped data set {name!r}; available: {SHIPPED}")
    return shipped_file(f"{name}.csv")


def shipped_file(filename: str, checkout_folder: str = "") -> str:
    r"""Path of data file ``filename`` shipped with the package: its copy in ``pyg_plstm/datasets/_data/``
    (package data), else, in a source checkout, the one in ``data/<checkout_folder>``."""
    checkout = osp.join(_CHECKOUT, checkout_folder)
    for folder in (_PACKAGED, checkout):
        path = osp.join(folder, filename)
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f"{filename} is neither in {_PACKAGED} nor in {checkout}; reinstall the package")


class SolubilityDataset(MoleculeCSVDataset):
    r"""Aqueous solubility of 1,282 organic compounds (Huuskonen, J. Chem. Inf.
    Comput. Sci. 2000), shipped with the package.

    Target ``log_solubility`` (log S, mol/L; regression). The file's own
    train (1,025) / test (257) column is the default split of
    :meth:`get_idx_split`, with valid carved from train. Four SMILES in the
    file are invalid for RDKit and are skipped with a warning (1,278 graphs).
    """

    def __init__(self, root: str, featurizer: Optional[MolToDAG] = None, on_error: str = "skip",
                 transform: Optional[Callable] = None, pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False, log: bool = True,
                 num_workers: int = 0, molecule_features: Optional[MoleculeVector] = None) -> None:
        super().__init__(root, shipped_csv("solubility"), "smiles", ["log_solubility"], "split", featurizer,
                         on_error, None, transform, pre_transform, pre_filter, force_reload, log, num_workers,
                         molecule_features)


class FreeSolvDataset(MoleculeCSVDataset):
    r"""Experimental hydration free energies of 642 small neutral molecules
    (FreeSolv; Mobley & Guthrie, J. Comput.-Aided Mol. Des. 2014), shipped with
    the package.

    Target ``expt_kcal_mol`` (kcal/mol; regression). There is no split column:
    :meth:`get_idx_split` defaults to the scaffold split.
    """

    def __init__(self, root: str, featurizer: Optional[MolToDAG] = None, on_error: str = "skip",
                 transform: Optional[Callable] = None, pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False, log: bool = True,
                 num_workers: int = 0, molecule_features: Optional[MoleculeVector] = None) -> None:
        super().__init__(root, shipped_csv("freesolv"), "smiles", ["expt_kcal_mol"], None, featurizer,
                         on_error, None, transform, pre_transform, pre_filter, force_reload, log, num_workers,
                         molecule_features)
