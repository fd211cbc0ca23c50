r"""Molecular property data sets from CSV files, as prepared pLSTM DAG graphs.

:class:`MoleculeCSVDataset` reads any CSV with a SMILES column and numeric
target columns; :class:`SolubilityDataset` and :class:`FreeSolvDataset` are
the two data sets shipped with the package (usable offline).

Each row becomes a :class:`~pyg_plstm.dag.DAGData` through
:class:`~pyg_plstm.chem.MolToDAG` with ``y`` of shape ``[1, T]`` (float, NaN
for a missing value) and the input ``smiles``. Processing happens once per set
of options: the processed files live in ``<root>/processed/dag_<key>/`` where
``key`` hashes the CSV contents, the column choice, the featuriser and the
``pre_transform``/``pre_filter`` (by ``repr``; plain functions by name and
bytecode), so changing any of them re-processes instead of silently reusing
stale graphs. Objects whose ``repr`` omits their settings (PyG's default
``BaseTransform`` repr) cannot be told apart: pass ``force_reload=True``
after changing them.

CSV handling:

* read with pandas (quoted fields with commas are fine), every cell as text;
  column names are stripped of surrounding whitespace;
* encoding: UTF-8 (a byte-order mark is accepted), falling back to Latin-1
  with a warning; an explicit ``encoding`` is used as is and a decoding
  failure raises :class:`ValueError` naming file and encoding;
* a missing column raises :class:`ValueError` naming it and listing the
  available ones; rows whose cells are all empty are dropped (counted);
* target cells that are empty or ``nan``/``na``/``n/a``/``none``/``null``
  (any case) are missing (NaN); anything else that is not a finite number is
  a row error, like an invalid SMILES;
* row errors are skipped with one warning (count and first examples) when
  ``on_error='skip'``, or raise :class:`ValueError` naming the row (0-based
  data row, header and blank lines not counted) and column when
  ``on_error='raise'``;
* duplicate molecules (same canonical SMILES) are kept and counted.

The summary is in ``dataset.report`` (a dict, also stored as JSON next to the
processed data).
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os.path as osp
import types
import warnings
from typing import Any, Callable, Optional, Sequence, Union

import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset
from tqdm import tqdm

from pyg_plstm.chem import MolToDAG, rdkit_quiet
from pyg_plstm.dag import DAGData, ToDAG
from pyg_plstm.splits import column_split, random_split, scaffold_split

__all__ = [
    "FreeSolvDataset",
    "MoleculeCSVDataset",
    "SolubilityDataset",
    "molecules_from_csv",
    "parse_target",
    "read_csv",
    "shipped_csv",
]

log = logging.getLogger(__name__)

ON_ERROR = ("skip", "raise")
_MISSING = frozenset({"", "nan", "na", "n/a", "none", "null"})
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
    return number


def read_csv(path: str, encoding: Optional[str] = None) -> pd.DataFrame:
    r"""Read a CSV file with every cell as text (``''`` when empty); see the module notes on encodings."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"CSV file not found: {path}")
    encodings = [encoding] if encoding else ["utf-8-sig", "latin-1"]
    for enc in encodings:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=enc)
            break
        except UnicodeDecodeError as e:
            if enc == encodings[-1]:
                raise ValueError(f"cannot decode {path} as {enc}: {e}") from None
        except LookupError:
            raise ValueError(f"unknown encoding {enc!r} for {path}") from None
        except pd.errors.EmptyDataError:
            raise ValueError(f"{path} is empty (not even a header row)") from None
        except pd.errors.ParserError as e:
            raise ValueError(f"cannot parse {path} as CSV: {e}") from None
    if enc != encodings[0]:
        warnings.warn(f"{path} is not valid UTF-8; read it as {enc}", stacklevel=2)
    frame.columns = [str(c).strip() for c in frame.columns]
    # Short rows are padded with NaN whatever keep_default_na says.
    return frame.fillna("")


def _columns(frame: pd.DataFrame, names: Sequence[str], path: str) -> None:
    for name in names:
        if name not in frame.columns:
            raise ValueError(f"column {name!r} not found in {path}; available columns: {list(frame.columns)}")


def _as_list(cols: Union[str, Sequence[str], None]) -> list[str]:
    if cols is None:
        return []
    return [cols] if isinstance(cols, str) else list(cols)


