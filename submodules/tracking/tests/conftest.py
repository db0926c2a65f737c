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


# The store the session started with. In this package's own repository (a clone from the org) there are
# no bundled experiments/: git carries only the pin's id, and CI points WALKOUT_HOME at the org's store
# (a ClearML file server stand-in). Read before the per-test stores above replace WALKOUT_HOME.
OUTER_WALKOUT_HOME = os.environ.get("WALKOUT_HOME")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def pinned_experiment(walkout_home: Path) -> Path:
    """The folder the pinned experiment resolves from (walkout_ci.testing.pinned_experiment_folder)."""
    from walkout_ci.testing import pinned_experiment_folder

    return pinned_experiment_folder(PACKAGE_ROOT, OUTER_WALKOUT_HOME, walkout_home)
