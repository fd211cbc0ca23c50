r"""The pLSTM layer on DAGs, in the style of PyG's convolutions."""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor
from torch.nn.parameter import is_lazy
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.nn.inits import uniform
from torch_geometric.utils import scatter

from pyg_plstm.checks import check_choice, check_device, check_positive
from pyg_plstm.dag import DAG, MODES, prepare_dag
from pyg_plstm.dag.multitree import PRUNE_ORDERS
from pyg_plstm.dag.prepare import pruned_in_order, repruned
from pyg_plstm.functional import FORMS, MATRIX_FORMS, Householder, plstm_dag, prepare_structure
from pyg_plstm.nn.norm import MultiHeadRMSNorm

__all__ = ["PLSTMConv", "PLSTMGates", "AUTHORS_CONV_OPTIONS", "GATE_BIAS", "NORM_EPS", "PREVIOUS_NORM_EPS",
           "PAPER_GATE_BIAS", "PAPER_NORM_EPS", "INITS", "P_NORMALIZATIONS", "REVERSE_PRUNINGS", "REFLECTION_EPS",
           "TRANSITION_BIAS", "TRANSITION_NODES", "TRANSITIONS"]

# Chunks of the gate projections: nodes give one term of every gate, edges
# give the f_e terms (transition sees f_{e'} and f_e with separate weights).
_SOURCE, _MARK, _DIRECT, _TRANSITION = range(4)
_TRANSITION_PREV, _TRANSITION_NEXT = 2, 3

# Initial bias of the source, mark and direct gates, and offset of the per-head RMS
# normalisation of the operator output: see "Initialisation" in the class docstring.
GATE_BIAS = 0.0
NORM_EPS = 1.0
#: The norm offset before :data:`NORM_EPS` became 1: the ``"previous"`` and ``"dag"`` configs keep it, and
#: checkpoints of format 2 and older, which do not name it, load with it.
PREVIOUS_NORM_EPS = 1e-2
#: The pLSTM paper's code's gate bias: gates nearly closed at the start.
PAPER_GATE_BIAS = -5.0
#: The pLSTM paper's code's norm offset: an RMS norm of the raw readout.
PAPER_NORM_EPS = 1e-6
# Raw transition bias at initialisation, see the class docstring.
TRANSITION_BIAS = {"P": 3.0, "D": 2.0}
# The authors' code draws the raw transition bias of every head from N(0, 10^2).
AUTHORS_TRANSITION_BIAS_STD = 10.0

# Options of the layer; the first entry is the default, the second the authors' code
# (for the transition node both agree: the tail of e', chosen by the ablation).
P_NORMALIZATIONS = ("out", "in")
REVERSE_PRUNINGS = ("forward", "own")
TRANSITION_NODES = ("tail", "shared")
INITS = ("default", "authors")
#: The transition kinds (a scalar per line edge and head, or the scalar times Householder reflections).
TRANSITIONS = ("scalar", "householder")
#: The reflection directions are ``r / sqrt(|r|^2 + eps)``: unit up to ``eps``, and a finite gradient at ``r = 0``.
REFLECTION_EPS = 1e-6

#: The options that make :class:`PLSTMConv` compute the authors' graph edge layer
#: (see :mod:`pyg_plstm.compat`).
AUTHORS_CONV_OPTIONS = {"p_normalize": "in", "transition_node": "tail", "prune_order": "shallowest",
                        "qkv_bias": True, "init": "authors", "gate_bias": PAPER_GATE_BIAS, "norm_eps": 1e-5}


class PLSTMGates(NamedTuple):
    r"""The operands a :class:`PLSTMConv` feeds the pLSTM operator, and the
    DAG view (direction, line edges) they belong to."""

    query: Tensor
    key: Tensor
    value: Tensor
    source: Tensor
    transition: Tensor | Householder
    mark: Tensor
    direct: Tensor
    dag: DAG


