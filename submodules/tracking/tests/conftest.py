import os
import sys
from pathlib import Path

import motmetrics
import pytest

TESTS_DIR = Path(__file__).resolve().parent
# sort_reference.py (a test-only helper) lives next to the tests.
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


@pytest.fixture(scope="session")
def tud_det_path() -> Path:
    return TESTS_DIR / "data" / "TUD-Campus" / "det.txt"


@pytest.fixture(scope="session")
def tud_gt_path() -> Path:
    return Path(os.path.dirname(motmetrics.__file__)) / "data" / "TUD-Campus" / "gt.txt"
