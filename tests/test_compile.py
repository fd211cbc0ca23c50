"""torch.compile(PLSTMNet, dynamic=True) compiles once: new batch shapes (and structures) cause no recompilation,
because structure work and the level-wise operator run eagerly outside the compiled graphs."""
import pytest
import torch
from test_conv import SMILES
from torch._dynamo.utils import counters
from torch_geometric.loader import DataLoader

from pyg_plstm.chem import from_smiles
from pyg_plstm.models import make_model

pytestmark = pytest.mark.usefixtures("single_thread")


def test_a_compiled_plstm_trains_an_epoch_of_varying_batches_without_recompiling():
    graphs = [from_smiles(s, y=float(i)) for i, s in enumerate(SMILES[:40])]
    batches = list(DataLoader(graphs, batch_size=8))
    assert len({b.num_nodes for b in batches}) >= 4  # new shapes and a new structure every step
    torch.manual_seed(0)
    model = make_model("plstm", None, 1, hidden_channels=8, num_layers=1, heads=2, node_encoder="ogb",
                       block="PD", pos_encoding=None)
    expected = model(batches[0])
    torch._dynamo.reset()
    counters.clear()
    # dynamo alone: recompilations come from its guards, whatever the backend (inductor's C++ build is slow).
    compiled = torch.compile(model, dynamic=True, backend="eager")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    compiled_graphs = []
    for step, batch in enumerate(batches):
        out = compiled(batch)
        if step == 0:
            assert torch.allclose(out, expected, atol=1e-6)
        optimizer.zero_grad()
        out.square().mean().backward()
        optimizer.step()
        compiled_graphs.append(counters["stats"]["unique_graphs"])
    assert compiled_graphs[0] > 0
    assert compiled_graphs[-1] - compiled_graphs[0] <= 2, compiled_graphs  # no recompilation storm
    # The breaks are the designed ones: input checks, the DAG, each layer's view and its operator.
    reasons = " ".join(counters["graph_break"])
    for name in ("graph_inputs", "get_dag", "_view", "plstm_dag", "_check_vocabulary"):
        assert name in reasons
    assert "Data-dependent" not in reasons
