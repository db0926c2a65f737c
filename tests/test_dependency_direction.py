"""The dependency direction between our packages, read from the import statements themselves.

submodules -> walkout_ci + third-party (walkout_sim only in their tests);
walkout (app) -> submodules + walkout_ci; walkout_sim -> nothing of ours.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"walkout", "walkout_sim", "walkout_ci", "walkout_detection", "walkout_pose", "walkout_tracking"}

# package dir -> (its import name, what its library code may import, what its tests may import)
ALLOWED = {
    "sim": ("walkout_sim", set(), set()),
    "ci": ("walkout_ci", set(), set()),
    "submodules/detection": ("walkout_detection", {"walkout_ci"}, {"walkout_ci", "walkout_sim"}),
    "submodules/pose": ("walkout_pose", {"walkout_ci"}, {"walkout_ci", "walkout_sim"}),
    "submodules/tracking": ("walkout_tracking", {"walkout_ci"}, {"walkout_ci", "walkout_sim"}),
    "app": (
        "walkout",
        {"walkout_ci", "walkout_detection", "walkout_pose", "walkout_tracking"},
        {"walkout_ci", "walkout_detection", "walkout_pose", "walkout_tracking", "walkout_sim"},
    ),
}


def imported_top_level_names(source: str) -> set[str]:
    """Top-level module names imported by a Python source text (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def violations(package_dir: Path, own: str, allowed: set[str]) -> list[str]:
    """'<file> imports <name>' for every import of one of our packages that `allowed` does not permit."""
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        bad = (imported_top_level_names(path.read_text()) & OURS) - allowed - {own}
        found += [f"{path.relative_to(package_dir)} imports {name}" for name in sorted(bad)]
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_library_code_imports_only_what_it_may(package):
    own, allowed, _ = ALLOWED[package]
    assert violations(ROOT / package / "src", own, allowed) == []


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_test_code_imports_only_what_it_may(package):
    own, _, allowed_in_tests = ALLOWED[package]
    assert violations(ROOT / package / "tests", own, allowed_in_tests) == []


def test_the_checker_catches_forbidden_imports(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import numpy\nimport walkout_pose.model\n"
        "from walkout_sim.render import draw\nfrom . import sibling\n"
    )
    assert violations(tmp_path, "walkout_detection", {"walkout_ci"}) == [
        "bad.py imports walkout_pose",
        "bad.py imports walkout_sim",
    ]
