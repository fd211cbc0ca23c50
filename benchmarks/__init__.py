"""Side-by-side benchmarks of pyg_plstm (run: ``python -m benchmarks.run``)."""
