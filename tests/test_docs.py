"""The README and the Makefile help stay true to the code."""

from __future__ import annotations

import subprocess

from services.common.settings_table import rows
from tests.procs import REPO


def test_readme_settings_table_matches_the_settings_classes():
    readme = (REPO / "README.md").read_text()
    missing = [row for row in rows()[2:] if row not in readme]
    assert not missing, (
        "README settings table is stale; regenerate with `python -m services.common.settings_table`:\n"
        + "\n".join(missing)
    )


def test_every_make_target_the_readme_names_exists():
    help_text = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    readme = (REPO / "README.md").read_text()
    for target in ("run", "test", "bench", "client", "deploy-runpod", "destroy-runpod", "status-runpod"):
        assert f"make {target}" in readme
        assert f"make {target} " in help_text
