r"""Transitions made of generalized Householder reflections (DeltaProduct-style state mixing).

A :class:`Householder` transition stands for the matrix

.. math::
    T_{e'e} = a_{e'e}\, H_{e'e}, \qquad
    H = R_{n_h} \cdots R_2 R_1, \qquad
    R_j = I - \beta_j\, \mathbf{w}_j \mathbf{w}_j^\top \in \mathbb{R}^{K \times K}

per line edge and head, acting on the key dimension of the cell state
(:math:`\mathbf{C}_e \mathrel{+}= T_{e'e} \mathbf{C}_{e'}`). :math:`R_1` acts
first, like the first of :math:`n_h` delta-rule steps in DeltaProduct. A
reflection is applied to a :math:`K \times V` state directly,
:math:`R_j \mathbf{C} = \mathbf{C} - \beta_j \mathbf{w}_j (\mathbf{w}_j^\top
\mathbf{C})`, in :math:`O(KV)`: no :math:`K \times K` matrix is formed.

For a unit vector :math:`\mathbf{w}_j`, :math:`R_j` has the eigenvalue
:math:`1 - \beta_j` along :math:`\mathbf{w}_j` and :math:`1` on its
orthogonal complement. With :math:`\beta_j \in [0, 2]` the eigenvalues lie in
:math:`[-1, 1]` (negative ones let a linear recurrence track parity, Grazzi et
al., 2024), so :math:`\|H\|_2 \le 1` and every path product of the P- or
D-mode scalars :math:`a` keeps the bound it has without :math:`H`. The
operator does not require unit vectors; the bound does.

Gradients (one line edge and head, hand-written for the level scan's
backward pass). Let :math:`\mathbf{C}` be the state that enters the
transition and :math:`\mathbf{G}` the adjoint of :math:`a H \mathbf{C}`. With
:math:`\mathbf{C}_j = R_j \mathbf{C}_{j-1}` and the adjoints
:math:`\bar{\mathbf{G}}_{n_h} = a \mathbf{G}`,
:math:`\bar{\mathbf{G}}_{j-1} = R_j \bar{\mathbf{G}}_j`, only the vectors
:math:`\mathbf{p}_j = \mathbf{C}_{j-1}^\top \mathbf{w}_j` and
:math:`\mathbf{g}_j = \bar{\mathbf{G}}_j^\top \mathbf{w}_j` in
:math:`\mathbb{R}^V` are needed; with :math:`M_{ij} = \mathbf{w}_i^\top \mathbf{w}_j`,

.. math::
    \mathbf{p}_j = \mathbf{C}^\top \mathbf{w}_j - \sum_{i<j} \beta_i M_{ij}\, \mathbf{p}_i,
    \qquad
    \mathbf{g}_j = a\, \mathbf{G}^\top \mathbf{w}_j - \sum_{i>j} \beta_i M_{ij}\, \mathbf{g}_i,

and

.. math::
    \frac{\partial}{\partial \beta_j} = -\mathbf{g}_j^\top \mathbf{p}_j, \qquad
    \frac{\partial}{\partial a} = \langle \mathbf{G}, \mathbf{C} \rangle
        - \sum_i \beta_i\, \mathbf{p}_i^\top \mathbf{G}^\top \mathbf{w}_i,

    \frac{\partial}{\partial \mathbf{w}_j} = -\beta_j \Big( a\, \mathbf{G} \mathbf{p}_j
        + \mathbf{C} \mathbf{g}_j - \sum_{i>j} \beta_i (\mathbf{g}_i^\top \mathbf{p}_j)\, \mathbf{w}_i
        - \sum_{i<j} \beta_i (\mathbf{p}_i^\top \mathbf{g}_j)\, \mathbf{w}_i \Big),

since :math:`\bar{\mathbf{G}}_j = a \mathbf{G} - \sum_{i>j} \beta_i \mathbf{w}_i
\mathbf{g}_i^\top` and :math:`\mathbf{C}_{j-1} = \mathbf{C} - \sum_{i<j}
\beta_i \mathbf{w}_i \mathbf{p}_i^\top`. That is :math:`O(n_h K V)` per line
edge and no intermediate state is kept.
"""
from __future__ import annotations

from typing import NamedTuple, Union

import torch
from torch import Tensor

__all__ = ["Householder"]

Lines = Union[Tensor, slice]


