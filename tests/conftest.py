import os
import sys

os.environ.setdefault("OUTDATED_IGNORE", "1")
sys.path.insert(0, os.path.dirname(__file__))
