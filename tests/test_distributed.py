"""Two gloo processes (as under torchrun) follow the single-process trajectory of the same global batches;
a process group that cannot form fails within its timeout instead of hanging."""
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.multiprocessing as mp

from pyg_plstm.models import make_model
from pyg_plstm.train import Task, TrainConfig, fit
from pyg_plstm.train.checkpoint import load_checkpoint
from pyg_plstm.train.distributed import TIMEOUT_VARIABLE, setup

pytestmark = pytest.mark.usefixtures("single_thread")

# 17 training graphs in batches of 8: the last global batch has one graph, so one process
# runs a zero-weight stand-in batch.
CONFIG = TrainConfig(epochs=2, batch_size=8, warmup_epochs=1, seed=1)
REGRESSION = Task("regression", 1)
# Seconds: the rendezvous and every collective operation (a hung process group fails after this),
# and the whole two-process run.
GROUP_TIMEOUT, RUN_TIMEOUT = 30, 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank: int, world_size: int, port: int, out_dir: str, model: dict, splits: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank), **{TIMEOUT_VARIABLE: str(GROUP_TIMEOUT)})
    torch.set_num_threads(1)
    try:
        result = fit(model, REGRESSION, splits, CONFIG, out_dir, device="cpu")
        if rank == 0:
            torch.save({"history": result.history, "best": result.best}, os.path.join(out_dir, "result.pt"))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def run_processes(nprocs: int, args: tuple) -> None:
    """``worker`` in ``nprocs`` spawned processes; fails (killing them) if they take longer than RUN_TIMEOUT."""
    context = mp.start_processes(worker, args=(nprocs, *args), nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + RUN_TIMEOUT
    while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the {nprocs} training processes did not finish within {RUN_TIMEOUT} s")


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tmp_path, molecule_splits, tiny_plstm):
    data = molecule_splits(27)
    # Dropout masks would differ between the process layouts, and so would BatchNorm's batch statistics
    # (each process normalises its own share of the batch, as for GIN): LayerNorm here.
    model = tiny_plstm(dropout=0.0, norm="layer")
    assert len(data["train"]) % CONFIG.batch_size == 1
    single = fit(model, REGRESSION, data, CONFIG, tmp_path / "single", device="cpu")
    run_processes(2, (free_port(), str(tmp_path / "ddp"), model, data))

    ddp = torch.load(tmp_path / "ddp" / "result.pt", weights_only=True)
    assert len(ddp["history"]) == len(single.history) == CONFIG.epochs
    for a, b in zip(single.history, ddp["history"]):
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
    init = make_model(**model).state_dict()
    assert any(not torch.allclose(init[k], one[k]) for k in one)


def test_a_process_group_that_cannot_form_fails_within_its_timeout(monkeypatch):
    # Rank 0 of two, and rank 1 never comes: the rendezvous must give up after the timeout.
    script = textwrap.dedent("""
        from pyg_plstm.train.distributed import setup
        try:
            setup("cpu")
        except Exception as err:
            print("refused:", type(err).__name__)
        else:
            print("joined")
    """)
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "RANK": "0",
           "WORLD_SIZE": "2", "LOCAL_RANK": "0", TIMEOUT_VARIABLE: "2"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "refused:" in done.stdout, done.stdout + done.stderr
    assert time.monotonic() - start < 60
    # A malformed timeout is refused before any process group is started.
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv(TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ValueError, match=f"{TIMEOUT_VARIABLE}='soon' is not an integer"):
        setup("cpu")
    assert not torch.distributed.is_initialized()
