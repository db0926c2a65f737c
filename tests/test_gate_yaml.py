"""Every shipped gate.yaml loads, and its three stage commands exist in the component's CLI.

The gate (`walkout-ci gate`) reads each component's gate.yaml and runs its `evaluate.prepare`,
`evaluate.predict` and `evaluate.score` commands; a typo in a subcommand or an option name would only
show up when a pull request is gated. Here each file goes through the gate's own loader
(`walkout_ci.gate_config.load_gate_config`), each stage is run as the gate runs it with `--help`
(the subcommand exists, every option of the command is one the CLI offers), and the whole command,
placeholders filled in, is parsed by the CLI's own parser (nothing unknown, nothing required missing).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from walkout_ci.gate_config import STAGES, load_gate_config

ROOT = Path(__file__).resolve().parents[1]
# component folder (relative to the repository root) -> the component name its gate.yaml must declare
SHIPPED = {
    "app": "app",
    "submodules/detection": "detection",
    "submodules/pose": "pose",
    "submodules/tracking": "tracking",
}
SUBCOMMANDS = {"prepare": "gate-inputs", "predict": "gate-predict", "score": "gate-score"}
# What the gate substitutes for each placeholder (any value of the right shape parses).
PLACEHOLDER_VALUES = {
    "{python}": sys.executable,
    "{data}": "data",
    "{inputs}": "inputs",
    "{model}": "model.pt",
    "{predictions}": "predictions",
    "{report_dir}": "report",
    "{model_ref}": "model_ref.yaml",
    "{weights_sha256}": "0" * 64,
    "{experiment_id}": "",
    "{commit}": "",
}
HELP_TIMEOUT_S = 300  # only catches a hang: importing torch on the loaded 2-core machine can take ~20 s


def _gate_files() -> list[Path]:
    """Every gate.yaml shipped in the repository (the app's and each model package's)."""
    return sorted([*ROOT.glob("app/gate.yaml"), *ROOT.glob("submodules/*/gate.yaml")])


def _fill(command: tuple[str, ...]) -> list[str]:
    """The command with every placeholder replaced by a plausible value."""
    filled = []
    for part in command:
        for placeholder, value in PLACEHOLDER_VALUES.items():
            part = part.replace(placeholder, value)
        filled.append(part)
    return filled


def _cli_module(module: str) -> str:
    """The module holding `build_parser` for `python -m module` (a package runs its cli via __main__)."""
    return module if module.endswith(".cli") else f"{module}.cli"


def test_the_shipped_gate_files_are_the_expected_ones():
    """A new or removed gate.yaml must be reflected in SHIPPED, so none goes untested."""
    found = {str(path.parent.relative_to(ROOT)) for path in _gate_files()}
    assert found == set(SHIPPED)


@pytest.mark.parametrize("folder", sorted(SHIPPED))
def test_gate_yaml_loads_with_the_gates_loader(folder):
    config = load_gate_config(ROOT / folder / "gate.yaml")
    assert config.component == SHIPPED[folder]
    assert config.primary_metric.name in config.metrics
    assert (ROOT / folder / config.evaluate.workdir).is_dir()
    for path in config.evaluate.code_paths:
        assert (ROOT / folder / path).is_dir(), f"{folder}/gate.yaml: evaluate.code_paths {path!r} is missing"
    # what names the production model must exist where the gate will look for it
    assert (ROOT / folder / config.model.path).is_file(), (
        f"{folder}/gate.yaml: model.path {config.model.path!r}"
    )


def test_the_apps_gate_evaluates_the_lock_file_with_the_submodules_code():
    """The app's model is the lock file itself, and the submodules it runs are part of its code."""
    config = load_gate_config(ROOT / "app" / "gate.yaml")
    assert (config.model.kind, config.model.path) == ("file", "../model_refs.yaml")
    assert set(config.evaluate.code_paths) == {".", "../submodules"}
    assert config.primary_metric.name == "receipt_exact_match"
    # a false charge is the worst error a store can make: the gate allows no increase at all
    rule = config.metrics["false_charges_per_100"]
    assert (rule.tolerance, rule.direction) == (0.0, "lower")


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("folder", sorted(SHIPPED))
def test_stage_command_parses_with_the_components_cli(folder, stage):
    """The filled-in command is accepted by the CLI's parser: subcommand and every option exist."""
    config = load_gate_config(ROOT / folder / "gate.yaml")
    command = getattr(config.evaluate, stage)
    assert command[:2] == ("{python}", "-m"), f"{folder}/gate.yaml evaluate.{stage} must run {{python}} -m"
    module, subcommand = command[2], command[3]
    assert subcommand == SUBCOMMANDS[stage]
    parser = importlib.import_module(_cli_module(module)).build_parser()
    try:
        args = parser.parse_args(_fill(command)[3:])
    except SystemExit as error:  # argparse's way of refusing: an unknown option or a missing one
        pytest.fail(
            f"{folder}/gate.yaml evaluate.{stage}: {module} refuses {command[3:]} (exit {error.code})"
        )
    assert vars(args), "the parser returned nothing"


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("folder", sorted(SHIPPED))
def test_stage_subcommand_answers_help_listing_every_option(folder, stage, capsys):
    """`<subcommand> --help` exits 0 and lists every option the gate passes."""
    config = load_gate_config(ROOT / folder / "gate.yaml")
    command = _fill(getattr(config.evaluate, stage))
    parser = importlib.import_module(_cli_module(command[2])).build_parser()
    with pytest.raises(SystemExit) as exited:
        parser.parse_args([command[3], "--help"])
    assert exited.value.code == 0
    # exact option names: argparse would also accept an abbreviation, but the file should say what it means
    shown = set(re.findall(r"--[A-Za-z0-9][\w-]*", capsys.readouterr().out))
    missing = [part for part in command[4:] if part.startswith("--") and part not in shown]
    assert not missing, f"{folder}/gate.yaml evaluate.{stage}: --help does not list {missing}"


@pytest.mark.parametrize("folder", sorted(SHIPPED))
def test_python_dash_m_runs_the_cli_from_the_stage_folder(folder):
    """The gate runs `{python} -m <module> ...` in evaluate.workdir: that entry point must start and
    reach the predict subcommand (one process per component: importing torch is slow on 2 cores)."""
    config = load_gate_config(ROOT / folder / "gate.yaml")
    modules = {getattr(config.evaluate, stage)[2] for stage in STAGES}
    assert len(modules) == 1, f"{folder}/gate.yaml: the three stages use different CLIs {sorted(modules)}"
    command = _fill(config.evaluate.predict)
    completed = subprocess.run(
        [*command[:4], "--help"],
        cwd=ROOT / folder / config.evaluate.workdir,
        capture_output=True,
        text=True,
        timeout=HELP_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "--inputs" in completed.stdout
