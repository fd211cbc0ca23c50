"""``python -m pyg_plstm``: the ``pyg-plstm`` command line."""
from pyg_plstm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
