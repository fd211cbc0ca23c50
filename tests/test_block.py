"""PLSTMBlock (nn/block.py): pLSTM layers of a pattern, bidirectional, with a local layer, with batch
norms, each against its layer-by-layer computation; the local layer's undirected edges."""
import pytest
import torch
from torch_geometric.data import Batch

from pyg_plstm import get_dag, prepare_dag
from pyg_plstm.nn import PLSTMBlock
from pyg_plstm.nn.block import undirected_edges

from graphs import solubility_molecules


def test_plstm_block():
    data = solubility_molecules(1, start=60)[0]
    block = PLSTMBlock(16, heads=2, pattern="DPD", edge_dim=3)
    assert str(block) == "PLSTMBlock(16, heads=2, pattern='DPD')"
    assert [conv.mode for conv in block.convs] == ["D", "P", "D"]
    x, edge_attr, dag = torch.randn(data.num_nodes, 16), data.edge_attr.float(), get_dag(data)
    out = block(x, edge_attr=edge_attr, dag=dag)
    assert out.shape == x.shape and not torch.allclose(out, x)
    reversed_out = block(x, edge_attr=edge_attr, dag=dag, reverse=True)
    assert not torch.allclose(reversed_out, out)
    assert torch.allclose(reversed_out, block(x, edge_attr=edge_attr, dag=dag.reverse()))


def test_bidirectional_block_adds_a_layer_on_the_reversed_dag():
    """Reference: each layer's pre-norm input through the forward-DAG layer plus the reversed-DAG layer,
    computed one call at a time; and swapping the two sets of layers equals running the block reversed."""
    data = solubility_molecules(1, start=60)[0]
    torch.manual_seed(0)
    block = PLSTMBlock(16, heads=2, pattern="PD", edge_dim=3, bidirectional=True).double()
    assert str(block) == "PLSTMBlock(16, heads=2, pattern='PD', bidirectional=True)"
    assert [conv.mode for conv in block.reverse_convs] == ["P", "D"]
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, edge_attr, dag = torch.randn(data.num_nodes, 16, dtype=torch.double), data.edge_attr.double(), get_dag(data)
    h = x
    for conv, reverse_conv, norm in zip(block.convs, block.reverse_convs, block.conv_norms):
        normed = torch.nn.functional.layer_norm(h, (16,), norm.weight, norm.bias)
        h = h + conv(normed, edge_attr=edge_attr, dag=dag) + reverse_conv(normed, edge_attr=edge_attr,
                                                                          dag=dag, reverse=True)
    h = h + block.mlps[0](block.mlp_norms[0](h))
    out = block(x, edge_attr=edge_attr, dag=dag)
    assert torch.allclose(out, h, atol=1e-12)

    one_way = PLSTMBlock(16, heads=2, pattern="PD", edge_dim=3).double()
    one_way.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("reverse_convs")})
    assert not torch.allclose(one_way(x, edge_attr=edge_attr, dag=dag), out)

    swapped = PLSTMBlock(16, heads=2, pattern="PD", edge_dim=3, bidirectional=True).double()
    state = block.state_dict()
    swapped.load_state_dict({k.replace("reverse_convs", "@").replace("convs", "reverse_convs").replace("@", "convs"):
                             v for k, v in state.items()})
    assert torch.allclose(swapped(x, edge_attr=edge_attr, dag=dag, reverse=True), out, atol=1e-12)

    out.sum().backward()
    assert all(p.grad.abs().sum() > 0 for name, p in block.named_parameters()
               if name.startswith("reverse_convs") and name.endswith("lin_qkv.weight"))
    with pytest.raises(TypeError, match="bidirectional"):
        PLSTMBlock(16, bidirectional="yes")


def test_undirected_edges_give_back_the_input_bonds_with_their_features():
    """The local layer's graph: every bond both ways, each with the features of its bond (the same in both
    directions, as for molecules), whatever the orientation of the DAG."""
    data = solubility_molecules(1, start=60)[0]
    bond_features = {}
    edge_attr = torch.stack([bond_features.setdefault(frozenset((int(s), int(d))), torch.randn(5))
                             for s, d in data.edge_index.t()])
    for dag in (get_dag(data), get_dag(data).reverse()):
        edge_index, attr = undirected_edges(dag, edge_attr)
        got = {(int(s), int(d)): tuple(a.tolist()) for s, d, a in zip(*edge_index, attr)}
        want = {(int(s), int(d)): tuple(a.tolist()) for s, d, a in zip(*data.edge_index, edge_attr)}
        assert got == want
    assert undirected_edges(get_dag(data))[1] is None
    with pytest.raises(ValueError, match="edge_attr has 3 rows"):
        undirected_edges(get_dag(data), edge_attr[:3])


