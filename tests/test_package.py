"""The package as a whole: what importing it does to the process."""
import os
import subprocess
import sys

import pytest


def _probe(code: str, outdated_ignore):
    env = {k: v for k, v in os.environ.items() if k != "OUTDATED_IGNORE"}
    if outdated_ignore is not None:
        env["OUTDATED_IGNORE"] = outdated_ignore
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_importing_the_package_keeps_ogb_offline():
    # ogb asks PyPI for a newer release on import unless OUTDATED_IGNORE is set; the package sets it once.
    assert _probe("import os, pyg_plstm.chem, ogb; print(os.environ.get('OUTDATED_IGNORE'))", None) == "1"


@pytest.mark.parametrize("given", ["0", "yes"])
def test_a_users_own_outdated_setting_is_left_as_it_is(given):
    # Only the package is imported (not ogb), so the probe itself never reaches the network.
    assert _probe("import os, pyg_plstm; print(os.environ.get('OUTDATED_IGNORE'))", given) == given
