r"""RDKit molecules to prepared pLSTM DAG graphs.

A molecule becomes a :class:`~pyg_plstm.dag.DAGData` in three steps:

1. **Preparation**: parse and sanitise, optionally keep the largest fragment,
   add explicit hydrogens, kekulise.
2. **Atom order**: atoms are renumbered by a ranking (``'canonical'``,
   ``'input'`` or ``'bfs'``) so that node ``i`` is the atom of rank ``i``.
   :class:`~pyg_plstm.dag.ToDAG` then orients every bond from the lower to the
   higher node index, i.e. along the ranking.
3. **Features**: integer atom/bond features, ``x: [N, 9]`` and
   ``edge_attr: [2B, 3]`` (both directions of every bond), in the vocabulary of
   OGB (:func:`ogb.utils.features.atom_to_feature_vector`, so
   :class:`ogb.graphproppred.mol_encoder.AtomEncoder` / ``BondEncoder`` apply)
   or of PyG's :func:`torch_geometric.utils.from_smiles`. The values are
   exactly those of the two reference functions, read once per molecule into
   NumPy arrays and looked up column by column.

Edges are sorted by ``(src, dst)``, so with ``order='canonical'`` the same
molecule gives identical tensors however its SMILES is written.

Size guard: RDKit needs seconds for a SMILES of 10,000 atoms and crashes the
whole process (a segmentation fault, not an exception) on a chain of about
20,000. SMILES with more heavy atoms than ``max_atoms`` (default
:data:`MAX_SMILES_ATOMS`) are therefore refused by counting their atoms in
the text, before RDKit reads them.
"""
from __future__ import annotations

import math
import re
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from numbers import Real
from typing import Callable, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from ogb.utils.features import allowable_features as ogb_vocabulary
from rdkit import Chem, rdBase
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils.smiles import e_map as pyg_bond_vocabulary
from torch_geometric.utils.smiles import x_map as pyg_atom_vocabulary

from pyg_plstm.checks import check_positive
from pyg_plstm.dag import DAGData
from pyg_plstm.dag.prepare import prepare_numbered_graph

__all__ = [
    "FEATURES",
    "MAX_SMILES_ATOMS",
    "ORDERS",
    "MolToDAG",
    "as_target",
    "atom_order",
    "count_heavy_atoms",
    "from_rdmol",
    "from_smiles",
    "parse_smiles",
    "rdkit_quiet",
    "reorder_nodes",
]

FEATURES = ("ogb", "pyg")
ORDERS = ("canonical", "input", "bfs")
#: Heavy atoms of the largest SMILES handed to RDKit when ``max_atoms`` is not
#: set. Far above drug-like molecules (MoleculeNet's largest have ~500),
#: far below where RDKit becomes slow (seconds at 10,000) or crashes.
MAX_SMILES_ATOMS = 2000

Target = Union[Real, None, Sequence[Optional[Real]], Tensor]


@contextmanager
def rdkit_quiet() -> Iterator[None]:
    r"""Silence RDKit's logger inside the block and restore its previous state afterwards.

    RDKit prints every parse or sanitisation problem to stderr; this package
    reports them as :class:`ValueError` messages instead.
    """
    block = rdBase.BlockLogs()
    try:
        yield
    finally:
        # BlockLogs restores the previous log levels when it is destroyed.
        del block


# Only recent RDKit releases can hand error messages to Python.
_CaptureErrorLog = getattr(rdBase, "CaptureErrorLog", None)


def _syntax_error(text: str) -> str:
    if _CaptureErrorLog is None:
        return "RDKit cannot parse it (syntax error)"
    with _CaptureErrorLog() as capture:
        Chem.MolFromSmiles(text, sanitize=False)
    lines = [re.sub(r"^\[[\d:.]+\]\s*(SMILES Parse Error:\s*)?", "", line)
             for line in capture.messages.splitlines()]
    # RDKit repeats the whole input, which the caller quotes already.
    reason = lines[0].replace(f": {text}", "") if lines else "syntax error"
    for line in lines:
        found = re.search(r"around position (\d+)", line)
        if found:
            return f"{reason} (around position {found.group(1)})"
    return reason


def _diagnose(text: str) -> str:
    mol = Chem.MolFromSmiles(text, sanitize=False)
    if mol is None:
        return _syntax_error(text)
    problems = Chem.DetectChemistryProblems(mol)
    if problems:
        return problems[0].Message()
    return "RDKit cannot sanitise it"


def _quote(smiles: str, limit: int = 80) -> str:
    r"""``repr(smiles)``, shortened for very long strings (error messages, reports)."""
    if len(smiles) <= limit:
        return repr(smiles)
    return f"{smiles[:limit // 2]!r}... ({len(smiles)} characters)"


# Every atom of a SMILES string is one of these tokens: a bracket atom or an
# organic-subset symbol (two-letter ones first).
_ATOM_TOKEN = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOSPFIbcnosp*]")
_HYDROGEN_TOKEN = re.compile(r"\[\d*H(?![a-z])")  # [H], [2H], [H+]; not [Hg], [He], ...


