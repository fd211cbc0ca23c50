r"""Per-feature standardisation with statistics fitted once on training rows (molecule-level features)."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Module

from pyg_plstm.checks import check_positive

__all__ = ["Standardize"]


class Standardize(Module):
    r"""Standardises every feature with a mean and standard deviation fitted on training rows (not trained).

    .. math::
        y_j = \frac{x_j - \mu_j}{\sigma_j},

    with :math:`\mu_j, \sigma_j` the mean and (population) standard
    deviation of the finite values of feature :math:`j` over the rows given
    to :meth:`fit`; :math:`\sigma_j = 1` for a feature constant on them, and
    :math:`\mu_j = 0, \sigma_j = 1` for one without a finite value there.
    A non-finite input (NaN, :math:`\pm\infty`: a descriptor RDKit cannot
    compute) gives :math:`y_j = 0`, the training mean. The statistics are
    float64 buffers, so they travel with the model's ``state_dict`` (and its
    checkpoints); before :meth:`fit` the module is the identity.

    Args:
        num_features (int): The number of features :math:`D`.

    Shapes:
        - **input:** :math:`(N, D)`
        - **output:** :math:`(N, D)`, float64
    """

    def __init__(self, num_features: int) -> None:
        super().__init__()
        check_positive(num_features=num_features)
        self.num_features = num_features
        self.register_buffer("mean", torch.zeros(num_features, dtype=torch.float64))
        self.register_buffer("std", torch.ones(num_features, dtype=torch.float64))

    def reset_parameters(self) -> None:
        """Statistics are fitted, not initialised: :meth:`reset_parameters` keeps them."""

    @torch.no_grad()
    def fit(self, x: Tensor) -> "Standardize":
        """Fit the statistics on the rows of ``x`` ``[N, D]`` (the training split only)."""
        if x.dim() != 2 or x.size(1) != self.num_features:
            raise ValueError(f"expected features of shape [N, {self.num_features}], got {list(x.shape)}")
        x = x.to(self.mean.device, torch.float64)
        finite = torch.isfinite(x)
        count = finite.sum(0)
        mean = torch.where(finite, x, 0).sum(0) / count.clamp(min=1)
        var = torch.where(finite, (x - mean) ** 2, 0).sum(0) / count.clamp(min=1)
        self.mean.copy_(torch.where(count > 0, mean, 0))
        self.std.copy_(torch.where(var > 0, var.sqrt(), 1))
        return self

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.num_features:
            raise ValueError(f"expected {self.num_features} features per row, got shape {list(x.shape)}")
        y = (x.to(torch.float64) - self.mean) / self.std
        return torch.where(torch.isfinite(y), y, 0)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_features})"
