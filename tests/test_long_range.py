"""Long-range benchmark: graph views, model configs, config checks and a tiny end-to-end run."""
from __future__ import annotations

import json

import pytest
import torch
from torch_geometric.loader import DataLoader

from torch_geometric.data import Data

from pyg_plstm import ToDAG
from pyg_plstm.datasets.synthetic import long_range_dataset
from pyg_plstm.experiments.long_range import (
    MODELS,
    LongRangeConfig,
    main,
    markdown_table,
    message_passing_view,
    model_config,
    walk_survives_multitree,
)
from pyg_plstm.models import make_model


def test_message_passing_view_has_both_directions() -> None:
    data = long_range_dataset("path_end", 1, 3, seed=2)[0]
    view = message_passing_view(data)
    e = data.edge_index.size(1)
    assert torch.equal(view.edge_index[:, :e], data.edge_index)
    assert torch.equal(view.edge_index[:, e:], data.edge_index.flip(0))
    assert torch.equal(view.edge_attr[:e, 0], data.edge_attr[:, 0])
    assert torch.equal(view.edge_attr[e:, 0], data.edge_attr[:, 0])
    assert view.edge_attr[:e, 1].eq(1).all() and view.edge_attr[e:, 1].eq(0).all()
    assert torch.equal(view.x, data.x) and torch.equal(view.y, data.y)


def test_walk_survives_multitree() -> None:
    # s -> a -> {x, y} -> c -> t, walk through y. Both in-edges of c descend from s -> a, so D-mode
    # keeps only the first (x, the lower node id at equal depth) and the walk's line edge is cut.
    edges = torch.tensor([[0, 1], [1, 2], [1, 3], [2, 4], [3, 4], [4, 5]]).t()
    marks = torch.tensor([[1.0], [1.0], [1.0], [0.0], [1.0], [1.0]])
    x = torch.zeros(6, 3)
    x[0, 0] = x[5, 2] = 1.0
    cut = ToDAG(directed=True)(Data(x=x, edge_index=edges, edge_attr=marks))
    assert not walk_survives_multitree(cut)
    through_x = ToDAG(directed=True)(Data(x=x, edge_index=edges, edge_attr=marks[[0, 1, 2, 4, 3, 5]]))
    assert walk_survives_multitree(through_x)
    # Trees have nothing to prune.
    assert all(walk_survives_multitree(d) for d in long_range_dataset("path_end", 10, (1, 6), kind="tree"))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_builds_and_runs(model: str) -> None:
    config = LongRangeConfig(train_depth=(2, 5), hidden_channels=8, heads=2, num_classes=2)
    settings = model_config(model, config)
    if model == "gin-deep":
        assert settings["num_layers"] == 5
    graphs = long_range_dataset("source_class", 4, (2, 5), num_classes=2)
    if not model.startswith("plstm-"):
        graphs = [message_passing_view(d) for d in graphs]
    torch.manual_seed(0)
    out = make_model(**settings)(next(iter(DataLoader(graphs, batch_size=4))))
    assert out.shape == (4, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(task="x"), "unknown task"),
        (dict(kind="x"), "graph kind"),
        (dict(train_depth=(5, 2)), "train_depth"),
        (dict(test_depth=(0, 2)), "test_depth"),
        (dict(models=("gcn",)), "models"),
        (dict(models=()), "models"),
        (dict(seeds=(1, 1)), "seeds"),
        (dict(epochs=0), "epochs"),
        (dict(num_classes=1), "num_classes"),
        (dict(width=6, num_classes=4), "multiple"),
        (dict(lr=0.0), "lr"),
        (dict(pooling="max"), "pooling"),
        (dict(hidden_channels=10, heads=4), "divisible"),
    ],
)
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LongRangeConfig(**kwargs)


def test_bad_command_line(capsys: pytest.CaptureFixture) -> None:
    for argv in (["--train-depth", "a-b"], ["--test-depth", "9-3"], ["--threads", "0"]):
        with pytest.raises(SystemExit) as err:
            main(argv + ["--out", "unused"])
        assert err.value.code == 2
    assert "range" in capsys.readouterr().err


def test_tiny_run_writes_table_json_and_plot(tmp_path) -> None:
    out = tmp_path / "lr"
    code = main(["--task", "path_end", "--kind", "tree", "--train-depth", "2-3", "--test-depth", "5",
                 "--width", "2", "--num-classes", "2", "--num-train", "16", "--num-eval", "8",
                 "--models", "plstm-PD", "gin", "--seeds", "0", "1", "--epochs", "1", "--hidden", "8",
                 "--heads", "2", "--out", str(out),
                 # main sets torch's thread count; keep this process's setting.
                 "--threads", str(torch.get_num_threads())])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["summary"]] == ["plstm-PD", "gin"]
    assert len(results["records"]) == 4
    for record in results["records"]:
        assert 0.0 <= record["test_id"] <= 1.0 and 0.0 <= record["test_ood"] <= 1.0
        assert sorted(map(int, record["by_depth"])) == [2, 3, 5]
    assert results["chance"] == 0.5
    table = (out / "results.md").read_text()
    assert "extrapolation acc (depth 5-5)" in table and "| chance |" in table
    assert (out / "accuracy_by_depth.png").stat().st_size > 0
    assert "survives D-mode's multitree pruning" in table


def test_markdown_table_reports_mean_and_std() -> None:
    config = LongRangeConfig(models=("gin",), seeds=(0, 1))
    stat = {"mean": 0.5, "std": 0.1, "n": 2}
    row = {"label": "GIN (4 layers)", "num_parameters": 1234, "test_id": stat, "test_ood": stat,
           "best_epoch": stat, "cpu_seconds_per_epoch": stat}
    table = markdown_table([row], config)
    assert "| GIN (4 layers) | 1,234 | 0.500 ± 0.100 | 0.500 ± 0.100 |" in table
    assert "in-dist acc (depth 1-5)" in table and "| chance | | 0.250 | 0.250 | | |" in table
