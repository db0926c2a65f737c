"""A component's `gate.yaml`: how to run its evaluation and the rules its candidates must pass.

Schema (ARCHITECTURE.md section 4), schema_version 1:

    schema_version: 1
    component: detection
    evaluate:             # three stages; each a list of strings with placeholders ({python} = the
                          # interpreter running walkout-ci in every stage)
      prepare: [...]      # TRUSTED (target branch's code): {data} -> {inputs}, what prediction may see
      predict: [...]      # UNTRUSTED (the evaluated commit's code, sandboxed): {model} {inputs} ->
                          # {predictions}; no secrets, no network, no ground truth, read-only elsewhere
      score: [...]        # TRUSTED: {data} {predictions} -> {report_dir}; optional {model_ref}
                          # {weights_sha256} {experiment_id} {commit} (filled in by the gate)
      timeout_s: 1800     # > 0, per stage
      workdir: "."        # optional, relative to the component folder (default: the component folder)
      code_paths: ["."]   # optional, folders (relative to the component folder) whose committed content
                          # is the evaluation code in the cache key, e.g. [".", "../submodules"]
    model:                # optional: what names the production model (default: kind pin, model_ref.yaml)
      kind: pin           # pin: walkout_ci.pins model_ref.yaml -> verified weights file as {model}
                          # file: the file itself is {model} (the app's ../model_refs.yaml), read in the
                          #       worktree of the evaluated commit
      path: model_ref.yaml
    primary_metric: {name: AP50, direction: higher}     # must also be listed under metrics
    metrics:              # at least one; every listed metric is a gate rule
      AP50: {tolerance: 0.01, mode: absolute}            # mode: absolute | relative; optional direction
    per_class:            # optional
      metric: AP50
      max_drop: 0.05      # optional, >= 0
      floor: 0.80         # optional
      direction: higher   # optional
    paired:               # optional
      margin: 0.01        # >= 0
      confidence: 0.95    # in (0.5, 1)
      resamples: 2000     # >= 100
      per_class: true     # Holm-corrected per-class paired tests
      broken_threshold: 0.5
      seed: 0             # optional; the bootstrap is seeded so a verdict is reproducible

Unknown keys are errors that suggest the closest known key; bad values name the key and the range.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from walkout_ci.errors import ConfigError

GATE_SCHEMA_VERSION = 1
GATE_FILENAME = "gate.yaml"
DIRECTIONS = ("higher", "lower")
TOLERANCE_MODES = ("absolute", "relative")
# Per stage: (required placeholders, allowed placeholders).
STAGE_PLACEHOLDERS = {
    "prepare": (("data", "inputs"), ("python",)),
    "predict": (("model", "inputs", "predictions"), ("python",)),
    "score": (
        ("data", "predictions", "report_dir"),
        ("python", "model_ref", "weights_sha256", "experiment_id", "commit"),
    ),
}
STAGES = tuple(STAGE_PLACEHOLDERS)
MODEL_KINDS = ("pin", "file")


@dataclass(frozen=True)
class EvaluateConfig:
    """How walkout-ci runs the component's evaluation: three commands with placeholders, a timeout.

    prepare and score are trusted (always run from the target branch); predict runs the evaluated
    commit's model code in the sandbox (walkout_ci.sandbox)."""

    prepare: tuple[str, ...]
    predict: tuple[str, ...]
    score: tuple[str, ...]
    timeout_s: float
    workdir: str = "."
    # Folders (relative to the component folder) whose committed content is "the evaluation code" in
    # the cache key; the app adds the submodules it runs.
    code_paths: tuple[str, ...] = (".",)


@dataclass(frozen=True)
class ModelConfig:
    """What names the component's production model, relative to the component folder.

    kind "pin": a walkout_ci.pins model_ref.yaml, resolved to a verified weights file for {model}.
    kind "file": the file itself is the model reference (the app's model_refs.yaml): {model} is that
    file inside the worktree of the evaluated commit, and its bytes' sha256 identify the model.
    """

    kind: str = "pin"
    path: str = "model_ref.yaml"


