"""Small graph families and operands shared by the tests (plain functions, no fixture magic)."""
from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.data import Batch, Data
from torch_geometric.utils import from_smiles

from pyg_plstm import chem
from pyg_plstm.dag import DAG, ToDAG, get_dag, prepare_dag

FREESOLV = Path(__file__).parents[1] / "data" / "freesolv.csv"
SOLUBILITY = Path(__file__).parents[1] / "data" / "solubility.csv"


def undirected(edges: list[tuple[int, int]]) -> Tensor:
    """Both directions of every edge, as PyG stores undirected graphs."""
    if not edges:
        return torch.zeros(2, 0, dtype=torch.long)
    ei = torch.tensor(edges, dtype=torch.long).t()
    return torch.cat([ei, ei.flip(0)], 1)


def chain(n: int) -> Tensor:
    return undirected([(i, i + 1) for i in range(n - 1)])


def binary_tree(n: int) -> Tensor:
    return undirected([((i - 1) // 2, i) for i in range(1, n)])


def diamond_stack(k: int) -> tuple[Tensor, int]:
    """``k`` diamonds in a row: many paths between the ends."""
    edges, top = [], 0
    for _ in range(k):
        a, b, bottom = top + 1, top + 2, top + 3
        edges += [(top, a), (top, b), (a, bottom), (b, bottom)]
        top = bottom
    return undirected(edges), top + 1


def tailed_diamond() -> tuple[Tensor, int]:
    """A diamond with an edge before and after it: the smallest DAG whose line
    graph has two paths between two line nodes, so the multitree view prunes."""
    return undirected([(0, 1), (1, 2), (1, 3), (2, 4), (3, 4), (4, 5)]), 6


def random_dag(num_nodes: int, p: float, generator: torch.Generator) -> Tensor:
    """Directed edges i -> j (i < j) with probability p: multi-parent DAGs."""
    i, j = torch.triu_indices(num_nodes, num_nodes, 1)
    keep = torch.rand(i.numel(), generator=generator) < p
    return torch.stack([i[keep], j[keep]])


def family(generator: torch.Generator) -> list[tuple[str, Tensor, int]]:
    """(name, edge_index, num_nodes) covering the shapes the operator must handle."""
    ds, dn = diamond_stack(3)
    return [
        ("chain", chain(7), 7),
        ("tree", binary_tree(10), 10),
        ("diamonds", ds, dn),
        ("multi-parent", random_dag(9, 0.45, generator), 9),
        ("isolated nodes", undirected([(0, 3), (3, 4)]), 6),
        ("no edges", torch.zeros(2, 0, dtype=torch.long), 4),
        ("single node", torch.zeros(2, 0, dtype=torch.long), 1),
    ]


def molecules(count: int) -> list[Data]:
    """Ring molecules of FreeSolv as structure-only graphs (so they batch with featureless graphs)."""
    smiles = pd.read_csv(FREESOLV)["smiles"]
    rings = [s for s in smiles if sum(c.isdigit() for c in s) >= 4]  # fused or several rings
    return [Data(edge_index=g.edge_index, num_nodes=g.num_nodes) for g in map(from_smiles, rings[:count])]


def solubility_molecules(count: int, start: int = 0) -> list[Data]:
    """Molecules of data/solubility.csv with the package's (OGB) features, labelled by their position."""
    smiles = pd.read_csv(SOLUBILITY)["smiles"].tolist()[start:start + count]
    return [chem.from_smiles(s, y=[float(i)]) for i, s in enumerate(smiles)]


def prepared_batch(graphs: list[Data]) -> Batch:
    """The PyG batch of the graphs, each prepared by :class:`~pyg_plstm.ToDAG`."""
    return Batch.from_data_list([ToDAG()(g) for g in graphs])


def batched_dag(graphs: list[Data]) -> DAG:
    return get_dag(prepared_batch(graphs))


def random_operands(num_nodes: int, num_edges: int, num_lines: int, heads: int = 2, k: int = 3,
                    v: int = 4, dtype: torch.dtype = torch.float64, generator: torch.Generator | None = None,
                    requires_grad: bool = True) -> list[Tensor]:
    """query, key, value, source, transition, mark, direct with P-mode-like magnitudes."""
    g = generator
    ops = [
        torch.randn(num_nodes, heads, k, dtype=dtype, generator=g),
        torch.randn(num_nodes, heads, k, dtype=dtype, generator=g),
        torch.randn(num_nodes, heads, v, dtype=dtype, generator=g),
        torch.rand(num_edges, heads, dtype=dtype, generator=g),
        torch.rand(num_lines, heads, dtype=dtype, generator=g) * 2 - 1,
        torch.rand(num_edges, heads, dtype=dtype, generator=g),
        torch.rand(num_nodes, heads, dtype=dtype, generator=g),
    ]
    return [t.requires_grad_(requires_grad) for t in ops]


def operands_for(dag: DAG, **kwargs) -> list[Tensor]:
    """:func:`random_operands` sized for ``dag``."""
    return random_operands(dag.num_nodes, dag.num_edges, dag.num_line_edges, **kwargs)


def is_multitree(num_line_nodes: int, line_edges: list) -> bool:
    """At most one directed path between any two nodes (brute force, small graphs)."""
    G = nx.DiGraph()
    G.add_nodes_from(range(num_line_nodes))
    G.add_edges_from(line_edges)
    for s in G.nodes:
        for t in nx.descendants(G, s):
            if len(list(itertools.islice(nx.all_simple_paths(G, s, t), 2))) > 1:
                return False
    return True


def chain_dag(depth):
    n = depth + 1
    return prepare_dag(torch.stack([torch.arange(n - 1), torch.arange(1, n)]), n, directed=True)


def wide_diamonds_dag(depth, width=4):
    """``depth / 2`` stages of top -> ``width`` middle nodes -> bottom."""
    stages, edges, top = depth // 2, [], 0
    for _ in range(stages):
        mids = list(range(top + 1, top + 1 + width))
        bottom = top + 1 + width
        edges += [(top, m) for m in mids] + [(m, bottom) for m in mids]
        top = bottom
    return prepare_dag(torch.tensor(edges).t(), top + 1, directed=True)


def family_dag(index: int) -> DAG:
    """Graph ``index`` of :func:`family` (seeded by its index), prepared."""
    _, ei, n = family(torch.Generator().manual_seed(index))[index]
    return prepare_dag(ei, n)
