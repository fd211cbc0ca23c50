"""Long-range DAG benchmark: pLSTM (P, D, PD) against GIN/GAT on synthetic tasks.

The label sits many hops from where it is read (see
:mod:`pyg_plstm.datasets.synthetic`); models are scored on the training
depths and on longer walks. Same options, defaults and exit codes as
``pyg-plstm long-range``:

    python examples/long_range.py --task source_class --kind dag --train-depth 1-5 --test-depth 8-12 \
        --seeds 0 1 2 --out runs/long_range
"""
import sys

from pyg_plstm.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["long-range", *sys.argv[1:]]))
