"""Trainer: determinism, exact resume, checkpoints, masked losses/metrics, schedules."""
import math
import os.path as osp

import numpy as np
import pandas as pd
import pytest
import torch
from ogb.graphproppred import Evaluator

from pyg_plstm.chem import from_smiles
from pyg_plstm.train import Task, TrainConfig, evaluate, fit, load_model, masked_loss, predict
from pyg_plstm.train.checkpoint import check_config, load_checkpoint
from pyg_plstm.train.distributed import GlobalBatchSampler
from pyg_plstm.train.trainer import _lr_lambda

@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread: much faster for tiny graphs on a small, busy machine (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TIMING_KEYS = ("time_train", "cpu_train", "time_epoch")


def tiny_molecules(n: int = 40, binary: bool = False) -> list:
    """The first ``n`` valid molecules of the shipped solubility set, with their labels."""
    frame = pd.read_csv(osp.join(REPO, "data", "solubility.csv"))
    graphs = []
    for smiles, y in zip(frame.smiles, frame.log_solubility):
        try:
            graphs.append(from_smiles(smiles, y=float(y > -2) if binary else float(y)))
        except ValueError:
            continue
        if len(graphs) == n:
            break
    return graphs


def tiny_splits(n: int = 40, binary: bool = False) -> dict:
    graphs = tiny_molecules(n, binary)
    k = n // 5
    return {"train": graphs[:n - 2 * k], "valid": graphs[n - 2 * k:n - k], "test": graphs[n - k:]}


def plstm_config(**overrides) -> dict:
    config = dict(name="plstm", in_channels=None, out_channels=1, hidden_channels=16, num_layers=1, heads=2,
                  node_encoder="ogb", edge_encoder="ogb", dropout=0.1)
    return {**config, **overrides}


def strip_timing(history: list) -> list:
    return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in history]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


REGRESSION = Task("regression", 1)


def test_same_seed_gives_bit_identical_run(tmp_path):
    splits = tiny_splits()
    config = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=3)
    runs = [fit(plstm_config(), REGRESSION, splits, config, tmp_path / str(i)) for i in range(2)]
    assert strip_timing(runs[0].history) == strip_timing(runs[1].history)
    assert_same_weights(load_checkpoint(tmp_path / "0" / "last.pt")["model"],
                        load_checkpoint(tmp_path / "1" / "last.pt")["model"])
    other = fit(plstm_config(), REGRESSION, splits, TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=4))
    assert strip_timing(other.history) != strip_timing(runs[0].history)


class Interrupt(Exception):
    pass


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    splits = tiny_splits()
    config = TrainConfig(epochs=4, batch_size=8, warmup_epochs=1, seed=0)
    straight = fit(plstm_config(), REGRESSION, splits, config, tmp_path / "straight")

    def stop_after_two(record: dict) -> None:
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(plstm_config(), REGRESSION, splits, config, tmp_path / "resumed", on_epoch_end=stop_after_two)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 2
    # Anything drawn from the global generators in between must not matter.
    torch.rand(7), np.random.rand(3)
    resumed = fit(plstm_config(), REGRESSION, splits, config, tmp_path / "resumed", resume=True)

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
    again = fit(plstm_config(), REGRESSION, splits, config, tmp_path / "resumed", resume=True)
    assert again.best == straight.best and len(again.history) == 4


def test_checkpoints_load_weights_only_and_rebuild_the_model(tmp_path):
    splits = tiny_splits()
    result = fit(plstm_config(), REGRESSION, splits, TrainConfig(epochs=2, batch_size=8), tmp_path,
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


def test_resume_with_other_settings_names_every_mismatch(tmp_path):
    splits = tiny_splits()
    fit(plstm_config(), REGRESSION, splits, TrainConfig(epochs=1, batch_size=8), tmp_path)
    with pytest.raises(ValueError, match="hidden_channels: checkpoint has 16, this run has 32"):
        fit(plstm_config(hidden_channels=32), REGRESSION, splits, TrainConfig(epochs=1, batch_size=8), tmp_path,
            resume=True)
    with pytest.raises(ValueError) as err:
        fit(plstm_config(), REGRESSION, splits, TrainConfig(epochs=1, batch_size=4, lr=0.1), tmp_path, resume=True)
    assert "batch_size" in str(err.value) and "lr" in str(err.value) and "epochs" not in str(err.value)


def test_check_config_and_bad_checkpoint_files(tmp_path):
    check_config({"a": 1}, {"a": 1}, "x")
    with pytest.raises(ValueError, match="b: checkpoint has <unset>, this run has 2"):
        check_config({"a": 1}, {"a": 1, "b": 2}, "x")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable pyg-plstm checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a pyg-plstm checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_binary_training_with_missing_labels_and_gin(tmp_path):
    splits = tiny_splits(binary=True)
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


def test_task_and_config_validation():
    with pytest.raises(ValueError, match="unknown task type 'ranking'"):
        Task("ranking", 1)
    with pytest.raises(ValueError, match="metric 'rocauc' does not apply to regression"):
        Task("regression", 1, metric="rocauc")
    assert Task("binary", 3).metrics == ("rocauc", "ap")
    with pytest.raises(ValueError, match="`epochs` must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(schedule="step")
    splits = tiny_splits()
    with pytest.raises(ValueError, match=r"needs the split\(s\) \['valid'\]"):
        fit(plstm_config(), REGRESSION, {"train": splits["train"]}, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"split\(s\) \['test'\] are empty"):
        fit(plstm_config(), REGRESSION, {**splits, "test": []}, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="`resume` needs an `out_dir`"):
        fit(plstm_config(), REGRESSION, splits, TrainConfig(epochs=1), resume=True)


def test_warmup_then_cosine_schedule():
    factor = _lr_lambda(TrainConfig(epochs=10, warmup_epochs=2), steps_per_epoch=5)
    assert [factor(s) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert factor(10) == pytest.approx(1.0)
    assert factor(30) == pytest.approx(0.5)
    assert factor(49) < 0.01
    constant = _lr_lambda(TrainConfig(epochs=10, warmup_epochs=0, schedule="constant"), steps_per_epoch=5)
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
