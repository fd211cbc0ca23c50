r"""Compatibility with the pLSTM authors' code (`ml-jku/plstm
<https://github.com/ml-jku/plstm>`_, MIT licence).

The operator of :class:`~pyg_plstm.nn.PLSTMConv` equals the authors'
``plstm_graph``. Their graph *edge* layer (``pLSTMGraphEdgeLayer``, commit
``a404ff38``) differs from ours in its gates; with the options
:data:`~pyg_plstm.nn.conv.AUTHORS_CONV_OPTIONS` our layer computes exactly
their function:

* ``p_normalize="in"``: P-mode divides the raw transition of
  :math:`(e' \to e)` by :math:`\alpha + \sum |\tilde T|` over the line edges
  *into* the fed edge :math:`e` (ours: out of the feeding edge :math:`e'`);
* ``transition_node="tail"``: the node feature in the raw transition of
  :math:`(a \to b) \to (b \to c)` is :math:`\mathbf{x}_a`, the tail of
  :math:`e'` (also our default; ``"shared"`` takes the node :math:`b` the two
  edges share);
* ``prune_order="shallowest"``: the D-mode multitree keeps, at every node,
  the in-edges in the order of networkx's topological sort of the line graph
  (ours: deepest first);
* ``qkv_bias=True``: the query/key/value projections have biases.

(``init="authors"`` adds their initialisation, irrelevant when weights are
loaded.) Their multi-head RMSNorm uses :math:`\epsilon = 10^{-5}`, taken from
the ``config`` here. :meth:`PLSTMNet.from_config("authors", ...)
<pyg_plstm.models.PLSTMNet.from_config>` builds their graph model
around it.

:func:`authors_edge_layer` loads their weights, in the neutral names of the
fixture ``tests/fixtures/authors_edge_layer`` (numbers produced by running
their code; its README gives the math), into such a layer; on the fixture's
graphs, ``layer(x, edge_index, edge_attr)`` reproduces their outputs to
rounding (float64).

Not reproduced: the authors' *reversed-graph* path
(``PreparedGraph.reverse``, used by their TU model for every second block).
It mirrors the node features (node :math:`n` is fed the features of node
:math:`N - 1 - n`) while the edge features stay in the forward edge order, so
an edge is paired with the features of another edge. That looks like a bug;
our ``reverse=True`` runs the same layer on the flipped DAG with every node
and edge keeping its own features.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from pyg_plstm.nn.conv import AUTHORS_CONV_OPTIONS, PLSTMConv

__all__ = ["AUTHORS_WEIGHTS", "authors_edge_layer"]

#: Names of the authors' edge-layer weights (``nn.Linear`` layout ``[out, in]``).
AUTHORS_WEIGHTS = ("W_q", "b_q", "W_k", "b_k", "W_v", "b_v", "W_S", "b_S", "W_M", "b_M", "W_D", "b_D",
                   "W_T", "b_T", "g_norm", "W_o", "b_o")
_CONFIG_KEYS = ("mode", "F_in", "F_edge", "heads", "qk_head_dim", "v_head_dim", "rms_eps", "p_norm_alpha")


def authors_edge_layer(weights: Mapping[str, Tensor], config: Mapping[str, Any], form: str = "auto") -> PLSTMConv:
    r"""A :class:`~pyg_plstm.nn.PLSTMConv` computing the authors' graph edge
    layer with the given weights.

    Args:
        weights (Mapping[str, Tensor]): The weights :data:`AUTHORS_WEIGHTS`:
            ``W_q, W_k [H*K, F]``, ``W_v [H*V, F]``, ``W_S, W_M [H, F+J]``
            (input ``[x_node; f_e]``), ``W_D [H, F]``, ``W_T [H, 2J+F]``
            (input ``[f_e'; f_e; x_tail(e')]``), ``g_norm [H, V]``,
            ``W_o [F, H*V]`` and a bias ``b_*`` for each ``W_*``.
        config (Mapping[str, Any]): ``mode`` (``"P"``/``"D"``), ``F_in`` (F),
            ``F_edge`` (J), ``heads`` (H), ``qk_head_dim`` (K), ``v_head_dim``
            (V), ``rms_eps`` and ``p_norm_alpha``. Other keys are ignored;
            the output width is ``F_in``, as in their layer (which ignores its
            ``output_dim``).
        form (str, optional): Operator form of the layer.
            (default: :obj:`"auto"`)

    The layer has the weights' dtype and device. It takes the undirected
    graph as PyG stores it, ``layer(x, edge_index, edge_attr)`` with both
    directions of every edge (oriented from the lower to the higher node
    index, the authors' DAG) and one ``edge_attr`` row per direction; each
    DAG edge uses the row of the first of its two directions in
    ``edge_index``, so the rows of both directions should agree (the
    authors' layer has one feature row per undirected edge).
    """
    missing = [key for key in _CONFIG_KEYS if key not in config]
    if missing:
        raise ValueError(f"the authors' layer config lacks {missing}")
    missing = [name for name in AUTHORS_WEIGHTS if name not in weights]
    if missing:
        raise ValueError(f"the authors' layer weights lack {missing}")
    heads, channels, edge_dim = config["heads"], config["F_in"], config["F_edge"]
    qk, v = config["qk_head_dim"], config["v_head_dim"]
    expected = {
        "W_q": (heads * qk, channels), "W_k": (heads * qk, channels), "W_v": (heads * v, channels),
        "W_S": (heads, channels + edge_dim), "W_M": (heads, channels + edge_dim), "W_D": (heads, channels),
        "W_T": (heads, 2 * edge_dim + channels), "g_norm": (heads, v), "W_o": (channels, heads * v),
    }
    expected.update({"b" + name[1:]: (shape[0],) for name, shape in expected.items() if name.startswith("W_")})
    for name, shape in expected.items():
        if not isinstance(weights[name], Tensor) or tuple(weights[name].shape) != shape:
            raise ValueError(f"the authors' weight {name} must be a tensor of shape {list(shape)} for the "
                             f"config {dict((k, config[k]) for k in _CONFIG_KEYS)}, got "
                             f"{list(getattr(weights[name], 'shape', [])) or type(weights[name]).__name__}")

    reference = weights["W_q"]
    conv = PLSTMConv(channels, channels, heads, config["mode"], edge_dim=edge_dim, qk_channels=qk, v_channels=v,
                     alpha=config["p_norm_alpha"], form=form, **AUTHORS_CONV_OPTIONS)
    conv = conv.to(device=reference.device, dtype=reference.dtype)
    conv.norm.eps = config["rms_eps"]

    def split(name: str) -> tuple[Tensor, Tensor]:
        """The node and edge columns of a gate with input ``[x; f_e]``."""
        return weights[name][:, :channels], weights[name][:, channels:]

    source_node, source_edge = split("W_S")
    mark_node, mark_edge = split("W_M")
    transition = weights["W_T"]
    with torch.no_grad():
        conv.lin_qkv.weight.copy_(torch.cat([weights["W_q"], weights["W_k"], weights["W_v"]]))
        conv.lin_qkv.bias.copy_(torch.cat([weights["b_q"], weights["b_k"], weights["b_v"]]))
        # Gate chunks in PLSTMConv's order: source, mark, direct, transition (node part) and
        # source, mark, transition from f_e', transition from f_e (edge part).
        conv.lin_gate.weight.copy_(torch.cat([source_node, mark_node, weights["W_D"],
                                              transition[:, 2 * edge_dim:]]))
        conv.lin_gate.bias.copy_(torch.cat([weights["b_S"], weights["b_M"], weights["b_D"], weights["b_T"]]))
        conv.lin_edge_gate.weight.copy_(torch.cat([source_edge, mark_edge, transition[:, :edge_dim],
                                                   transition[:, edge_dim:2 * edge_dim]]))
        conv.norm.weight.copy_(weights["g_norm"])
        conv.lin_out.weight.copy_(weights["W_o"])
        conv.lin_out.bias.copy_(weights["b_o"])
    return conv