def count_heavy_atoms(smiles: str) -> int:
    r"""The number of heavy (non-hydrogen) atoms written in a SMILES string, counted in the text.

    For a valid SMILES this equals RDKit's ``GetNumHeavyAtoms()`` (dummy atoms
    ``*`` count too); it never runs RDKit, so it is safe on huge input.
    """
    return sum(1 for token in _ATOM_TOKEN.findall(smiles) if not _HYDROGEN_TOKEN.match(token))


def parse_smiles(smiles: str, max_heavy_atoms: int = MAX_SMILES_ATOMS) -> Chem.Mol:
    r"""Parse and sanitise a SMILES string (hydrogens implicit).

    Unlike :func:`rdkit.Chem.MolFromSmiles` (which returns ``None``) or PyG's
    ``from_smiles`` (which returns an empty molecule), failure is never silent:
    a :class:`ValueError` quoting the string and RDKit's reason is raised.
    Surrounding whitespace is ignored; inner whitespace is rejected (RDKit
    would silently read everything after it as a molecule name). A SMILES
    with more than ``max_heavy_atoms`` heavy atoms (see
    :func:`count_heavy_atoms`) is refused before RDKit sees it.
    """
    if not isinstance(smiles, str):
        raise TypeError(f"SMILES must be a str, got {type(smiles).__name__}")
    text = smiles.strip()
    if not text:
        raise ValueError(f"empty SMILES {smiles!r}")
    # Printable ASCII without spaces (codes 33 to 126).
    if not (text.isascii() and text.isprintable()) or " " in text:
        raise ValueError(f"invalid SMILES {_quote(smiles)}: only printable ASCII without spaces is allowed")
    # A string of n characters holds at most n atoms: only long ones need counting.
    if len(text) > max_heavy_atoms:
        heavy = count_heavy_atoms(text)
        if heavy > max_heavy_atoms:
            raise ValueError(f"SMILES {_quote(smiles)} has {heavy} heavy atoms, more than the limit of "
                             f"{max_heavy_atoms} (max_atoms, or {MAX_SMILES_ATOMS} without it: RDKit "
                             "is slow on huge molecules and crashes on chains of ~20,000 atoms)")
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raise ValueError(f"invalid SMILES {_quote(smiles)}: {_diagnose(text)}")
    return mol


def _bfs_rank(mol: Chem.Mol, root: int) -> list[int]:
    num_atoms = mol.GetNumAtoms()
    if not 0 <= root < num_atoms:
        raise ValueError(f"BFS root {root} is out of range for a molecule with {num_atoms} atoms")
    rank = [-1] * num_atoms
    count = 0
    # Fragments not reachable from the root follow, each searched from its
    # lowest-index atom, so every atom gets a rank.
    for start in [root, *range(num_atoms)]:
        if rank[start] >= 0:
            continue
        rank[start] = count
        count += 1
        queue = deque([start])
        while queue:
            atom = mol.GetAtomWithIdx(queue.popleft())
            for nbr in sorted(n.GetIdx() for n in atom.GetNeighbors()):
                if rank[nbr] < 0:
                    rank[nbr] = count
                    count += 1
                    queue.append(nbr)
    return rank


def _atom_rank(mol: Chem.Mol, order: str, root: int) -> np.ndarray:
    if order == "canonical":
        ranks = Chem.CanonicalRankAtoms(mol, breakTies=True)
        # RDKit iterates its vectors with a Python-level iterator; indexing them is several times faster.
        return np.fromiter(map(ranks.__getitem__, range(len(ranks))), dtype=np.int64, count=len(ranks))
    if order == "input":
        return np.arange(mol.GetNumAtoms(), dtype=np.int64)
    if order == "bfs":
        return np.array(_bfs_rank(mol, root), dtype=np.int64)
    raise ValueError(f"unknown atom order {order!r}; choose one of {ORDERS}")


def atom_order(mol: Chem.Mol, order: str = "canonical", root: int = 0) -> Tensor:
    r"""The rank of every atom of ``mol`` (a permutation of ``0 .. N-1``).

    * ``'canonical'``: RDKit's canonical ranks
      (``Chem.CanonicalRankAtoms(mol, breakTies=True)``), independent of how
      the molecule was written down.
    * ``'input'``: the atom order of the input (SMILES/file order).
    * ``'bfs'``: breadth-first order from atom ``root``, neighbours by
      ascending index; unreachable fragments follow, each from its
      lowest-index atom.
    """
    return torch.from_numpy(_atom_rank(mol, order, root))


# ------------------------------------------------------------------ features

@dataclass(frozen=True)
class _Column:
    r"""One feature column: how to read the raw value and where it sits in a vocabulary."""

    name: str
    read: Callable
    index: dict  # raw value -> feature index
    other: int  # index of values outside the vocabulary; -1 refuses them


