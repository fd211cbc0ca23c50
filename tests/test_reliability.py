"""Reliability of the train command and its files: one writer per run, overwrite by swap, stale files of killed
writers, clean interruption, refused duplicates, exact messages."""
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from test_cli import TINY_MODEL, first_rows, run

import pyg_plstm.train.compare
import pyg_plstm.train.trainer
from pyg_plstm.train import load_runs

pytestmark = pytest.mark.usefixtures("single_thread")
# A train command that stops in its first run, holding that run, until it is killed.
STALLED_TRAIN = """
import sys, time
import pyg_plstm.train.compare as compare
from pyg_plstm.cli import main

def stall(*args, **kwargs):
    print("training", flush=True)
    time.sleep(120)

compare.fit = stall
main(sys.argv[1:])
"""


def train_argv(tmp_path, *extra):
    (tmp_path / "mols.csv").write_text(first_rows(41))
    return ["train", "--csv", str(tmp_path / "mols.csv"), "--target-col", "log_solubility", "--split", "random",
            "--epochs", "2", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), *TINY_MODEL, *extra]


def wait_for_line(process: subprocess.Popen, text: str, timeout: float) -> None:
    """Read ``process``'s stdout until a line contains ``text``; fail after ``timeout`` seconds."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
        except queue.Empty:
            break
        if text in seen[-1]:
            return
    raise AssertionError(f"no line with {text!r} within {timeout}s; stdout so far: {''.join(seen)!r}")


def test_a_run_another_process_writes_is_refused_until_that_process_dies(tmp_path, capsys):
    argv = train_argv(tmp_path, "--model", "plstm")
    holder = subprocess.Popen([sys.executable, "-c", STALLED_TRAIN, *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    try:
        wait_for_line(holder, "training", timeout=60)
        # Same run, other settings: refused while the first command lives, naming it.
        code, _, err = run(argv + ["--lr", "0.01"], capsys)
        assert code == 3, err
        assert f"{tmp_path / 'out' / 'plstm' / 'seed0'} is being written by another pyg-plstm process " \
               f"(pid {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait(timeout=30)
    # Killed, it holds nothing: its lock is recognised as stale and the run goes ahead.
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert [(r["model"], r["seed"]) for r in load_runs(tmp_path / "out")] == [("plstm", 0)]


def folder_bytes(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_failed_overwrite_leaves_the_earlier_run_as_it_was(tmp_path, monkeypatch, capsys):
    argv = train_argv(tmp_path, "--model", "plstm")
    code, _, err = run(argv, capsys)
    assert code == 0, err
    before = folder_bytes(tmp_path / "out")
    real_epoch = pyg_plstm.train.trainer.train_epoch

    def diverging_second_epoch(state, epoch, *args, **kwargs):
        record = real_epoch(state, epoch, *args, **kwargs)
        return {**record, "loss": float("nan")} if epoch == 2 else record

    monkeypatch.setattr(pyg_plstm.train.trainer, "train_epoch", diverging_second_epoch)
    code, _, err = run(argv + ["--overwrite", "--lr", "0.002"], capsys)
    assert code == 2 and "training diverged" in err
    # Nothing of the failed run is left, nothing of the earlier one is lost.
    assert folder_bytes(tmp_path / "out") == before
    assert sorted(p.name for p in (tmp_path / "out" / "plstm").iterdir()) == ["seed0"]
    monkeypatch.undo()
    code, _, err = run(argv, capsys)
    assert code == 3 and "already holds runs" in err
    code, out, err = run(argv + ["--resume"], capsys)
    assert code == 0 and "epoch 1/2 |" not in out, err
    # A successful overwrite replaces the run.
    code, _, err = run(argv + ["--overwrite", "--lr", "0.002"], capsys)
    assert code == 0, err
    assert [r["config"]["lr"] for r in load_runs(tmp_path / "out")] == [0.002]
    assert sorted(p.name for p in (tmp_path / "out" / "plstm").iterdir()) == ["seed0"]


# A checkpoint write killed outright (kill -9) in the middle of its temporary file.
KILLED_WRITE = """
import os, signal, sys
from pyg_plstm.train.files import atomic_open
with atomic_open(sys.argv[1]) as handle:
    handle.write(b"half a checkpoint")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_temporary_file_of_a_killed_checkpoint_write_is_cleaned_up(tmp_path):
    from pyg_plstm.train.checkpoint import load_checkpoint, save_checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(path)], timeout=60, capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list(tmp_path.glob(".last.pt.*.tmp"))) == 1  # what the kill left
    assert load_checkpoint(path)["epoch"] == 1  # the previous checkpoint is whole
    save_checkpoint(path, {"epoch": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert load_checkpoint(path)["epoch"] == 2


def test_duplicate_target_columns_are_refused(tmp_path, capsys):
    from pyg_plstm.datasets import molecules_from_csv

    argv = train_argv(tmp_path)
    argv[argv.index("log_solubility") + 1:argv.index("log_solubility") + 1] = ["log_solubility"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "target column(s) ['log_solubility'] named more than once" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="named more than once"):
        molecules_from_csv(str(tmp_path / "mols.csv"), target_cols=["log_solubility", "log_solubility"])


def test_an_interrupt_before_any_finished_run_names_no_missing_summary(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pyg_plstm.train.compare, "fit", interrupted)
    argv = train_argv(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 130 and not (tmp_path / "out" / "summary.md").exists()
    assert "summary.md" not in err and "no run had finished" in err
    assert f"--resume --out {tmp_path / 'out'}" in err


def test_a_directory_given_as_a_file_is_called_one(tmp_path, capsys):
    argv = train_argv(tmp_path)
    argv[argv.index("--csv") + 1] = str(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2 and f"CSV file {tmp_path} is a directory" in err
    code, _, err = run(["predict", "--checkpoint", str(tmp_path), "--smiles", "C"], capsys)
    # A folder is a run folder to predict with (an ensemble of its best.pt files): one without any is named.
    assert code == 2 and f"{tmp_path} is a folder without any best.pt below it" in err
    code, _, err = run(["predict", "--checkpoint", str(tmp_path / "none.pt"), "--csv", str(tmp_path)], capsys)
    assert code == 2 and "is a directory" in err


def test_ctrl_c_with_data_loader_workers_exits_130_without_tracebacks(tmp_path):
    (tmp_path / "mols.csv").write_text(first_rows(81))
    argv = ["train", "--csv", "mols.csv", "--target-col", "log_solubility", "--split", "random", "--model", "gin",
            "--epochs", "50", "--root", "data", "--out", "out", "--num-workers", "2", *TINY_MODEL]
    # Its own session, like a command in a terminal: Ctrl-C goes to the whole process group.
    command = subprocess.Popen([sys.executable, "-m", "pyg_plstm", *argv], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_line(command, "| loss", timeout=120)
        time.sleep(0.3)
        os.killpg(command.pid, signal.SIGINT)
        command.wait(timeout=60)  # stdout is read by wait_for_line's thread
        err = command.stderr.read()
    finally:
        command.kill()
        command.wait(timeout=30)
    assert command.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted;" in err


def test_skipped_rows_are_reported_on_every_run_and_recorded(tmp_path, capsys):
    argv = train_argv(tmp_path, "--model", "gin", "--epochs", "1")
    with open(tmp_path / "mols.csv", "a") as f:
        f.write("not_a_smiles,x,-1.0,(A) low,train\n")
    for attempt in range(2):  # the second run reads the processed data from the cache
        with pytest.warns(UserWarning, match="skipped 1 of 41 rows .*row 40: invalid SMILES 'not_a_smiles'"):
            code, out, err = run(argv + (["--overwrite"] if attempt else []), capsys)
        assert code == 0, err
        assert "1 of 41 rows skipped, see the warning" in out
    record = load_runs(tmp_path / "out")[0]
    assert record["meta"]["processing"]["skipped"] == 1
    assert record["meta"]["processing"]["first_skipped"][0]["row"] == 40
    code, _, err = run(argv + ["--resume"], capsys)
    assert code == 0, err
