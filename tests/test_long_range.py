"""Long-range benchmark: graph views, model configs, config checks and a tiny end-to-end run."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

import pyg_plstm.experiments.long_range as long_range
from pyg_plstm import ToDAG
from pyg_plstm.cli import main as cli_main
from pyg_plstm.datasets.synthetic import long_range_dataset
from pyg_plstm.experiments.long_range import (
    MODELS,
    LongRangeConfig,
    main,
    message_passing_view,
    model_config,
    results_table,
    summarize_records,
    walk_survives_multitree,
)
from pyg_plstm.models import make_model
from pyg_plstm.train import TrainConfig

TINY = ["--num-train", "16", "--num-eval", "8", "--epochs", "1", "--hidden", "8", "--heads", "2",
        # main sets torch's thread count for the run; keep this process's setting.
        "--threads", str(torch.get_num_threads())]


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
        (dict(pooling="median"), "pooling"),
        (dict(batch_size=0), "batch_size"),
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


def test_defaults_share_the_training_defaults() -> None:
    config, train = LongRangeConfig(), TrainConfig()
    assert (config.batch_size, config.lr) == (train.batch_size, train.lr)
    assert config.train_config(3) == TrainConfig(epochs=30, warmup_epochs=2, seed=3)


def test_tiny_run_writes_table_json_and_plot(tmp_path) -> None:
    out = tmp_path / "lr"
    code = main(["--task", "path_end", "--kind", "tree", "--train-depth", "2-3", "--test-depth", "5",
                 "--width", "2", "--num-classes", "2", "--models", "plstm-PD", "gin", "--seeds", "0", "1",
                 "--out", str(out), *TINY])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["summary"]] == ["plstm-PD", "gin"]
    assert len(results["records"]) == 4
    for record in results["records"]:
        best = record["result"]["best"]
        assert 0.0 <= best["test_id"]["acc"] <= 1.0 and 0.0 <= best["test_ood"]["acc"] <= 1.0
        assert sorted(map(int, record["by_depth"])) == [2, 3, 5]
    assert results["chance"] == 0.5
    table = (out / "results.md").read_text()
    assert "extrapolation acc (depth 5-5)" in table and "| chance |" in table
    assert (out / "accuracy_by_depth.png").read_bytes()[:4] == b"\x89PNG"
    assert "survives D-mode's multitree pruning" in table
    assert sorted(p.name for p in (out / "runs" / "gin").iterdir()) == ["seed0.json", "seed1.json"]


def test_small_test_sets_missing_a_depth_in_some_seed(tmp_path, capsys) -> None:
    # The command of issue 15 (item 8, smaller model): with 8 test graphs per seed some walk lengths are
    # absent in some seeds; the per-depth accuracy averages over the seeds that have them.
    out = tmp_path / "X"
    code = cli_main(["long-range", "--models", "plstm-P", "--out", str(out), *TINY])
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    (row,) = results["summary"]
    assert row["seeds"] == 3
    counts = {int(d): stat["n"] for d, stat in row["by_depth"].items()}
    assert set(counts) == set(range(1, 6)) | set(range(8, 13)) and min(counts.values()) < 3


def test_summaries_average_each_depth_over_the_seeds_that_have_it() -> None:
    config = LongRangeConfig(models=("gin",), seeds=(0, 1))
    settings = {"model_config": model_config("gin", config), "config": {}}
    result = {"best_epoch": 1, "num_parameters": 10, "seconds_per_epoch": 1.0, "cpu_seconds_per_epoch": 1.0,
              "best": {"valid": {"acc": 0.5}, "test_id": {"acc": 0.5}, "test_ood": {"acc": 0.25}}}
    records = [{"model": "gin", "seed": 0, **settings, "result": result, "by_depth": {"1": 1.0, "2": 0.0}},
               {"model": "gin", "seed": 1, **settings, "result": result, "by_depth": {"2": 0.5}}]
    (row,) = summarize_records(records, config)
    assert row["by_depth"][1] == {"mean": 1.0, "std": pytest.approx(float("nan"), nan_ok=True), "n": 1}
    assert row["by_depth"][2]["mean"] == 0.25 and row["by_depth"][2]["n"] == 2
    table = results_table([row], config)
    assert "| GIN (4 layers) | 2 | 10 | 0.500 ± 0.000 | 0.250 ± 0.000 |" in table
    assert "in-dist acc (depth 1-5)" in table and "| chance |  |  | 0.250 | 0.250 |  |  |  |" in table


def test_finished_runs_are_written_at_once_and_kept(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "lr"
    argv = ["long-range", "--models", "plstm-P", "gin", "--seeds", "0", "--out", str(out), *TINY]
    real_fit, calls = long_range.fit, []

    def interrupt_the_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(long_range, "fit", interrupt_the_second)
    assert cli_main(argv) == 130
    assert "finished runs are kept" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["records"]] == ["plstm-P"]
    assert "pLSTM-P (2 blocks)" in (out / "results.md").read_text()
    # The same command again trains only what is missing.
    calls.clear()
    monkeypatch.setattr(long_range, "fit", lambda *args, **kwargs: calls.append(args) or real_fit(*args, **kwargs))
    assert cli_main(argv) == 0
    assert [args[0]["name"] for args in calls] == ["gin"]
    assert "plstm-P seed 0: kept" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["summary"]] == ["plstm-P", "gin"]


def test_a_shared_out_merges_models_and_refuses_other_graphs_or_settings(tmp_path, capsys) -> None:
    out = tmp_path / "lr"
    base = ["long-range", "--seeds", "0", "--out", str(out), *TINY]
    assert cli_main(base + ["--models", "plstm-D"]) == 0
    assert cli_main(base + ["--models", "gat"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["summary"]] == ["plstm-D", "gat"]
    capsys.readouterr()
    assert cli_main(base + ["--models", "gat", "--num-classes", "2"]) == 3
    err = capsys.readouterr().err
    assert "holds a finished run on other data (plstm-D seed 0):\n  num_classes: 4 there, 2 now" in err
    assert cli_main(base + ["--models", "gat", "--gnn-layers", "2"]) == 3
    assert "made with other settings:\n  num_layers: 4 there, 2 now\npass --overwrite" in capsys.readouterr().err
    assert cli_main(base + ["--models", "gat", "--gnn-layers", "2", "--overwrite"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["model_config"]["num_layers"] for r in results["summary"]] == [2, 2]
    (tmp_path / "file").write_text("x")
    assert cli_main(["long-range", "--out", str(tmp_path / "file"), *TINY]) == 3
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "results.md").write_text("my notes")
    assert cli_main(["long-range", "--out", str(tmp_path / "notes"), *TINY]) == 3
    assert "holds no finished long-range run; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "notes" / "results.md").read_text() == "my notes"


@pytest.mark.parametrize("task, classes", [("path_parity", 2), ("path_s3", 6), ("path_s5", 120)])
def test_state_tracking_tasks_set_their_classes_and_draw_permutation_walks(task: str, classes: int) -> None:
    config = LongRangeConfig(task=task, train_depth=(2, 3), num_train=4, num_eval=4, hidden_channels=8, heads=2)
    assert config.num_classes == classes and config.chance == 1 / classes
    splits = long_range._splits(config, seed=0)
    graph = splits["train"][0]
    assert graph.x.size(1) == classes + 1 and 0 <= int(graph.y) < classes
    # The marked walk into the readout node has one edge per element it composes.
    assert len(long_range.marked_walk(graph)) == int(graph.depth)


@pytest.mark.parametrize("model, steps, negative", [("plstm-P-hh2", 2, True), ("plstm-PD-hh1-pos", 1, False)])
def test_householder_models_run_with_their_transitions(model: str, steps: int, negative: bool) -> None:
    config = LongRangeConfig(task="path_s3", train_depth=(2, 3), hidden_channels=8, heads=2)
    settings = model_config(model, config)
    assert settings["transition"] == "householder" and settings["householder_steps"] == steps
    assert settings["negative_eigenvalues"] is negative and settings["block"] == model.split("-")[1]
    assert "transition" not in model_config("plstm-P", config)
    graphs = long_range._splits(dataclasses.replace(config, num_train=4), 0)["train"]
    out = make_model(**settings)(next(iter(DataLoader(graphs, batch_size=4))))
    assert out.shape == (4, 6) and torch.isfinite(out).all()


def test_d_pruning_options_reach_the_model_and_the_training_graphs(tmp_path, monkeypatch) -> None:
    base = dict(train_depth=(5, 6), test_depth=(6, 6), num_train=16, num_eval=4, epochs=1, hidden_channels=8,
                heads=2, models=("plstm-D",), seeds=(0,))
    assert "reverse_pruning" not in model_config("plstm-D", LongRangeConfig(**base))
    assert model_config("plstm-PD", LongRangeConfig(**base, d_pruning="own-reverse"))["reverse_pruning"] == "own"
    assert "reverse_pruning" not in model_config("gin", LongRangeConfig(**base, d_pruning="own-reverse"))
    with pytest.raises(ValueError, match="d_pruning"):
        LongRangeConfig(**base, d_pruning="sometimes")
    # "random": every access of a training graph draws its multitree afresh.
    seen = []
    fit = long_range.fit
    monkeypatch.setattr(long_range, "fit", lambda settings, task, splits, *a, **k: seen.append(splits["train"])
                        or fit(settings, task, splits, *a, **k))
    long_range.run(LongRangeConfig(**base, d_pruning="random"), tmp_path / "out", log=lambda _: None)
    train = seen[0]
    draws = [{tuple(train[i].multitree_mask.tolist()) for _ in range(20)} for i in range(len(train))]
    assert any(len(masks) > 1 for masks in draws)  # some graph has a choice, and it is redrawn
    assert all(len(m) == train.graphs[i].line_index.size(1) for i, masks in enumerate(draws) for m in masks)


def test_the_per_seed_table_shows_every_seed_of_every_model():
    from pyg_plstm.experiments.long_range import LongRangeConfig, per_seed_table

    def record(model, seed, test_id, test_ood):
        return {"model": model, "seed": seed,
                "result": {"best": {"test_id": {"acc": test_id}, "test_ood": {"acc": test_ood}}}}

    records = [record("plstm-P", 0, 1.0, 0.9), record("plstm-P", 1, 0.25, 0.25), record("gin", 1, 0.5, 0.3)]
    table = per_seed_table(records, LongRangeConfig())
    assert "| plstm-P | 1.000 / 0.900 | 0.250 / 0.250 |" in table
    assert "| gin | – | 0.500 / 0.300 |" in table
