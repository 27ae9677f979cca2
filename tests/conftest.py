from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

# The proxies in the tests are tiny: one thread each beats two threads' synchronisation,
# and keeps the suite quick when other work shares the cores (subprocesses inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# A run not told its workers starts one process per core; the tests that want a pool ask for one
# (tests/test_workers.py), the others train in their own process.
os.environ.setdefault("SCALESEARCH_WORKERS", "1")

# The reference figures are copied here so the tests do not depend on ../shared being beside the repo.
LOCAL_REFERENCE = Path(__file__).parent / "data" / "efficientnet.csv"


@pytest.fixture(scope="session")
def reference() -> list[dict[str, str]]:
    with open(LOCAL_REFERENCE) as f:
        return list(csv.DictReader(f))