@dataclass(frozen=True)
class PrimaryMetric:
    """The one metric the verdict headline is about."""

    name: str
    direction: str = "higher"


@dataclass(frozen=True)
class MetricRule:
    """An overall metric may get worse by at most `tolerance` (absolute, or relative to the baseline)."""

    tolerance: float
    mode: str = "absolute"
    direction: str = "higher"


@dataclass(frozen=True)
class PerClassRule:
    """Every class's `metric` may drop by at most `max_drop` and must stay at or above `floor`."""

    metric: str
    max_drop: float | None = None
    floor: float | None = None
    direction: str = "higher"


@dataclass(frozen=True)
class PairedRule:
    """Paired bootstrap non-inferiority of per-sample scores: fail when the lower bound < -margin."""

    margin: float
    confidence: float = 0.95
    resamples: int = 2000
    per_class: bool = False
    broken_threshold: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class GateConfig:
    """A validated gate.yaml."""

    component: str
    evaluate: EvaluateConfig
    primary_metric: PrimaryMetric
    metrics: dict[str, MetricRule]
    per_class: PerClassRule | None = None
    paired: PairedRule | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    schema_version: int = GATE_SCHEMA_VERSION
    source: str = field(default="gate.yaml", compare=False)

    def rules_dict(self) -> dict:
        """The rules as plain data (everything but `source`), for hashing and for reports."""
        data = asdict(self)
        data.pop("source")
        for stage in STAGES:
            data["evaluate"][stage] = list(getattr(self.evaluate, stage))
        return data

    def rules_hash(self) -> str:
        """sha256 of the canonical JSON of the whole config (changing any rule invalidates the cache)."""
        canonical = json.dumps(self.rules_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_gate_config(path: str | os.PathLike) -> GateConfig:
    """Read and validate a gate.yaml file (or the gate.yaml inside a component folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / GATE_FILENAME
    if not path.is_file():
        raise ConfigError(
            f"no gate config at {path}: every gated component needs a gate.yaml (ARCHITECTURE.md §4)"
        )
    return parse_gate_config(path.read_text(encoding="utf-8"), source=str(path))


def parse_gate_config(text: str, *, source: str = GATE_FILENAME) -> GateConfig:
    """Validate gate.yaml text; `source` names it in error messages (a path or 'sha:path')."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML: {error}") from error
    return gate_config_from_dict(data, source=source)