class PLSTMConv(MessagePassing):
    r"""The pLSTM layer from the `"pLSTM: parallelizable Linear Source
    Transition Mark networks" <https://arxiv.org/abs/2506.11997>`_ paper.

    Cell states :math:`\mathbf{C}_e \in \mathbb{R}^{K \times V}` live on the
    edges :math:`e = (u \to w)` of a DAG and flow along its line graph
    :math:`\mathcal{L}`; per head,

    .. math::
        \mathbf{C}_e &= \sum_{(e', e) \in \mathcal{L}} T_{e'e}\,
        \mathbf{C}_{e'} + S_e\, \mathbf{k}_u \mathbf{v}_u^{\top}

        \mathbf{y}_n &= \sum_{e = (u \to n)} M_e\, \mathbf{C}_e^{\top}
        \mathbf{q}_n + D_n\, (\mathbf{q}_n^{\top} \mathbf{k}_n)\, \mathbf{v}_n

    with :math:`\mathbf{q}, \mathbf{k}, \mathbf{v}` linear in :math:`\mathbf{x}`
    and the gates

    .. math::
        S_e = \sigma(\mathbf{W}_S [\mathbf{x}_u; \mathbf{f}_e]), \quad
        M_e = \sigma(\mathbf{W}_M [\mathbf{x}_w; \mathbf{f}_e]), \quad
        D_n = \sigma(\mathbf{W}_D \mathbf{x}_n), \quad
        \tilde T_{e'e} = \mathbf{W}_T [\mathbf{f}_{e'}; \mathbf{f}_e;
        \mathbf{x}_{v}],

    where :math:`v` is the tail of :math:`e'` (as in the authors' code;
    :obj:`transition_node="shared"`: the node :math:`e'` and :math:`e` share,
    the previous default), and :math:`\mathbf{f}_e` is the edge feature
    (``edge_attr``) or, without one, :math:`\frac{1}{2}(\mathbf{x}_u +
    \mathbf{x}_w)`. The transition is

    * **P-mode** (propagation, Eq. 9 of the paper): the line graph is kept
      whole and :math:`T_{e'e} = \tilde T_{e'e} / (\alpha + \sum_{(e', e'')
      \in \mathcal{L}} |\tilde T_{e'e''}|)`, so that
      :math:`\sum_{e} |T_{e'e}| < 1` for every :math:`e'`: a state is split
      among the successors of its edge and the total state mass cannot grow
      along the DAG; the state of an edge is at most the sum of the source
      terms of its ancestor edges. With :obj:`p_normalize="in"` (the
      authors' code) the sum runs over the line edges *into* :math:`e`
      instead, :math:`T_{e'e} = \tilde T_{e'e} / (\alpha + \sum_{(e'', e)
      \in \mathcal{L}} |\tilde T_{e''e}|)`, so :math:`\sum_{e'} |T_{e'e}|
      < 1` for every :math:`e`: a state is a sub-convex combination of its
      predecessors' states plus its own source term, so
      :math:`\|\mathbf{C}_e\| \le (\ell(e) + 1) \max_{e''} S_{e''}
      \|\mathbf{k}\| \|\mathbf{v}\|` with :math:`\ell(e)` the longest path
      of edges before :math:`e`, however wide the DAG (but the total mass can
      grow where a state feeds several edges).
    * **D-mode** (diffusion): :math:`T_{e'e} = \tanh(\tilde T_{e'e})` on the
      line graph pruned to a multitree (:meth:`pyg_plstm.DAG.multitree`), which
      has at most one path between two edges, so :math:`|T| < 1` bounds every
      path product. :obj:`prune_order` picks which multitree is kept
      (:func:`~pyg_plstm.dag.multitree_mask`).

    With :obj:`transition="householder"` the transition becomes a matrix on
    the key dimension (state tracking; DeltaProduct, Siems et al., 2025):
    :math:`\mathbf{C}_e \mathrel{+}= T_{e'e} H_{e'e} \mathbf{C}_{e'}` with
    the scalar :math:`T_{e'e}` above and
    :math:`H = \prod_{j = n_h}^{1} (\mathbf{I} - \beta_j \mathbf{w}_j
    \mathbf{w}_j^\top)` (:class:`~pyg_plstm.ops.Householder`, applied to the
    states without forming :math:`K \times K` matrices), where

    .. math::
        [\mathbf{r}_j; \tilde\beta_j] = \mathbf{W}_H [\mathbf{f}_{e'};
        \mathbf{f}_e; \mathbf{x}_v], \qquad
        \mathbf{w}_j = \frac{\mathbf{r}_j}{\sqrt{\|\mathbf{r}_j\|^2 + \epsilon}},
        \qquad \beta_j = 2\, \sigma(\tilde\beta_j)

    per head (:math:`\beta_j = \sigma(\tilde\beta_j)` with
    :obj:`negative_eigenvalues=False`). The eigenvalues of a reflection,
    :math:`1 - \beta_j \|\mathbf{w}_j\|^2` and :math:`1`, then lie in
    :math:`[-1, 1]` (in :math:`[0, 1]` without negative eigenvalues), so
    :math:`\|H\|_2 \le 1` and the P- and D-mode bounds on the states hold
    unchanged; negative eigenvalues let the state flip sign, which a scalar
    gate in :math:`[0, 1)` cannot do along a path of any length (Grazzi et al.,
    2024: parity). :math:`\mathbf{W}_H` is initialised like the query/key
    projection with a zero bias (:math:`\beta_j \approx 1` or :math:`1/2`).

    The output is normalised per head (:class:`MultiHeadRMSNorm`) and
    projected to :obj:`out_channels`.

    Initialisation follows the paper's code (query/key/value/output weights
    :math:`\mathcal{N}(0, 2 / (5 \cdot \text{fan-in}))`, gate weights zero)
    except in three places. Source, mark and direct biases start at :math:`0`
    (:math:`\sigma = 0.5`), not :math:`-5`: at :math:`\sigma(-5) = 0.007` the
    graph path contributes ~1% of the output, and Adam, which moves a bias by
    about the learning rate per step, needs thousands of steps to open the
    gates, so the layer trains as a node-wise map and underfits.
    The per-head RMS normalisation of the readout has :math:`\epsilon = 1`,
    not :math:`10^{-6}`: the readout starts small (rms ~0.01), and dividing it
    by its own rms amplifies gradient noise ~100-fold (gradient-norm spikes of
    50-500 in the first epochs, a loss plateau during warm-up). With
    :math:`\epsilon = 1` the norm is nearly linear while the readout is
    small and becomes a normalisation once it has grown; :math:`10^{-2}`
    (:data:`PREVIOUS_NORM_EPS`, the default before) removed the plateau, but
    once the warm-up reached the peak learning rate the loss rose again
    (gradient norms 5-13 at 2e-3 on an activity set, 2.4-5 with
    :math:`\epsilon = 1`) and the model underfit the larger activity sets.
    Gate bias and offset together make the loss fall from the first epoch;
    either change alone helps little (the measurements: the documentation's
    *Trainability and the ablation* and *Molecular benchmark* results). The
    paper's values
    are :obj:`gate_bias=-5.0, norm_eps=1e-6` (:data:`PAPER_GATE_BIAS`,
    :data:`PAPER_NORM_EPS`). The third change is the transition bias: the
    paper draws it from :math:`\mathcal{N}(0, 10^2)` per head, which gives half
    the heads sign-alternating transitions and saturates :math:`\tanh` in
    D-mode (exactly :math:`\pm 1` in float32, zero gradient). We use
    :math:`+3` in P-mode (a lone successor gets :math:`T = 3/3.5`) and
    :math:`+2` in D-mode (:math:`T = 0.96`). :obj:`init="authors"`
    restores the authors' code: transition bias :math:`\mathcal{N}(0, 10^2)`
    per head, query/key/value/output biases (when present) PyTorch's default
    :math:`\mathcal{U}(\pm 1 / \sqrt{\text{fan-in}})` instead of zero.

    Under :class:`torch.autocast` the projections run in the autocast dtype,
    but the gates and the operator run in (at least) :obj:`float32` with
    autocast disabled: the cell states accumulate over paths of arbitrary
    length, which :obj:`bfloat16`'s 8-bit mantissa does not survive.

    Under :func:`torch.compile` (``dynamic=True``) the projections and
    gates are compiled, and two steps run eagerly, each a graph break: the
    structure work (checking the DAG against the inputs, building its views;
    host work with data-dependent sizes) and the operator
    (:func:`~pyg_plstm.functional.plstm_dag`, a loop over the DAG's levels).
    Compiled code therefore never depends on a graph's structure: new batch
    shapes and structures are served by the graphs compiled for the first.

    It is a :class:`~torch_geometric.nn.conv.MessagePassing` layer for PyG's
    tooling: it takes :obj:`(x, edge_index, edge_attr, batch)` like any conv,
    works in :class:`torch_geometric.nn.Sequential`, and under
    :class:`torch_geometric.explain.Explainer` an edge mask over the input
    edges scales the Source and Mark gates of the DAG edges they became (the
    reverse copy of an undirected edge, merged away by the orientation, gets
    no attribution); node masks act on :obj:`x` as for any conv. Under
    :func:`torch_geometric.nn.to_hetero`, relations between nodes of one type
    work (each builds its DAG from its :obj:`edge_index`); a relation between
    two node types has no line graph and is refused when called.
    The states flow along the DAG, not through :meth:`propagate`.

    Args:
        in_channels (int): Size of each input node feature, or :obj:`-1` to
            infer it from the first input (lazy initialisation).
        out_channels (int): Size of each output node feature.
        heads (int, optional): Number of heads :math:`H`. (default: :obj:`4`)
        mode (str, optional): :obj:`"P"` or :obj:`"D"`. (default: :obj:`"P"`)
        edge_dim (int, optional): Size of the edge features; :obj:`None` uses
            the mean of the endpoint features. (default: :obj:`None`)
        qk_channels (int, optional): Query/key size :math:`K` per head.
            (default: :obj:`ceil(out_channels / heads)`)
        v_channels (int, optional): Value size :math:`V` per head.
            (default: :obj:`ceil(out_channels / heads)`)
        alpha (float, optional): P-mode normalisation offset :math:`\alpha > 0`.
            (default: :obj:`0.5`)
        form (str, optional): Operator form, see
            :func:`~pyg_plstm.functional.plstm_dag`: :obj:`"scan"`,
            :obj:`"parallel"`, :obj:`"sparse"`, :obj:`"reference"` or
            :obj:`"auto"` (:func:`~pyg_plstm.ops.choose_form`, a measured cost
            model; it picks :obj:`"sparse"` for molecules and the scan for deep
            or large graphs). (default: :obj:`"auto"`)
        cached (bool, optional): When called without :obj:`dag`, keep the DAG
            built from :obj:`edge_index` on the first call and reuse it; only
            for a fixed graph (transductive learning). (default: :obj:`False`)
        bias (bool, optional): Bias of the output projection.
            (default: :obj:`True`)
        p_normalize (str, optional): P-mode normalisation over the line edges
            :obj:`"out"` of the feeding edge or :obj:`"in"` to the fed edge
            (the authors' code). (default: :obj:`"out"`)
        transition_node (str, optional): Node whose features enter the
            transition: the :obj:`"tail"` of :math:`e'` (the authors' code),
            or the node :obj:`"shared"` by :math:`e'` and :math:`e` (the
            previous default). (default: :obj:`"tail"`)
        prune_order (str, optional): D-mode multitree pruning,
            :obj:`"deepest"` (the one the DAG is prepared with) or
            :obj:`"shallowest"` (the authors' code; computed from the DAG on
            first use, see :func:`~pyg_plstm.dag.prepare.pruned_in_order`).
            (default: :obj:`"deepest"`)
        reverse_pruning (str, optional): The multitree of a D-mode layer run
            with :obj:`reverse=True`: :obj:`"forward"`, the forward DAG's
            pruning with its edges flipped, or :obj:`"own"`, the reversed DAG
            pruned in its own direction (:func:`~pyg_plstm.dag.repruned`).
            (default: :obj:`"forward"`)
        qkv_bias (bool, optional): Biases of the query/key/value projections
            (the authors' code has them). (default: :obj:`False`)
        init (str, optional): :obj:`"default"` or :obj:`"authors"`, see above.
            (default: :obj:`"default"`)
        transition (str, optional): :obj:`"scalar"` or :obj:`"householder"`
            (the scalar times :obj:`householder_steps` reflections, see above;
            runs in the forms :data:`~pyg_plstm.functional.MATRIX_FORMS`, which
            :obj:`form="auto"` then picks). (default: :obj:`"scalar"`)
        householder_steps (int, optional): :math:`n_h`, reflections per
            transition. (default: :obj:`1`)
        negative_eigenvalues (bool, optional): :math:`\beta_j \in (0, 2)`
            instead of :math:`(0, 1)`. (default: :obj:`True`)
        gate_bias (float, optional): Initial bias of the source, mark and
            direct gates. (default: :obj:`0.0`; the paper: :obj:`-5.0`)
        norm_eps (float, optional): :math:`\epsilon` of the per-head RMS
            normalisation of the operator output. (default: :obj:`1.0`;
            the paper: :obj:`1e-6`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)` and/or a prepared DAG, optional edge
          features :math:`(|\mathcal{E}|, D)` (rows like :obj:`edge_index`),
          optional batch vector :math:`(|\mathcal{V}|)`
        - **output:** node features :math:`(|\mathcal{V}|, F_{out})`
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 4,
        mode: str = "P",
        edge_dim: Optional[int] = None,
        qk_channels: Optional[int] = None,
        v_channels: Optional[int] = None,
        alpha: float = 0.5,
        form: str = "auto",
        cached: bool = False,
        bias: bool = True,
        p_normalize: str = P_NORMALIZATIONS[0],
        transition_node: str = TRANSITION_NODES[0],
        prune_order: str = PRUNE_ORDERS[0],
        reverse_pruning: str = REVERSE_PRUNINGS[0],
        qkv_bias: bool = False,
        init: str = INITS[0],
        transition: str = TRANSITIONS[0],
        householder_steps: int = 1,
        negative_eigenvalues: bool = True,
        gate_bias: float = GATE_BIAS,
        norm_eps: float = NORM_EPS,
    ) -> None:
        super().__init__(aggr="sum")
        if in_channels != -1:
            check_positive(in_channels=in_channels)
        check_positive(out_channels=out_channels, heads=heads)
        head_channels = math.ceil(out_channels / heads)
        qk_channels = head_channels if qk_channels is None else qk_channels
        v_channels = head_channels if v_channels is None else v_channels
        check_positive(qk_channels=qk_channels, v_channels=v_channels)
        if edge_dim is not None:
            check_positive(edge_dim=edge_dim)
        check_choice("mode", mode, MODES)
        check_choice("form", form, FORMS)
        check_choice("p_normalize", p_normalize, P_NORMALIZATIONS)
        check_choice("transition_node", transition_node, TRANSITION_NODES)
        check_choice("prune_order", prune_order, PRUNE_ORDERS)
        check_choice("reverse_pruning", reverse_pruning, REVERSE_PRUNINGS)
        check_choice("init", init, INITS)
        check_choice("transition", transition, TRANSITIONS)
        check_positive(householder_steps=householder_steps)
        if not isinstance(negative_eigenvalues, bool):
            raise ValueError(f"`negative_eigenvalues` must be a bool, got {negative_eigenvalues!r}")
        if transition == "householder" and form not in MATRIX_FORMS + ("auto",):
            raise ValueError(f"transition='householder' runs in the forms {MATRIX_FORMS} or 'auto', "
                             f"got form={form!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"`alpha` must be a positive number, got {alpha!r}")
        if isinstance(gate_bias, bool) or not isinstance(gate_bias, (int, float)) or not math.isfinite(gate_bias):
            raise ValueError(f"`gate_bias` must be a finite number, got {gate_bias!r}")
        if isinstance(norm_eps, bool) or not isinstance(norm_eps, (int, float)) or not norm_eps > 0:
            raise ValueError(f"`norm_eps` must be a positive number, got {norm_eps!r}")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.mode = mode
        self.edge_dim = edge_dim
        self.qk_channels = qk_channels
        self.v_channels = v_channels
        self.alpha = alpha
        self.form = form
        self.cached = cached
        self.p_normalize = p_normalize
        self.transition_node = transition_node
        self.prune_order = prune_order
        self.reverse_pruning = reverse_pruning
        self.init = init
        self.transition = transition
        self.householder_steps = householder_steps
        self.negative_eigenvalues = negative_eigenvalues
        self.gate_bias = gate_bias
        self._cached_dag: Optional[tuple[tuple[int, int], DAG]] = None

        self.lin_qkv = Linear(in_channels, heads * (2 * qk_channels + v_channels), bias=qkv_bias)
        self.lin_gate = Linear(in_channels, 4 * heads)
        self.lin_edge_gate = Linear(in_channels if edge_dim is None else edge_dim, 4 * heads, bias=False)
        # Per head and reflection: a direction (K) and a beta (1), from x_v and from f_{e'}, f_e.
        reflections = heads * householder_steps * (qk_channels + 1)
        self.lin_reflection = Linear(in_channels, reflections) if transition == "householder" else None
        self.lin_edge_reflection = (Linear(in_channels if edge_dim is None else edge_dim, 2 * reflections, bias=False)
                                    if transition == "householder" else None)
        self.norm = MultiHeadRMSNorm(heads, v_channels, eps=norm_eps)
        self.lin_out = Linear(heads * v_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self._cached_dag = None
        self.norm.reset_parameters()
        if self.in_channels == -1:
            return  # the projections of x are initialised when the first input fixes their size
        for lin in (self.lin_qkv, self.lin_out):
            torch.nn.init.normal_(lin.weight, std=math.sqrt(2.0 / (5.0 * lin.in_channels)))
            if lin.bias is not None and self.init == "authors":
                uniform(lin.in_channels, lin.bias)
            elif lin.bias is not None:
                torch.nn.init.zeros_(lin.bias)
        torch.nn.init.zeros_(self.lin_gate.weight)
        torch.nn.init.zeros_(self.lin_edge_gate.weight)
        if self.lin_reflection is not None:
            for lin in (self.lin_reflection, self.lin_edge_reflection):
                torch.nn.init.normal_(lin.weight, std=math.sqrt(2.0 / (5.0 * lin.in_channels)))
            torch.nn.init.zeros_(self.lin_reflection.bias)
        with torch.no_grad():
            gate_bias = self.lin_gate.bias.view(4, self.heads)
            gate_bias.fill_(self.gate_bias)
            if self.init == "authors":
                gate_bias[_TRANSITION].normal_(std=AUTHORS_TRANSITION_BIAS_STD)
            else:
                gate_bias[_TRANSITION].fill_(TRANSITION_BIAS[self.mode])

    def forward(
        self,
        x: Tensor,
        edge_index: Optional[Tensor] = None,
        edge_attr: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        *,
        dag: Optional[DAG] = None,
        reverse: bool = False,
    ) -> Tensor:
        r"""Runs the layer.

        Args:
            x (torch.Tensor): Node features :math:`(N, F_{in})`.
            edge_index (torch.Tensor, optional): Graph connectivity. Without
                :obj:`dag`, the DAG is built from it on every call (host work;
                :obj:`cached` keeps it): undirected input (every edge in both
                directions) is oriented from lower to higher node index,
                directed input is kept as it is (it must be acyclic), detected
                per graph of :obj:`batch` as :class:`~pyg_plstm.ToDAG` does.
            edge_attr (torch.Tensor, optional): Edge features, one row per
                column of :obj:`edge_index` (the input edges, as PyG stores
                them); each DAG edge takes the row of the input edge it came
                from (:obj:`dag.input_edge`).
            batch (torch.Tensor, optional): Graph of every node, for the DAG
                built from :obj:`edge_index`; a given :obj:`dag` carries its own.
            dag (DAG, optional): The prepared (possibly batched) DAG, e.g.
                :obj:`get_dag(batch)`. Layers that get the same DAG object
                share its level schedules.
            reverse (bool, optional): Run on the reversed DAG.
                (default: :obj:`False`)
        """
        gates = self.gates(x, edge_index, edge_attr, batch, dag=dag, reverse=reverse)
        with torch.autocast(x.device.type, enabled=False):
            out = plstm_dag(*gates[:7], gates.dag, form=self.form)
            out = self.norm(out)
        return self.lin_out(out.flatten(1).to(self.lin_out.weight.dtype))

    def gates(
        self,
        x: Tensor,
        edge_index: Optional[Tensor] = None,
        edge_attr: Optional[Tensor] = None,
        batch: Optional[Tensor] = None,
        *,
        dag: Optional[DAG] = None,
        reverse: bool = False,
    ) -> PLSTMGates:
        """The operator's operands for the same arguments as :meth:`forward`
        (the forward pass computes them exactly this way)."""
        self._materialize(x)
        self._check_x(x)
        edge_attr = self._check_edge_attr(edge_attr, edge_index, x)
        dag, view, input_edge = self._structure_and_view(x, edge_index, edge_attr, batch, dag, reverse)
        edge_attr = None if edge_attr is None else edge_attr[input_edge]
        return self._gates(x, view, edge_attr, self._dag_edge_mask(edge_index, dag))

    def prepare_structure(self, dag: DAG, reverse: bool = False) -> None:
        r"""Builds what :meth:`forward` derives from :obj:`dag` (the view the
        layer runs on, the structure check, the form's schedules) ahead of
        time; all of it is cached on :obj:`dag`, so a forward pass on it does
        no host-side structure work (e.g. called in a data loader's collate,
        see :class:`~pyg_plstm.dag.DAGCollater`)."""
        prepare_structure(self._view(dag, reverse), self.qk_channels, self.v_channels, form=self.form,
                          scalar=self.lin_reflection is None)

    @torch.compiler.disable
    def _structure_and_view(self, x: Tensor, edge_index: Optional[Tensor], edge_attr: Optional[Tensor],
                            batch: Optional[Tensor], dag: Optional[DAG],
                            reverse: bool) -> tuple[DAG, DAG, Optional[Tensor]]:
        """The DAG, the view of it this layer runs on and, with edge features, the input edge of every DAG
        edge. Host work with data-dependent sizes (building and checking structures): under
        :func:`torch.compile` it runs eagerly, a graph break, so compiled code never depends on a structure."""
        dag = self._structure(x, edge_index, batch, dag)
        input_edge = None if edge_attr is None else dag.input_edges(edge_attr.size(0), "edge_attr")
        return dag, self._view(dag, reverse), input_edge

    def _view(self, dag: DAG, reverse: bool) -> DAG:
        if self.mode == "D" and reverse and self.reverse_pruning == "own":
            return repruned(dag.reverse(), self.prune_order).multitree()
        pruned = pruned_in_order(dag, self.prune_order) if self.mode == "D" else dag
        return pruned.view(self.mode, reverse)

    def _materialize(self, x: Tensor) -> None:
        """Fix a lazy ``in_channels=-1`` from the first input and initialise its projections."""
        if self.in_channels != -1 or not isinstance(x, Tensor) or x.dim() != 2:
            return  # nothing to infer, or _check_x names the problem
        # Weights loaded from a state dict are already materialised: keep them.
        fresh = is_lazy(self.lin_qkv.weight)
        lazy = [self.lin_qkv, self.lin_gate, self.lin_reflection]
        if self.edge_dim is None:
            lazy += [self.lin_edge_gate, self.lin_edge_reflection]
        lazy = [lin for lin in lazy if lin is not None]
        for lin in lazy:
            if hasattr(lin, "_hook"):
                lin.initialize_parameters(lin, (x,))
        self.in_channels = x.size(1)
        if fresh:
            self.reset_parameters()

    def _structure(self, x: Tensor, edge_index: Optional[Tensor], batch: Optional[Tensor],
                   dag: Optional[DAG]) -> DAG:
        if edge_index is not None and (not isinstance(edge_index, Tensor) or edge_index.dim() != 2
                                       or edge_index.size(0) != 2):
            raise ValueError(f"`edge_index` must be a tensor of shape [2, num_edges], got {_describe(edge_index)}")
        if batch is not None and not isinstance(batch, Tensor):
            raise ValueError(f"`batch` must be a tensor of graph ids, got {type(batch).__name__}")
        if dag is not None and not isinstance(dag, DAG):
            raise ValueError(f"`dag` must be a pyg_plstm.DAG (e.g. get_dag(batch)), got {type(dag).__name__}")
        check_device("x", x.device, dag=None if dag is None else dag.edge_index, edge_index=edge_index, batch=batch)
        if dag is not None:
            if dag.num_nodes != x.size(0):
                raise ValueError(f"`x` has {x.size(0)} nodes but the DAG has {dag.num_nodes}")
            if batch is not None and (batch.shape != dag.batch.shape or not torch.equal(batch, dag.batch)):
                raise ValueError("`batch` differs from the batch the DAG was built with; build the DAG with "
                                 "get_dag(batch) or prepare_dag(..., batch=batch)")
            if edge_index is not None:
                dag.check_input(edge_index)
            return dag
        if edge_index is None:
            raise ValueError("pass `edge_index` or a prepared `dag`")
        key = (x.size(0), edge_index.size(1))
        if self._cached_dag is not None:
            cached_key, cached = self._cached_dag
            if cached_key != key:
                raise ValueError(f"a cached layer was first called on a graph with (nodes, edges) = {cached_key}, "
                                 f"now {key}; use cached=False for changing graphs")
            return cached
        dag = prepare_dag(edge_index, x.size(0), batch=batch)
        if self.cached:
            self._cached_dag = (key, dag)
        return dag

    def _check_edge_attr(self, edge_attr: Optional[Tensor], edge_index: Optional[Tensor],
                         x: Tensor) -> Optional[Tensor]:
        """``edge_attr`` (rows like ``edge_index``, on the device of ``x``) checked, as a 2-d tensor."""
        if self.edge_dim is None:
            if edge_attr is not None:
                raise ValueError("`edge_attr` was given but the layer was built with edge_dim=None; "
                                 "pass `edge_dim` to use edge features")
            return None
        if edge_attr is None:
            raise ValueError(f"the layer was built with edge_dim={self.edge_dim} but got no `edge_attr`")
        if not isinstance(edge_attr, Tensor):
            raise ValueError(f"`edge_attr` must be a tensor, got {type(edge_attr).__name__}")
        if edge_attr.dim() == 1:
            edge_attr = edge_attr.unsqueeze(-1)
        if edge_attr.dim() != 2 or edge_attr.size(1) != self.edge_dim:
            raise ValueError(f"`edge_attr` must have shape [num_edges, {self.edge_dim}], got {list(edge_attr.shape)}")
        if edge_index is not None and edge_attr.size(0) != edge_index.size(1):
            raise ValueError(f"`edge_attr` has {edge_attr.size(0)} rows but `edge_index` has {edge_index.size(1)} "
                             "columns; edge features are indexed like edge_index (the input edges)")
        if not edge_attr.is_floating_point():
            raise ValueError(f"`edge_attr` must be floating point, got {edge_attr.dtype} "
                             "(embed categorical features first)")
        self._check_dtype("edge_attr", edge_attr)
        check_device("x", x.device, edge_attr=edge_attr)
        return edge_attr

    def _dag_edge_mask(self, edge_index: Optional[Tensor], dag: DAG) -> Optional[Tensor]:
        """The Explainer's edge mask (over the input edges) on the DAG edges, or ``None``."""
        mask = self._edge_mask if self.explain else None
        if mask is None:
            return None
        if edge_index is not None and mask.numel() != edge_index.size(1):
            raise ValueError(f"the explainer's edge mask has {mask.numel()} entries but `edge_index` has "
                             f"{edge_index.size(1)} edges")
        if self._apply_sigmoid:
            mask = mask.sigmoid()
        return mask[dag.input_edges(mask.numel(), "the explainer's edge mask")].view(-1, 1)

    def _check_x(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 2:
            if isinstance(x, (tuple, list)):
                raise ValueError("PLSTMConv got a pair of node feature tensors: a relation between two node types "
                                 "(e.g. from to_hetero) has no line graph for states to flow along; use it on "
                                 "relations within one node type")
            raise ValueError(f"`x` must be a tensor of shape [num_nodes, {self.in_channels}], got {_describe(x)}")
        if x.size(1) != self.in_channels:
            raise ValueError(f"`x` has {x.size(1)} features per node but the layer was built with "
                             f"in_channels={self.in_channels}")
        if not x.is_floating_point():
            raise ValueError(f"`x` must be floating point, got {x.dtype} (embed categorical features first)")
        self._check_dtype("x", x)
        weight = self.lin_qkv.weight
        if x.device != weight.device:
            raise ValueError(f"`x` is on {x.device} but the layer's parameters are on {weight.device}; "
                             "move the layer or the input")

    def _check_dtype(self, name: str, t: Tensor) -> None:
        weight_dtype = self.lin_qkv.weight.dtype
        if t.dtype != weight_dtype and not torch.is_autocast_enabled(t.device.type):
            raise ValueError(f"`{name}` has dtype {t.dtype} but the layer's parameters are {weight_dtype}")

    def _gates(self, x: Tensor, dag: DAG, edge_attr: Optional[Tensor], edge_mask: Optional[Tensor]) -> PLSTMGates:
        num_nodes, num_edges, heads = x.size(0), dag.num_edges, self.heads
        src, dst = dag.edge_index
        prev, nxt = dag.line_index
        qkv = self.lin_qkv(x)
        # Gates and operator run in at least float32 (see the class docstring).
        dtype = torch.promote_types(qkv.dtype, torch.float32)
        k, v = self.qk_channels, self.v_channels
        query, key, value = qkv.to(dtype).split([heads * k, heads * k, heads * v], dim=-1)

        node = self.lin_gate(x).to(dtype).view(num_nodes, 4, heads)
        if edge_attr is None:
            # W (x_u + x_w) / 2 == (W x_u + W x_w) / 2: project nodes, not edges.
            proj = self.lin_edge_gate(x).to(dtype).view(num_nodes, 4, heads)
            edge = 0.5 * (proj[src] + proj[dst])
        else:
            edge = self.lin_edge_gate(edge_attr).to(dtype).view(num_edges, 4, heads)

        source = torch.sigmoid(node[src, _SOURCE] + edge[:, _SOURCE])
        mark = torch.sigmoid(node[dst, _MARK] + edge[:, _MARK])
        if edge_mask is not None:
            source, mark = source * edge_mask, mark * edge_mask
        direct = torch.sigmoid(node[:, _DIRECT])
        transition_node = src[prev] if self.transition_node == "tail" else dst[prev]
        raw = edge[prev, _TRANSITION_PREV] + edge[nxt, _TRANSITION_NEXT] + node[transition_node, _TRANSITION]
        if self.mode == "P":
            group = nxt if self.p_normalize == "in" else prev
            l1 = scatter(raw.abs(), group, dim=0, dim_size=num_edges, reduce="sum")
            transition = raw / (self.alpha + l1[group])
        else:
            transition = torch.tanh(raw)
        if self.lin_reflection is not None:
            transition = Householder(transition, *self._reflections(x, edge_attr, dag, transition_node, dtype))
        return PLSTMGates(query.view(num_nodes, heads, k), key.view(num_nodes, heads, k),
                          value.view(num_nodes, heads, v), source, transition, mark, direct, dag)

    def _reflections(self, x: Tensor, edge_attr: Optional[Tensor], dag: DAG, node_of_line: Tensor,
                     dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Directions ``[L, H, n_h, K]`` and betas ``[L, H, n_h]`` of the Householder transitions."""
        (src, dst), (prev, nxt) = dag.edge_index, dag.line_index
        steps, k = self.householder_steps, self.qk_channels
        node = self.lin_reflection(x).to(dtype)
        if edge_attr is None:
            proj = self.lin_edge_reflection(x).to(dtype)
            edge = 0.5 * (proj[src] + proj[dst])
        else:
            edge = self.lin_edge_reflection(edge_attr).to(dtype)
        edge = edge.view(dag.num_edges, 2, -1)
        raw = (edge[prev, 0] + edge[nxt, 1] + node[node_of_line]).view(-1, self.heads, steps, k + 1)
        direction = raw[..., :k] * torch.rsqrt(raw[..., :k].square().sum(-1, keepdim=True) + REFLECTION_EPS)
        beta = torch.sigmoid(raw[..., k])
        return direction, 2 * beta if self.negative_eigenvalues else beta

    def __repr__(self) -> str:
        householder = (f", transition='householder', householder_steps={self.householder_steps}"
                       f", negative_eigenvalues={self.negative_eigenvalues}" if self.transition == "householder"
                       else "")
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, mode={self.mode!r}{householder})")


def _describe(obj: object) -> str:
    return str(list(obj.shape)) if isinstance(obj, Tensor) else type(obj).__name__
