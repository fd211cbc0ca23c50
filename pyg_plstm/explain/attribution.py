r"""Atom and bond attributions of a graph-level model's prediction for molecules.

:func:`explain_molecules` scores every atom and bond of each molecule for one
output of a model of the registry (pLSTM or a GNN baseline):

* ``"integrated_gradients"`` (signed): atoms by integrated gradients on
  their encoded features :math:`\mathbf{h}^{(0)}_n` (the output of the
  model's ``node_encoder``; the integer atom features have no gradient), from
  the baseline :math:`\mathbf{B}` that puts the mean encoded atom of its
  molecule, :math:`\bar{\mathbf{h}}^{(0)}_g`, in every atom's place (an
  "average atom": the zero vector lies far from every real atom, and
  masking atoms to it moves any prediction a lot); bonds by integrated
  gradients on an edge mask :math:`m_e` from :math:`0` (no message along the
  bond; in pLSTM the mask scales the Source and Mark gates of the DAG edge)
  to :math:`1`:

  .. math::
      a_n = (\mathbf{h}^{(0)}_n - \bar{\mathbf{h}}^{(0)}_g) \cdot
      \frac{1}{S} \sum_{s=1}^{S} \frac{\partial f}{\partial \mathbf{h}^{(0)}_n}
      \Big(\mathbf{B} + \tfrac{s - 1/2}{S} (\mathbf{H}^{(0)} - \mathbf{B})\Big),
      \qquad
      b_e = \frac{1}{S} \sum_{s=1}^{S} \frac{\partial f}{\partial m_e}
      \Big(\tfrac{s - 1/2}{S}\,\mathbf{1}\Big),

  so :math:`\sum_n a_n \approx f(\mathbf{H}^{(0)}) - f(\mathbf{B})`
  (completeness; exact as :math:`S \to \infty` for a model smooth along the
  path), and the same for the bonds.
* ``"saliency"`` (unsigned): :math:`\lVert \partial f / \partial
  \mathbf{h}^{(0)}_n \rVert_2` and :math:`|\partial f / \partial m_e|` at the
  input.
* ``"gnnexplainer"`` (unsigned, in :math:`[0, 1]`): PyG's
  :class:`~torch_geometric.explain.algorithm.GNNExplainer` through
  :class:`~torch_geometric.explain.Explainer` with one mask per atom (scaling
  its encoded features) and one per edge, fitted per molecule to keep the
  prediction (regression loss on the explained output).
* ``"captum_integrated_gradients"`` (signed; needs the optional package
  ``captum``, ``pip install "pyg-plstm[captum]"``): Captum's
  ``IntegratedGradients`` through PyG's
  :class:`~torch_geometric.explain.algorithm.CaptumExplainer`, on the encoded
  features and the edge mask together, from Captum's zero baseline (all
  encoded features and all bonds at zero at once); an atom's score is the sum
  over its features. An independent implementation beside
  ``"integrated_gradients"``, with a different baseline.

:math:`f` is the explained output in label units (a regression target
de-normalised with the checkpoint's ``target_norm``, a classifier's logit).
A bond's score is the sum over its two directed edges (in pLSTM only the
direction the DAG kept carries messages). Scores are mapped back to the
molecule's RDKit atom and bond indices with
:meth:`~pyg_plstm.chem.MolToDAG.atom_map`, whatever atom order the model's
featurizer used.
"""
from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from rdkit import Chem
from torch import Tensor
from torch.nn import Module
from torch_geometric.data import Batch, Data
from torch_geometric.explain import Explainer, GNNExplainer
from torch_geometric.explain.algorithm.utils import clear_masks, set_masks
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter

from pyg_plstm.checks import check_choice, check_positive
from pyg_plstm.chem import MolToDAG
from pyg_plstm.train.distributed import resolve_device

__all__ = ["METHODS", "SIGNED", "OPTIONAL_PACKAGES", "check_installed", "MoleculeAttribution", "explain_molecules",
           "ExplainedOutput", "atom_baseline", "target_index"]