def gate_config_from_dict(data: Any, *, source: str = GATE_FILENAME) -> GateConfig:
    """Build a GateConfig from decoded YAML, raising ConfigError that names the file and key."""
    reader = _Reader(source)
    top = reader.mapping(
        data,
        "",
        required=("schema_version", "component", "evaluate", "primary_metric", "metrics"),
        optional=("per_class", "paired", "model"),
    )
    version = top["schema_version"]
    if isinstance(version, bool) or version != GATE_SCHEMA_VERSION:
        reader.fail("schema_version", f"expected {GATE_SCHEMA_VERSION}, got {version!r}")
    component = reader.string(top["component"], "component")

    evaluate_data = top["evaluate"]
    if isinstance(evaluate_data, dict) and "command" in evaluate_data:
        reader.fail(
            "evaluate.command",
            "one evaluation command is no longer accepted: split it into evaluate.prepare (trusted: data "
            "-> inputs), evaluate.predict (the pull request's model code, sandboxed) and evaluate.score "
            "(trusted: predictions + ground truth -> report); see ARCHITECTURE.md section 4",
        )
    evaluate_data = reader.mapping(
        evaluate_data, "evaluate", required=(*STAGES, "timeout_s"), optional=("workdir", "code_paths")
    )
    commands = {stage: _stage_command(evaluate_data[stage], stage, reader) for stage in STAGES}
    workdir = reader.string(evaluate_data.get("workdir", "."), "evaluate.workdir")
    if Path(workdir).is_absolute() or ".." in Path(workdir).parts:
        reader.fail(
            "evaluate.workdir", f"must be relative to the component folder and inside it, got {workdir!r}"
        )
    code_paths = evaluate_data.get("code_paths", ["."])
    if not isinstance(code_paths, list) or not code_paths:
        reader.fail("evaluate.code_paths", f"expected a non-empty list of folders, got {code_paths!r}")
    for path in code_paths:
        reader.relative_path(path, "evaluate.code_paths")
    evaluate = EvaluateConfig(
        **commands,
        timeout_s=reader.number(evaluate_data["timeout_s"], "evaluate.timeout_s", minimum=0, exclusive=True),
        workdir=workdir,
        code_paths=tuple(code_paths),
    )
    model = ModelConfig()
    if top.get("model") is not None:
        model_data = reader.mapping(top["model"], "model", required=(), optional=("kind", "path"))
        model = ModelConfig(
            kind=reader.choice(model_data.get("kind", "pin"), "model.kind", MODEL_KINDS),
            path=reader.relative_path(model_data.get("path", "model_ref.yaml"), "model.path"),
        )

    primary_data = reader.mapping(
        top["primary_metric"], "primary_metric", required=("name",), optional=("direction",)
    )
    primary = PrimaryMetric(
        name=reader.string(primary_data["name"], "primary_metric.name"),
        direction=reader.choice(
            primary_data.get("direction", "higher"), "primary_metric.direction", DIRECTIONS
        ),
    )

    metrics_data = top["metrics"]
    if not isinstance(metrics_data, dict) or not metrics_data:
        reader.fail(
            "metrics",
            f"expected at least one 'name: {{tolerance: ..., mode: ...}}' entry, got {metrics_data!r}",
        )
    metrics = {}
    for name, rule_data in metrics_data.items():
        key = f"metrics.{name}"
        rule_data = reader.mapping(rule_data, key, required=("tolerance",), optional=("mode", "direction"))
        default_direction = primary.direction if name == primary.name else "higher"
        metrics[str(name)] = MetricRule(
            tolerance=reader.number(rule_data["tolerance"], f"{key}.tolerance", minimum=0),
            mode=reader.choice(rule_data.get("mode", "absolute"), f"{key}.mode", TOLERANCE_MODES),
            direction=reader.choice(
                rule_data.get("direction", default_direction), f"{key}.direction", DIRECTIONS
            ),
        )
    if primary.name not in metrics:
        reader.fail(
            "primary_metric.name",
            f"{primary.name!r} is not listed under metrics; "
            f"add '{primary.name}: {{tolerance: 0.01, mode: absolute}}'",
        )
    if metrics[primary.name].direction != primary.direction:
        reader.fail(f"metrics.{primary.name}.direction", "disagrees with primary_metric.direction")

    per_class = None
    if top.get("per_class") is not None:
        per_class_data = reader.mapping(
            top["per_class"], "per_class", required=("metric",), optional=("max_drop", "floor", "direction")
        )
        per_class = PerClassRule(
            metric=reader.string(per_class_data["metric"], "per_class.metric"),
            max_drop=reader.optional_number(per_class_data.get("max_drop"), "per_class.max_drop", minimum=0),
            floor=reader.optional_number(per_class_data.get("floor"), "per_class.floor"),
            direction=reader.choice(
                per_class_data.get("direction", "higher"), "per_class.direction", DIRECTIONS
            ),
        )
        if per_class.max_drop is None and per_class.floor is None:
            reader.fail(
                "per_class", "set max_drop and/or floor (a per_class section with neither checks nothing)"
            )

    paired = None
    if top.get("paired") is not None:
        paired_data = reader.mapping(
            top["paired"],
            "paired",
            required=("margin",),
            optional=("confidence", "resamples", "per_class", "broken_threshold", "seed"),
        )
        confidence = reader.number(
            paired_data.get("confidence", 0.95), "paired.confidence", minimum=0.5, exclusive=True
        )
        if confidence >= 1:
            reader.fail("paired.confidence", f"expected a value in (0.5, 1), got {confidence}")
        paired = PairedRule(
            margin=reader.number(paired_data["margin"], "paired.margin", minimum=0),
            confidence=confidence,
            resamples=reader.integer(paired_data.get("resamples", 2000), "paired.resamples", minimum=100),
            per_class=reader.boolean(paired_data.get("per_class", False), "paired.per_class"),
            broken_threshold=reader.number(
                paired_data.get("broken_threshold", 0.5), "paired.broken_threshold", minimum=0, maximum=1
            ),
            seed=reader.integer(paired_data.get("seed", 0), "paired.seed", minimum=0),
        )
    return GateConfig(
        component=component,
        evaluate=evaluate,
        primary_metric=primary,
        metrics=metrics,
        per_class=per_class,
        paired=paired,
        model=model,
        source=source,
    )


