r"""Normalisation layers used by the pLSTM layers."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import Parameter


class MultiHeadRMSNorm(torch.nn.Module):
    r"""RMS normalisation applied to every head separately.

    .. math::
        \mathbf{y}_{h} = \frac{\mathbf{x}_{h}}{\sqrt{\frac{1}{C}\sum_{c}
        x_{h,c}^2 + \epsilon}} \odot \boldsymbol{\gamma}_{h}

    Heads are normalised independently so that no head can drown the others
    (the pLSTM readout of different heads can differ by orders of magnitude).

    Args:
        heads (int): Number of heads :math:`H`.
        channels (int): Channels per head :math:`C`.
        eps (float, optional): :math:`\epsilon` added to the mean square.
            (default: :obj:`1e-6`)
        affine (bool, optional): Learn a per-head, per-channel scale
            :math:`\boldsymbol{\gamma}`. (default: :obj:`True`)

    Shapes:
        - **input:** :math:`(*, H, C)`
        - **output:** :math:`(*, H, C)`
    """

    def __init__(self, heads: int, channels: int, eps: float = 1e-6, affine: bool = True) -> None:
        super().__init__()
        self.heads = heads
        self.channels = channels
        self.eps = eps
        if affine:
            self.weight = Parameter(torch.empty(heads, channels))
        else:
            self.register_parameter("weight", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            torch.nn.init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.heads, self.channels):
            raise ValueError(
                f"expected input of shape [*, {self.heads}, {self.channels}] (heads, channels), "
                f"got {list(x.shape)}")
        out = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return out if self.weight is None else out * self.weight

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(heads={self.heads}, channels={self.channels})"