def _column(name: str, read: Callable, choices: Sequence, enum: Optional[type], other: bool) -> _Column:
    if enum is None:
        index = {value: i for i, value in enumerate(choices)}
    else:  # vocabularies name enum members, e.g. 'CHI_TETRAHEDRAL_CW'
        index = {member: choices.index(str(member)) for member in enum.values.values() if str(member) in choices}
    return _Column(name, read, index, len(choices) - 1 if other else -1)


_ATOM_PROPERTIES = (
    ("atomic number", Chem.Atom.GetAtomicNum, None),
    ("chirality", Chem.Atom.GetChiralTag, Chem.rdchem.ChiralType),
    ("degree", Chem.Atom.GetTotalDegree, None),
    ("formal charge", Chem.Atom.GetFormalCharge, None),
    ("hydrogen count", Chem.Atom.GetTotalNumHs, None),
    ("radical electrons", Chem.Atom.GetNumRadicalElectrons, None),
    ("hybridization", Chem.Atom.GetHybridization, Chem.rdchem.HybridizationType),
    ("aromaticity", Chem.Atom.GetIsAromatic, None),
    ("ring membership", Chem.Atom.IsInRing, None),
)
_BOND_PROPERTIES = (
    ("bond type", Chem.Bond.GetBondType, Chem.rdchem.BondType),
    ("bond stereo", Chem.Bond.GetStereo, Chem.rdchem.BondStereo),
    ("conjugation", Chem.Bond.GetIsConjugated, None),
)


def _columns(properties: Sequence[tuple], vocabularies: Sequence[Sequence], other: Sequence[bool]) -> tuple:
    return tuple(_column(name, read, choices, enum, fallback)
                 for (name, read, enum), choices, fallback in zip(properties, vocabularies, other))


# OGB maps unknown values to its last entry ('misc', safe_index) except for the
# flags and the bond stereo, which it looks up with list.index (so they raise);
# PyG looks everything up with list.index.
_OGB_ATOMS = _columns(_ATOM_PROPERTIES, [ogb_vocabulary[k] for k in (
    "possible_atomic_num_list", "possible_chirality_list", "possible_degree_list", "possible_formal_charge_list",
    "possible_numH_list", "possible_number_radical_e_list", "possible_hybridization_list",
    "possible_is_aromatic_list", "possible_is_in_ring_list")], [True] * 7 + [False] * 2)
_OGB_BONDS = _columns(_BOND_PROPERTIES, [ogb_vocabulary[k] for k in (
    "possible_bond_type_list", "possible_bond_stereo_list", "possible_is_conjugated_list")], [True, False, False])
_PYG_ATOMS = _columns(_ATOM_PROPERTIES, list(pyg_atom_vocabulary.values()), [False] * 9)
_PYG_BONDS = _columns(_BOND_PROPERTIES, list(pyg_bond_vocabulary.values()), [False] * 3)
_VOCABULARIES = {"ogb": ("OGB", _OGB_ATOMS, _OGB_BONDS), "pyg": ("PyG", _PYG_ATOMS, _PYG_BONDS)}


def _encode(items: Sequence, columns: Sequence[_Column], what: str, vocabulary: str) -> np.ndarray:
    r"""Feature indices ``[len(items), len(columns)]`` of RDKit atoms or bonds."""
    values = np.array([[column.index.get(v, column.other) for v in map(column.read, items)] for column in columns],
                      dtype=np.int64).reshape(len(columns), len(items))
    if (values < 0).any():
        col, item = (int(i[0]) for i in np.nonzero(values < 0))
        column = columns[col]
        raise ValueError(f"{what} {item}: {column.name} {column.read(items[item])} is outside {vocabulary}'s "
                         "feature vocabulary")
    return values.T


