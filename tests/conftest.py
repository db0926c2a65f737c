"""Fixtures of the repository-level tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


@pytest.fixture
def load_script():
    """load_script("first_look") -> the module of scripts/first_look.py (scripts are no package)."""
    loaded: list[str] = []

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"scripts_{name}", SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while it loads
        loaded.append(spec.name)
        spec.loader.exec_module(module)
        return module

    yield load
    for name in loaded:
        sys.modules.pop(name, None)


# The modules whose fixtures take minutes (measured on 2 cores: the real-model QC and the quick demo
# about 150 s each). Collected first, so that `make test`'s workers (pytest-xdist, loadscope, no
# reorder) start on them instead of finishing on them while the other worker idles.
SLOWEST_MODULES = (
    "app/tests/test_real_models.py",
    "tests/test_demo.py",
    "app/tests/test_qc_sharded.py",
    "ci/tests/test_clearml_agent.py",
    "ci/tests/test_gate_lifecycle.py",
)


@pytest.fixture
def slowest_modules() -> tuple[str, ...]:
    """SLOWEST_MODULES, for the test that keeps the list true to the tree."""
    return SLOWEST_MODULES


def pytest_collection_modifyitems(config, items) -> None:
    """Move the slowest modules' tests to the front, each module kept whole and in its own order."""

    def rank(item) -> int:
        module = item.nodeid.split("::")[0]  # node ids are relative to the rootdir, like SLOWEST_MODULES
        return SLOWEST_MODULES.index(module) if module in SLOWEST_MODULES else len(SLOWEST_MODULES)

    items.sort(key=rank)  # stable: every other test keeps the collection order