def _convert_rows(
    source: str,
    rows: Sequence[int],
    smiles: Sequence[str],
    targets: Optional[Sequence[Sequence[str]]],
    target_names: Sequence[str],
    featurizer: MolToDAG,
    on_error: str,
    pre_filter: Optional[Callable] = None,
    pre_transform: Optional[Callable] = None,
) -> tuple[list[DAGData], dict[str, Any]]:
    r"""Shared row loop of the CSV and MoleculeNet data sets: graphs plus a report."""
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    graphs: list[Data] = []
    canonicals: list[str] = []
    positions: list[int] = []
    failed: list[dict[str, Any]] = []
    num_failed = 0
    with rdkit_quiet():
        for k in tqdm(range(len(rows)), desc=f"Processing {osp.basename(source)}", unit="mol", disable=None):
            try:
                y = None
                if targets is not None:
                    y = []
                    for name, cell in zip(target_names, targets[k]):
                        try:
                            y.append(parse_target(cell))
                        except ValueError as e:
                            raise ValueError(f"column {name!r}: {e}") from None
                graph, canonical = featurizer.graph_from_smiles(smiles[k], y)
            except ValueError as e:
                if on_error == "raise":
                    raise ValueError(f"{source}, row {rows[k]}: {e}") from None
                num_failed += 1
                if len(failed) < _REPORTED:
                    failed.append({"row": rows[k], "smiles": smiles[k], "error": str(e)})
                continue
            graphs.append(graph)
            canonicals.append(canonical)
            positions.append(k)

    data_list: list[DAGData] = []
    kept: list[int] = []
    kept_smiles: list[str] = []
    num_filtered = 0
    first_row: dict[str, int] = {}
    duplicates: list[dict[str, Any]] = []
    num_duplicates = 0
    missing = [0] * len(target_names)
    # One vectorised DAG preparation for all molecules is several times
    # faster than a ToDAG call per molecule.
    for data, canonical, k in zip(ToDAG().prepare_many(graphs), canonicals, positions):
        if pre_filter is not None and not pre_filter(data):
            num_filtered += 1
            continue
        y = data.get("y")
        if pre_transform is not None:
            data = pre_transform(data)
        row = rows[k]
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

    if num_failed:
        examples = "; ".join(f"row {f['row']}: {f['error']}" for f in failed[:_EXAMPLES])
        warnings.warn(f"{source}: skipped {num_failed} of {len(rows)} rows that could not be converted "
                      f"(first: {examples})", stacklevel=2)
    if num_duplicates:
        log.info("%s: %d duplicate molecules (same canonical SMILES) kept", source, num_duplicates)
    if not data_list:
        raise ValueError(f"{source}: no molecule left out of {len(rows)} rows "
                         f"({num_failed} failed, {num_filtered} filtered)")
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
    return data_list, report


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
) -> tuple[list[DAGData], dict[str, Any]]:
    r"""Convert a CSV of SMILES and targets into a list of DAG graphs and a report, in memory.

    This is the processing step of :class:`MoleculeCSVDataset`; see the module
    notes for the handling of encodings, missing values and bad rows.
    """
    featurizer = featurizer or MolToDAG()
    targets = _as_list(target_cols)
    frame = read_csv(csv_path, encoding)
    _columns(frame, [smiles_col, *targets, *_as_list(split_col)], csv_path)
    blank = frame.apply(lambda column: column.str.strip().eq("")).all(axis=1)
    rows = [i for i, is_blank in enumerate(blank.tolist()) if not is_blank]
    data_list, report = _convert_rows(
        csv_path,
        rows,
        frame[smiles_col].iloc[rows].tolist(),
        frame[targets].iloc[rows].values.tolist() if targets else None,
        targets,
        featurizer,
        on_error,
        pre_filter,
        pre_transform,
    )
    report["num_blank"] = len(frame) - len(rows)
    if split_col is not None:
        report["split"] = frame[split_col].iloc[report["rows"]].tolist()
    return data_list, report