def _features(mol: Chem.Mol, features: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vocabulary, atom_columns, bond_columns = _VOCABULARIES[features]
    # (Indexing is several times faster than RDKit's Python-level GetAtoms()/GetBonds() iterators.)
    x = _encode(list(map(mol.GetAtomWithIdx, range(mol.GetNumAtoms()))), atom_columns, "atom", vocabulary)
    bonds = list(map(mol.GetBondWithIdx, range(mol.GetNumBonds())))
    ends = np.array([list(map(Chem.Bond.GetBeginAtomIdx, bonds)), list(map(Chem.Bond.GetEndAtomIdx, bonds))],
                    dtype=np.int64).reshape(2, len(bonds))
    bond_attr = _encode(bonds, bond_columns, "bond", vocabulary)
    # Both directions of every bond; the order is fixed by the sort in _reorder.
    return x, np.concatenate([ends, ends[::-1]], axis=1), np.concatenate([bond_attr, bond_attr])


# Feature rows by raw atom/bond values, per vocabulary: molecules repeat a few
# dozen atom and bond kinds, so one dictionary lookup replaces one per column.
_ROWS: dict[tuple[str, str], dict[tuple, tuple[int, ...]]] = {}
_MAX_CACHED_ROWS = 4096


def _rows(raw: list[tuple], columns: Sequence[_Column], cache: dict[tuple, tuple[int, ...]]) -> Optional[np.ndarray]:
    r"""Feature indices ``[len(raw), len(columns)]`` of raw value tuples; ``None`` if a value is refused."""
    out = []
    for values in raw:
        row = cache.get(values)
        if row is None:
            row = tuple(column.index.get(v, column.other) for column, v in zip(columns, values))
            if min(row) < 0:
                return None
            if len(cache) < _MAX_CACHED_ROWS:
                cache[values] = row
        out.append(row)
    return np.array(out, dtype=np.int64).reshape(len(raw), len(columns))


# RDKit's SMILES parser makes single, double, triple, quadruple ('$') and aromatic
# bonds, and dative ones ('->', '<-', whose order 1 a single bond shares); without
# '<' or '>' the bond order, a float several times cheaper to read than the
# enum, therefore names the bond type.
_BOND_TYPE_OF_ORDER = {1.0: Chem.BondType.SINGLE, 1.5: Chem.BondType.AROMATIC, 2.0: Chem.BondType.DOUBLE,
                       3.0: Chem.BondType.TRIPLE, 4.0: Chem.BondType.QUADRUPLE}


def _bond_type_of_order(bond: Chem.Bond) -> Chem.BondType:
    # Any other order (none that RDKit's parser makes today) takes the exact, slower getter.
    return _BOND_TYPE_OF_ORDER.get(bond.GetBondTypeAsDouble()) or bond.GetBondType()


def _ranked_graph(mol: Chem.Mol, rank: np.ndarray, features: str,
                  smiles: Optional[str] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``_reorder(*_features(mol, features), rank)`` (the reference), read with
    fewer RDKit calls: one pass over the atoms and one over the bonds, the
    degree counted from the bond list.

    ``smiles``: the SMILES ``mol`` was read from, if any. RDKit's SMILES
    parser sets chiral tags only for ``@`` and bond stereo only for ``/`` or
    ``\``, so without them those (slow, enum-valued) getters are skipped; the
    bond type is read as the bond order where that names it.
    """
    _, atom_columns, bond_columns = _VOCABULARIES[features]
    num_atoms, num_bonds = mol.GetNumAtoms(), mol.GetNumBonds()
    bonds = list(map(mol.GetBondWithIdx, range(num_bonds)))
    ends = np.array([list(map(Chem.Bond.GetBeginAtomIdx, bonds)), list(map(Chem.Bond.GetEndAtomIdx, bonds))],
                    dtype=np.int64).reshape(2, num_bonds)
    # GetTotalDegree() is GetDegree() + GetTotalNumHs().
    degree = np.bincount(ends.reshape(-1), minlength=num_atoms).tolist()
    atoms = list(map(mol.GetAtomWithIdx, range(num_atoms)))
    chirality = (map(Chem.Atom.GetChiralTag, atoms) if smiles is None or "@" in smiles
                 else repeat(Chem.ChiralType.CHI_UNSPECIFIED))
    x = _rows([(a.GetAtomicNum(), c, d + (h := a.GetTotalNumHs()), a.GetFormalCharge(), h,
                a.GetNumRadicalElectrons(), a.GetHybridization(), a.GetIsAromatic(), a.IsInRing())
               for a, d, c in zip(atoms, degree, chirality)], atom_columns, _ROWS.setdefault((features, "atom"), {}))
    stereo = (map(Chem.Bond.GetStereo, bonds) if smiles is None or "/" in smiles or "\\" in smiles
              else repeat(Chem.BondStereo.STEREONONE))
    kind = (map(Chem.Bond.GetBondType, bonds) if smiles is None or "<" in smiles or ">" in smiles
            else map(_bond_type_of_order, bonds))
    bond_attr = _rows([(k, t, b.GetIsConjugated()) for b, k, t in zip(bonds, kind, stereo)], bond_columns,
                      _ROWS.setdefault((features, "bond"), {}))
    if x is None or bond_attr is None:
        _features(mol, features)  # raises the reference error naming the atom or bond
    ends = rank[ends]
    both = np.concatenate([ends, ends[::-1]], axis=1)  # column e and e + num_bonds are bond e
    perm = np.argsort(both[0] * num_atoms + both[1], kind="stable")
    x_ranked = np.empty_like(x)
    x_ranked[rank] = x
    return x_ranked, both.take(perm, axis=1), bond_attr[perm % max(num_bonds, 1)]


def _reorder(
    x: np.ndarray, edge_index: np.ndarray, edge_attr: Optional[np.ndarray], rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    num_nodes = x.shape[0]
    node_of_rank = np.argsort(rank, kind="stable")
    if rank.shape != (num_nodes,) or not np.array_equal(rank[node_of_rank], np.arange(num_nodes)):
        raise ValueError(f"`rank` must be a permutation of 0 .. {num_nodes - 1} (one entry per node), "
                         f"got {rank.tolist() if rank.size <= 20 else f'an array of shape {rank.shape}'}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"`edge_index` must have shape [2, num_edges], got {list(edge_index.shape)}")
    if edge_index.size and not 0 <= edge_index.min() <= edge_index.max() < num_nodes:
        raise ValueError(f"`edge_index` holds node indices outside 0 .. {num_nodes - 1}")
    edge_index = rank[edge_index]
    perm = np.argsort(edge_index[0] * num_nodes + edge_index[1], kind="stable")
    return x[node_of_rank], edge_index.take(perm, axis=1), None if edge_attr is None else edge_attr[perm]


def reorder_nodes(
    x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor], rank: Tensor
) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    r"""Renumber node ``i`` as ``rank[i]`` and sort edges by ``(src, dst)``.

    ``rank`` must be a permutation of ``0 .. N-1`` (:class:`ValueError`
    otherwise); the inputs are not modified.
    """
    as_numpy = lambda t: t.detach().cpu().numpy()  # noqa: E731
    out = _reorder(as_numpy(x), as_numpy(edge_index), None if edge_attr is None else as_numpy(edge_attr),
                   as_numpy(rank).astype(np.int64, copy=False))
    return tuple(None if a is None else torch.from_numpy(a).to(t.device)  # type: ignore[return-value]
                 for a, t in zip(out, (x, edge_index, edge_attr)))


def as_target(y: Target) -> Tensor:
    r"""Targets as a float tensor of shape ``[1, T]``; ``None`` or NaN mark a missing value.

    Infinite values and values beyond the float32 range raise
    :class:`ValueError` (they would turn every loss into ``inf``/``nan``).
    """
    if isinstance(y, Tensor):
        values = y.detach().to(torch.float).reshape(1, -1)
    else:
        if isinstance(y, (str, bytes)):
            raise TypeError(f"targets must be numbers, a sequence of numbers or a tensor, got {y!r}")
        if y is None or isinstance(y, Real):
            y = [y]
        try:
            values = torch.tensor([math.nan if v is None else float(v) for v in y], dtype=torch.float).view(1, -1)
        except (TypeError, ValueError):
            raise ValueError(f"targets must be numbers or None, got {y!r}") from None
    # Values beyond the float32 range become inf here too.
    if torch.isinf(values).any():
        raise ValueError(f"targets must be finite float32 numbers (NaN marks a missing value), got "
                         f"{values.view(-1).tolist()}")
    return values


# The atom property that follows every atom through the preparation in MolToDAG.atom_map.
_SOURCE_ATOM = "_pyg_plstm_source_atom"


def _carry_source_atoms(written: Chem.Mol, read: Chem.Mol) -> None:
    r"""Copy the source-atom tags of ``written`` onto ``read``, the molecule of its canonical SMILES."""
    if not written.GetNumAtoms() or not written.GetAtomWithIdx(0).HasProp(_SOURCE_ATOM):
        return
    order = list(written.GetPropsAsDict(True, True)["_smilesAtomOutputOrder"])
    if len(order) != read.GetNumAtoms():
        raise ValueError(f"the canonical SMILES holds {read.GetNumAtoms()} atoms, the molecule {len(order)}; "
                         "its atoms cannot be matched")
    for atom, source in zip(read.GetAtoms(), order):
        atom.SetIntProp(_SOURCE_ATOM, written.GetAtomWithIdx(source).GetIntProp(_SOURCE_ATOM))


def _source_atoms(prepared: Chem.Mol, given: Chem.Mol) -> np.ndarray:
    r"""The atom of ``given`` that every atom of ``prepared`` came from: its tag, or for a hydrogen
    added by ``AddHs`` the next unclaimed hydrogen of the same heavy atom in ``given``."""
    source = np.array([a.GetIntProp(_SOURCE_ATOM) if a.HasProp(_SOURCE_ATOM) else -1 for a in prepared.GetAtoms()],
                      dtype=np.int64)
    claimed = set(source[source >= 0].tolist())
    for atom in prepared.GetAtoms():
        if source[atom.GetIdx()] >= 0:
            continue
        heavy = int(source[atom.GetNeighbors()[0].GetIdx()]) if atom.GetDegree() == 1 else -1
        free = sorted(n.GetIdx() for n in given.GetAtomWithIdx(heavy).GetNeighbors()
                      if n.GetAtomicNum() == 1 and n.GetIdx() not in claimed) if heavy >= 0 else []
        if not free:
            raise ValueError(f"added hydrogen {atom.GetIdx()} has no counterpart in the molecule")
        source[atom.GetIdx()] = free[0]
        claimed.add(free[0])
    return source


@dataclass(frozen=True)
class MolToDAG:
    r"""Turns SMILES strings or RDKit molecules into prepared DAG graphs.

    The result is a :class:`~pyg_plstm.dag.DAGData` with ``x`` (``[N, 9]``,
    long), ``edge_index``/``edge_attr`` (both bond directions, ``[2B, 3]``
    long), the DAG produced by :class:`~pyg_plstm.dag.ToDAG` (bonds oriented
    from the lower to the higher node index, nodes numbered by ``order``),
    ``smiles`` and, if given, ``y`` (float ``[1, T]``, NaN = missing).

    Args:
        features: ``'ogb'`` (OGB vocabulary) or ``'pyg'`` (PyG's
            ``from_smiles`` vocabulary; raises for values outside it).
            Approximations: as OGB's ``smiles2graph``, ``'ogb'`` puts every
            value outside its vocabulary into the column's last entry,
            ``'misc'``: an atomic number outside 1-118 (the wildcard ``*``), a
            degree above 10, a formal charge beyond +-5, more than 8 hydrogens
            or 4 radical electrons, a chirality other than tetrahedral
            CW/CCW/other, a hybridisation other than SP to SP3D2 (e.g. of a
            metal ion), a bond type other than single, double, triple or
            aromatic. Neither vocabulary encodes isotopes: ``[13CH4]`` is
            methane, and an isotope-labelled hydrogen (``[2H]``) becomes an
            explicit hydrogen node.
        order: atom ranking that orients the bonds, see :func:`atom_order`.
            ``'canonical'`` makes the output independent of the SMILES
            spelling (identical tensors).
        root: BFS root for ``order='bfs'``, an atom index of the prepared
            molecule (input order, after fragment selection).
        add_hs: hydrogens become explicit nodes (otherwise they only enter
            the hydrogen-count feature). Needed for hydrogen-only molecules.
        kekulize: explicit single/double bonds instead of aromatic ones
            (atoms keep their aromatic flag, as in PyG).
        largest_fragment: keep only the largest fragment (most heavy atoms,
            then most atoms, then canonical SMILES) instead of all of them.
        max_atoms: reject molecules with more nodes than this. It also bounds
            the heavy atoms of a SMILES before RDKit reads it (with
            ``largest_fragment``, the whole SMILES may hold up to
            ``max(max_atoms, MAX_SMILES_ATOMS)``). ``None``: no limit on the
            nodes, and at most :data:`MAX_SMILES_ATOMS` (2,000) heavy atoms,
            which keeps RDKit from crashing on huge input.

    Edge cases: an unparsable SMILES, a molecule without atoms, or one without
    heavy atoms when ``add_hs=False`` (e.g. ``'[H][H]'``) raises
    :class:`ValueError`. A single atom gives one node and an empty DAG.
    Disconnected fragments (salts, mixtures) stay in one graph as a DAG
    forest. Cost grows linearly with the number of bonds.
    """

    features: str = "ogb"
    order: str = "canonical"
    root: int = 0
    add_hs: bool = False
    kekulize: bool = False
    largest_fragment: bool = False
    max_atoms: Optional[int] = None

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ValueError(f"unknown feature set {self.features!r}; choose one of {FEATURES}")
        if self.order not in ORDERS:
            raise ValueError(f"unknown atom order {self.order!r}; choose one of {ORDERS}")
        if not isinstance(self.root, int) or isinstance(self.root, bool) or self.root < 0:
            raise ValueError(f"`root` must be a non-negative integer (an atom index), got {self.root!r}")
        for name in ("add_hs", "kekulize", "largest_fragment"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be True or False, got {getattr(self, name)!r}")
        if self.max_atoms is not None:
            check_positive(max_atoms=self.max_atoms)

    @property
    def max_heavy_atoms(self) -> int:
        r"""The most heavy atoms a SMILES or molecule may have before RDKit processes it."""
        if self.max_atoms is None:
            return MAX_SMILES_ATOMS
        # The largest fragment may be within max_atoms while the whole SMILES is not.
        return max(self.max_atoms, MAX_SMILES_ATOMS) if self.largest_fragment else self.max_atoms

    def __call__(self, mol: Union[str, Chem.Mol], y: Target = None) -> DAGData:
        if isinstance(mol, str):
            return self.from_smiles(mol, y)
        return self.from_rdmol(mol, y)

    def from_smiles(self, smiles: str, y: Target = None) -> DAGData:
        r"""Convert a SMILES string; ``smiles`` is stored as given."""
        return _with_dag(self._molecule_from_smiles(smiles, y))

    def from_rdmol(self, mol: Chem.Mol, y: Target = None) -> DAGData:
        r"""Convert an RDKit molecule (not modified; explicit hydrogen atoms are
        folded into the hydrogen counts unless ``add_hs``). ``smiles`` is the
        canonical SMILES of the input."""
        if not isinstance(mol, Chem.Mol):
            raise TypeError(f"expected an rdkit.Chem.Mol, got {type(mol).__name__}")
        if mol.GetNumHeavyAtoms() > self.max_heavy_atoms:
            raise ValueError(f"the molecule has {mol.GetNumHeavyAtoms()} heavy atoms, more than the limit of "
                             f"{self.max_heavy_atoms} (max_atoms, or {MAX_SMILES_ATOMS} without it: RDKit "
                             "is slow on huge molecules and crashes on chains of ~20,000 atoms)")
        with rdkit_quiet():
            try:
                mol = Chem.RemoveHs(mol)  # a sanitised copy
                smiles = Chem.MolToSmiles(mol)
            except (ValueError, RuntimeError) as e:
                raise ValueError(f"RDKit cannot sanitise the molecule: {e}") from None
        return _with_dag(self._convert(mol, smiles, y, label=f"molecule {_quote(smiles)}"))

    def convert_many(self, smiles: Sequence[str], ys: Optional[Sequence[Target]] = None,
                     ) -> list[tuple[Optional[DAGData], str]]:
        r""":meth:`from_smiles` of every string (with the target ``ys[i]``),
        with the canonical SMILES of each prepared molecule and the reason
        for each refused one.

        Returns ``(graph, canonical SMILES of the prepared molecule)`` per
        string, or ``(None, the message of the ValueError that``
        :meth:`from_smiles` ``raises)`` for one that cannot be converted.
        """
        if ys is not None and len(ys) != len(smiles):
            raise ValueError(f"got {len(ys)} targets for {len(smiles)} SMILES strings")
        out: list[tuple[Optional[DAGData], str]] = []
        for i, text in enumerate(smiles):
            try:
                molecule = self._molecule_from_smiles(text, None if ys is None else ys[i])
            except ValueError as e:
                out.append((None, str(e)))
                continue
            out.append((_with_dag(molecule), molecule.canonical))
        return out

    def atom_map(self, mol: Union[str, Chem.Mol]) -> tuple[Chem.Mol, Tensor]:
        r"""Which atom every node of ``self(mol)`` is: the molecule as given, and one atom index per node.

        The molecule is the SMILES as RDKit reads it (atom ``i`` is the
        ``i``-th atom written, as in ``Chem.MolFromSmiles``) or a copy of the
        given RDKit molecule, with hydrogens added by ``Chem.AddHs`` when
        ``add_hs`` (the model's hydrogen nodes are matched to the hydrogens of
        the same heavy atom in index order). Node ``i`` of the graph is atom
        ``index[i]`` of that molecule, whatever ``order`` renumbered; atoms of
        fragments dropped by ``largest_fragment``, and explicit hydrogens of
        the given molecule folded into hydrogen counts, have no node.
        """
        if isinstance(mol, str):
            given, label = parse_smiles(mol, self.max_heavy_atoms), f"SMILES {_quote(mol)}"
        elif isinstance(mol, Chem.Mol):
            given, label = Chem.Mol(mol), "the molecule"
        else:
            raise TypeError(f"expected a SMILES string or an rdkit.Chem.Mol, got {type(mol).__name__}")
        with rdkit_quiet():
            try:
                tagged = Chem.Mol(given)
                for atom in tagged.GetAtoms():
                    atom.SetIntProp(_SOURCE_ATOM, atom.GetIdx())
                if not isinstance(mol, str):
                    tagged = Chem.RemoveHs(tagged)  # as from_rdmol
                prepared, _, _ = self._prepare(tagged)
                rank = _atom_rank(prepared, self.order, self.root)
                if self.add_hs:
                    given = Chem.AddHs(given)
                source = _source_atoms(prepared, given)
            except (ValueError, RuntimeError) as e:  # RDKit raises both kinds
                raise ValueError(f"{label}: {e}") from None
        return given, torch.from_numpy(source[np.argsort(rank, kind="stable")])

    def graph_from_smiles(self, smiles: str, y: Target = None) -> tuple[Data, str]:
        r"""The molecular graph of :meth:`from_smiles` *before* the DAG
        preparation, and the canonical SMILES of the prepared molecule.

        :class:`~pyg_plstm.dag.ToDAG` turns it into the graph of
        :meth:`from_smiles`; :meth:`convert_many` does both for many
        molecules at once.
        """
        molecule = self._molecule_from_smiles(smiles, y)
        data = Data(x=torch.from_numpy(molecule.x), edge_index=torch.from_numpy(molecule.edge_index),
                    edge_attr=torch.from_numpy(molecule.edge_attr), smiles=smiles)
        if molecule.y is not None:
            data.y = molecule.y
        return data, molecule.canonical

    def _molecule_from_smiles(self, smiles: str, y: Target) -> "_Molecule":
        mol = parse_smiles(smiles, self.max_heavy_atoms)
        return self._convert(mol, smiles, y, label=f"SMILES {_quote(smiles)}", read_from=smiles)

    def _prepare(self, mol: Chem.Mol, read_from: Optional[str] = None) -> tuple[Chem.Mol, str, Optional[str]]:
        r"""The prepared molecule, its canonical SMILES and the SMILES it was read from, if any
        (``read_from``, that of the given molecule, or the canonical SMILES when it is read back).

        ``read_from``, if given, is the text ``mol`` was read from by ``Chem.MolFromSmiles`` (RDKit's defaults),
        up to surrounding whitespace."""
        given = mol
        if self.largest_fragment:
            frags = Chem.GetMolFrags(mol, asMols=True)
            if len(frags) > 1:
                mol = max(frags, key=lambda f: (f.GetNumHeavyAtoms(), f.GetNumAtoms(), Chem.MolToSmiles(f)))
        canonical = Chem.MolToSmiles(mol)
        # A molecule read from its own canonical SMILES (as most data sets store them) is already the one that
        # reading it back would give: RDKit's parser is deterministic.
        if self.order == "canonical" and not (read_from is not None and canonical == read_from
                                              and mol is given):
            # Reading the canonical SMILES back fixes the atom *and* bond order,
            # so order-relative annotations (CW/CCW chiral tags, cis/trans
            # reference atoms, the Kekulé assignment) no longer depend on how
            # the input was written. Canonical ranks alone do not achieve that.
            written = mol
            mol, read_from = Chem.MolFromSmiles(canonical), canonical
            if mol is None:
                raise ValueError(f"RDKit cannot re-read its own canonical SMILES {_quote(canonical)}")
            _carry_source_atoms(written, mol)
        if mol.GetNumAtoms() == 0:
            raise ValueError("the molecule has no atoms")
        if mol.GetNumHeavyAtoms() == 0 and not self.add_hs:
            raise ValueError("the molecule has no heavy atoms (pass add_hs=True to keep hydrogen-only molecules)")
        if self.add_hs:
            mol = Chem.AddHs(mol)
        if self.kekulize:
            Chem.Kekulize(mol)
        if self.max_atoms is not None and mol.GetNumAtoms() > self.max_atoms:
            raise ValueError(f"the molecule has {mol.GetNumAtoms()} atoms, more than max_atoms={self.max_atoms}")
        return mol, canonical, read_from

    def _convert(self, mol: Chem.Mol, smiles: str, y: Target, label: str,
                 read_from: Optional[str] = None) -> "_Molecule":
        with rdkit_quiet():
            try:
                mol, canonical, read_from = self._prepare(mol, read_from)
                rank = _atom_rank(mol, self.order, self.root)
                x, edge_index, edge_attr = _ranked_graph(mol, rank, self.features, read_from)
            except (ValueError, RuntimeError) as e:  # RDKit raises both kinds
                raise ValueError(f"{label}: {e}") from None
        return _Molecule(x, edge_index, edge_attr, None if y is None else as_target(y), smiles, canonical)


class _Molecule(NamedTuple):
    r"""A converted molecule before its DAG preparation: nodes numbered by the
    atom order, edges (both bond directions) sorted by ``(src, dst)``."""

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    y: Optional[Tensor]
    smiles: str
    canonical: str


def _with_dag(molecule: _Molecule) -> DAGData:
    r"""The :class:`DAGData` of a converted molecule, equal to ``ToDAG()`` of its graph.

    Nodes are numbered by the atom order that orients the bonds and the edges
    are sorted, so the DAG comes from plain passes over the edge list
    (:func:`~pyg_plstm.dag.prepare.prepare_numbered_graph`), and the graph
    is built once with all its tensors.
    """
    num_nodes = molecule.x.shape[0]
    return DAGData.from_mapping({
        "x": torch.from_numpy(molecule.x), "edge_index": torch.from_numpy(molecule.edge_index),
        "edge_attr": torch.from_numpy(molecule.edge_attr), "y": molecule.y, "smiles": molecule.smiles,
        "num_nodes": num_nodes, **prepare_numbered_graph(molecule.edge_index, num_nodes)})


def from_smiles(
    smiles: str,
    y: Target = None,
    *,
    features: str = "ogb",
    order: str = "canonical",
    root: int = 0,
    add_hs: bool = False,
    kekulize: bool = False,
    largest_fragment: bool = False,
    max_atoms: Optional[int] = None,
) -> DAGData:
    r"""A prepared DAG graph from a SMILES string; see :class:`MolToDAG` for the options.

    Example::

        data = from_smiles("CC(=O)Oc1ccccc1C(=O)O", y=[-1.72])
    """
    return MolToDAG(features, order, root, add_hs, kekulize, largest_fragment, max_atoms).from_smiles(smiles, y)


def from_rdmol(
    mol: Chem.Mol,
    y: Target = None,
    *,
    features: str = "ogb",
    order: str = "canonical",
    root: int = 0,
    add_hs: bool = False,
    kekulize: bool = False,
    largest_fragment: bool = False,
    max_atoms: Optional[int] = None,
) -> DAGData:
    r"""A prepared DAG graph from an RDKit molecule; see :class:`MolToDAG` for the options."""
    return MolToDAG(features, order, root, add_hs, kekulize, largest_fragment, max_atoms).from_rdmol(mol, y)
