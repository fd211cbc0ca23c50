"""``python -m pyg_plstm``: the ``pyg-plstm`` command line."""
from pyg_plstm.cli import main

raise SystemExit(main())