METHODS = ("integrated_gradients", "saliency", "gnnexplainer", "captum_integrated_gradients")
#: Whether a method's scores carry a sign (pushes the output up or down).
SIGNED = {"integrated_gradients": True, "saliency": False, "gnnexplainer": False, "captum_integrated_gradients": True}
#: The methods that need an optional package, and the package.
OPTIONAL_PACKAGES = {"captum_integrated_gradients": "captum"}

Molecule = Union[str, Chem.Mol, Data]


@dataclass
class MoleculeAttribution:
    r"""The scores of one molecule.

    ``atom_scores[i]`` belongs to atom ``i`` and ``bond_scores[j]`` to bond
    ``j`` of ``mol`` (NaN where the model saw no such atom, e.g. a fragment
    dropped by ``largest_fragment``). ``node_scores``/``edge_scores`` are the
    same scores per node and per ``edge_index`` column of ``graph``, the
    graph the model read. ``mol`` is :obj:`None` for a prepared graph without
    a ``smiles`` attribute; the atom and bond scores are then :obj:`None` too.
    ``prediction`` is the explained output (column ``output``, named
    ``target``) in label units.
    """

    smiles: Optional[str]
    mol: Optional[Chem.Mol]
    atom_scores: Optional[np.ndarray]
    bond_scores: Optional[np.ndarray]
    node_scores: np.ndarray
    edge_scores: np.ndarray
    prediction: float
    method: str
    target: str
    signed: bool
    graph: Data
    output: int


class ExplainedOutput(Module):
    r"""One output of a graph-level model in label units, with the model's encoded node features
    replaceable (the inputs attributions are taken on).

    ``forward(data)`` returns ``[num_graphs]``; inside :meth:`encoded_nodes`,
    the model's ``node_encoder`` returns the given tensor instead of encoding
    ``data.x``.
    """

    def __init__(self, model: Module, target: int = 0, target_norm: Optional[Mapping[str, Tensor]] = None) -> None:
        super().__init__()
        encoder = getattr(model, "node_encoder", None)
        if not isinstance(encoder, Module):
            raise ValueError(f"{type(model).__name__} has no `node_encoder` module; attributions are taken on the "
                             "encoded node features, as the models of pyg_plstm.models.make_model have them")
        if not any(isinstance(m, MessagePassing) for m in model.modules()):
            raise ValueError(f"{type(model).__name__} has no MessagePassing layer to take bond masks")
        self.model = model
        self.target = target
        self.scale = tuple(_entry(v, target) for v in ((1.0, 0.0) if target_norm is None
                                                      else (target_norm["std"], target_norm["mean"])))

    @contextlib.contextmanager
    def encoded_nodes(self, nodes: Tensor) -> Iterator[None]:
        handle = self.model.node_encoder.register_forward_hook(lambda module, inputs, output: nodes)
        try:
            yield
        finally:
            handle.remove()

    def encode(self, data: Any) -> Tensor:
        with torch.no_grad():
            return self.model.node_encoder(data.x)

    def forward(self, data: Any) -> Tensor:
        out = self.model(data)
        if out.dim() != 2 or not 0 <= self.target < out.size(1):
            raise ValueError(f"cannot explain output {self.target}: the model gives outputs of shape "
                             f"{list(out.shape)}")
        std, mean = self.scale
        return out[:, self.target] * std + mean


def _entry(value: Any, column: int) -> float:
    values = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    return float(values[column] if values.numel() > 1 else values[0])


class _OnEncodedNodes(Module):
    r"""``(x, edge_index, data) -> [num_graphs, 1]`` with ``x`` the encoded nodes: the signature of
    PyG's :class:`~torch_geometric.explain.Explainer`."""

    def __init__(self, output: ExplainedOutput) -> None:
        super().__init__()
        self.output = output

    def forward(self, x: Tensor, edge_index: Tensor, data: Any) -> Tensor:
        with self.output.encoded_nodes(x):
            return self.output(data).unsqueeze(-1)


