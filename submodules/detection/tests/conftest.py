"""Shared fixtures: an isolated walkout store per test and small hand-made COCO datasets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import make_dataset


@pytest.fixture(autouse=True)
def walkout_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own experiment store, so nothing leaks into ~/.walkout or the repo."""
    home = tmp_path_factory.mktemp("walkout_home")
    monkeypatch.setenv("WALKOUT_HOME", str(home))
    return home


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> None:
    """One intra-op thread: tiny tensors gain nothing from more, and on a shared, busy machine extra
    spinning threads make every call wait for a free core."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 images of 160x128 with persons and two SKUs (COCO export layout with a manifest)."""
    return make_dataset(tmp_path_factory.mktemp("small") / "train", images=24, seed=3)


@pytest.fixture(scope="session")
def small_val_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("small") / "val", images=8, seed=4)


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
