"""benchmarks.architectures: a smoke run (tiny n, one epoch) through records, table and plot; the
sampling of n; the metrics; the table."""
import json
from pathlib import Path

import pytest
import torch

from benchmarks import architectures as bench

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "neural_architectures" / "final_structures6.txt"


def test_smoke_run_writes_records_table_and_plot(tmp_path):
    path = tmp_path / "archs.txt"
    path.write_text("\n".join(SHIPPED.read_text().splitlines()[:80]) + "\n")
    argv = ["--run", "--models", "plstm-p", "dagnn", "--sizes", "20", "--seeds", "0", "--epochs", "1",
            "--file", str(path), "--burn-in", "10", "--runs", str(tmp_path / "runs"),
            "--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "results")]
    bench.main(argv)
    records = json.loads((tmp_path / "results" / "architectures.json").read_text())["records"]
    assert [(r["model"], r["n"], r["seed"], r["epochs"]) for r in records] == [("plstm-p", 20, 0, 1),
                                                                                ("dagnn", 20, 0, 1)]
    for r in records:
        assert -1 <= r["kendall_tau"] <= 1 and -1 <= r["spearman"] <= 1 and r["rmse"] > 0 and r["s_per_epoch"] > 0
        assert -1 <= r["valid_kendall_tau"] <= 1
        assert r["command"].startswith("python -m benchmarks.architectures --run --models")
    table = (tmp_path / "results" / "architectures.md").read_text()
    assert "| DAGNN |" in table and "n = 20" in table
    assert (tmp_path / "results" / "architectures_tau.png").stat().st_size > 0
    # Resumable: a second call trains nothing and keeps the records.
    bench.main(argv)
    assert json.loads((tmp_path / "results" / "architectures.json").read_text())["records"] == records


def test_plstm_rows_use_the_dag_config_but_the_default_row():
    from pyg_plstm.models import CONFIGS

    for key, options in bench.MODELS.items():
        if key.startswith("plstm"):
            # Every row keeps the block its key names; the others take the config's settings.
            assert options["block"] == key.split("-")[1].upper(), key
            uses_dag = all(options.get(k) == v for k, v in CONFIGS["dag"].items() if k != "block")
            assert uses_dag == (key != "plstm-pd-default"), key


def test_sample_split_draws_n_from_the_pool_with_a_validation_part():
    pool = torch.arange(100, 200)
    split = bench.sample_split(pool, 50, seed=1)
    assert split["valid"].numel() == 10 and split["train"].numel() == 40
    drawn = torch.cat([split["train"], split["valid"]])
    assert drawn.unique().numel() == 50 and bool(((drawn >= 100) & (drawn < 200)).all())
    assert torch.equal(bench.sample_split(pool, 50, seed=1)["train"], split["train"])
    assert not torch.equal(bench.sample_split(pool, 50, seed=2)["train"], split["train"])
    with pytest.raises(ValueError, match="n must lie"):
        bench.sample_split(pool, 101, seed=0)


def test_ranking_metrics():
    metrics = bench.ranking_metrics([1.0, 2.0, 3.0, 5.0], [0.1, 0.2, 0.3, 0.4])
    assert metrics["kendall_tau"] == pytest.approx(1.0) and metrics["spearman"] == pytest.approx(1.0)
    reversed_order = bench.ranking_metrics([4.0, 3.0, 2.0, 1.0], [0.1, 0.2, 0.3, 0.4])
    assert reversed_order["kendall_tau"] == pytest.approx(-1.0) and reversed_order["pearson"] == pytest.approx(-1.0)
    assert bench.ranking_metrics([0.0, 1.0], [0.0, 3.0])["rmse"] == pytest.approx(2 ** 0.5)


def test_table_gives_mean_and_std_and_lists_missing_runs():
    records = [{"model": "dagnn", "n": 100, "seed": s, "kendall_tau": 0.5 + 0.1 * s, "spearman": 0.6,
                "rmse": 0.01, "pearson": 0.7, "s_per_epoch": 1.0, "cpu_s_per_epoch": 0.5,
                "command": "python -m benchmarks.architectures"}
               for s in (0, 1, 2)] + [{"model": "gin", "n": 100, "seed": 0, "kendall_tau": 0.3, "spearman": 0.4,
                                       "rmse": 0.02, "pearson": 0.5, "s_per_epoch": 0.5, "cpu_s_per_epoch": 0.2,
                                       "command": "x"}]
    table = bench.collect(records)
    assert "| DAGNN | 0.600 ± 0.100 |" in table
    assert "| GIN | 0.300 (1 of 3 seeds) |" in table
    assert "GIN at n = 100 (missing 2 of 3 seeds)" in table and "DAGNN at n = 1,000 (missing 3 of 3 seeds)" in table
