"""The package's import graph points one way: dag -> ops -> functional -> nn -> models -> train -> cli.

Data preparation (chem, datasets, splits) sits beside dag; checks and atomic are below everything. Function-level
imports count too. No module takes another module's private (leading underscore) names.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pyg_plstm"
# Rank of each top-level part: a module may import only parts of its own rank or lower.
RANKS = {"checks": 0, "atomic": 0, "dag": 1, "chem": 2, "datasets": 2, "splits": 2, "ops": 3, "functional": 4, "nn": 5,
         "compat": 6, "models": 6, "baselines": 6, "train": 7, "experiments": 8, "explain": 8, "cli": 9,
         "__main__": 10}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> list[tuple[str, str | None]]:
    """``(module, imported name or None)`` for every pyg_plstm import in the file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found += [(base, alias.name) for alias in node.names]
    return [(module, item) for module, item in found if module.split(".")[0] == "pyg_plstm"]


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_part_has_a_rank():
    parts = {_part(name) for name in _modules()} - {"__init__"}
    assert parts <= set(RANKS), sorted(parts - set(RANKS))


def test_no_import_points_upwards_or_takes_private_names():
    modules = _modules()
    problems = []
    for name, path in modules.items():
        if name == "pyg_plstm":
            continue  # the top-level package re-exports
        rank = RANKS[_part(name)]
        for target, item in _imports(name, path):
            if target != "pyg_plstm" and RANKS[_part(target)] > rank:
                problems.append(f"{name} imports {target} from a layer above")
            source = f"{target}.{item}" if item and f"{target}.{item}" in modules else target
            if item and item.startswith("_") and not item.startswith("__") and source != name:
                problems.append(f"{name} takes private {item} from {target}")
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    modules = _modules()
    graph = {name: {t for t, _ in _imports(name, path) if t in modules and t != name
                    and not modules[t].name == "__init__.py"}
             for name, path in modules.items() if path.name != "__init__.py"}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)
