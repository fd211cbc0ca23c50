r"""Node and edge feature encoders: dense features or OGB's categorical ones to ``channels``."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import Linear, Module

from pyg_plstm.checks import check_choice, check_positive

__all__ = ["ENCODERS", "FEATURE_KINDS", "LinearEncoder", "OGBEncoder", "make_encoder"]

ENCODERS = ("linear", "ogb")
# What an encoder embeds; the name appears in its error messages.
FEATURE_KINDS = ("node features", "edge features")


class LinearEncoder(Module):
    r"""Linear embedding :math:`\mathbf{x}' = \mathbf{W}\mathbf{x} + \mathbf{b}` of
    dense features, which may be integer-typed (e.g. OGB-convention category ids,
    read as numbers).

    Args:
        in_channels (int): Size of the features.
        out_channels (int): Size of the embedding.
        what (str, optional): :obj:`"node features"` or :obj:`"edge features"`,
            named in error messages. (default: :obj:`"node features"`)
    """

    def __init__(self, in_channels: int, out_channels: int, what: str = "node features") -> None:
        super().__init__()
        check_choice("what", what, FEATURE_KINDS)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(
                f"a 'linear' encoder for {what} needs a positive number of input channels, got {in_channels!r}"
            )
        check_positive(out_channels=out_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.what = what
        self.lin = Linear(in_channels, out_channels)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(
                f"{self.what} have {x.size(-1)} channels but the model was built for {self.in_channels}"
                + ("" if x.dim() == 2 else f" (and must be a 2-D tensor, got shape {list(x.shape)})")
            )
        return self.lin(x.to(self.lin.weight.dtype))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, what={self.what!r})"


class OGBEncoder(Module):
    r"""OGB's :class:`AtomEncoder` (node features) or :class:`BondEncoder`
    (edge features): a sum of one embedding per categorical column,

    .. math::
        \mathbf{x}'_i = \sum_{c} \mathbf{E}_c[x_{i,c}],

    on integer features in OGB's convention (e.g. from
    :func:`pyg_plstm.chem.from_smiles`). Values outside OGB's vocabularies
    raise a :class:`ValueError` naming the column instead of an index error.

    Args:
        out_channels (int): Size of the embedding.
        what (str, optional): :obj:`"node features"` (atoms) or
            :obj:`"edge features"` (bonds). (default: :obj:`"node features"`)
    """

    def __init__(self, out_channels: int, what: str = "node features") -> None:
        super().__init__()
        check_choice("what", what, FEATURE_KINDS)
        check_positive(out_channels=out_channels)
        from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder
        from ogb.utils.features import get_atom_feature_dims, get_bond_feature_dims

        atoms = what == "node features"
        self.out_channels = out_channels
        self.what = what
        self.dims = get_atom_feature_dims() if atoms else get_bond_feature_dims()
        self.encoder = AtomEncoder(out_channels) if atoms else BondEncoder(out_channels)

    def reset_parameters(self) -> None:
        # OGB initialises its embeddings this way but has no reset method.
        for embedding in self.encoder.modules():
            if isinstance(embedding, torch.nn.Embedding):
                torch.nn.init.xavier_uniform_(embedding.weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != len(self.dims) or x.is_floating_point():
            raise ValueError(
                f"the 'ogb' encoder needs integer {self.what} of shape [*, {len(self.dims)}] in OGB's "
                f"convention, got {x.dtype} of shape {list(x.shape)}"
            )
        self._check_vocabulary(x)
        return self.encoder(x)

    # A check of values (a host sync): eager under torch.compile, one graph break.
    @torch.compiler.disable
    def _check_vocabulary(self, x: Tensor) -> None:
        if x.numel():
            outside = (x.min(0).values < 0) | (x.max(0).values >= torch.tensor(self.dims, device=x.device))
            if outside.any():
                col = int(outside.nonzero()[0])
                raise ValueError(
                    f"{self.what} column {col} holds values outside OGB's vocabulary [0, {self.dims[col]}); "
                    "featurize molecules with pyg_plstm.chem (OGB convention) or use a 'linear' encoder"
                )

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.out_channels}, what={self.what!r})"


def make_encoder(kind: str, in_channels: Optional[int], out_channels: int,
                 what: str = "node features") -> Module:
    """The encoder named ``kind`` (one of :data:`ENCODERS`) for node or edge features.

    ``"linear"`` (:class:`LinearEncoder`) needs ``in_channels``; ``"ogb"``
    (:class:`OGBEncoder`) ignores it.
    """
    if kind == "linear":
        return LinearEncoder(in_channels, out_channels, what)
    if kind == "ogb":
        return OGBEncoder(out_channels, what)
    raise ValueError(f"unknown encoder {kind!r} for {what}; choose one of {ENCODERS}")
