"""Timing, machine description, synthetic DAGs and report writing for the benchmarks."""
from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import Tensor


def machine(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int) -> dict[str, float]:
    """Median wall time of each function, timing them in turn (``a b a b ...``) after one warm-up call each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def median_time(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def layered_dag(num_nodes: int, depth: int, parents: int = 2, seed: int = 0) -> Tensor:
    """A random DAG of ``depth`` layers of equal width; every node below the
    first layer draws ``parents`` parents (with replacement; repeats are merged
    by :func:`~pyg_plstm.dag.orient`) from the layer above, so the longest
    path has exactly ``depth - 1`` edges."""
    rng = np.random.default_rng(seed)
    width = max(1, num_nodes // depth)
    child = np.repeat(np.arange(width, width * depth), parents)
    parent = (child // width - 1) * width + rng.integers(0, width, child.size)
    return torch.from_numpy(np.stack([parent, child]))


def loglog_slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = np.log(xs), np.log(ys)
    return float(np.polyfit(lx, ly, 1)[0])


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))

    def markdown(self) -> str:
        def fmt(v: Any) -> str:
            if isinstance(v, float):
                if math.isnan(v):
                    return "–"
                return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
            return str(v)
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def write_report(tables: list[Table], info: dict[str, Any], out_dir: str, name: str,
                 extra: Optional[dict[str, Any]] = None) -> tuple[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    md = [f"## Benchmark results ({name})", "",
          "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), ""]
    md += [t.markdown() for t in tables]
    md_path = os.path.join(out_dir, f"{name}.md")
    json_path = os.path.join(out_dir, f"{name}.json")
    with open(md_path, "w") as f:
        f.write("\n".join(md))
    with open(json_path, "w") as f:
        json.dump({"machine": info, "extra": extra or {},
                   "tables": [t.__dict__ for t in tables]}, f, indent=1, default=str)
    return md_path, json_path


def load_records(path: Path) -> list[dict]:
    """The records of a benchmark's JSON file (none when it does not exist yet)."""
    return json.loads(path.read_text())["records"] if path.is_file() else []


def table_position(names: Any, name: Any) -> tuple[int, str]:
    """Where ``name`` sorts among ``names`` (a table's row order); names only another (newer) version of a
    benchmark knows sort after them, so processes of different versions can share one record file."""
    names = list(names)
    return (names.index(name), "") if name in names else (len(names), str(name))


def save_record(path: Path, record: dict, key: tuple[str, ...], order: Callable[[dict], Any],
                header: dict[str, Any]) -> None:
    """Add ``record`` to the JSON file ``path`` (``{**header, "records": [...]}``, sorted by ``order``),
    replacing the one with the same ``key`` fields; a lock file beside it lets several benchmark processes
    share the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = [r for r in load_records(path) if [r[k] for k in key] != [record[k] for k in key]]
        records.append(record)
        records.sort(key=order)
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**header, "records": records}, indent=1))
        os.replace(tmp, path)
