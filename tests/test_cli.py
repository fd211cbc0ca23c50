"""The pyg-plstm command line: train (tables, files, resume), predict, argument errors, long-range delegation."""
import contextlib
import csv
import io
import json
import os.path as osp
import runpy
import sys
import types

import pytest
import torch

from pyg_plstm.cli import build_parser, main
from test_train import single_thread  # noqa: F401  (autouse: one intra-op thread)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_MODEL = ["--hidden", "8", "--layers", "1", "--heads", "2", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-model × 2-seed run on a 40-molecule CSV (random split): folder, argv, code, stdout, stderr."""
    tmp = tmp_path_factory.mktemp("cli")
    with open(osp.join(REPO, "data", "solubility.csv")) as f:
        (tmp / "mols.csv").write_text("".join(f.readlines()[:41]))
    argv = ["train", "--csv", str(tmp / "mols.csv"), "--target-col", "log_solubility", "--split", "random",
            "--model", "plstm", "gin", "--seeds", "0", "1", "--epochs", "2", "--root", str(tmp / "data"),
            "--out", str(tmp / "out")] + TINY_MODEL
    out, err = io.StringIO(), io.StringIO()
    torch.set_num_threads(2)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv + ["--threads", "1"])
    return types.SimpleNamespace(tmp=tmp, argv=argv, code=code, out=out.getvalue(), err=err.getvalue(),
                                 threads_after=torch.get_num_threads())


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_writes_table_summary_curves_and_checkpoints(trained):
    tmp, code, out, err = trained.tmp, trained.code, trained.out, trained.err
    assert code == 0, err
    assert trained.threads_after == 2  # --threads applies to the run only
    assert "random split: train 32, valid 4, test 4" in out
    assert out.count("epoch 2/2") == 4
    table = (tmp / "out" / "summary.md").read_text()
    assert "| plstm | 2 |" in table and "| gin | 2 |" in table and " ± " in table
    assert table.splitlines()[-1] in out
    summary = json.loads((tmp / "out" / "summary.json").read_text())
    assert [r["model"] for r in summary["summary"]] == ["plstm", "gin"]
    assert {(r["model"], r["seed"]) for r in summary["runs"]} == {(m, s) for m in ("plstm", "gin") for s in (0, 1)}
    assert summary["info"]["targets"] == ["log_solubility"]
    for model in ("plstm", "gin"):
        for seed in (0, 1):
            folder = tmp / "out" / model / f"seed{seed}"
            assert (folder / "best.pt").exists() and (folder / "last.pt").exists()
    assert (tmp / "out" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_existing_runs_need_resume_or_overwrite(trained, capsys):
    tmp, argv = trained.tmp, trained.argv
    code, _, err = run(argv, capsys)
    assert code == 2 and "--resume" in err and "already holds runs" in err
    before = (tmp / "out" / "summary.md").read_text()
    code, out, _ = run(argv + ["--resume"], capsys)
    # Finished runs are kept: nothing retrained, same table.
    assert code == 0 and "epoch 1/2 |" not in out
    assert (tmp / "out" / "summary.md").read_text() == before
    code, _, err = run(argv + ["--resume", "--epochs", "3"], capsys)
    assert code == 2 and "epochs: checkpoint has 2, this run has 3" in err


def test_predict_smiles_and_csv(trained, capsys):
    tmp = trained.tmp
    ckpt = str(tmp / "out" / "gin" / "seed0" / "best.pt")
    code, out, err = run(["predict", "--checkpoint", ckpt, "--smiles", "CCO", "C1CC", "c1ccccc1"], capsys)
    assert code == 1
    assert "row 1: refused 'C1CC'" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["smiles"] for r in rows] == ["CCO", "C1CC", "c1ccccc1"]
    assert float(rows[0]["log_solubility"]) == float(rows[0]["log_solubility"])  # a number
    assert rows[1]["log_solubility"] == "" and "unclosed ring" in rows[1]["error"]
    assert rows[0]["error"] == "" and rows[2]["error"] == ""

    (tmp / "query.csv").write_text("name,smi\nethanol,CCO\nbenzene,c1ccccc1\n")
    target = tmp / "pred.csv"
    code, _, err = run(["predict", "--checkpoint", ckpt, "--csv", str(tmp / "query.csv"), "--smiles-col", "smi",
                        "--out", str(target)], capsys)
    assert code == 0 and "2 of 2 rows predicted" in err
    assert len(list(csv.DictReader(target.open()))) == 2
    code, _, err = run(["predict", "--checkpoint", ckpt, "--csv", str(tmp / "query.csv")], capsys)
    assert code == 2 and "no column 'smiles'" in err
    code, _, _ = run(["predict", "--checkpoint", ckpt, "--smiles", "C1CC", "--allow-invalid"], capsys)
    assert code == 0
    code, _, err = run(["predict", "--checkpoint", str(tmp / "none.pt"), "--smiles", "C"], capsys)
    assert code == 2 and "no checkpoint at" in err


