"""pyg_plstm benchmark suite: every figure measured side by side in one run.

    python -m benchmarks.run                  # full suite, CPU (results in benchmarks/results/)
    python -m benchmarks.run --device cuda    # on a GPU
    python -m benchmarks.run --smoke          # tiny sizes: checks the harness, not speed

Sections: 1 operator, 2 layer, 3 scaling (time and memory), 4 DAG preparation,
5 end-to-end training, 6 Householder transitions, 7 torch.compile vs eager (pLSTM
and GIN). Times are medians of repeats after a warm-up, forward + backward unless
stated.
"""
from __future__ import annotations

import argparse
import csv
import glob
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Callable

import torch
from rdkit import Chem, rdBase
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GATConv, GINConv, TransformerConv
from torch_geometric.utils import from_smiles as pyg_from_smiles

from pyg_plstm.chem import MolToDAG, from_smiles, rdkit_quiet
from pyg_plstm.dag import DAGCollater, ToDAG, get_dag, prepare_dag
from pyg_plstm.datasets import molecules_from_csv
from pyg_plstm.nn import PLSTMConv
from pyg_plstm.ops import choose_form, level_schedule, plstm_parallel, plstm_reference, plstm_scan, plstm_sparse

from benchmarks.harness import Table, interleaved_times, layered_dag, loglog_slope, machine, median_time, write_report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADS, HEAD_DIM, HIDDEN = 4, 24, 96
DEFAULT_MOLECULEACE = os.path.join(os.path.dirname(ROOT), "shared", "data", "moleculeace")


def smiles_list() -> list[str]:
    """SMILES of both shipped sets that RDKit parses (solubility.csv has 4 it rejects)."""
    out = []
    for name in ("solubility.csv", "freesolv.csv"):
        with open(os.path.join(ROOT, "data", name), newline="") as f:
            out += [row["smiles"] for row in csv.DictReader(f)]
    with rdkit_quiet():
        return [s for s in out if Chem.MolFromSmiles(s) is not None]


def molecule_graphs(n: int) -> list[Data]:
    return [graph for graph, _ in MolToDAG().convert_many(smiles_list()[:n])]


def molecule_batch(n: int, device: torch.device) -> Batch:
    return Batch.from_data_list(molecule_graphs(n)).to(device)


def operands(num_nodes: int, num_edges: int, num_lines: int, device: torch.device, k: int = HEAD_DIM,
             v: int = HEAD_DIM, heads: int = HEADS) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ts = [torch.randn(num_nodes, heads, k, generator=g), torch.randn(num_nodes, heads, k, generator=g),
          torch.randn(num_nodes, heads, v, generator=g), torch.rand(num_edges, heads, generator=g),
          torch.rand(num_lines, heads, generator=g) - 0.5, torch.rand(num_edges, heads, generator=g),
          torch.rand(num_nodes, heads, generator=g)]
    return [t.to(device).requires_grad_() for t in ts]