def _describe(obj: Any) -> str:
    r"""A text identifying a transform/filter that is stable across runs (no memory addresses)."""
    if obj is None:
        return "None"
    if hasattr(obj, "__qualname__"):  # functions and classes
        name = f"{getattr(obj, '__module__', '')}.{obj.__qualname__}"
        code = getattr(obj, "__code__", None)
        if code is None:
            return name
        # Bytecode, constants and names tell apart two lambdas (same qualified
        # name) and notice an edited function body.
        # (frozenset constants from `x in {...}` are sorted: their order is
        # randomised per process.)
        consts = tuple(sorted(map(repr, c)) if isinstance(c, frozenset) else repr(c)
                       for c in code.co_consts if not isinstance(c, types.CodeType))
        digest = hashlib.sha1(code.co_code + repr((consts, code.co_names)).encode()).hexdigest()
        return f"{name}:{digest[:8]}"
    if type(obj).__repr__ is object.__repr__:
        return f"{type(obj).__module__}.{type(obj).__qualname__}"
    return repr(obj)


def options_key(**parts: Any) -> str:
    r"""A short hash of processing options (used to name processed directories)."""
    text = json.dumps(parts, sort_keys=True, default=_describe)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _file_hash(path: str) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _MoleculeSplits:
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


class MoleculeCSVDataset(_MoleculeSplits, InMemoryDataset):
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
            :class:`~torch_geometric.data.InMemoryDataset`.

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
    ) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        if not osp.isfile(csv_path):
            raise FileNotFoundError(f"CSV file not found: {csv_path}")
        self.csv_path = csv_path
        self.smiles_col = smiles_col
        self.target_cols = _as_list(target_cols)
        self.split_col = split_col
        self.featurizer = featurizer or MolToDAG()
        self.on_error = on_error
        self.encoding = encoding
        # Known before InMemoryDataset.__init__ asks for processed_dir.
        self.key = options_key(
            version=1,
            csv=_file_hash(csv_path),
            smiles_col=smiles_col,
            target_cols=self.target_cols,
            split_col=split_col,
            featurizer=repr(self.featurizer),
            on_error=on_error,
            encoding=encoding,
            pre_transform=_describe(pre_transform),
            pre_filter=_describe(pre_filter),
        )
        super().__init__(root, transform, pre_transform, pre_filter, log=log, force_reload=force_reload)
        self.load(self.processed_paths[0], data_cls=DAGData)
        with open(self.processed_paths[1], encoding="utf-8") as f:
            self.report: dict[str, Any] = json.load(f)

    @property
    def processed_dir(self) -> str:
        return osp.join(self.root, "processed", f"dag_{self.key}")

    @property
    def raw_file_names(self) -> list[str]:
        return []

    @property
    def processed_file_names(self) -> list[str]:
        return ["data.pt", "report.json"]

    def process(self) -> None:
        data_list, report = molecules_from_csv(
            self.csv_path,
            self.smiles_col,
            self.target_cols,
            self.split_col,
            self.featurizer,
            self.on_error,
            self.encoding,
            self.pre_filter,
            self.pre_transform,
        )
        self.save(data_list, self.processed_paths[0])
        with open(self.processed_paths[1], "w", encoding="utf-8") as f:
            json.dump(report, f)

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
    for folder in (_PACKAGED, _CHECKOUT):
        path = osp.join(folder, f"{name}.csv")
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f"{name}.csv is neither in {_PACKAGED} nor in {_CHECKOUT}; reinstall the package")


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
                 pre_filter: Optional[Callable] = None, force_reload: bool = False, log: bool = True) -> None:
        super().__init__(root, shipped_csv("solubility"), "smiles", ["log_solubility"], "split", featurizer,
                         on_error, None, transform, pre_transform, pre_filter, force_reload, log)


class FreeSolvDataset(MoleculeCSVDataset):
    r"""Experimental hydration free energies of 642 small neutral molecules
    (FreeSolv; Mobley & Guthrie, J. Comput.-Aided Mol. Des. 2014), shipped with
    the package.

    Target ``expt_kcal_mol`` (kcal/mol; regression). There is no split column:
    :meth:`get_idx_split` defaults to the scaffold split.
    """

    def __init__(self, root: str, featurizer: Optional[MolToDAG] = None, on_error: str = "skip",
                 transform: Optional[Callable] = None, pre_transform: Optional[Callable] = None,
                 pre_filter: Optional[Callable] = None, force_reload: bool = False, log: bool = True) -> None:
        super().__init__(root, shipped_csv("freesolv"), "smiles", ["expt_kcal_mol"], None, featurizer,
                         on_error, None, transform, pre_transform, pre_filter, force_reload, log)
