"""pyg_plstm.train.run_folder: the one set of run-folder rules that train and long-range share (locks, foreign
report files, which runs are kept, retrained or refused, replacement of a finished run)."""
import subprocess
import sys

import pytest
from test_long_range import TINY
from test_reliability import wait_for_line

from pyg_plstm.cli import main
from pyg_plstm.experiments.long_range import RUNS
from pyg_plstm.train.run_folder import TRAIN_RUNS, RunFolder, load_runs, run_settings

pytestmark = pytest.mark.usefixtures("single_thread")
# Holds the lock of run gin seed 0 of a folder (argv: folder, command) until it is killed.
HOLD = """
import sys, time
from pyg_plstm.experiments.long_range import RUNS
from pyg_plstm.train.run_folder import TRAIN_RUNS, RunFolder
with RunFolder(sys.argv[1], RUNS if sys.argv[2] == "long-range" else TRAIN_RUNS).lock([("gin", 0)]):
    print("holding", flush=True)
    time.sleep(600)  # killed by the test
"""
LAYOUTS = {"train": TRAIN_RUNS, "long-range": RUNS}


def argv(command, out, *extra):
    """A command training gin seed 0 into ``out``; ``train``'s input is never read before ``out`` is checked."""
    if command == "train":
        return ["train", "--csv", str(out.parent / "mols.csv"), "--target-col", "y", "--model", "gin", "--seeds", "0",
                "--out", str(out), "--root", str(out.parent / "data"), "--no-progress", *extra]
    return ["long-range", "--models", "gin", "--seeds", "0", "--out", str(out), *TINY, *extra]


@pytest.mark.parametrize("command", LAYOUTS)
def test_both_commands_refuse_a_run_another_process_writes(command, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out), command], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for_line(holder, "holding", timeout=120)  # importing torch, PyG and RDKit on a loaded machine
        assert main(argv(command, out)) == 3
        run = RunFolder(out, LAYOUTS[command]).run_path("gin", 0)
        assert f"{run} is being written by another pyg-plstm process (pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait(timeout=30)


@pytest.mark.parametrize("command, report, what", [("train", "summary.md", "pyg-plstm run"),
                                                   ("long-range", "results.md", "long-range run")])
def test_both_commands_keep_a_report_file_of_a_folder_without_runs(command, report, what, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / report).write_text("my notes")
    assert main(argv(command, out)) == 3
    assert f"{out / report} exists but {out} holds no finished {what}; pass --overwrite to replace it" \
        in capsys.readouterr().err
    assert (out / report).read_text() == "my notes" and sorted(p.name for p in out.iterdir()) == [report]
    (tmp_path / "file").write_text("x")
    assert main(argv(command, tmp_path / "file")) == 3
    assert "file is a file; the output must be a folder" in capsys.readouterr().err


def record(model, seed, lr=1e-3, data="A"):
    return {"model": model, "seed": seed, "result": {}, "data": data, "by_depth": {},
            **run_settings({"lr": lr, "seed": seed}, {"name": model})}


def plan(tmp_path, records, seeds=(0,), overwrite=False, keep=True):
    planned = {"gin": run_settings({"lr": 1e-3}, {"name": "gin"})}
    changes = lambda r: [] if r["data"] == "A" else [f"data: {r['data']!r} there, 'A' now"]  # noqa: E731
    return RunFolder(tmp_path, RUNS).plan(records, planned, seeds, changes, overwrite, keep)


def test_plan_keeps_retrains_or_refuses(tmp_path):
    # Same settings: kept; other models: left alone; other seeds of the model: must match.
    assert plan(tmp_path, [record("gin", 0), record("gat", 0, lr=1.0), record("gin", 1)]) == {("gin", 0)}
    # Without keep (train), the command's own runs are left to --resume / --overwrite.
    assert plan(tmp_path, [record("gin", 0), record("gin", 1)], keep=False) == set()
    assert plan(tmp_path, [record("gin", 0, lr=1.0)], keep=False) == set()
    # Own runs with other settings: retrained with --overwrite only.
    assert plan(tmp_path, [record("gin", 0, lr=1.0)], overwrite=True) == set()
    with pytest.raises(ValueError, match=r"holds gin seed 0 made with other settings:\n  lr: 1.0 there, 0.001 now\n"
                                         r"pass --overwrite to retrain it, or choose another --out"):
        plan(tmp_path, [record("gin", 0, lr=1.0)])
    # Other seeds with other settings, and runs on other data, are refused whatever the flags.
    for keep in (True, False):
        with pytest.raises(ValueError, match=r"holds gin seed 1 made with other settings:\n  lr: 1.0 there, 0.001 "
                                             r"now\nthe seeds of one model must share their settings"):
            plan(tmp_path, [record("gin", 1, lr=1.0)], overwrite=True, keep=keep)
        with pytest.raises(ValueError, match=r"holds a finished run on other data \(gat seed 3\):\n  data: 'B' "
                                             r"there, 'A' now\nits results cannot share a table"):
            plan(tmp_path, [record("gat", 3, data="B")], overwrite=True, keep=keep)


def test_records_are_checked_ordered_and_replaced_by_model_settings(tmp_path):
    folder = RunFolder(tmp_path, RUNS)
    for model, seed in (("gin", 10), ("gat", 0), ("gin", 2)):
        folder.write_record(record(model, seed))
    assert [(r["model"], r["seed"]) for r in folder.records(order=("gin", "gat"))] == [("gin", 2), ("gin", 10),
                                                                                       ("gat", 0)]
    # A run with other settings replaces the model's others: one row of a table, one setting.
    folder.write_record(record("gin", 2, lr=1.0))
    assert [(r["model"], r["seed"], r["config"]["lr"]) for r in folder.records()] == [("gat", 0, 1e-3),
                                                                                      ("gin", 2, 1.0)]
    folder.record_path("gcn", 0).parent.mkdir()
    folder.record_path("gcn", 0).write_text('{"model": "gcn", "seed": 0}')
    with pytest.raises(ValueError, match=r"seed0.json is not a long-range run record \(it has no result, data, "
                                         r"by_depth\)"):
        folder.records()
    assert load_runs(tmp_path / "empty") == []


def test_a_started_run_needs_resume_or_overwrite_and_is_named(tmp_path):
    folder = RunFolder(tmp_path, TRAIN_RUNS)
    folder.run_path("gin", 0).mkdir(parents=True)
    folder.check_started([("gin", 0)], resume=False, overwrite=False)  # an empty folder holds no run
    (folder.run_path("gin", 0) / "last.pt").write_text("x")
    (folder.run_path("gin", 0) / "best.pt").write_text("x")
    with pytest.raises(ValueError, match=r"already holds runs \(.*gin/seed0/best.pt\); pass --resume to continue "
                                         r"them, --overwrite to start them over"):
        folder.check_started([("gat", 0), ("gin", 0)], resume=False, overwrite=False)
    folder.check_started([("gin", 0)], resume=True, overwrite=False)
    folder.check_started([("gin", 0)], resume=False, overwrite=True)