class Householder(NamedTuple):
    r"""A transition :math:`T = a\, R_{n_h} \cdots R_1`,
    :math:`R_j = I - \beta_j \mathbf{w}_j \mathbf{w}_j^\top`, per line edge and
    head (see the module docstring); pass it as ``transition`` to
    :func:`~pyg_plstm.functional.plstm_dag`.

    Attributes:
        scale: ``[L, H]`` the scalar :math:`a` (e.g. a P- or D-mode transition gate).
        direction: ``[L, H, n_h, K]`` the vectors :math:`\mathbf{w}_j` (unit
            vectors for :math:`\|R_j\|_2 \le 1`).
        beta: ``[L, H, n_h]`` the coefficients :math:`\beta_j` (in ``[0, 2]``
            for :math:`\|R_j\|_2 \le 1`, in ``[0, 1]`` for eigenvalues in ``[0, 1]``).
    """

    scale: Tensor
    direction: Tensor
    beta: Tensor

    @property
    def steps(self) -> int:
        """:math:`n_h`, the number of reflections."""
        return self.direction.size(-2)

    def select(self, lines: Lines) -> Householder:
        """The transitions of the line edges ``lines`` (an index tensor or a slice)."""
        return Householder(self.scale[lines], self.direction[lines], self.beta[lines])

    def transpose(self) -> Householder:
        r""":math:`T^\top = a\, R_1 \cdots R_{n_h}`: the same (symmetric) reflections in reverse order."""
        return Householder(self.scale, self.direction.flip(-2), self.beta.flip(-1))

    def matrices(self) -> Tensor:
        """The dense matrices ``[L, H, K, K]`` (for tests and inspection; the operator never forms them)."""
        k = self.direction.size(-1)
        eye = torch.eye(k, dtype=self.direction.dtype, device=self.direction.device)
        return self.apply(eye.expand(*self.scale.shape, k, k))

    def apply(self, states: Tensor, inplace: bool = False) -> Tensor:
        """:math:`T \\mathbf{C}` for states ``[L, H, K, V]``, one reflection at a time.

        ``inplace`` overwrites ``states`` (e.g. a freshly gathered block)."""
        lines, heads, k, v = states.shape
        rows = lines * heads
        scale = self.scale[..., None, None]
        # T C = H (a C): scaling first lets every step write into one buffer.
        out = (states.mul_(scale) if inplace else states * scale).view(rows, k, v)
        direction = self.direction.reshape(rows, self.steps, k)
        weighted = (self.beta.unsqueeze(-1) * self.direction).reshape(rows, self.steps, k)
        for j in range(self.steps):
            projection = torch.bmm(direction[:, j:j + 1], out)  # w^T C: [rows, 1, V]
            update = (weighted[:, j:j + 1].transpose(1, 2), projection)
            out = out.baddbmm_(*update, alpha=-1) if inplace else torch.baddbmm(out, *update, alpha=-1)
        return out.view(lines, heads, k, v)

    def grad(self, adjoint: Tensor, states: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Gradients of ``<adjoint, T states>`` with respect to ``(scale, direction, beta)``.

        ``adjoint`` and ``states`` are ``[L, H, K, V]`` (per line edge: the
        adjoint of the moved state and the state that entered the transition);
        see the module docstring for the formulas.
        """
        scale, direction, beta = self
        steps = self.steps
        state_proj = direction @ states  # rows C^T w_j: [L, H, n, V]
        adjoint_proj = direction @ adjoint  # rows G^T w_j
        gram = beta.unsqueeze(-1) * (direction @ direction.transpose(-1, -2))  # beta_i M_ij at [i, j]
        p: list[Tensor] = []
        for j in range(steps):
            row = state_proj[..., j, :]
            for i in range(j):
                row = row - gram[..., i, j, None] * p[i]
            p.append(row)
        g: list[Tensor] = []  # g_{n_h}, ..., g_1
        for j in reversed(range(steps)):
            row = scale[..., None] * adjoint_proj[..., j, :]
            for i, g_i in zip(range(steps - 1, j, -1), g):
                row = row - gram[..., i, j, None] * g_i
            g.append(row)
        g.reverse()
        p_rows, g_rows = torch.stack(p, -2), torch.stack(g, -2)  # [L, H, n, V]
        cross = g_rows @ p_rows.transpose(-1, -2)  # [i, j] = g_i . p_j
        grad_beta = -torch.diagonal(cross, dim1=-2, dim2=-1)
        grad_scale = (adjoint * states).sum((-2, -1)) - (beta * (adjoint_proj * p_rows).sum(-1)).sum(-1)
        # Row j mixes the other reflections: sum_{i>j} (g_i . p_j) beta_i w_i + sum_{i<j} (p_i . g_j) beta_i w_i.
        mixing = torch.tril(cross, -1) + torch.triu(cross.transpose(-1, -2), 1)
        grad_direction = -beta.unsqueeze(-1) * (
            scale[..., None, None] * (p_rows @ adjoint.transpose(-1, -2)) + g_rows @ states.transpose(-1, -2)
            - mixing @ (beta.unsqueeze(-1) * direction))
        return grad_scale, grad_direction, grad_beta
