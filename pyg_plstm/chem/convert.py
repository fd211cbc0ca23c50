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
   or of PyG's :func:`torch_geometric.utils.from_smiles`.

Edges are sorted by ``(src, dst)``, so with ``order='canonical'`` the same
molecule gives identical tensors however its SMILES is written.
"""
from __future__ import annotations

import math
import os
import re
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from numbers import Real
from typing import Iterator, Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import from_rdmol as _pyg_from_rdmol

from pyg_plstm.dag import DAGData, ToDAG

# Importing ogb checks PyPI for a newer release unless told not to.
os.environ.setdefault("OUTDATED_IGNORE", "1")

from ogb.utils.features import atom_to_feature_vector, bond_to_feature_vector  # noqa: E402
from rdkit import Chem, rdBase  # noqa: E402

__all__ = [
    "FEATURES",
    "ORDERS",
    "MolToDAG",
    "as_target",
    "atom_order",
    "from_rdmol",
    "from_smiles",
    "parse_smiles",
    "rdkit_quiet",
    "reorder_nodes",
]

FEATURES = ("ogb", "pyg")
ORDERS = ("canonical", "input", "bfs")

Target = Union[Real, None, Sequence[Optional[Real]], Tensor]

_TO_DAG = ToDAG()


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
    reason = lines[0] if lines else "syntax error"
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


def parse_smiles(smiles: str) -> Chem.Mol:
    r"""Parse and sanitise a SMILES string (hydrogens implicit).

    Unlike :func:`rdkit.Chem.MolFromSmiles` (which returns ``None``) or PyG's
    ``from_smiles`` (which returns an empty molecule), failure is never silent:
    a :class:`ValueError` quoting the string and RDKit's reason is raised.
    Surrounding whitespace is ignored; inner whitespace is rejected (RDKit
    would silently read everything after it as a molecule name).
    """
    if not isinstance(smiles, str):
        raise TypeError(f"SMILES must be a str, got {type(smiles).__name__}")
    text = smiles.strip()
    if not text:
        raise ValueError(f"empty SMILES {smiles!r}")
    if not all(33 <= ord(c) <= 126 for c in text):
        raise ValueError(f"invalid SMILES {smiles!r}: only printable ASCII without spaces is allowed")
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            raise ValueError(f"invalid SMILES {smiles!r}: {_diagnose(text)}")
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
    if order == "canonical":
        rank = list(Chem.CanonicalRankAtoms(mol, breakTies=True))
    elif order == "input":
        rank = list(range(mol.GetNumAtoms()))
    elif order == "bfs":
        rank = _bfs_rank(mol, root)
    else:
        raise ValueError(f"unknown atom order {order!r}; choose one of {ORDERS}")
    return torch.tensor(rank, dtype=torch.long)


def _ogb_features(mol: Chem.Mol) -> tuple[Tensor, Tensor, Tensor]:
    x = torch.tensor([atom_to_feature_vector(a) for a in mol.GetAtoms()], dtype=torch.long)
    src: list[int] = []
    dst: list[int] = []
    attr: list[list[int]] = []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        feat = bond_to_feature_vector(bond)
        src += [i, j]
        dst += [j, i]
        attr += [feat, feat]
    edge_index = torch.tensor([src, dst], dtype=torch.long)
    edge_attr = torch.tensor(attr, dtype=torch.long).view(-1, 3)
    return x.view(-1, 9), edge_index, edge_attr


def _pyg_features(mol: Chem.Mol) -> tuple[Tensor, Tensor, Tensor]:
    try:
        data = _pyg_from_rdmol(mol)
    except ValueError as e:  # PyG looks values up with list.index()
        raise ValueError(f"an atom or bond property is outside PyG's feature vocabulary ({e})") from None
    return data.x, data.edge_index.to(torch.long), data.edge_attr


def reorder_nodes(
    x: Tensor, edge_index: Tensor, edge_attr: Optional[Tensor], rank: Tensor
) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    r"""Renumber node ``i`` as ``rank[i]`` and sort edges by ``(src, dst)``."""
    num_nodes = x.size(0)
    out_x = torch.empty_like(x)
    out_x[rank] = x
    edge_index = rank[edge_index]
    perm = (edge_index[0] * num_nodes + edge_index[1]).argsort()
    return out_x, edge_index[:, perm], None if edge_attr is None else edge_attr[perm]


def as_target(y: Target) -> Tensor:
    r"""Targets as a float tensor of shape ``[1, T]``; ``None`` becomes NaN (missing)."""
    if isinstance(y, Tensor):
        return y.detach().to(torch.float).reshape(1, -1)
    if y is None or isinstance(y, Real):
        y = [y]
    return torch.tensor([math.nan if v is None else float(v) for v in y], dtype=torch.float).view(1, -1)


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
        max_atoms: reject molecules with more nodes than this.

    Edge cases: an unparsable SMILES, a molecule without atoms, or one without
    heavy atoms when ``add_hs=False`` (e.g. ``'[H][H]'``) raises
    :class:`ValueError`. A single atom gives one node and an empty DAG.
    Disconnected fragments (salts, mixtures) stay in one graph as a DAG
    forest. There is no size limit unless ``max_atoms`` is set; cost grows
    linearly with the number of bonds.
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

    def __call__(self, mol: Union[str, Chem.Mol], y: Target = None) -> DAGData:
        if isinstance(mol, str):
            return self.from_smiles(mol, y)
        return self.from_rdmol(mol, y)

    def from_smiles(self, smiles: str, y: Target = None) -> DAGData:
        r"""Convert a SMILES string; ``smiles`` is stored as given."""
        return _TO_DAG(self.graph_from_smiles(smiles, y)[0])

    def from_rdmol(self, mol: Chem.Mol, y: Target = None) -> DAGData:
        r"""Convert an RDKit molecule (not modified; explicit hydrogen atoms are
        folded into the hydrogen counts unless ``add_hs``). ``smiles`` is the
        canonical SMILES of the input."""
        if not isinstance(mol, Chem.Mol):
            raise TypeError(f"expected an rdkit.Chem.Mol, got {type(mol).__name__}")
        with rdkit_quiet():
            try:
                mol = Chem.RemoveHs(mol)  # a sanitised copy
                smiles = Chem.MolToSmiles(mol)
            except (ValueError, RuntimeError) as e:
                raise ValueError(f"RDKit cannot sanitise the molecule: {e}") from None
        return _TO_DAG(self._convert(mol, smiles, y, label=f"molecule {smiles!r}")[0])

    def graph_from_smiles(self, smiles: str, y: Target = None) -> tuple[Data, str]:
        r"""The molecular graph of :meth:`from_smiles` *before* the DAG
        preparation, and the canonical SMILES of the prepared molecule.

        For bulk conversion: :meth:`ToDAG.prepare_many
        <pyg_plstm.dag.ToDAG.prepare_many>` prepares a list of such graphs
        much faster than one :class:`~pyg_plstm.dag.ToDAG` call per graph.
        """
        mol = parse_smiles(smiles)
        return self._convert(mol, smiles, y, label=f"SMILES {smiles!r}")

    def _prepare(self, mol: Chem.Mol) -> tuple[Chem.Mol, str]:
        if self.largest_fragment:
            frags = Chem.GetMolFrags(mol, asMols=True)
            if len(frags) > 1:
                mol = max(frags, key=lambda f: (f.GetNumHeavyAtoms(), f.GetNumAtoms(), Chem.MolToSmiles(f)))
        canonical = Chem.MolToSmiles(mol)
        if self.order == "canonical":
            # Reading the canonical SMILES back fixes the atom *and* bond order,
            # so order-relative annotations (CW/CCW chiral tags, cis/trans
            # reference atoms, the Kekulé assignment) no longer depend on how
            # the input was written. Canonical ranks alone do not achieve that.
            mol = Chem.MolFromSmiles(canonical)
            if mol is None:
                raise ValueError(f"RDKit cannot re-read its own canonical SMILES {canonical!r}")
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
        return mol, canonical

    def _convert(self, mol: Chem.Mol, smiles: str, y: Target, label: str) -> tuple[Data, str]:
        with rdkit_quiet():
            try:
                mol, canonical = self._prepare(mol)
                rank = atom_order(mol, self.order, self.root)
                feats = _ogb_features(mol) if self.features == "ogb" else _pyg_features(mol)
            except (ValueError, RuntimeError) as e:  # RDKit raises both kinds
                raise ValueError(f"{label}: {e}") from None
        x, edge_index, edge_attr = reorder_nodes(*feats, rank)
        data = Data(x=x, edge_index=edge_index, edge_attr=edge_attr, smiles=smiles)
        if y is not None:
            data.y = as_target(y)
        return data, canonical


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
