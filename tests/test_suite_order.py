"""`make test` runs on two pytest workers with the slowest modules first (tests/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_named_slowest_exists(slowest_modules) -> None:
    # A renamed module would silently fall back to the collection order (and a long tail on one worker).
    missing = [name for name in slowest_modules if not (ROOT / name).is_file()]
    assert not missing, f"tests/conftest.py SLOWEST_MODULES names modules that do not exist: {missing}"


def test_the_slowest_modules_are_collected_first(request, slowest_modules) -> None:
    collected = [item.nodeid.split("::")[0] for item in request.session.items]
    positions = [index for index, module in enumerate(collected) if module in slowest_modules]
    assert positions == list(range(len(positions))), "a slow module's test comes after another test"


def test_make_test_uses_the_workers_and_keeps_modules_whole() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe, "Makefile has no test target"
    assert "-n $(TEST_WORKERS)" in recipe.group(1) and "--dist loadscope" in recipe.group(1)
    assert "--no-loadscope-reorder" in recipe.group(1), "xdist would reorder modules by test count"
