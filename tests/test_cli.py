"""The pyg-plstm command line: train (tables, files, resume, shared folders), predict, refused paths and
labels, exit codes, long-range delegation."""
import contextlib
import csv
import inspect
import io
import json
import os.path as osp
import runpy
import shutil
import sys
import types
import urllib.error
import urllib.request

import pytest
import torch

import pyg_plstm.train.compare
from pyg_plstm.chem import from_smiles
from pyg_plstm.cli import EXIT_STATUS, main
from pyg_plstm.models import make_model
from pyg_plstm.train import TrainConfig, load_model, predict
from pyg_plstm.train.data import prepare_data

pytestmark = pytest.mark.usefixtures("single_thread")
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_MODEL = ["--hidden", "8", "--layers", "1", "--heads", "2", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-model × 2-seed run on a 40-molecule CSV (random split): folder, argv, code, stdout, stderr."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "mols.csv").write_text(first_rows(41))
    argv = ["train", "--csv", str(tmp / "mols.csv"), "--target-col", "log_solubility", "--split", "random",
            "--model", "plstm", "gin", "--seeds", "0", "1", "--epochs", "2", "--root", str(tmp / "data"),
            "--out", str(tmp / "out")] + TINY_MODEL
    out, err = io.StringIO(), io.StringIO()
    torch.set_num_threads(2)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv + ["--threads", "1"])
    return types.SimpleNamespace(tmp=tmp, argv=argv, code=code, out=out.getvalue(), err=err.getvalue(),
                                 threads_after=torch.get_num_threads())