def _gradients(output: ExplainedOutput, data: Any, nodes: Tensor, edge_mask: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of the summed outputs (graphs do not interact in eval mode) w.r.t. nodes and edge mask."""
    nodes, edge_mask = nodes.detach().requires_grad_(), edge_mask.detach().requires_grad_()
    set_masks(output, edge_mask, data.edge_index, apply_sigmoid=False)
    try:
        with output.encoded_nodes(nodes):
            value = output(data).sum()
        return torch.autograd.grad(value, (nodes, edge_mask), allow_unused=True)
    finally:
        clear_masks(output)


def atom_baseline(nodes: Tensor, batch: Tensor) -> Tensor:
    r"""The baseline of every atom: the mean encoded atom of its molecule, :math:`\bar{\mathbf{h}}^{(0)}_g`."""
    return scatter(nodes, batch, dim=0, reduce="mean")[batch]


def _integrated_gradients(output: ExplainedOutput, data: Any, steps: int) -> tuple[Tensor, Tensor]:
    h0 = output.encode(data)
    base = atom_baseline(h0, data.batch)
    ones = h0.new_ones(data.edge_index.size(1))
    node_grad, edge_grad = torch.zeros_like(h0), torch.zeros_like(ones)
    for step in range(steps):
        alpha = (step + 0.5) / steps
        # Atoms along the path with all bonds present; bonds along the path with the atoms as they are.
        node_grad += _gradients(output, data, base + alpha * (h0 - base), ones)[0]
        edge_grad += _none_as_zero(_gradients(output, data, h0, alpha * ones)[1], ones)
    return ((h0 - base) * node_grad).sum(-1) / steps, edge_grad / steps


def _saliency(output: ExplainedOutput, data: Any) -> tuple[Tensor, Tensor]:
    h0 = output.encode(data)
    ones = h0.new_ones(data.edge_index.size(1))
    node_grad, edge_grad = _gradients(output, data, h0, ones)
    return node_grad.norm(dim=-1), _none_as_zero(edge_grad, ones).abs()


def _none_as_zero(grad: Optional[Tensor], like: Tensor) -> Tensor:
    # A model whose output does not depend on the edge mask (no message reaches the readout).
    return torch.zeros_like(like) if grad is None else grad


def _gnnexplainer(output: ExplainedOutput, data: Any, epochs: int, seed: int) -> tuple[Tensor, Tensor]:
    explainer = _explainer(output, GNNExplainer(epochs=epochs), node_mask_type="object")
    try:
        # GNNExplainer's loss averages over the graphs of a batch, which would weaken each molecule's prediction
        # term against its mask regularisation.
        return _per_molecule(explainer, output, data, seed)
    finally:
        _unregister_edge_masks(output)


def _unregister_edge_masks(module: Module) -> None:
    """Drop the ``_edge_mask`` parameter slot GNNExplainer's mask leaves in every MessagePassing layer.

    PyG's ``clear_masks`` sets the slot to ``None`` but keeps it, and ``set_masks`` then wraps every later
    mask in a new ``Parameter``, cut from the tensor it was given: no gradient reaches the mask of a later
    method (bond scores of zero) and Captum finds its input unused.
    """
    for layer in module.modules():
        if isinstance(layer, MessagePassing) and "_edge_mask" in layer._parameters:
            del layer._parameters["_edge_mask"]
            layer._edge_mask = None


def _captum_integrated_gradients(output: ExplainedOutput, data: Any, steps: int) -> tuple[Tensor, Tensor]:
    from torch_geometric.explain.algorithm import CaptumExplainer

    explainer = _explainer(output, CaptumExplainer("IntegratedGradients", n_steps=steps), node_mask_type="attributes")
    # PyG's Captum wrapper takes one input sample, and a batch of molecules has one output per molecule.
    return _per_molecule(explainer, output, data, seed=0)


def _explainer(output: ExplainedOutput, algorithm: Module, node_mask_type: str) -> Explainer:
    # The wrapper in eval mode: PyG's Explainer puts the module it is given back in that module's mode after
    # every call, and a new module is in training mode (BatchNorm on batch statistics, dropout on).
    return Explainer(_OnEncodedNodes(output).eval(), algorithm, explanation_type="model",
                     node_mask_type=node_mask_type, edge_mask_type="object",
                     model_config=dict(mode="regression", task_level="graph", return_type="raw"))


def _per_molecule(explainer: Explainer, output: ExplainedOutput, data: Any, seed: int) -> tuple[Tensor, Tensor]:
    """Node scores (a node mask summed over its features) and edge scores of ``explainer``, molecule by molecule."""
    node, edge = [], []
    for graph in data.to_data_list():
        single = Batch.from_data_list([graph])
        with torch.random.fork_rng():  # manual_seed reseeds every device; all are restored
            torch.manual_seed(seed)
            explanation = explainer(output.encode(single), single.edge_index, data=single)
        node.append(explanation.node_mask.detach().sum(-1))
        edge.append(explanation.edge_mask.detach().view(-1))
    return torch.cat(node), torch.cat(edge)


def check_installed(method: str) -> None:
    """Raise :class:`ImportError` naming the optional package ``method`` needs where it is missing."""
    package = OPTIONAL_PACKAGES.get(method)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ImportError(f"method {method!r} needs the optional package {package!r}: "
                          f'pip install "pyg-plstm[{package}]"')


def target_index(target: Union[int, str], names: Optional[Sequence[str]] = None) -> tuple[int, str]:
    """The output column ``target`` names (an index or one of ``names``) and its display name."""
    names = list(names or [])
    if isinstance(target, str):
        if target in names:
            return names.index(target), target
        if target.isdigit():
            target = int(target)
        else:
            raise ValueError(f"unknown target {target!r}; the model's targets are {names or 'unnamed'}")
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise ValueError(f"`target` must be an output index >= 0 or a target name, got {target!r}")
    if names and target >= len(names):
        raise ValueError(f"target {target} is out of range: the model has {len(names)} target(s) {names}")
    return target, names[target] if target < len(names) else f"output {target}"


def _prepared(molecule: Molecule, featurizer: MolToDAG, position: int) -> tuple[Data, Optional[Chem.Mol],
                                                                                 Optional[Tensor], Optional[str]]:
    """The graph of ``molecule``, the molecule its nodes map to, the map and the SMILES."""
    if isinstance(molecule, (str, Chem.Mol)):
        graph = featurizer(molecule)
        mol, node_atoms = featurizer.atom_map(molecule)
        return graph, mol, node_atoms, molecule if isinstance(molecule, str) else Chem.MolToSmiles(mol)
    if not isinstance(molecule, Data):
        raise TypeError(f"molecule {position}: expected a SMILES string, an RDKit Mol or a prepared graph, got "
                        f"{type(molecule).__name__}")
    smiles = getattr(molecule, "smiles", None)
    if not isinstance(smiles, str):
        return molecule, None, None, None
    expected = featurizer(smiles)
    if not (torch.equal(expected.x, molecule.x) and torch.equal(expected.edge_index, molecule.edge_index)):
        raise ValueError(f"molecule {position}: the graph is not what the featurizer {featurizer} makes of its "
                         f"SMILES {smiles!r}; pass the featurizer the graph was made with")
    mol, node_atoms = featurizer.atom_map(smiles)
    return molecule, mol, node_atoms, smiles


def _on_molecule(mol: Chem.Mol, node_atoms: Tensor, edge_index: Tensor, node_scores: np.ndarray,
                 edge_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    atoms = node_atoms.numpy()
    atom_scores = np.full(mol.GetNumAtoms(), np.nan)
    atom_scores[atoms] = node_scores
    bond_scores = np.full(mol.GetNumBonds(), np.nan)
    for (u, v), score in zip(atoms[edge_index.numpy().T], edge_scores):
        bond = mol.GetBondBetweenAtoms(int(u), int(v)).GetIdx()
        bond_scores[bond] = np.nan_to_num(bond_scores[bond]) + score
    return atom_scores, bond_scores


def explain_molecules(
    model: Module,
    molecules: Sequence[Molecule],
    method: str = "integrated_gradients",
    target: Union[int, str] = 0,
    *,
    featurizer: Optional[MolToDAG] = None,
    target_norm: Optional[Mapping[str, Tensor]] = None,
    target_names: Optional[Sequence[str]] = None,
    batch_size: int = 32,
    steps: int = 32,
    epochs: int = 100,
    seed: int = 0,
    device: Optional[Union[str, torch.device]] = None,
) -> list[MoleculeAttribution]:
    r"""Atom and bond scores of ``model``'s output ``target`` for every molecule (see the module docstring).

    Args:
        model: A graph-level model with a ``node_encoder`` (any model of
            :func:`~pyg_plstm.models.make_model`); put in eval mode, not
            otherwise changed.
        molecules: SMILES strings, RDKit molecules or prepared graphs (with a
            ``smiles`` attribute to get atom and bond scores).
        method: One of :data:`METHODS`.
        target: Output index, or a name of ``target_names``.
        featurizer: How the model's graphs are made (the checkpoint's
            ``meta["featurizer"]``); default :class:`~pyg_plstm.chem.MolToDAG`.
        target_norm: The checkpoint's ``target_norm`` (scores and predictions
            in label units); :obj:`None` explains the raw output.
        batch_size: Molecules per forward pass.
        steps: Integration steps of (both) integrated gradients.
        epochs: Optimisation steps of GNNExplainer.
        seed: Seed of GNNExplainer's mask initialisation (the global random
            state is left as it was).
        device: Where to compute (the model is moved there); default: the
            model's device.
    """
    check_choice("method", method, METHODS)
    check_installed(method)
    check_positive(batch_size=batch_size, steps=steps, epochs=epochs)
    featurizer = featurizer or MolToDAG()
    column, name = target_index(target, target_names)
    device = next(model.parameters()).device if device is None else resolve_device(device)
    items = [_prepared(m, featurizer, i) for i, m in enumerate(molecules)]
    was_training = model.training
    # Every buffer as the caller had it, whatever a method's passes (PyG's Explainer's among them) do.
    buffers = {name: buffer.detach().clone() for name, buffer in model.named_buffers()}
    # Explained in eval mode: BatchNorm on its running statistics, no dropout.
    output = ExplainedOutput(model.to(device), column, target_norm).eval()
    try:
        return [result for start in range(0, len(items), batch_size)
                for result in _explain_batch(output, items[start:start + batch_size], method, name, steps, epochs,
                                             seed, device)]
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])


def _explain_batch(output: ExplainedOutput, chunk: list, method: str, name: str, steps: int, epochs: int,
                   seed: int, device: torch.device) -> list[MoleculeAttribution]:
    results = []
    data = Batch.from_data_list([graph for graph, *_ in chunk]).to(device)
    with torch.no_grad():
        predictions = output(data).cpu()
    if method == "integrated_gradients":
        node, edge = _integrated_gradients(output, data, steps)
    elif method == "saliency":
        node, edge = _saliency(output, data)
    elif method == "captum_integrated_gradients":
        node, edge = _captum_integrated_gradients(output, data, steps)
    else:
        node, edge = _gnnexplainer(output, data, epochs, seed)
    node, edge = node.detach().cpu().double().numpy(), edge.detach().cpu().double().numpy()
    edge_graph = data.batch[data.edge_index[0]].cpu().numpy()
    for k, (graph, mol, node_atoms, smiles) in enumerate(chunk):
        node_scores = node[int(data.ptr[k]):int(data.ptr[k + 1])]
        edge_scores = edge[edge_graph == k]
        atom_scores = bond_scores = None
        if mol is not None:
            atom_scores, bond_scores = _on_molecule(mol, node_atoms, graph.edge_index, node_scores, edge_scores)
        results.append(MoleculeAttribution(smiles, mol, atom_scores, bond_scores, node_scores, edge_scores,
                                           float(predictions[k]), method, name, SIGNED[method], graph, output.target))
    return results
