"""How much label signal reaches the readout of `source_class` before the transitions follow the marks.

    python -m benchmarks.walk_signal            # share of the labelled source, by walk depth (DAGs and trees)

A pLSTM whose gates ignore the marks (as at initialisation: the edge-feature weights of the gates start at
zero) mixes the states of all edges into a node alike. Under that uniform mixing, the state of the readout's
marked in-edge holds the labelled source with share 1 on trees, but on DAGs the share falls towards the
uniform mix of the sources (``1 / width``) with the walk's depth. Its excess over that is the label signal a
readout that reads the marked edge can learn from before the transitions have learnt to follow the marks.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
from torch_geometric.data import Data

from pyg_plstm.datasets.synthetic import long_range_dataset, marked_walk


def labelled_share(graph: Data) -> float:
    """Share of the labelled source in the state of the readout's marked in-edge under mark-blind uniform
    mixing, for an unprepared (directed, sources to readout) `source_class` graph."""
    src, dst = graph.edge_index.tolist()
    walk = marked_walk(graph)
    preds: dict[int, list[int]] = defaultdict(list)
    for u, w in zip(src, dst):
        preds[w].append(u)
    sources = sorted(set(src) - set(dst))
    column = {s: i for i, s in enumerate(sources)}
    # What leaves node u: itself if it is a source, else the mean of what its in-edges carry.
    out: dict[int, np.ndarray] = {}

    def leaving(u: int) -> np.ndarray:
        stack = [u]
        while stack:
            node = stack[-1]
            missing = [p for p in preds[node] if p not in out]
            if missing:
                stack.extend(missing)
                continue
            stack.pop()
            if node in out:
                continue
            if node in column:
                out[node] = np.eye(len(sources))[column[node]]
            else:
                out[node] = np.mean([out[p] for p in preds[node]], axis=0)
        return out[u]

    return float(leaving(src[walk[-1]])[column[src[walk[0]]]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graphs", type=int, default=200, help="graphs per depth (default %(default)s)")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6, 8, 10, 12])
    args = parser.parse_args(argv)
    print("| walk depth | share on DAGs | excess over the uniform mix (0.25) | share on trees |")
    print("|---|---|---|---|")
    for depth in args.depths:
        shares = {kind: np.mean([labelled_share(g) for g in long_range_dataset(
            "source_class", args.graphs, depth, kind=kind, seed=7, prepare=False)]) for kind in ("dag", "tree")}
        print(f"| {depth} | {shares['dag']:.3f} | {shares['dag'] - 0.25:+.3f} | {shares['tree']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