def fwd_bwd(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    def step() -> None:
        fn().sum().backward()
    return step


def bench_operator(args: argparse.Namespace, device: torch.device) -> list[Table]:
    table = Table("1. Operator, forward + backward (H=4, K=V=24, float32)",
                  ["molecules", "nodes", "edges", "levels", "reference ms", "level-scan ms", "parallel ms",
                   "sparse ms", "auto picks", "scan speed-up", "parallel speed-up", "sparse speed-up"])
    for n in args.molecule_batches:
        batch = molecule_batch(n, device)
        dag = get_dag(batch)
        ops = operands(batch.num_nodes, dag.num_edges, dag.num_line_edges, device)
        # The warm-up call builds the schedules, cached on `dag` as in a model's forward pass.
        scan = median_time(fwd_bwd(lambda: plstm_scan(*ops, dag)), device, args.repeats)
        par = median_time(fwd_bwd(lambda: plstm_parallel(*ops, dag)), device, args.repeats)
        sparse = median_time(fwd_bwd(lambda: plstm_sparse(*ops, dag)), device, args.repeats)
        ref = float("nan")
        if device.type == "cpu" and n <= args.reference_max:
            ref = median_time(fwd_bwd(lambda: plstm_reference(*ops, dag)), device, repeats=1, warmup=0)
        table.add(n, batch.num_nodes, dag.num_edges, dag.num_levels, ref * 1e3, scan * 1e3, par * 1e3,
                  sparse * 1e3, choose_form(dag, HEAD_DIM, HEAD_DIM), ref / scan, ref / par, ref / sparse)
    table.notes.append("Level schedules are built once per batch outside the timed step (cached on the DAG, "
                       "shared by a model's layers); the reference is the per-edge Python loop, timed once, on "
                       "128 molecules only (its autograd graph needs O(E * N) memory in backward: 1,024 "
                       "molecules exhausted 24 GB).")
    return [table]


def bench_layer(args: argparse.Namespace, device: torch.device) -> list[Table]:
    table = Table("2. Layer, forward + backward, hidden 96, 4 heads",
                  ["molecules", "layer", "ms", "vs GATConv"])
    readings: list[str] = []
    for n in args.molecule_batches:
        batch = molecule_batch(n, device)
        dag = get_dag(batch)
        x = torch.randn(batch.num_nodes, HIDDEN, device=device, requires_grad=True)
        ei = batch.edge_index
        layers: dict[str, Callable[[], torch.Tensor]] = {}
        for mode in ("P", "D"):
            for form in ("auto", "scan", "parallel", "sparse"):
                conv = PLSTMConv(HIDDEN, HIDDEN, heads=HEADS, mode=mode, form=form).to(device)
                layers[f"PLSTMConv {mode} ({form})"] = lambda conv=conv: conv(x, ei, dag=dag)
        conv = PLSTMConv(HIDDEN, HIDDEN, heads=HEADS).to(device)
        layers["PLSTMConv P (auto), structure in the step"] = lambda conv=conv: conv(x, ei, dag=get_dag(batch))
        graphs = molecule_graphs(n)
        collate = DAGCollater(conv.prepare_structure)

        def collated_step(conv=conv) -> torch.Tensor:
            return conv(x, ei, dag=get_dag(collate(graphs).to(device)))
        layers["PLSTMConv P (auto), structure in the loader's collate, num_workers=0 (collate timed)"] = collated_step
        gin = GINConv(torch.nn.Sequential(torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(),
                                          torch.nn.Linear(HIDDEN, HIDDEN))).to(device)
        gat = GATConv(HIDDEN, HIDDEN // HEADS, heads=HEADS).to(device)
        tf = TransformerConv(HIDDEN, HIDDEN // HEADS, heads=HEADS).to(device)
        layers["GINConv"] = lambda: gin(x, ei)
        layers["GATConv"] = lambda: gat(x, ei)
        layers["TransformerConv"] = lambda: tf(x, ei)
        layers["GATConv, PyG's collate timed"] = lambda: gat(x, Batch.from_data_list(graphs).to(device).edge_index)
        times = {name: median_time(fwd_bwd(fn), device, args.repeats) for name, fn in layers.items()}
        for name, t in times.items():
            table.add(n, name, t * 1e3, t / times["GATConv"])
        collated = times["PLSTMConv P (auto), structure in the loader's collate, num_workers=0 (collate timed)"]
        gat_collated = times["GATConv, PyG's collate timed"]
        readings.append(f"{n} molecules: {collated / gat_collated:.2f}x "
                        f"({times['PLSTMConv P (auto)'] / times['GATConv']:.2f}x with the DAG prepared ahead)")
    table.notes.append("pLSTM rows reuse one DAG whose schedules the warm-up built, as when the DAG is built "
                       "once per batch and shared by a model's layers; the 'structure in the step' row builds "
                       "the DAG and its schedules in every step (a loop over PyG's DataLoader). With "
                       "pyg_plstm.dag.DAGLoader the loader's collate builds them (DAGCollater with the "
                       "model's prepare_structure): in worker processes (num_workers > 0) the step then "
                       "costs what the reused-DAG rows show; the 'collate timed' rows time the collate "
                       "in the step, as with num_workers=0, against GATConv with PyG's collate timed.")
    table.notes.append("PLSTMConv with its structure built as a training loop builds it (collate timed) vs GATConv "
                       "(PyG's collate timed): " + "; ".join(readings) + ".")
    return [table]


def bench_householder(args: argparse.Namespace, device: torch.device) -> list[Table]:
    table = Table("6. Householder transitions vs scalar, PLSTMConv forward + backward, hidden 96, 4 heads",
                  ["molecules", "transition", "form", "ms", "vs scalar (scan)", "vs scalar (auto)"])
    n = args.molecule_batches[0]
    batch = molecule_batch(n, device)
    dag = get_dag(batch)
    x = torch.randn(batch.num_nodes, HIDDEN, device=device, requires_grad=True)
    layers: dict[tuple[str, str], Callable[[], torch.Tensor]] = {}
    for form in ("scan", "auto"):
        conv = PLSTMConv(HIDDEN, HIDDEN, heads=HEADS, form=form).to(device)
        layers[("scalar", form)] = lambda conv=conv: conv(x, batch.edge_index, dag=dag)
    for steps in (1, 2, 4):
        conv = PLSTMConv(HIDDEN, HIDDEN, heads=HEADS, transition="householder", householder_steps=steps).to(device)
        layers[(f"householder n_h={steps}", "scan")] = lambda conv=conv: conv(x, batch.edge_index, dag=dag)
    times = {key: median_time(fwd_bwd(fn), device, args.repeats) for key, fn in layers.items()}
    for (transition, form), t in times.items():
        table.add(n, transition, form, t * 1e3, t / times[("scalar", "scan")], t / times[("scalar", "auto")])
    table.notes.append("Householder transitions run in the scan only (the sparse and parallel forms take scalar "
                       "transitions); 'auto' picks the sparse form for scalar transitions on molecules.")
    return [table]


def _scan_step(num_nodes: int, depth: int, device: torch.device) -> tuple[dict, Callable[[], None]]:
    dag = prepare_dag(layered_dag(num_nodes, depth).to(device), num_nodes, directed=True)
    ops = operands(dag.num_nodes, dag.num_edges, dag.num_line_edges, device, k=8, v=8)
    info = {"nodes": dag.num_nodes, "edges": dag.num_edges, "line edges": dag.num_line_edges,
            "levels": level_schedule(dag).num_levels}
    return info, fwd_bwd(lambda: plstm_scan(*ops, dag))


def memory_probe(num_nodes: int, depth: int, device: torch.device) -> dict:
    """Peak extra memory of one forward + backward (run in a fresh process on CPU)."""
    info, step = _scan_step(num_nodes, depth, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        info["peak MiB"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        # Reset the kernel's peak-RSS counter so that import-time peaks do not count.
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        base = _status_kib("VmRSS")
        step()
        info["peak MiB"] = (_status_kib("VmHWM") - base) / 2**10
    return info


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def bench_scaling(args: argparse.Namespace, device: torch.device) -> list[Table]:
    width = Table("3a. Level scan vs size at fixed depth 10 (H=4, K=V=8)",
                  ["nodes", "edges", "line edges", "levels", "ms", "µs per edge"])
    times, edges = [], []
    for n in args.scaling_sizes:
        info, step = _scan_step(n, 10, device)
        t = median_time(step, device, args.repeats)
        width.add(info["nodes"], info["edges"], info["line edges"], info["levels"], t * 1e3,
                  t * 1e6 / info["edges"])
        times.append(t)
        edges.append(info["edges"] + info["line edges"])
    slope = loglog_slope(edges, times)
    width.notes.append(f"log-log slope of time vs (edges + line edges): {slope:.2f} (1.0 = linear; "
                       "small sizes are dominated by fixed per-level overhead, which flattens the slope)")
    if len(times) >= 3:
        tail = loglog_slope(edges[-2:], times[-2:])
        width.notes.append(f"slope between the two largest sizes: {tail:.2f}")

    deep = Table(f"3b. Level scan vs depth at {args.depth_nodes} nodes (H=4, K=V=8)",
                 ["depth", "edges", "levels", "ms", "µs per level"])
    for d in args.depths:
        info, step = _scan_step(args.depth_nodes, d, device)
        t = median_time(step, device, max(1, args.repeats // 2))
        deep.add(d, info["edges"], info["levels"], t * 1e3, t * 1e6 / max(1, info["levels"]))
    deep.notes.append("Sequential steps grow with depth (one forward and one backward step per level).")

    mem = Table("3c. Peak memory of level-scan forward + backward vs size (depth 10, H=4, K=V=8)",
                ["nodes", "edges", "peak MiB", "bytes per edge"])
    for n in args.scaling_sizes:
        if device.type == "cpu":
            out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--memory-probe", str(n), "10"],
                                 capture_output=True, text=True, check=True, cwd=ROOT)
            info = json.loads(out.stdout.strip().splitlines()[-1])
        else:
            info = memory_probe(n, 10, device)
        mem.add(info["nodes"], info["edges"], info["peak MiB"], info["peak MiB"] * 2**20 / info["edges"])
    mem.notes.append("CPU: peak RSS (VmHWM, reset before the step) minus RSS before the step, in a fresh "
                     "process per size; CUDA: max_memory_allocated. The state per edge is H*K*V floats; "
                     "forward keeps the states, backward adds their adjoints, so memory is O(E) with no O(N^2) term.")
    return [width, deep, mem]


def csv_smiles(paths: list[str]) -> list[str]:
    """The SMILES of the CSV files at ``paths`` that RDKit parses."""
    out = []
    for path in paths:
        with open(path, newline="") as f:
            out += [row["smiles"] for row in csv.DictReader(f)]
    with rdkit_quiet():
        return [s for s in out if Chem.MolFromSmiles(s) is not None]


def randomised_spellings(smiles: list[str], seed: int = 0) -> list[str]:
    """One random, valid spelling of each molecule (RDKit's ``doRandom``), so that none is written canonically."""
    rdBase.SeedRandomNumberGenerator(seed)
    return [Chem.MolToSmiles(Chem.MolFromSmiles(s), doRandom=True) for s in smiles]


def moleculeace_files(directory: str) -> list[str]:
    return sorted(glob.glob(os.path.join(directory, "*.csv"))) if directory and os.path.isdir(directory) else []


def bench_preparation(args: argparse.Namespace, device: torch.device) -> list[Table]:
    conversion = Table("4a. Molecules to model inputs, one process",
                       ["molecules", "what", "items", "seconds", "per second", "speed vs PyG from_smiles"])
    sets = {"solubility (shipped)": csv_smiles([os.path.join(ROOT, "data", "solubility.csv")])}
    ace = moleculeace_files(args.moleculeace)
    if ace:
        sets[f"MoleculeACE ({len(ace)} sets)"] = csv_smiles(ace)
    else:
        conversion.notes.append(f"No MoleculeACE CSV files in {args.moleculeace!r} (--moleculeace): those rows "
                                "are missing.")
    for name in list(sets):
        sets[f"{name.split(' (')[0]}, randomised spellings"] = randomised_spellings(sets[name])
    featurizer = MolToDAG()
    pyg = "PyG from_smiles (features, no DAG)"
    canonical_shares = []
    for name, smiles in sets.items():
        smiles = smiles[: args.prep_molecules]
        canonical = sum(Chem.MolToSmiles(Chem.MolFromSmiles(s)) == s for s in smiles)
        canonical_shares.append(f"{name} {100 * canonical / len(smiles):.0f} %")
        fns = {
            "RDKit Chem.MolFromSmiles alone": lambda smiles=smiles: [Chem.MolFromSmiles(s) for s in smiles],
            pyg: lambda smiles=smiles: [pyg_from_smiles(s) for s in smiles],
            "from_smiles, one call per molecule (features + DAG)": lambda smiles=smiles: [from_smiles(s)
                                                                                          for s in smiles],
            "MolToDAG().convert_many, one call (features + DAG)": lambda smiles=smiles: featurizer.convert_many(
                smiles),
        }
        times = interleaved_times(fns, torch.device("cpu"), args.prep_repeats)
        for what, t in times.items():
            conversion.add(name, what, len(smiles), t, len(smiles) / t, times[pyg] / t)
    conversion.notes.append(f"Medians of {args.prep_repeats} alternating runs after one warm-up run each; "
                            "'speed vs PyG from_smiles' is PyG's time over the row's time (above 1: faster). "
                            "Ours prepares the DAG too, and reads the canonical SMILES back so that the output "
                            "does not depend on the spelling: a second parse for every molecule not written in "
                            "RDKit's canonical form already. SMILES written canonically: "
                            f"{', '.join(canonical_shares)}. The randomised rows write every molecule of the set "
                            "above them in a random valid spelling (RDKit's doRandom, seed 0).")

    datasets = Table("4b. Data-set conversion (molecules_from_csv, OGB features + DAG)",
                     ["file", "rows", "num_workers", "seconds", "rows per second", "speed-up"])
    path = max(ace, key=os.path.getsize) if ace else os.path.join(ROOT, "data", "solubility.csv")
    target = "y" if ace else "log_solubility"
    with tempfile.TemporaryDirectory() as tmp:
        rows = os.path.join(tmp, os.path.basename(path))
        with open(path) as f, open(rows, "w") as out:
            out.writelines(itertools.islice(f, args.prep_molecules + 1))  # the header and the first rows
        def convert(workers: int) -> int:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the skipped-rows warning
                return molecules_from_csv(rows, target_cols=target, num_workers=workers)[1]["num_rows"]

        num_rows = convert(0)
        seconds = interleaved_times({0: lambda: convert(0), 2: lambda: convert(2)}, torch.device("cpu"),
                                    args.prep_repeats)
        for workers, t in seconds.items():
            datasets.add(os.path.basename(path), num_rows, workers, t, num_rows / t, seconds[0] / t)
    datasets.notes.append(f"Medians of {args.prep_repeats} alternating runs after one warm-up run each; the machine "
                          f"has {os.cpu_count()} cores. The graphs of 2 processes are identical to those of one "
                          "(tested).")

    table = Table("4c. DAG preparation throughput (one process)", ["what", "items", "seconds", "per second"])
    graphs = [from_smiles(s) for s in sets["solubility (shipped)"][: args.prep_molecules]]
    raw = [Data(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr) for g in graphs]
    transform = ToDAG()
    start = time.perf_counter()
    for g in raw:
        transform(g)
    t_dag = time.perf_counter() - start
    start = time.perf_counter()
    transform.prepare_many(raw)
    t_many = time.perf_counter() - start
    table.add("ToDAG on featurised molecules, one by one", len(raw), t_dag, len(raw) / t_dag)
    table.add("ToDAG.prepare_many on featurised molecules", len(raw), t_many, len(raw) / t_many)
    big = args.big_dag_nodes
    ei = layered_dag(big, 100)
    start = time.perf_counter()
    dag = prepare_dag(ei, big, directed=True)
    t_big = time.perf_counter() - start
    table.add(f"prepare_dag, one layered DAG ({big:,} nodes, {dag.num_edges:,} edges, depth 100)",
              1, t_big, 1 / t_big)
    table.notes.append(f"torch threads: {torch.get_num_threads()} (preparation is single-threaded NumPy/Python)")
    return [conversion, datasets, table]


def bench_training(args: argparse.Namespace, device: torch.device) -> list[Table]:
    from torch_geometric.loader import DataLoader

    from pyg_plstm.dag import DAGLoader
    from pyg_plstm.models import CONFIGS, make_model

    table = Table("5. End-to-end training throughput on solubility (batch 128, Adam)",
                  ["model", "loader workers", "parameters", "s / epoch", "molecules / s", "vs GIN"])
    with open(os.path.join(ROOT, "data", "solubility.csv"), newline="") as f:
        targets = {r["smiles"]: float(r["log_solubility"]) for r in csv.DictReader(f)}
    valid = [s for s in smiles_list() if s in targets][: args.train_molecules]
    graphs = [from_smiles(s, y=targets[s]) for s in valid]
    # The default before one P-mode layer per block (P then D in every hybrid block) shows what the D-mode
    # layers cost; the default before the hybrid blocks (LayerNorm, no local GINE layer, P then D, norm offset
    # 1e-2, which costs nothing) what the hybrid blocks cost.
    variants = {"plstm": ("plstm", {}), "plstm (P then D)": ("plstm", dict(CONFIGS["hybrid-pd"])),
                "plstm (previous)": ("plstm", dict(CONFIGS["previous"])), "gin": ("gin", {})}
    plstm_time: dict[int, float] = {}
    gin_time: dict[int, float] = {}
    for workers in (0, 1):
        epochs, params = {}, {}
        for name, (model_name, options) in variants.items():
            torch.manual_seed(0)
            model = make_model(model_name, None, 1, node_encoder="ogb", edge_encoder="ogb", **options).to(device)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            params[name] = sum(p.numel() for p in model.parameters())
            # As the command line's trainer loads batches: a pLSTM batch's DAG and schedules are built in
            # the collate, in the worker process when there is one; GIN's batches need none.
            prepare = getattr(model, "prepare_structure", None)
            loader_options = dict(batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(0),
                                  num_workers=workers, persistent_workers=workers > 0)
            loader = (DataLoader(graphs, **loader_options) if prepare is None
                      else DAGLoader(graphs, prepare=prepare, **loader_options))

            def epoch(model=model, opt=opt, loader=loader) -> None:
                for batch in loader:
                    batch = batch.to(device)
                    opt.zero_grad()
                    torch.nn.functional.mse_loss(model(batch).view(-1), batch.y.view(-1)).backward()
                    opt.step()
            epochs[name] = epoch
        # Epochs of the models alternate, so that a change in machine load hits both alike.
        times = interleaved_times(epochs, device, max(3, args.repeats // 2))
        for name, t in times.items():
            table.add(name, workers, params[name], t, len(graphs) / t, t / times["gin"])
        plstm_time[workers], gin_time[workers] = times["plstm"], times["gin"]
    table.notes.append("The default pLSTM model trains at " + " and ".join(
        f"{gin_time[w] / plstm_time[w]:.2f}x GIN's molecules/s with {w} loader worker{'s' * (w != 1)}"
        for w in sorted(plstm_time)) + ".")
    table.notes.append("Median of alternating epochs of the models (one warm-up epoch each). Batches are loaded "
                       "as the command line's trainer loads them: a pLSTM batch's DAG and level schedules are "
                       "built in the collate (DAGLoader with the model's prepare_structure), in the main "
                       "process with 0 loader workers and in one persistent worker process with 1.")
    return [table]


def bench_compile(args: argparse.Namespace, device: torch.device) -> list[Table]:
    from torch._dynamo.utils import counters
    from torch_geometric.loader import DataLoader

    from pyg_plstm.models import make_model

    table = Table(f"7. torch.compile(model, dynamic=True) vs eager, training on solubility (batch 32, Adam, "
                  f"backend {args.compile_backend})",
                  ["model", "first step, s (compiles)", "graphs after step 1", "graphs after the epoch",
                   "graph breaks / step", "eager step, ms", "compiled step, ms", "compiled / eager"])
    with open(os.path.join(ROOT, "data", "solubility.csv"), newline="") as f:
        targets = {r["smiles"]: float(r["log_solubility"]) for r in csv.DictReader(f)}
    valid = [s for s in smiles_list() if s in targets][: args.compile_molecules]
    graphs = [from_smiles(s, y=targets[s]) for s in valid]
    batches = [b.to(device) for b in DataLoader(graphs, batch_size=32, shuffle=True,
                                                 generator=torch.Generator().manual_seed(0))]
    for name in ("plstm", "gin"):
        torch.manual_seed(0)
        model = make_model(name, None, 1, node_encoder="ogb", edge_encoder="ogb").to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(forward: Callable, batch: Batch) -> None:
            opt.zero_grad()
            torch.nn.functional.mse_loss(forward(batch).view(-1), batch.y.view(-1)).backward()
            opt.step()

        torch._dynamo.reset()
        counters.clear()
        compiled = torch.compile(model, dynamic=True, backend=args.compile_backend)
        start = time.perf_counter()
        step(compiled, batches[0])
        first = time.perf_counter() - start
        warm = counters["stats"]["unique_graphs"]
        breaks = sum(counters["graph_break"].values())
        for batch in batches[1:]:  # the rest of the epoch: every new batch shape
            step(compiled, batch)
        after = counters["stats"]["unique_graphs"]
        # Steady state: the same batches again, eager and compiled alternating (both see the same load).
        times = {"eager": [], "compiled": []}
        for batch in batches[: args.repeats * 3]:
            for kind, forward in (("eager", model), ("compiled", compiled)):
                start = time.perf_counter()
                step(forward, batch)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[kind].append(time.perf_counter() - start)
        eager, fast = (float(torch.tensor(times[k]).median()) for k in ("eager", "compiled"))
        table.add(name, first, warm, after, breaks, 1e3 * eager, 1e3 * fast, fast / eager)
    table.notes.append(f"{len(batches)} batches of varying size ({len(graphs)} molecules). Graphs: dynamo's "
                       "compiled graphs; 'after the epoch' minus 'after step 1' = recompilations for new batch "
                       "shapes. Step times: medians over batches, eager and compiled alternating.")
    table.notes.append("pLSTM's graph breaks are by design: structure work (input checks, get_dag, each layer's "
                       "DAG view) and the operator (a loop over the DAG's levels) run eagerly, so compiled code "
                       "never depends on a graph's structure; GIN breaks only at the input checks (graph_inputs) "
                       "and the OGB encoders' vocabulary checks, as pLSTM does besides.")
    return [table]


SECTIONS = {"operator": bench_operator, "layer": bench_layer, "scaling": bench_scaling,
            "preparation": bench_preparation, "training": bench_training, "householder": bench_householder,
            "compile": bench_compile}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: checks the harness only")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    parser.add_argument("--name", default=None, help="report file name (default: full-<device> or smoke)")
    parser.add_argument("--moleculeace", default=os.environ.get("PYG_PLSTM_MOLECULEACE", DEFAULT_MOLECULEACE),
                        help="folder of MoleculeACE CSV files for section 4 (default: $PYG_PLSTM_MOLECULEACE or "
                             "../shared/data/moleculeace beside the repository)")
    parser.add_argument("--memory-probe", nargs=2, type=int, metavar=("NODES", "DEPTH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(json.dumps(memory_probe(*args.memory_probe, device)))
        return 0
    if args.smoke:
        args.molecule_batches, args.reference_max, args.repeats = [8], 8, 1
        args.scaling_sizes, args.depths, args.depth_nodes = [100, 400], [4, 20], 200
        args.prep_molecules, args.big_dag_nodes, args.train_molecules = 20, 2000, 32
        args.prep_repeats = 1
        # dynamo alone: the guards and graph breaks are the same; inductor's C++ build would take minutes.
        args.compile_molecules, args.compile_backend = 64, "eager"
    else:
        args.molecule_batches, args.reference_max, args.repeats = [128, 1024], 128, 7
        args.scaling_sizes, args.depths = [100, 1000, 10_000, 100_000], [10, 100, 1000, 10_000]
        args.depth_nodes = 10_000
        args.prep_molecules, args.big_dag_nodes, args.train_molecules = 10_000, 100_000, 1282
        args.prep_repeats = 3
        args.compile_molecules, args.compile_backend = 320, "inductor"
    info = machine(device)
    # The machine is shared: its load when the run starts says how quiet the run was.
    info.update(date=time.strftime("%Y-%m-%d"), **{"load average at start": round(os.getloadavg()[0], 2)})
    tables: list[Table] = []
    for name in args.sections:
        print(f"[benchmarks] {name} ...", flush=True)
        for table in SECTIONS[name](args, device):
            tables.append(table)
            print(table.markdown(), flush=True)
    name = args.name or ("smoke" if args.smoke else f"full-{device.type}")
    md, js = write_report(tables, info, args.out, name)
    print(f"[benchmarks] wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
