"""Trainer: determinism, exact resume, checkpoints, masked losses/metrics, schedules."""
import json
import math

import numpy as np
import pytest
import torch
from ogb.graphproppred import Evaluator
from torch_geometric.data import InMemoryDataset

from pyg_plstm.train import Task, TrainConfig, evaluate, fit, load_model, masked_loss, predict
from pyg_plstm.train.checkpoint import check_config, load_checkpoint
from pyg_plstm.train.distributed import GlobalBatchSampler, resolve_device
from pyg_plstm.train.files import OutputPathError, atomic_open, atomic_write, check_output_dir, check_output_file
from pyg_plstm.train.metrics import check_labels
from pyg_plstm.train.trainer import lr_factor

pytestmark = pytest.mark.usefixtures("single_thread")
TIMING_KEYS = ("time_train", "cpu_train", "time_epoch")


def strip_timing(history: list) -> list:
    return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


REGRESSION = Task("regression", 1)


def test_same_seed_gives_bit_identical_run(tmp_path, molecule_splits, tiny_plstm):
    splits = molecule_splits()
    config = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=3)
    runs = [fit(tiny_plstm(), REGRESSION, splits, config, tmp_path / str(i)) for i in range(2)]
    assert strip_timing(runs[0].history) == strip_timing(runs[1].history)
    assert_same_weights(load_checkpoint(tmp_path / "0" / "last.pt")["model"],
                        load_checkpoint(tmp_path / "1" / "last.pt")["model"])
    other = fit(tiny_plstm(), REGRESSION, splits, TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=4))
    assert strip_timing(other.history) != strip_timing(runs[0].history)


class Interrupt(Exception):
    pass


def stop_after(epoch: int):
    def callback(record: dict) -> None:
        if record["epoch"] == epoch:
            raise Interrupt

    return callback


class GraphList(InMemoryDataset):
    """An in-memory PyG data set of the given graphs (its subsets know their indices)."""

    def __init__(self, graphs: list) -> None:
        super().__init__()
        self.data, self.slices = self.collate(graphs)


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, molecule_splits, tiny_plstm):
    splits = molecule_splits()
    config = TrainConfig(epochs=4, batch_size=8, warmup_epochs=1, seed=0)
    straight = fit(tiny_plstm(), REGRESSION, splits, config, tmp_path / "straight")

    def stop_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(tiny_plstm(), REGRESSION, splits, config, tmp_path / "resumed", on_epoch_end=stop_after_two)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 2
    # Anything drawn from the global generators in between must not matter.
    torch.rand(7), np.random.rand(3)
    resumed = fit(tiny_plstm(), REGRESSION, splits, config, tmp_path / "resumed", resume=True)

    assert strip_timing(resumed.history) == strip_timing(straight.history)
    assert resumed.best == straight.best and resumed.best_epoch == straight.best_epoch
    for name in ("last.pt", "best.pt"):
        a = load_checkpoint(tmp_path / "straight" / name)
        b = load_checkpoint(tmp_path / "resumed" / name)
        assert_same_weights(a["model"], b["model"])
    a = load_checkpoint(tmp_path / "straight" / "last.pt")["optimizer"]["state"]
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")["optimizer"]["state"]
    for key in a:
        assert torch.equal(a[key]["exp_avg_sq"], b[key]["exp_avg_sq"])

    # A finished run resumes to the same result without training further.
    again = fit(tiny_plstm(), REGRESSION, splits, config, tmp_path / "resumed", resume=True)
    assert again.best == straight.best and len(again.history) == 4


def test_checkpoints_load_weights_only_and_rebuild_the_model(tmp_path, molecule_splits, tiny_plstm):
    splits = molecule_splits()
    result = fit(tiny_plstm(), REGRESSION, splits, TrainConfig(epochs=2, batch_size=8), tmp_path,
                 meta={"dataset": "x"})
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(tmp_path / name, weights_only=True)
        assert ckpt["meta"] == {"dataset": "x"} and ckpt["model_config"]["name"] == "plstm"
    model, ckpt = load_model(tmp_path / "best.pt")
    pred = predict(model, splits["test"], ckpt["target_norm"])
    y = torch.cat([g.y for g in splits["test"]])
    assert pred.shape == y.shape
    assert evaluate(REGRESSION, y, pred)["rmse"] == pytest.approx(ckpt["metrics"]["test"]["rmse"], rel=1e-5)
    # The train metric, computed once at the end, is that of the best epoch's weights.
    y = torch.cat([g.y for g in splits["train"]])
    train_rmse = evaluate(REGRESSION, y, predict(model, splits["train"], ckpt["target_norm"]))["rmse"]
    assert result.best["train"]["rmse"] == pytest.approx(train_rmse, rel=1e-5)
    assert ckpt["epoch"] == result.best_epoch
    # A model in training mode (BatchNorm, dropout) is predicted with in eval mode and handed back as it was.
    model.train()
    assert torch.equal(predict(model, splits["test"], ckpt["target_norm"]), pred) and model.training