def _stage_command(command: Any, stage: str, reader: _Reader) -> tuple[str, ...]:
    """A stage's command: a non-empty list of strings with exactly its known placeholders."""
    key = f"evaluate.{stage}"
    if not isinstance(command, list) or not command or not all(isinstance(part, str) for part in command):
        reader.fail(key, f"expected a non-empty list of strings, got {command!r}")
    required, optional = STAGE_PLACEHOLDERS[stage]
    known = required + optional
    used = set()
    for part in command:
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(part) if name is not None]
        except ValueError as error:
            reader.fail(key, f"bad placeholder syntax in {part!r}: {error} (write {{{{ for a literal brace)")
        for name in fields:
            if name not in known:
                suggestion = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {{{suggestion[0]}}}?)" if suggestion else ""
                reader.fail(
                    key,
                    f"unknown placeholder {{{name}}} in {part!r}{hint}; known in {stage}: "
                    + ", ".join("{" + name + "}" for name in known),
                )
            used.add(name)
    for name in required:
        if name not in used:
            reader.fail(key, f"must contain the placeholder {{{name}}} (got {command!r})")
    return tuple(command)


class _Reader:
    """Typed accessors that raise ConfigError naming the file and the dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> None:
        where = f"{self.source}: {key}" if key else self.source
        raise ConfigError(f"{where}: {problem}")

    def mapping(self, value: Any, key: str, *, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping with keys {', '.join(required + optional)}, got {value!r}")
        known = required + optional
        prefix = f"{key}." if key else ""
        for name in value:
            if name not in known:
                suggestion = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean {suggestion[0]!r}?" if suggestion else f"allowed: {', '.join(known)}"
                self.fail(f"{prefix}{name}", f"unknown key ({hint})")
        for name in required:
            if name not in value:
                self.fail(f"{prefix}{name}", "missing required key")
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.fail(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def relative_path(self, value: Any, key: str) -> str:
        """A relative POSIX path (it may climb out of the component folder with '..')."""
        if not isinstance(value, str) or not value or Path(value).is_absolute() or "\\" in value:
            self.fail(
                key,
                f"expected a relative path such as 'model_ref.yaml' or '../model_refs.yaml', got {value!r}",
            )
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {value!r}")
        return value

    def number(
        self,
        value: Any,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.fail(key, f"expected a number, got {value!r}")
        if minimum is not None and (value < minimum or (exclusive and value == minimum)):
            relation = ">" if exclusive else ">="
            self.fail(key, f"expected a value {relation} {minimum}, got {value}")
        if maximum is not None and value > maximum:
            self.fail(key, f"expected a value <= {maximum}, got {value}")
        return float(value)

    def optional_number(self, value: Any, key: str, *, minimum: float | None = None) -> float | None:
        return None if value is None else self.number(value, key, minimum=minimum)

    def integer(self, value: Any, key: str, *, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, got {value!r}")
        if value < minimum:
            self.fail(key, f"expected an integer >= {minimum}, got {value}")
        return value
