r"""Models by name: :func:`make_model` builds pLSTM or a GNN baseline behind one signature.

Pipelines and benchmarks compare models side by side through it, and a
checkpoint stores its keyword arguments to rebuild the model. Every model maps
a (batched) PyG ``data`` object to ``[num_graphs, out_channels]``. Further
models join with :func:`register_model`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional, Sequence

from torch.nn import Module

from pyg_plstm.checks import check_positive
from pyg_plstm.models.dagnn import DAGNN
from pyg_plstm.models.gnn import GNNBaseline
from pyg_plstm.models.plstm import PLSTMNet
from pyg_plstm.nn.block import PLSTMBlock
from pyg_plstm.nn.conv import PLSTMConv

__all__ = ["forwarding_signature", "make_model", "model_arguments", "model_names", "register_model"]


@dataclass(frozen=True)
class _ModelSpec:
    """A registered model: how to build it, its usual depth and the arguments it adds (its builder's)."""

    builder: Callable[..., Module]
    default_layers: int
    options: tuple[str, ...]


_MODELS: dict[str, _ModelSpec] = {}


def _keyword_parameters(function: Callable[..., Any], taken: Sequence[str] = ()) -> list[inspect.Parameter]:
    """The parameters of ``function`` a caller may set by keyword and may leave out, but ``taken``."""
    return [p for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty
            and p.name not in taken]


def _builder_options(builder: Callable[..., Any]) -> tuple[str, ...]:
    """The keyword arguments ``builder`` takes beyond those :func:`make_model` passes every builder."""
    common = [name for name in inspect.signature(make_model).parameters if name not in ("name", "model_kwargs")]
    return tuple(p.name for p in _keyword_parameters(builder, common))


def forwarding_signature(function: Callable[..., Any],
                         *chain: tuple[Callable[..., Any], Sequence[str]]) -> inspect.Signature:
    r"""The signature of ``function`` with its ``**kwargs`` replaced by the keyword arguments they reach.

    ``chain`` lists, in turn, what each ``**kwargs`` is passed on to (the
    first gets ``function``'s, the next the first's ``**kwargs``, ...),
    each with the arguments its caller sets under another name. An argument
    a caller takes itself is set by that caller, so it is not passed on.
    Set as a builder's ``__signature__``, it shows :func:`register_model` the
    options the builder passes through.
    """
    params = [p for p in inspect.signature(function).parameters.values() if p.kind is not p.VAR_KEYWORD]
    taken = {p.name for p in params}
    for callee, set_by_caller in chain:
        passed = _keyword_parameters(callee, [*taken, *set_by_caller])
        params += [p.replace(kind=p.KEYWORD_ONLY) for p in passed]
        taken |= {p.name for p in passed} | set(set_by_caller)
    return inspect.Signature(params)


def register_model(name: str, builder: Callable[..., Module], default_layers: int) -> None:
    r"""Make :func:`make_model` build ``name`` with ``builder``.

    Args:
        name (str): The model's name, e.g. on the command line.
        builder (callable): Called as ``builder(in_channels, out_channels,
            hidden_channels=..., num_layers=..., heads=..., edge_dim=...,
            node_encoder=..., edge_encoder=..., pooling=..., dropout=...,
            **extra)`` (plus ``molecule_dim=...`` when :func:`make_model` gets
            one) and returns the model. Its other keyword arguments with a
            default (read from its signature, see :func:`forwarding_signature`
            for a builder passing ``**kwargs`` on) are the model's own
            (:func:`model_arguments`); :func:`make_model` refuses any other.
        default_layers (int): The depth used when :func:`make_model` gets
            ``num_layers=None``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model name must be a non-empty string, got {name!r}")
    if name in _MODELS:
        raise ValueError(f"a model named {name!r} is already registered")
    if not callable(builder):
        raise ValueError(f"the builder of model {name!r} must be callable, got {type(builder).__name__}")
    check_positive(default_layers=default_layers)
    _MODELS[name] = _ModelSpec(builder, default_layers, _builder_options(builder))


def model_arguments(name: str) -> tuple[str, ...]:
    """The keyword arguments model ``name`` takes beyond :func:`make_model`'s own."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {model_names()}")
    return _MODELS[name].options


def model_names() -> tuple[str, ...]:
    """Names :func:`make_model` accepts, in registration order."""
    return tuple(_MODELS)


def make_model(
    name: str,
    in_channels: Optional[int],
    out_channels: int,
    hidden_channels: int = 96,
    num_layers: Optional[int] = None,
    heads: int = 4,
    edge_dim: Optional[int] = None,
    node_encoder: str = "linear",
    edge_encoder: Optional[str] = None,
    pooling: str = "mean",
    dropout: float = 0.0,
    molecule_dim: Optional[int] = None,
    **model_kwargs: Any,
) -> Module:
    r"""Build the model registered as ``name`` (see :func:`model_names`).

    ``num_layers`` is the number of pLSTM blocks or GNN layers; :obj:`None`
    picks the model's usual depth (2 pLSTM blocks, 5 GNN layers as in OGB).
    ``molecule_dim`` molecule-level features per graph join the pooled
    embedding before the head (see :class:`~pyg_plstm.models.PLSTMNet`).
    ``model_kwargs`` are the model's own arguments (:func:`model_arguments`;
    for ``"plstm"`` those of :class:`~pyg_plstm.models.PLSTMNet`, e.g.
    ``block``, and of the blocks and layers it builds); others are refused.
    """
    spec = _MODELS.get(name)
    if spec is None:
        raise ValueError(f"unknown model {name!r}; choose one of {model_names()}")
    refused = sorted(set(model_kwargs) - set(spec.options))
    if refused:
        takes = f"; its own arguments are {list(spec.options)}" if spec.options else ""
        raise ValueError(f"model {name!r} does not take the argument(s) {refused}{takes}")
    if molecule_dim is not None:
        # Only then: builders registered before molecule features existed need not take it.
        check_positive(molecule_dim=molecule_dim)
        model_kwargs["molecule_dim"] = molecule_dim
    return spec.builder(
        in_channels, out_channels, hidden_channels=hidden_channels,
        num_layers=spec.default_layers if num_layers is None else num_layers, heads=heads, edge_dim=edge_dim,
        node_encoder=node_encoder, edge_encoder=edge_encoder, pooling=pooling, dropout=dropout, **model_kwargs,
    )


def _build_plstm(in_channels: Optional[int], out_channels: int, num_layers: int, **kwargs: Any) -> PLSTMNet:
    return PLSTMNet(in_channels, out_channels=out_channels, num_blocks=num_layers, **kwargs)


def _build_dagnn(in_channels: Optional[int], out_channels: int, heads: int, **kwargs: Any) -> DAGNN:
    # DAGNN's attention scores every predecessor once: no heads to set.
    return DAGNN(in_channels, out_channels, **kwargs)


# PLSTMNet's **block_kwargs reach every PLSTMBlock, whose **conv_kwargs reach every PLSTMConv; each gets the
# layer pattern from its caller (block -> pattern -> mode).
_build_plstm.__signature__ = forwarding_signature(  # type: ignore[attr-defined]
    _build_plstm, (PLSTMNet, ("num_blocks",)), (PLSTMBlock, ("pattern",)), (PLSTMConv, ("mode",)))
# OGB's depth for its graph-property GNNs; the pLSTM paper's graph setup uses 2 blocks.
register_model("plstm", _build_plstm, default_layers=2)
register_model("gin", partial(GNNBaseline, "gin"), default_layers=5)
register_model("gcn", partial(GNNBaseline, "gcn"), default_layers=5)
register_model("gat", partial(GNNBaseline, "gat"), default_layers=5)
register_model("gin-virtual", partial(GNNBaseline, "gin", virtual_node=True), default_layers=5)
# The authors' depth for the NA and BN data sets: 2 layers in each direction.
register_model("dagnn", _build_dagnn, default_layers=2)
