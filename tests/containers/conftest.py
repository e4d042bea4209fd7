"""The container tier runs only under `make test-containers` (it needs a Docker engine and built images, and takes
minutes): a plain `make test` / `pytest` does not collect it."""

from __future__ import annotations

import os

if os.environ.get("S2S_TEST_CONTAINERS") != "1":
    collect_ignore_glob = ["test_*.py"]