def test_resume_with_other_settings_names_every_mismatch(tmp_path, molecule_splits, tiny_plstm):
    splits = molecule_splits()
    fit(tiny_plstm(), REGRESSION, splits, TrainConfig(epochs=1, batch_size=8), tmp_path)
    with pytest.raises(ValueError, match="hidden_channels: checkpoint has 16, this run has 32"):
        fit(tiny_plstm(hidden_channels=32), REGRESSION, splits, TrainConfig(epochs=1, batch_size=8), tmp_path,
            resume=True)
    with pytest.raises(ValueError) as err:
        fit(tiny_plstm(), REGRESSION, splits, TrainConfig(epochs=1, batch_size=4, lr=0.1), tmp_path, resume=True)
    assert "batch_size" in str(err.value) and "lr" in str(err.value) and "epochs" not in str(err.value)


def test_check_config_and_bad_checkpoint_files(tmp_path):
    check_config({"a": 1}, {"a": 1}, "x")
    with pytest.raises(ValueError, match="b: checkpoint has <unset>, this run has 2"):
        check_config({"a": 1}, {"a": 1, "b": 2}, "x")
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable pyg-plstm checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a pyg-plstm checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_binary_training_with_missing_labels_and_gin(tmp_path, molecule_splits):
    splits = molecule_splits(binary=True)
    splits["train"][0].y = torch.tensor([[math.nan]])
    model = dict(name="gin", in_channels=None, out_channels=1, hidden_channels=16, num_layers=2,
                 node_encoder="ogb", edge_encoder="ogb")
    result = fit(model, Task("binary", 1), splits, TrainConfig(epochs=2, batch_size=8))
    assert set(result.best["valid"]) == {"rocauc", "ap"}
    assert all(math.isfinite(h["loss"]) for h in result.history)
    assert len(splits["train"]) == 24 and math.isnan(splits["train"][0].y.item())  # input left alone


def test_masked_loss_ignores_missing_labels():
    task = Task("binary", 2)
    pred = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    y = torch.tensor([[1.0, math.nan], [math.nan, 0.0]])
    loss, count = masked_loss(task, pred, y)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([0.3, 0.5]), torch.tensor([1.0, 0.0]), reduction="sum")
    assert count == 2 and torch.allclose(loss, expected)
    loss, count = masked_loss(Task("multiclass", 3), torch.randn(4, 3), torch.tensor([0, 2, 1, 1]))
    assert count == 4 and loss > 0


def test_metrics_match_ogb_evaluator_on_multitask_nan_labels():
    gen = np.random.default_rng(0)
    y_true = gen.integers(0, 2, size=(60, 12)).astype(float)
    y_true[gen.random(y_true.shape) < 0.3] = np.nan
    y_pred = gen.normal(size=y_true.shape)
    ours = evaluate(Task("binary", 12), torch.from_numpy(y_true), torch.from_numpy(y_pred))
    ogb = Evaluator("ogbg-moltox21").eval({"y_true": y_true, "y_pred": y_pred})["rocauc"]
    assert ours["rocauc"] == pytest.approx(ogb, abs=1e-12)
    via_ogb = evaluate(Task("binary", 12, ogb_name="ogbg-moltox21"), torch.from_numpy(y_true),
                       torch.from_numpy(y_pred))
    assert via_ogb["rocauc"] == pytest.approx(ogb, abs=1e-12)
    y = torch.tensor([[1.0], [2.0], [4.0]])
    reg = evaluate(REGRESSION, y, torch.tensor([[1.0], [3.0], [2.0]]))
    assert reg["rmse"] == pytest.approx(math.sqrt(5 / 3)) and reg["mae"] == pytest.approx(1.0)
    acc = evaluate(Task("multiclass", 3), torch.tensor([0, 2]), torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    assert acc == {"acc": 0.5}
    single_class = evaluate(Task("binary", 1), torch.ones(3, 1), torch.randn(3, 1))
    assert math.isnan(single_class["rocauc"])


def test_task_and_config_validation(molecule_splits, tiny_plstm):
    with pytest.raises(ValueError, match="unknown task type 'ranking'"):
        Task("ranking", 1)
    with pytest.raises(ValueError, match="metric 'rocauc' does not apply to regression"):
        Task("regression", 1, metric="rocauc")
    assert Task("binary", 3).metrics == ("rocauc", "ap")
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="`schedule` must be one of"):
        TrainConfig(schedule="step")
    for field, value in (("grad_clip", -1.0), ("weight_decay", -0.1), ("lr", math.nan)):
        with pytest.raises(ValueError, match=f"`{field}` must be"):
            TrainConfig(**{field: value})
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0, got -1"):
        TrainConfig(seed=-1)
    splits = molecule_splits()
    with pytest.raises(ValueError, match=r"needs the split\(s\) \['valid'\]"):
        fit(tiny_plstm(), REGRESSION, {"train": splits["train"]}, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"split\(s\) \['test'\] are empty"):
        fit(tiny_plstm(), REGRESSION, {**splits, "test": []}, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="`resume` needs an `out_dir`"):
        fit(tiny_plstm(), REGRESSION, splits, TrainConfig(epochs=1), resume=True)


