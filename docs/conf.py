"""Sphinx configuration of the pyg-plstm documentation (``sphinx-build -W docs docs/_build``).

The docstrings follow PyG's conventions (reStructuredText roles and ``.. math::``, Google-style
``Args:`` sections), so the API reference uses autodoc with napoleon; the guide and the results pages
are Markdown (MyST) and include the tables the benchmark scripts write under ``benchmarks/results/``.
"""
import importlib
import inspect
import os
import re
import sys
import types

sys.path.insert(0, os.path.abspath(".."))
import pyg_plstm  # noqa: E402

project = "pyg-plstm"
author = "pyg-plstm developers"
release = version = pyg_plstm.__version__
copyright = "the pyg-plstm developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
templates_path = ["_templates"]
autosummary_generate = True
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True,
                           "undoc-members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # NamedTuple fields are documented by autodoc already

# Every reference to this package must resolve (a broken one fails the build); references into
# torch, PyG, RDKit and the standard library are not checked: their inventories need the network.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|torch_geometric|rdkit|numpy|np|pandas|networkx|ogb|sklearn|argparse|pathlib|typing|"
               r"collections|os|enum|abc|builtins|multiprocessing|concurrent|io|re|subprocess|types|"
               r"contextlib|dataclasses|matplotlib)(\..*)?"),
    (r"py:.*", r"(Tensor|Data|Batch|Module|Path|Optional|Callable|Any|Sequence|Iterable|Iterator|Mapping|"
               r"NamedTuple|Union|Literal|Dataset|InMemoryDataset|Parameter|Figure|Mol|DataFrame|"
               r"ndarray|LongTensor|OptTensor|Adj|PairTensor|EdgeIndex|str|int|float|bool|dict|list|tuple|"
               r"None|object|type|bytes|Exception|ValueError|TypeError|RuntimeError|optional|callable|numbers\..*|datetime\..*|urllib\..*|AtomEncoder|BondEncoder)"),
    # PyG's docstrings mark argument names and literals with :obj:, not references.
    (r"py:obj", r"(?!pyg_plstm\.).*"),
    # Napoleon reads "Words: ..." in an attribute's comment as a type; a class name has no space.
    (r"py:class", r".*[ >].*"),
    (r"py:class", r"pyg_plstm\..*\.T"),  # a TypeVar
]
suppress_warnings = ["myst.header"]  # the benchmark tables start at their own heading levels


html_theme = "furo"
html_title = f"pyg-plstm {release}"


def _lookup(name):
    """The object at dotted path ``name`` (a module, or attributes below one), or ``None``."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _documented(domain, name):
    """The one documented entry of this package whose dotted path ends with ``name`` (a module-level one
    first), or ``None``."""
    found = [key for key in domain.objects if key.startswith("pyg_plstm") and key.endswith("." + name)]
    if len(found) > 1:  # a module-level function beats methods of the same name
        found = [key for key in found if key.rpartition(".")[0] in sys.modules]
    return found[0] if len(found) == 1 else None


def _defining_module(name):
    """The module of this package that assigns the module-level name ``name`` (a constant)."""
    pattern = re.compile(rf"^{re.escape(name)}\s*[:=]", re.M)
    for module in sorted(m for m in sys.modules if m.startswith("pyg_plstm")):
        try:
            if pattern.search(inspect.getsource(sys.modules[module])):
                return module
        except (OSError, TypeError):
            continue
    return None


def _resolve_public_name(app, env, node, contnode):
    """Resolve a reference to a name that a package re-exports (``pyg_plstm.dag.DAG``), that a module
    imports (``DAG`` in ``pyg_plstm.nn.conv``) or that a class inherits, to where autodoc documented it.
    A name that is found in torch or PyG (an inherited method) is theirs and left unlinked; a name that
    is found nowhere stays a warning, so a broken reference fails the build."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    module = node.get("py:module") or ""
    cls = node.get("py:class")
    domain = env.get_domain("py")
    candidates = [target]
    if module:
        if cls:
            candidates.append(f"{module}.{cls}.{target}")
        candidates.append(f"{module}.{target}")
    for name in candidates:
        if not name.startswith("pyg_plstm"):
            continue
        obj = _lookup(name)
        if obj is None:
            continue
        owner = getattr(obj, "__module__", None)
        if isinstance(obj, types.ModuleType):
            canonical = obj.__name__
        elif owner and getattr(obj, "__qualname__", None):
            if not owner.startswith("pyg_plstm"):
                return contnode
            canonical = f"{owner}.{obj.__qualname__}"
        else:
            canonical = _documented(domain, name.rpartition(".")[2])
        if canonical:
            resolved = domain.resolve_any_xref(env, node["refdoc"], app.builder, canonical, node, contnode)
            if resolved:
                return resolved[0][1]
    # A name the referring module does not import: the one documented object of that name.
    canonical = _documented(domain, target)
    if canonical is None:
        # An existing constant without a doc comment: link to the module that defines it.
        module_name = _defining_module(target.rpartition(".")[2])
        if module_name and _lookup(f"{module_name}.{target.rpartition('.')[2]}") is not None:
            canonical = module_name
    if canonical:
        resolved = domain.resolve_any_xref(env, node["refdoc"], app.builder, canonical, node, contnode)
        if resolved:
            return resolved[0][1]
    return None


def setup(app):
    app.connect("missing-reference", _resolve_public_name)
