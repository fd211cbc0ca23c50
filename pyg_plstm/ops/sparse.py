r"""Sparse (reachability) pLSTM form for batches of small DAGs.

The parallel form (paper Eq. 7) writes the operator as gated attention,

.. math::
    y_n = \sum_{n'} G_{n'n}\, (q_n \cdot k_{n'})\, v_{n'} + D_n\, (q_n \cdot k_n)\, v_n,

but fills dense ``N_max x N_max`` blocks per graph: most entries are zero
(:math:`G_{n'n} = 0` unless a path leads from :math:`n'` to :math:`n`) or
padding. This form keeps only what is reachable
(:class:`~pyg_plstm.ops.structures.Reachability`): scalar path weights
:math:`A_{e n'}` for the pairs (edge, source node that reaches it), scanned
over the pair graph with one scalar per pair and head (no ``K x V`` state),
then :math:`G` for the node pairs (source, target) and the attention-like
readout with segment sums. Time and memory are linear in the number of pairs:
:math:`O(H\, (R_L + Q (K + V)))` for ``R_L`` pair links and ``Q`` node pairs,
which for molecules is a small multiple of the edge count. Deep, wide DAGs
have many pairs (up to edges x nodes per graph), so the scan is the form for
them; :func:`~pyg_plstm.ops.cost.choose_form` decides.
"""
from __future__ import annotations

from torch import Tensor

from pyg_plstm.dag import DAG
from pyg_plstm.ops.common import direct_term, scan_linear
from pyg_plstm.ops.structures import reachability

__all__ = ["plstm_sparse"]


def plstm_sparse(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    source: Tensor,
    transition: Tensor,
    mark: Tensor,
    direct: Tensor,
    dag: DAG,
) -> Tensor:
    """Sparse form; see :func:`pyg_plstm.functional.plstm_dag` for the semantics.

    Differentiable to any order by autograd (the pair scan has a hand-written,
    itself differentiable, backward pass).
    """
    reach = reachability(dag)
    levels = reach.levels
    num_pairs, heads = reach.num_pairs, source.size(1)
    start = source.new_zeros(num_pairs, heads).index_copy(0, reach.self_pair, source)
    weights = scan_linear(start.index_select(0, levels.edge_perm),
                          transition.index_select(0, reach.link_line).index_select(0, levels.line_perm), levels)
    weights = weights.index_select(0, levels.edge_pos)
    gating = weights.new_zeros(reach.num_node_pairs, heads).index_add(
        0, reach.pair_node_pair, mark.index_select(0, reach.pair_edge) * weights)
    src, dst = reach.node_pair_source, reach.node_pair_target
    scores = gating * (query.index_select(0, dst) * key.index_select(0, src)).sum(-1)
    out = value.new_zeros(value.shape).index_add(0, dst, scores.unsqueeze(-1) * value.index_select(0, src))
    return out + direct_term(query, key, value, direct)