def test_a_warmup_longer_than_the_run_is_named():
    with pytest.warns(UserWarning, match="warmup_epochs=5 is longer than the run .epochs=3.: the learning rate "
                                         "rises for the whole run and never reaches lr=0.001"):
        TrainConfig(epochs=3)
    factor = lr_factor(TrainConfig(epochs=3, warmup_epochs=3), steps_per_epoch=2)
    assert factor(5) == 1.0


def test_warmup_then_cosine_schedule():
    factor = lr_factor(TrainConfig(epochs=10, warmup_epochs=2), steps_per_epoch=5)
    assert [factor(s) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert factor(10) == pytest.approx(1.0)
    assert factor(30) == pytest.approx(0.5)
    assert factor(49) < 0.01
    constant = lr_factor(TrainConfig(epochs=10, warmup_epochs=0, schedule="constant"), steps_per_epoch=5)
    assert constant(0) == constant(49) == 1.0


@pytest.mark.parametrize("world_size", [2, 3])
def test_global_batch_sampler_shards_union_to_the_single_process_batches(world_size):
    single = GlobalBatchSampler(11, 4, seed=5).batches()
    shards = [GlobalBatchSampler(11, 4, seed=5, rank=r, world_size=world_size).batches()
              for r in range(world_size)]
    for b, (whole, _) in enumerate(single):
        mine = [shard[b] for shard in shards]
        assert sorted(i for idx, w in mine if w for i in idx) == sorted(whole)
        assert all(idx for idx, _ in mine)  # no process is left without a batch
    sampler = GlobalBatchSampler(11, 4, seed=5)
    sampler.set_epoch(1)
    assert sampler.batches() != single
    assert GlobalBatchSampler(11, 4, shuffle=False).batches()[0] == ([0, 1, 2, 3], 1.0)


def test_resume_refuses_other_data_naming_the_split_and_what_changed(tmp_path, molecule_splits, tiny_plstm):
    splits = molecule_splits()
    config = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1)
    with pytest.raises(Interrupt):
        fit(tiny_plstm(), REGRESSION, splits, config, tmp_path, on_epoch_end=stop_after(1))
    relabelled = {**splits, "train": [g.clone() for g in splits["train"]]}
    relabelled["train"][3].y = relabelled["train"][3].y + 1.0
    with pytest.raises(ValueError, match="split 'train': labels changed") as err:
        fit(tiny_plstm(), REGRESSION, relabelled, config, tmp_path, resume=True)
    assert "features" not in str(err.value) and "'valid'" not in str(err.value)
    edited = {**splits, "valid": [g.clone() for g in splits["valid"]]}
    edited["valid"][0].x = edited["valid"][0].x.flip(0)
    with pytest.raises(ValueError, match="split 'valid': features"):
        fit(tiny_plstm(), REGRESSION, edited, config, tmp_path, resume=True)
    with pytest.raises(ValueError, match="split 'test': 8 graphs in the earlier run, 7 now"):
        fit(tiny_plstm(), REGRESSION, {**splits, "test": splits["test"][:-1]}, config, tmp_path, resume=True)
    resumed = fit(tiny_plstm(), REGRESSION, splits, config, tmp_path, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_resume_refuses_a_split_of_other_graphs_with_the_same_contents(tmp_path, molecule_splits, tiny_plstm):
    graphs = molecule_splits(10)["train"]
    dataset = GraphList([graphs[0]] + graphs)  # graphs 0 and 1 are the same molecule
    config = TrainConfig(epochs=2, batch_size=4, warmup_epochs=1)
    split = {"train": dataset[torch.tensor([0, 2, 3])], "valid": dataset[torch.tensor([4, 5])]}
    with pytest.raises(Interrupt):
        fit(tiny_plstm(), REGRESSION, split, config, tmp_path, on_epoch_end=stop_after(1))
    moved = {**split, "train": dataset[torch.tensor([1, 2, 3])]}
    with pytest.raises(ValueError, match=r"split 'train': other graphs \(the split's indices changed\)") as err:
        fit(tiny_plstm(), REGRESSION, moved, config, tmp_path, resume=True)
    assert "labels" not in str(err.value) and "features" not in str(err.value)


def test_an_interrupted_fresh_run_keeps_the_record_of_an_earlier_one(tmp_path, molecule_splits, tiny_plstm):
    splits = molecule_splits(20)
    config = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1)
    fit(tiny_plstm(), REGRESSION, splits, config, tmp_path)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["model"] == "plstm" and record["seed"] == 0 and set(record["data"]) == {"train", "valid", "test"}
    assert record["result"]["best_epoch"] in (1, 2)
    with pytest.raises(Interrupt):
        fit(tiny_plstm(hidden_channels=8), REGRESSION, splits, config, tmp_path, on_epoch_end=stop_after(1))
    # The new run is staged beside the old one and swapped in only when it finishes: the old record stays whole.
    assert json.loads((tmp_path / "result.json").read_text()) == record