def test_argument_errors_are_named(tmp_path, capsys):
    code, _, err = run(["train", "--csv", str(tmp_path / "x.csv"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "needs --target-col" in err
    code, _, err = run(["train", "--dataset", "nosuchset", "--root", str(tmp_path), "--out", str(tmp_path / "o")],
                       capsys)
    assert code == 2 and "unknown data set 'nosuchset'" in err
    for argv, message in ((["train", "--target-col", "y"], "describe a --csv file"),
                          (["train", "--epochs", "0"], "--epochs must be positive"),
                          (["train", "--resume"], "--resume needs --out"),
                          (["train", "--seeds", "1", "1"], "--seeds has duplicates"),
                          (["train", "--model", "gnn"], "invalid choice: 'gnn'")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_defaults_train_plstm_on_the_shipped_solubility_set():
    args = build_parser().parse_args(["train"])
    assert args.dataset == "solubility" and args.model == ["plstm"] and args.csv is None
    assert args.seeds == [0] and args.split == "auto"


def test_long_range_delegates_its_arguments(monkeypatch):
    calls = []
    fake = types.ModuleType("pyg_plstm.experiments.long_range")
    fake.main = lambda argv: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, "pyg_plstm.experiments", types.ModuleType("pyg_plstm.experiments"))
    monkeypatch.setitem(sys.modules, "pyg_plstm.experiments.long_range", fake)
    assert main(["long-range", "--depth", "8", "--help"]) == 7
    assert calls == [["--depth", "8", "--help"]]


def test_python_dash_m_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["pyg_plstm", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("pyg_plstm", run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("train", "predict", "long-range"))


def test_ogb_tu_and_binary_csv_data_sets(tmp_path, capsys):
    from test_datasets import OGB_SMILES, SOLUBILITY, make_ogb_raw, make_tu_raw

    make_ogb_raw(str(tmp_path), OGB_SMILES, [float(i % 5) for i in range(len(OGB_SMILES))])
    smiles = [s for s in SOLUBILITY.smiles[:30] if s not in ("C", "O")][:20]
    make_tu_raw(str(tmp_path), "MUTAG", smiles, [1 if i % 2 else -1 for i in range(len(smiles))])
    rows = "".join(f"{s},{int(y > -2)}\n" for s, y in zip(SOLUBILITY.smiles[:30], SOLUBILITY.log_solubility[:30]))
    (tmp_path / "active.csv").write_text("smiles,active\n" + rows)
    common = ["--model", "gin", "--epochs", "1", "--root", str(tmp_path)] + TINY_MODEL
    cases = {
        "ogb": (["--dataset", "ogbg-molesol"], "official split: train 17, valid 3, test 3", "metric rmse"),
        "tu": (["--dataset", "MUTAG"], "random split: train 16, valid 2, test 2", "task: multiclass, 2 classes"),
        "csv": (["--csv", str(tmp_path / "active.csv"), "--target-col", "active", "--split", "scaffold"],
                "scaffold split", "task: binary, 1 target(s), metric rocauc"),
    }
    for name, (data_args, split_text, task_text) in cases.items():
        code, out, err = run(["train", *data_args, *common, "--out", str(tmp_path / name)], capsys)
        assert code == 0, err
        assert split_text in out and task_text in out
    summary = json.loads((tmp_path / "tu" / "summary.json").read_text())
    assert summary["task"] == {"type": "multiclass", "num_tasks": 2, "metric": "acc", "ogb_name": None}
    assert json.loads((tmp_path / "ogb" / "summary.json").read_text())["task"]["ogb_name"] == "ogbg-molesol"

    code, _, err = run(["predict", "--checkpoint", str(tmp_path / "tu" / "gin" / "seed0" / "best.pt"),
                        "--smiles", "CCO"], capsys)
    assert code == 2 and "was not trained on SMILES (MUTAG)" in err
    code, out, _ = run(["predict", "--checkpoint", str(tmp_path / "csv" / "gin" / "seed0" / "best.pt"),
                        "--smiles", "CCO"], capsys)
    assert code == 0 and 0 <= float(next(csv.DictReader(io.StringIO(out)))["active"]) <= 1  # a probability
    code, _, err = run(["train", "--dataset", "MUTAG", "--task", "binary", *common, "--out", str(tmp_path / "x")],
                       capsys)
    assert code == 2 and "--task applies to molecule sets" in err


def test_interrupted_train_exits_130_with_a_resume_hint(trained, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pyg_plstm.train.compare.fit", interrupt)
    out_dir = trained.tmp / "interrupted"
    argv = [a if a != str(trained.tmp / "out") else str(out_dir) for a in trained.argv]
    code, _, err = run(argv, capsys)
    assert code == 130 and f"--resume --out {out_dir}" in err
