"""The benchmark harness runs end to end at smoke size (correctness, not speed)."""
import json

import torch
from torch_geometric.data import Data

from pyg_plstm.dag import prepare_dag

from benchmarks.harness import layered_dag, loglog_slope
from benchmarks.run import main
from benchmarks.walk_signal import labelled_share


def test_layered_dag_has_the_requested_depth():
    dag = prepare_dag(layered_dag(200, 10), 200, directed=True)
    assert dag.num_levels == 9  # depth 10 layers -> 9 edge levels
    assert int(dag.edge_index[1].min()) >= 20  # the first layer has no parents


def test_labelled_share_is_whole_on_trees_and_thins_out_on_deep_dags():
    from pyg_plstm.datasets.synthetic import long_range_dataset

    def shares(kind, depth):
        return [labelled_share(g) for g in long_range_dataset("source_class", 20, depth, kind=kind, seed=1,
                                                              prepare=False)]

    assert shares("dag", 1) == [1.0] * 20 and shares("tree", 6) == [1.0] * 20
    deep = shares("dag", 8)
    assert all(0 <= s < 1 for s in deep) and sum(deep) / len(deep) < 0.5
    # A hand-made diamond: the walk 0 -> 2 -> 3 -> 4, source 1 joins at node 2.
    graph = Data(x=torch.tensor([[1., 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]]),
                 edge_index=torch.tensor([[0, 1, 2, 3], [2, 2, 3, 4]]), edge_attr=torch.tensor([[1.], [0], [1], [1]]))
    assert labelled_share(graph) == 0.5


def test_loglog_slope():
    assert abs(loglog_slope([10, 100, 1000], [1, 10, 100]) - 1.0) < 1e-9


def test_smoke_run_writes_reports(tmp_path):
    threads = torch.get_num_threads()
    assert main(["--smoke", "--threads", "1", "--out", str(tmp_path)]) == 0
    torch.set_num_threads(threads)
    report = json.loads((tmp_path / "smoke.json").read_text())
    titles = [t["title"] for t in report["tables"]]
    assert any(t.startswith("1. Operator") for t in titles)
    assert any(t.startswith("5. End-to-end") for t in titles)
    for table in report["tables"]:
        assert table["rows"], table["title"]
    assert "| molecules |" in (tmp_path / "smoke.md").read_text()
