from __future__ import annotations

import csv
from pathlib import Path

import pytest

# The reference figures are copied here so the tests do not depend on ../shared being beside the repo.
LOCAL_REFERENCE = Path(__file__).parent / "data" / "efficientnet.csv"


@pytest.fixture(scope="session")
def reference() -> list[dict[str, str]]:
    with open(LOCAL_REFERENCE) as f:
        return list(csv.DictReader(f))