def test_hybrid_block_equals_its_layer_by_layer_computation():
    """Reference: the GINE update written out with scatter-free dense sums over the input bonds, then the
    pLSTM layers and the MLP called one at a time; every parameter of the block receives a gradient."""
    data = solubility_molecules(1, start=60)[0]
    torch.manual_seed(0)
    block = PLSTMBlock(16, heads=2, pattern="PD", edge_dim=3, local="gine").double()
    assert str(block) == "PLSTMBlock(16, heads=2, pattern='PD', local='gine')"
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, edge_attr, dag = torch.randn(data.num_nodes, 16, dtype=torch.double), data.edge_attr.double(), get_dag(data)

    normed = torch.nn.functional.layer_norm(x, (16,), block.local_norm.weight, block.local_norm.bias)
    messages = torch.zeros_like(x)
    for (src, dst), bond in zip(data.edge_index.t().tolist(), edge_attr):
        messages[dst] = messages[dst] + torch.relu(normed[src] + block.local_conv.lin(bond))
    h = x + block.local_conv.nn((1 + block.local_conv.eps) * normed + messages)
    for conv, norm in zip(block.convs, block.conv_norms):
        h = h + conv(torch.nn.functional.layer_norm(h, (16,), norm.weight, norm.bias), edge_attr=edge_attr, dag=dag)
    h = h + block.mlps[0](block.mlp_norms[0](h))
    out = block(x, edge_attr=edge_attr, dag=dag)
    assert torch.allclose(out, h, atol=1e-12)
    # The same through edge_index (as PLSTMNet calls it) and reversed: the local layer is undirected.
    assert torch.allclose(block(x, data.edge_index, edge_attr, dag=dag), out, atol=1e-12)
    # A directed input is read both ways too, with or without its edge_index.
    directed = torch.tensor([[0, 0, 1, 2], [1, 2, 3, 3]])
    chain_dag = prepare_dag(directed, 4, directed=True)
    chain_x, chain_attr = torch.randn(4, 16, dtype=torch.double), torch.randn(4, 3, dtype=torch.double)
    assert torch.allclose(block(chain_x, directed, chain_attr, dag=chain_dag),
                          block(chain_x, edge_attr=chain_attr, dag=chain_dag), atol=1e-12)
    plain = PLSTMBlock(16, heads=2, pattern="PD", edge_dim=3).double()
    plain.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("local_")})
    assert not torch.allclose(plain(x, edge_attr=edge_attr, dag=dag), out)

    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())
    # Without edge features the local layer is GIN.
    gin = PLSTMBlock(16, heads=2, pattern="P", local="gine")
    assert gin(torch.randn(data.num_nodes, 16), dag=dag).shape == (data.num_nodes, 16)
    with pytest.raises(ValueError, match="local"):
        PLSTMBlock(16, local="gat")


def test_batch_norm_block_normalises_every_feature_over_the_nodes_of_the_batch():
    """Reference: the pre-norms as batch statistics written out (training mode), the pLSTM layers and the
    MLP called one at a time; in eval mode the running statistics are used instead."""
    batch = Batch.from_data_list(solubility_molecules(3, start=60))
    torch.manual_seed(0)
    block = PLSTMBlock(16, heads=2, pattern="PD", edge_dim=3, norm="batch").double()
    x, edge_attr, dag = torch.randn(batch.num_nodes, 16, dtype=torch.double), batch.edge_attr.double(), get_dag(batch)

    def normed(h, norm):
        mean, var = h.mean(0), h.var(0, unbiased=False)
        return (h - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias

    h = x
    for conv, norm in zip(block.convs, block.conv_norms):
        h = h + conv(normed(h, norm), edge_attr=edge_attr, dag=dag)
    h = h + block.mlps[0](normed(h, block.mlp_norms[0]))
    assert torch.allclose(block(x, edge_attr=edge_attr, dag=dag), h, atol=1e-12)
    block.eval()
    h = x
    for conv, norm in zip(block.convs, block.conv_norms):
        h = h + conv(norm(h), edge_attr=edge_attr, dag=dag)
    assert torch.allclose(block(x, edge_attr=edge_attr, dag=dag), h + block.mlps[0](block.mlp_norms[0](h)),
                          atol=1e-12)