def test_labels_that_cannot_be_learnt_or_scored_are_refused_before_training(molecule_splits, tiny_plstm):
    splits = molecule_splits(20)
    config = TrainConfig(epochs=1, batch_size=8)

    def with_labels(split: str, make_y) -> dict:
        changed = {**splits, split: [g.clone() for g in splits[split]]}
        for i, g in enumerate(changed[split]):
            g.y = make_y(i, g.y)
        return changed

    all_missing = with_labels("train", lambda i, y: torch.full_like(y, math.nan))
    with pytest.raises(ValueError, match="column 'logS' has no labels in the 'train' split"):
        fit(tiny_plstm(), REGRESSION, all_missing, config, meta={"targets": ["logS"]})
    one_class = with_labels("valid", lambda i, y: torch.ones_like(y))
    binary = {s: [g.clone() for g in d] for s, d in one_class.items()}
    for split in ("train", "test"):
        for i, g in enumerate(binary[split]):
            g.y = torch.full_like(g.y, float(i % 2))
    with pytest.raises(ValueError, match=r"the 'valid' split cannot be scored: column 'active' has only class 1"):
        fit(tiny_plstm(), Task("binary", 1), binary, config, meta={"targets": ["active"]})
    empty_extra = {s: [g.clone() for g in d] for s, d in splits.items()}
    for graphs in empty_extra.values():
        for g in graphs:
            g.y = torch.cat([g.y, torch.full_like(g.y, math.nan)], 1)
    with pytest.raises(ValueError, match="column 'empty' has no labels in the 'train' split"):
        fit(tiny_plstm(out_channels=2), Task("regression", 2), empty_extra, config, meta={"targets": ["logS", "empty"]})


def test_check_labels_notices_partly_scored_splits_and_refuses_bad_classes():
    task = Task("binary", 2)
    both = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    half = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    notices = check_labels(task, {"train": both, "valid": half}, ["a", "b"])
    assert notices == ["the 'valid' split is scored without the targets it cannot score: column 'b' has only "
                       "class 1 (rocauc, ap undefined)"]
    with pytest.raises(ValueError, match="the 'train' split has the class label 3; classes are the integers 0 .. 2"):
        check_labels(Task("multiclass", 3), {"train": torch.tensor([[0.0], [3.0]])}, [])
    with pytest.raises(ValueError, match="column 'a' has an infinite label in the 'valid' split"):
        check_labels(REGRESSION, {"train": torch.ones(2, 1), "valid": torch.tensor([[math.inf]])}, ["a"])


