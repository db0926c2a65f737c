import os
from pathlib import Path

import motmetrics
import pytest

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def tud_det_path() -> Path:
    return TESTS_DIR / "data" / "TUD-Campus" / "det.txt"


@pytest.fixture(scope="session")
def tud_gt_path() -> Path:
    return Path(os.path.dirname(motmetrics.__file__)) / "data" / "TUD-Campus" / "gt.txt"


@pytest.fixture(scope="session")
def sim_train(tmp_path_factory) -> Path:
    """A tiny simulator export (2 videos x 40 frames), generated once per test session."""
    import walkout_sim

    out = tmp_path_factory.mktemp("sim") / "train"
    walkout_sim.generate_split(out, split="train", videos=2, frames=40, seed=0)
    return out


@pytest.fixture()
def walkout_home(tmp_path, monkeypatch) -> Path:
    """An empty walkout-ci store for experiments, so tests never touch the real one."""
    home = tmp_path / "walkout_home"
    monkeypatch.setenv("WALKOUT_HOME", str(home))
    return home