def first_rows(n: int) -> str:
    """The header and first ``n - 1`` molecules of the shipped solubility CSV."""
    with open(osp.join(REPO, "data", "solubility.csv")) as f:
        return "".join(f.readlines()[:n])


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
            record = json.loads((folder / "result.json").read_text())
            assert (record["model"], record["seed"]) == (model, seed) and record["meta"]["dataset"] == "mols"
    assert (tmp / "out" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_existing_runs_need_resume_or_overwrite(trained, capsys):
    tmp, argv = trained.tmp, trained.argv
    code, _, err = run(argv, capsys)
    assert code == 3 and "--resume" in err and "already holds runs" in err
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
    assert code == 2 and f"checkpoint not found: {tmp / 'none.pt'}" in err


def test_argument_errors_are_named(tmp_path, capsys):
    code, _, err = run(["train", "--csv", str(tmp_path / "x.csv"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "needs --target-col" in err
    code, _, err = run(["train", "--dataset", "nosuchset", "--root", str(tmp_path), "--out", str(tmp_path / "o")],
                       capsys)
    assert code == 2 and "unknown data set 'nosuchset'" in err
    for argv, message in ((["train", "--target-col", "y"], "describe a --csv file"),
                          (["train", "--csv", "x.csv", "--target-col", "y", "--split-col", "s", "--split", "random"],
                           "--split-col is used by --split auto or file"),
                          (["train", "--num-workers", "-1"], "--num-workers must be >= 0"),
                          (["train", "--seeds", "-1"], "--seeds must be >= 0"),
                          (["train", "--epochs", "0"], "--epochs must be positive"),
                          (["train", "--resume"], "--resume needs --out"),
                          (["train", "--seeds", "1", "1"], "--seeds has duplicates"),
                          (["train", "--model", "gnn"], "invalid choice: 'gnn'")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


class Captured(Exception):
    """What `train` would have trained, stopped before training."""


def test_defaults_train_plstm_on_the_shipped_solubility_set(tmp_path, monkeypatch, capsys):
    def capture(model_config, task, splits, config, out_dir, **kwargs):
        raise Captured(model_config, task, {s: len(d) for s, d in splits.items()}, config, out_dir)

    monkeypatch.setattr(pyg_plstm.train.compare, "fit", capture)
    monkeypatch.setenv("PYG_PLSTM_DATA", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Captured) as caught:
        main(["train", "--no-progress"])
    model_config, task, sizes, config, out_dir = caught.value.args
    # The library's defaults, from one source: TrainConfig's fields and make_model's signature.
    assert config == TrainConfig() and config.epochs == 40
    defaults = inspect.signature(make_model).parameters
    assert model_config["name"] == "plstm" and model_config["num_layers"] is None
    for name in ("hidden_channels", "heads", "pooling", "dropout"):
        assert model_config[name] == defaults[name].default, name
    assert task.type == "regression" and task.metric == "rmse"
    # The shipped set's own split (1025 train / 257 test rows, 4 unparsable SMILES skipped; valid cut from train),
    # processed under $PYG_PLSTM_DATA.
    assert sizes == {"train": 923, "valid": 102, "test": 253}
    assert "solubility (file split" in capsys.readouterr().out
    assert any((tmp_path / "data").rglob("*.pt"))
    assert out_dir.parts[0] == "runs" and out_dir.parts[1].startswith("solubility-")
    assert out_dir.parts[2:] == ("plstm", "seed0")


def test_predict_never_writes_over_an_input_nor_silently_over_a_file(trained, capsys):
    tmp = trained.tmp
    ckpt = tmp / "out" / "gin" / "seed0" / "best.pt"
    query = tmp / "query2.csv"
    query.write_text("smiles\nCCO\nc1ccccc1\n")
    before = query.read_text(), ckpt.read_bytes()
    base = ["predict", "--checkpoint", str(ckpt), "--csv", str(query)]
    for target in (query, ckpt, tmp / "." / "query2.csv"):
        code, _, err = run(base + ["--out", str(target), "--overwrite"], capsys)
        assert code == 3 and "it is an input of this command" in err
    assert (query.read_text(), ckpt.read_bytes()) == before
    target = tmp / "preds.csv"
    target.write_text("precious")
    code, _, err = run(base + ["--out", str(target)], capsys)
    assert code == 3 and "already exists; pass --overwrite" in err and target.read_text() == "precious"
    code, _, err = run(base + ["--out", str(target), "--overwrite"], capsys)
    assert code == 0 and target.read_text().startswith("row,smiles,log_solubility,error")
    assert [p.name for p in tmp.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    # A folder is refused with its own exit status, not 1 ("some rows refused").
    code, _, err = run(base + ["--out", str(tmp)], capsys)
    assert code == 3 and "is a folder" in err and "Traceback" not in err


def test_train_plstm_with_loader_workers_equals_training_without(trained, capsys):
    # The batches' DAGs are prepared in the worker process and pickled to the trainer (a user's
    # `--num-workers`); the run must equal the one that prepared them in the main process.
    results = []
    for workers in ("0", "1"):
        out = trained.tmp / f"workers{workers}"
        argv = ["train", "--csv", str(trained.tmp / "mols.csv"), "--target-col", "log_solubility", "--split",
                "random", "--model", "plstm", "--epochs", "1", "--root", str(trained.tmp / "data"), "--out",
                str(out), "--num-workers", workers, "--threads", "1"] + TINY_MODEL
        code, _, err = run(argv, capsys)
        assert code == 0, err
        results.append(json.loads((out / "plstm" / "seed0" / "result.json").read_text())["result"]["best"])
    assert results[0] == results[1]


def test_train_out_must_be_a_folder_without_files_of_others(trained, tmp_path, capsys):
    argv = [a if a != str(trained.tmp / "out") else str(trained.tmp / "mols.csv") for a in trained.argv]
    code, _, err = run(argv, capsys)
    assert code == 3 and "mols.csv is a file; the output must be a folder" in err and "Traceback" not in err
    (tmp_path / "summary.md").write_text("my notes")
    argv = [a if a != str(trained.tmp / "out") else str(tmp_path) for a in trained.argv]
    code, _, err = run(argv, capsys)
    assert code == 3 and "holds no finished pyg-plstm run; pass --overwrite" in err
    assert (tmp_path / "summary.md").read_text() == "my notes"


def test_a_shared_out_merges_runs_and_refuses_runs_on_other_data(trained, tmp_path, capsys):
    shared = tmp_path / "shared"
    shutil.copytree(trained.tmp / "out", shared)
    argv = [a if a != str(trained.tmp / "out") else str(shared) for a in trained.argv]

    def with_args(**replace):
        out = list(argv)
        for flag, values in replace.items():
            i = out.index(flag)
            j = i + 1
            while j < len(out) and not out[j].startswith("--"):
                j += 1
            out[i + 1:j] = values
        return out

    code, out, err = run(with_args(**{"--model": ["gcn"], "--seeds": ["0"]}), capsys)
    assert code == 0, err
    summary = json.loads((shared / "summary.json").read_text())
    assert [r["model"] for r in summary["summary"]] == ["plstm", "gin", "gcn"]
    assert {(r["model"], r["seed"]) for r in summary["runs"]} == {("plstm", 0), ("plstm", 1), ("gin", 0),
                                                                   ("gin", 1), ("gcn", 0)}
    table = (shared / "summary.md").read_text()
    assert "| plstm | 2 |" in table and "| gin | 2 |" in table and "| gcn | 1 |" in table
    # Another seed of a model already in the table must use its settings.
    code, _, err = run(with_args(**{"--model": ["gin"], "--seeds": ["2"], "--hidden": ["16"]}), capsys)
    assert code == 3 and "gin seed 0 made with other settings" in err and "hidden_channels: 8 there, 16 now" in err
    # Other data (another split of the same file) cannot share the table.
    code, _, err = run(with_args(**{"--model": ["gat"], "--split": ["scaffold"]}), capsys)
    assert code == 3 and "holds a finished run on other data" in err and "split: 'random' there, 'scaffold'" in err
    assert json.loads((shared / "summary.json").read_text()) == summary


def test_resume_refuses_a_csv_whose_targets_changed(tmp_path, monkeypatch, capsys):
    (tmp_path / "mols.csv").write_text(first_rows(31))
    argv = ["train", "--csv", str(tmp_path / "mols.csv"), "--target-col", "log_solubility", "--split", "random",
            "--model", "gin", "--epochs", "3", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
            *TINY_MODEL]
    real_fit = pyg_plstm.train.compare.fit

    def interrupted(*args, **kwargs):
        def stop(record):
            if record["epoch"] == 1:
                raise KeyboardInterrupt

        return real_fit(*args, on_epoch_end=stop, **kwargs)

    monkeypatch.setattr(pyg_plstm.train.compare, "fit", interrupted)
    code, _, _ = run(argv, capsys)
    assert code == 130
    monkeypatch.setattr(pyg_plstm.train.compare, "fit", real_fit)
    lines = (tmp_path / "mols.csv").read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("log_solubility")
    edited = [lines[0]] + [",".join(str(float(v) + 1) if i == column else v for i, v in enumerate(line.split(",")))
                           if line.count(",") == len(header) - 1 else line for line in lines[1:]]
    assert edited != lines
    (tmp_path / "mols.csv").write_text("\n".join(edited) + "\n")
    code, out, err = run(argv + ["--resume"], capsys)
    assert code == 2 and "was made on other data" in err and "split 'train': labels changed" in err
    assert "epoch 2/3" not in out


def test_labels_that_cannot_be_learnt_or_scored_are_refused(tmp_path, capsys):
    rows = first_rows(31).splitlines()[1:]
    smiles = [r.split(",")[0] for r in rows if not r.startswith('"')]
    (tmp_path / "nan.csv").write_text("smiles,y,empty\n" + "".join(f"{s},,\n" for s in smiles))
    (tmp_path / "extra.csv").write_text("smiles,y,empty\n" + "".join(f"{s},{i % 3},\n" for i, s in enumerate(smiles)))
    # Valid molecules are all active: ROC-AUC undefined there.
    split = ["train", "train", "valid", "test"]
    (tmp_path / "one_class.csv").write_text("smiles,active,split\n" + "".join(
        f"{s},{1 if split[i % 4] == 'valid' else i % 2},{split[i % 4]}\n" for i, s in enumerate(smiles)))
    common = ["train", "--model", "gin", "--epochs", "1", "--root", str(tmp_path / "data"), *TINY_MODEL]
    cases = [
        (["--csv", str(tmp_path / "nan.csv"), "--target-col", "y", "--split", "random"],
         "column 'y' has no labels in the 'train' split"),
        (["--csv", str(tmp_path / "extra.csv"), "--target-col", "y", "empty", "--split", "random"],
         "column 'empty' has no labels in the 'train' split"),
        (["--csv", str(tmp_path / "one_class.csv"), "--target-col", "active", "--split-col", "split"],
         "the 'valid' split cannot be scored: column 'active' has only class 1"),
    ]
    for i, (data_args, message) in enumerate(cases):
        code, out, err = run(common + data_args + ["--out", str(tmp_path / f"o{i}")], capsys)
        assert code == 2 and message in err, err
        assert "epoch 1/1" not in out


def test_offline_download_failure_is_a_sentence_with_its_own_exit_status(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    for name in ("esol", "ogbg-molbace"):
        code, _, err = run(["train", "--dataset", name, "--root", str(tmp_path), "--out", str(tmp_path / name),
                            "--no-progress"], capsys)
        assert code == 4, err
        assert err.startswith("pyg-plstm train: error: cannot download http") and "to work offline, put" in err
        assert "Traceback" not in err


def test_help_documents_every_exit_status(capsys):
    for argv in (["--help"], ["train", "--help"], ["predict", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "exit status:" in out
        for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130 "):
            assert f"\n  {code}" in out, (argv, code)
    assert EXIT_STATUS.startswith("exit status:\n  0    success")


def test_long_range_delegates_its_arguments(monkeypatch):
    calls = []
    fake = types.ModuleType("pyg_plstm.experiments.long_range")
    fake.main = lambda argv: calls.append(argv) or 7
    monkeypatch.setitem(sys.modules, "pyg_plstm.experiments", types.ModuleType("pyg_plstm.experiments"))
    monkeypatch.setitem(sys.modules, "pyg_plstm.experiments.long_range", fake)
    assert main(["long-range", "--depth", "8", "--help"]) == 7
    assert calls == [["--depth", "8", "--help"]]
    fake.main = lambda argv: (_ for _ in ()).throw(ValueError("bad"))
    assert main(["long-range"]) == 2


def test_python_dash_m_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["pyg_plstm", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("pyg_plstm", run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("train", "predict", "long-range"))


def test_ogb_tu_and_binary_csv_data_sets(tmp_path, capsys):
    from rawdata import OGB_SMILES, SOLUBILITY, make_ogb_raw, make_tu_raw

    make_ogb_raw(str(tmp_path), OGB_SMILES, [float(i % 5) for i in range(len(OGB_SMILES))])
    smiles = [s for s in SOLUBILITY.smiles[:30] if s not in ("C", "O")][:20]
    make_tu_raw(str(tmp_path), "MUTAG", smiles, [1 if i % 2 else -1 for i in range(len(smiles))])
    # Labels alternate, so that each scaffold split holds both classes.
    rows = "".join(f"{s},{i % 2}\n" for i, s in enumerate(SOLUBILITY.smiles[:30]))
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


def test_atom_order_reaches_every_molecule_source_and_predict(tmp_path, capsys):
    from rawdata import OGB_SMILES, SOLUBILITY, make_ogb_raw, make_tu_raw

    make_ogb_raw(str(tmp_path), OGB_SMILES, [float(i % 5) for i in range(len(OGB_SMILES))])
    make_tu_raw(str(tmp_path), "MUTAG", SOLUBILITY.smiles[1:11].tolist(), [1, -1] * 5)
    rows = "".join(f"{s},{i}\n" for i, s in enumerate(SOLUBILITY.smiles[:30]))
    (tmp_path / "mols.csv").write_text("smiles,y\n" + rows)
    root = str(tmp_path)

    shipped = {order: prepare_data("solubility", root, atom_order=order) for order in (None, "input")}
    assert shipped[None].meta["atom_order"] == "canonical" and shipped["input"].meta["atom_order"] == "input"
    smiles = shipped["input"].dataset[5].smiles
    assert torch.equal(shipped["input"].dataset[5].edge_index, from_smiles(smiles, order="input").edge_index)
    assert not torch.equal(shipped[None].dataset[5].edge_index, shipped["input"].dataset[5].edge_index)
    ogb = {order: prepare_data("ogbg-molesol", root, atom_order=order) for order in ("canonical", "input")}
    assert ogb["input"].meta["atom_order"] == "input" and ogb["input"].dataset.order == "input"
    assert any(not torch.equal(a.edge_index, b.edge_index) for a, b in zip(ogb["canonical"].dataset,
                                                                         ogb["input"].dataset))
    with pytest.raises(ValueError, match="'canonical' or 'input' for OGB"):
        prepare_data("ogbg-molesol", root, atom_order="bfs")
    with pytest.raises(ValueError, match="unknown atom order 'random'"):
        prepare_data("solubility", root, atom_order="random")

    common = ["--model", "gin", "--epochs", "1", "--root", root, *TINY_MODEL]
    code, _, err = run(["train", "--dataset", "MUTAG", "--atom-order", "input", *common, "--out",
                        str(tmp_path / "tu")], capsys)
    assert code == 2 and "--atom-order applies to molecule sets; TU data set 'MUTAG'" in err
    code, _, err = run(["train", "--csv", str(tmp_path / "mols.csv"), "--target-col", "y", "--split", "random",
                        "--atom-order", "input", *common, "--out", str(tmp_path / "csv")], capsys)
    assert code == 0, err
    meta = torch.load(tmp_path / "csv" / "gin" / "seed0" / "best.pt", weights_only=True)["meta"]
    assert meta["atom_order"] == "input" and meta["featurizer"]["order"] == "input"
    # predict featurises as training did: the same numbers as the checkpoint's model on input-order graphs.
    checkpoint = str(tmp_path / "csv" / "gin" / "seed0" / "best.pt")
    code, out, err = run(["predict", "--checkpoint", checkpoint, "--smiles", smiles], capsys)
    assert code == 0, err
    model, ckpt = load_model(checkpoint, "cpu")
    expected = predict(model, [from_smiles(smiles, order="input")], ckpt.get("target_norm"), batch_size=1)
    assert float(next(csv.DictReader(io.StringIO(out)))["y"]) == pytest.approx(float(expected[0, 0]), rel=1e-5)
    # Another atom order is other data: it cannot share the folder's table.
    code, _, err = run(["train", "--csv", str(tmp_path / "mols.csv"), "--target-col", "y", "--split", "random",
                        *common, "--out", str(tmp_path / "csv"), "--seeds", "1"], capsys)
    assert code == 3 and "atom_order: 'input' there, 'canonical' now" in err


def test_an_interrupted_train_keeps_its_finished_runs_and_exits_130(trained, monkeypatch, capsys):
    real_fit = pyg_plstm.train.compare.fit
    calls = []

    def interrupt_the_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(pyg_plstm.train.compare, "fit", interrupt_the_second)
    out_dir = trained.tmp / "interrupted"
    argv = [a if a != str(trained.tmp / "out") else str(out_dir) for a in trained.argv]
    code, _, err = run(argv, capsys)
    assert code == 130 and f"--resume --out {out_dir}" in err
    # The first run finished before the interruption: it is in the table.
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [(r["model"], r["seed"]) for r in summary["runs"]] == [("plstm", 0)]


def test_an_unknown_plstm_option_is_refused_naming_it_and_the_valid_ones(tmp_path, capsys):
    code, _, err = run(["train", "--plstm-option", "mlp_rato=2", "--root", str(tmp_path), "--out",
                        str(tmp_path / "out")], capsys)
    assert code == 2 and "--plstm-option 'mlp_rato=2': expected KEY=VALUE with KEY one of [" in err
    assert "'mlp_ratio'" in err and "'householder_steps'" in err
    assert not (tmp_path / "out").exists()


def test_plstm_config_dag_sets_the_dag_encoding_without_the_local_layer():
    from pyg_plstm.cli import build_parser, plstm_overrides

    args = build_parser().parse_args(["train", "--dataset", "enas6", "--model", "plstm", "--plstm-config", "dag"])
    overrides = plstm_overrides(args)
    assert overrides["pos_encoding"] == "dag" and overrides["local"] is None
    model = make_model("plstm", 8, 1, **overrides)
    assert type(model.pos_encoder).__name__ == "DAGEncoding" and model.blocks[0].local_conv is None
