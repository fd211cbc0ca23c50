"""Two gloo processes (as under torchrun) follow the single-process trajectory of the same global batches."""
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from pyg_plstm.train import TrainConfig, fit
from pyg_plstm.train.checkpoint import load_checkpoint
from test_train import REGRESSION, plstm_config, single_thread, strip_timing, tiny_splits  # noqa: F401

# 17 training graphs in batches of 8: the last global batch has one graph, so one process
# runs a zero-weight stand-in batch.
CONFIG = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=1)
MODEL = plstm_config(dropout=0.0)  # dropout masks would differ between the process layouts


def splits() -> dict:
    return tiny_splits(27)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    try:
        result = fit(MODEL, REGRESSION, splits(), CONFIG, out_dir, device="cpu")
        if rank == 0:
            torch.save({"history": strip_timing(result.history), "best": result.best},
                       os.path.join(out_dir, "result.pt"))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path):
    data = splits()
    assert len(data["train"]) % CONFIG.batch_size == 1
    single = fit(MODEL, REGRESSION, data, CONFIG, tmp_path / "single", device="cpu")
    mp.start_processes(worker, args=(2, free_port(), str(tmp_path / "ddp")), nprocs=2, join=True,
                       start_method="spawn")

    ddp = torch.load(tmp_path / "ddp" / "result.pt", weights_only=True)
    for a, b in zip(strip_timing(single.history), ddp["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        for split in ("valid", "test"):
            assert a[split]["rmse"] == pytest.approx(b[split]["rmse"], rel=1e-5)
    assert single.best["train"]["rmse"] == pytest.approx(ddp["best"]["train"]["rmse"], rel=1e-5)
    one = load_checkpoint(tmp_path / "single" / "last.pt")["model"]
    two = load_checkpoint(tmp_path / "ddp" / "last.pt")["model"]
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=1e-4, atol=1e-5, msg=key)
    # The runs really moved: compare against the initial weights of the same seed.
    torch.manual_seed(CONFIG.seed)
    from pyg_plstm.models import make_model

    init = make_model(**MODEL).state_dict()
    assert any(not torch.allclose(init[k], one[k]) for k in one)