def test_a_diverging_run_stops_with_a_clear_error(tmp_path, molecule_splits, tiny_plstm):
    splits = {s: [g.clone() for g in d] for s, d in molecule_splits(20).items()}
    for graphs in splits.values():
        for g in graphs:
            g.y = g.y * 1e30  # squared errors overflow float32
    config = TrainConfig(epochs=2, batch_size=8, normalize_targets=False)
    with pytest.raises(FloatingPointError, match="training diverged: the loss is inf in epoch 1"):
        fit(tiny_plstm(), REGRESSION, splits, config, tmp_path)
    assert not (tmp_path / "last.pt").exists()


def test_atomic_write_leaves_the_old_file_whole_when_interrupted(tmp_path):
    path = tmp_path / "table.md"
    atomic_write(path, "old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(path) as handle:
            handle.write(b"new, half written")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(tmp_path.iterdir()) == [path]  # no temporary file left
    atomic_write(tmp_path / "new" / "folder" / "t.md", "made")
    assert (tmp_path / "new" / "folder" / "t.md").read_text() == "made"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        atomic_write(tmp_path / "file" / "t.md", "y")


def test_output_paths_are_refused_with_the_reason(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("smiles\nC\n")
    (tmp_path / "link.csv").symlink_to(source)
    for target in (source, tmp_path / "link.csv", tmp_path / "." / "in.csv"):
        with pytest.raises(OutputPathError, match="it is an input of this command"):
            check_output_file(target, [source], overwrite=True)
    with pytest.raises(OutputPathError, match="already exists; pass --overwrite"):
        check_output_file(source, [])
    assert check_output_file(source, [], overwrite=True) == source
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_file(tmp_path, [])
    with pytest.raises(OutputPathError, match="is a file; the output must be a folder"):
        check_output_dir(source)
    with pytest.raises(OutputPathError, match="in.csv is a file, not a folder"):
        check_output_dir(source / "sub")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages of a machine without CUDA")
def test_unavailable_devices_are_named(tmp_path, molecule_splits, tiny_plstm):
    with pytest.raises(ValueError, match="'cuda:1' requested but CUDA is not available"):
        resolve_device("cuda:1")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        resolve_device("gpu")
    fit(tiny_plstm(), REGRESSION, molecule_splits(10), TrainConfig(epochs=1, batch_size=8), tmp_path)
    with pytest.raises(ValueError, match="CUDA is not available"):
        load_model(tmp_path / "best.pt", device="cuda")
    # A model moved to the meta device would lose its weights for good.
    model, _ = load_model(tmp_path / "best.pt")
    with pytest.raises(ValueError, match="device 'meta' is not supported"):
        predict(model, molecule_splits(10)["test"], device="meta")
    assert next(model.parameters()).device.type == "cpu"


def test_a_checkpoint_whose_weights_do_not_fit_its_model_is_named(tmp_path, molecule_splits, tiny_plstm):
    fit(tiny_plstm(), REGRESSION, molecule_splits(10), TrainConfig(epochs=1, batch_size=8), tmp_path)
    ckpt = load_checkpoint(tmp_path / "best.pt")
    ckpt["model_config"]["hidden_channels"] = 32
    torch.save(ckpt, tmp_path / "edited.pt")
    with pytest.raises(ValueError, match="edited.pt: the stored weights do not fit the stored model settings"):
        load_model(tmp_path / "edited.pt")


def test_a_format_1_checkpoint_loads_with_the_defaults_it_was_written_with(tmp_path):
    """Format-1 checkpoints predate the hybrid, batch-normed pLSTM default: their pLSTM settings name
    neither `norm`, `local` nor `block`, and they rebuild with the 'previous' config's values."""
    from pyg_plstm.models import make_model
    from pyg_plstm.train.checkpoint import save_checkpoint

    config = {"name": "plstm", "in_channels": 9, "out_channels": 1, "hidden_channels": 16, "heads": 2}
    torch.manual_seed(0)
    old = make_model(**config, norm="layer", local=None, block="PD")
    save_checkpoint(tmp_path / "old.pt", {"model_config": config, "model": old.state_dict()})
    ckpt = torch.load(tmp_path / "old.pt", weights_only=True)
    torch.save({**ckpt, "format": 1}, tmp_path / "old.pt")
    model, loaded = load_model(tmp_path / "old.pt")
    assert loaded["model_config"]["local"] is None and loaded["model_config"]["norm"] == "layer"
    assert loaded["model_config"]["block"] == "PD"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), old.state_dict().values()))
    # A current checkpoint keeps what it names; an unknown format is refused.
    save_checkpoint(tmp_path / "new.pt", {"model_config": config, "model": make_model(**config).state_dict()})
    assert "local" not in load_checkpoint(tmp_path / "new.pt")["model_config"]
    assert "block" not in load_checkpoint(tmp_path / "new.pt")["model_config"]
    torch.save({**ckpt, "format": 99}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a pyg-plstm checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_format_2_checkpoint_keeps_the_norm_offset_it_was_written_with(tmp_path):
    """Format-2 checkpoints predate the norm offset 1: a pLSTM that does not name `norm_eps` was built with
    1e-2 and must predict exactly what it predicted then; one that names it keeps its value."""
    from torch_geometric.data import Batch, Data

    from pyg_plstm import ToDAG
    from pyg_plstm.models import make_model
    from pyg_plstm.nn.conv import PREVIOUS_NORM_EPS
    from pyg_plstm.train.checkpoint import save_checkpoint

    config = {"name": "plstm", "in_channels": 9, "out_channels": 1, "hidden_channels": 16, "heads": 2}
    paths = [torch.tensor([list(range(n - 1)), list(range(1, n))]) for n in (3, 5, 4)]
    batch = Batch.from_data_list([ToDAG()(Data(x=torch.randn(p.size(1) + 1, 9), edge_index=p)) for p in paths])
    for named in ({}, {"norm_eps": 0.3}):
        torch.manual_seed(0)
        old = make_model(**config, block="PD", **({"norm_eps": PREVIOUS_NORM_EPS} | named)).eval()
        save_checkpoint(tmp_path / "old.pt", {"model_config": {**config, **named}, "model": old.state_dict()})
        ckpt = torch.load(tmp_path / "old.pt", weights_only=True)
        torch.save({**ckpt, "format": 2}, tmp_path / "old.pt")
        model, loaded = load_model(tmp_path / "old.pt")
        assert loaded["model_config"]["norm_eps"] == named.get("norm_eps", PREVIOUS_NORM_EPS)
        torch.testing.assert_close(model.eval()(batch), old(batch), rtol=0, atol=0)
        current = make_model(**config, block="PD", **named).eval()
        current.load_state_dict(old.state_dict())
        assert named or not torch.allclose(current(batch), old(batch))
    # Other models have no norm offset; their settings load as written.
    gin = {"name": "gin", "in_channels": 9, "out_channels": 1, "hidden_channels": 16}
    save_checkpoint(tmp_path / "gin.pt", {"model_config": gin, "model": make_model(**gin).state_dict()})
    torch.save({**torch.load(tmp_path / "gin.pt", weights_only=True), "format": 2}, tmp_path / "gin.pt")
    assert load_checkpoint(tmp_path / "gin.pt")["model_config"] == gin


def test_a_format_3_checkpoint_keeps_the_block_it_was_written_with(tmp_path):
    """Format-3 checkpoints predate one P-mode layer per block: a pLSTM that does not name `block` was built
    with P then D and must load and predict exactly as then; one that names its block keeps it."""
    from torch_geometric.data import Batch, Data

    from pyg_plstm import ToDAG
    from pyg_plstm.models import make_model
    from pyg_plstm.train.checkpoint import save_checkpoint

    config = {"name": "plstm", "in_channels": 9, "out_channels": 1, "hidden_channels": 16, "heads": 2}
    paths = [torch.tensor([list(range(n - 1)), list(range(1, n))]) for n in (3, 5, 4)]
    batch = Batch.from_data_list([ToDAG()(Data(x=torch.randn(p.size(1) + 1, 9), edge_index=p)) for p in paths])
    for named in ({}, {"block": "D"}):
        torch.manual_seed(0)
        old = make_model(**config, **({"block": "PD"} | named)).eval()
        save_checkpoint(tmp_path / "old.pt", {"model_config": {**config, **named}, "model": old.state_dict()})
        torch.save({**torch.load(tmp_path / "old.pt", weights_only=True), "format": 3}, tmp_path / "old.pt")
        model, loaded = load_model(tmp_path / "old.pt")
        assert loaded["model_config"]["block"] == named.get("block", "PD")
        torch.testing.assert_close(model.eval()(batch), old(batch), rtol=0, atol=0)
    # Written now, the same settings build the one-layer blocks.
    save_checkpoint(tmp_path / "new.pt", {"model_config": config, "model": make_model(**config).state_dict()})
    model, _ = load_model(tmp_path / "new.pt")
    assert [block.pattern for block in model.blocks] == ["P", "P"]
