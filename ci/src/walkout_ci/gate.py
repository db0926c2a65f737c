"""Rules -> verdict: compare a candidate evaluation report with the baseline's under a gate config.

Verdicts: PASS (exit 0) only when every rule could be checked and none failed; FAIL (exit 1) when
a rule found a regression; ERROR (exit 2) when anything needed for an explicit, complete comparison
is missing (a report, a metric, a class, per-sample scores for a paired test, the same dataset on
both sides). ERROR wins over FAIL: a comparison that could not be completed never reads as a pass.

`compare_reports` never raises for problems in the reports' content; it returns them as ERROR rule
results so the verdict, the JUnit file and the PR comment all say what went wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from walkout_ci import stats
from walkout_ci.errors import GateError
from walkout_ci.gate_config import GateConfig

PASS = "PASS"
FAIL = "FAIL"
ERROR = "ERROR"
EXIT_CODES = {PASS: 0, FAIL: 1, ERROR: 2}
# Name under which the overall per-sample score is listed when samples carry no per-class scores.
OVERALL = "(overall)"
# How many newly broken / fixed sample ids one class lists in full.
_MAX_LISTED_SAMPLES = 50
# Float slack for threshold comparisons: 0.9 - 0.89 is 0.01000000000000001, and a drop of exactly the
# tolerance must pass, as the rule says.
_SLACK = 1e-9
# Below this many paired samples the report warns that the bootstrap says little.
_FEW_SAMPLES = 10


@dataclass
class RuleResult:
    """One checked rule (one JUnit test case). status: PASS | FAIL | ERROR."""

    name: str
    status: str
    message: str
    baseline: float | None = None
    candidate: float | None = None
    delta: float | None = None


@dataclass
class MetricRow:
    """An overall metric: baseline, candidate, delta (candidate - baseline) and the rule's status."""

    name: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    direction: str
    status: str


@dataclass
class ClassRow:
    """One class in the per-class table; `failing` is True when any rule about this class failed."""

    name: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    failing: bool = False
    reasons: list[str] = field(default_factory=list)
    paired_n: int | None = None
    paired_mean: float | None = None
    paired_lower: float | None = None
    paired_upper: float | None = None
    paired_adjusted_p: float | None = None
    newly_broken: list[str] = field(default_factory=list)
    newly_fixed: list[str] = field(default_factory=list)


@dataclass
class ModelSide:
    """What the report says about one side of the comparison (for links and headings)."""

    experiment_id: str | None = None
    model_ref: str | None = None
    weights_sha256: str | None = None
    code_commit: str | None = None
    link: str | None = None
    report_dir: str | None = None


@dataclass
class GateResult:
    """The full outcome of one gate run; `to_dict()` is the verdict.json content."""

    verdict: str
    component: str
    rules: list[RuleResult] = field(default_factory=list)
    metrics: list[MetricRow] = field(default_factory=list)
    classes: list[ClassRow] = field(default_factory=list)
    paired: dict[str, Any] | None = None
    newly_broken: dict[str, list[str]] = field(default_factory=dict)
    newly_fixed: dict[str, list[str]] = field(default_factory=dict)
    broken_failures: list[dict] = field(default_factory=list)
    baseline: ModelSide = field(default_factory=ModelSide)
    candidate: ModelSide = field(default_factory=ModelSide)
    primary_metric: str | None = None
    notes: list[str] = field(default_factory=list)
    evaluations: dict[str, Any] = field(default_factory=dict)
    gate_config: dict[str, Any] | None = None
    duration_s: float | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def summary(self) -> str:
        """One line: the verdict and the rules that decided it."""
        deciding = [rule for rule in self.rules if rule.status == self.verdict and rule.status != PASS]
        if not deciding:
            return f"{self.verdict}: {len(self.rules)} rules checked, all passed"
        listed = "; ".join(f"{rule.name}: {rule.message}" for rule in deciding[:5])
        more = f" (+{len(deciding) - 5} more)" if len(deciding) > 5 else ""
        return f"{self.verdict}: {listed}{more}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["exit_code"] = self.exit_code
        data["summary"] = self.summary()
        return data


def error_result(message: str, *, component: str = "unknown", rule: str = "gate") -> GateResult:
    """An ERROR verdict for a gate that could not compare at all (missing baseline, crashed evaluation)."""
    return GateResult(
        verdict=ERROR, component=component, rules=[RuleResult(name=rule, status=ERROR, message=message)]
    )


def decide(rules: list[RuleResult]) -> str:
    """ERROR if any rule errored (or there are no rules), else FAIL if any failed, else PASS."""
    if not rules or any(rule.status == ERROR for rule in rules):
        return ERROR
    if any(rule.status == FAIL for rule in rules):
        return FAIL
    return PASS


def compare_reports(
    config: GateConfig,
    baseline: dict,
    candidate: dict,
    *,
    baseline_dir: str | Path | None = None,
    candidate_dir: str | Path | None = None,
) -> GateResult:
    """Apply every rule of `config` to two validated reports and return the verdict with its evidence.

    baseline / candidate: reports as returned by `report.read_report`. *_dir: the report folders
    (debug image paths in `failures` are relative to them).
    """
    result = GateResult(
        verdict=ERROR,
        component=config.component,
        primary_metric=config.primary_metric.name,
        gate_config={**config.rules_dict(), "source": config.source, "rules_hash": config.rules_hash()},
    )
    result.baseline = _side(baseline, baseline_dir)
    result.candidate = _side(candidate, candidate_dir)
    rules = result.rules

    comparable = _check_preconditions(config, baseline, candidate, rules)
    _check_metrics(config, baseline, candidate, result)
    _check_per_class(config, baseline, candidate, result)
    if comparable:
        _check_paired(config, baseline, candidate, result)
        _find_broken_and_fixed(config, baseline, candidate, result, candidate_dir)
    result.classes.sort(
        key=lambda row: (row.delta is None, row.delta if row.delta is not None else 0.0, row.name)
    )
    if result.baseline.weights_sha256 == result.candidate.weights_sha256:
        result.notes.append("the candidate has the same weights (sha256) as the baseline")
    result.verdict = decide(rules)
    return result


def _side(report: dict, report_dir: str | Path | None) -> ModelSide:
    return ModelSide(
        experiment_id=report.get("experiment_id"),
        model_ref=report.get("model", {}).get("ref"),
        weights_sha256=report.get("model", {}).get("weights_sha256"),
        code_commit=report.get("code_commit"),
        report_dir=str(report_dir) if report_dir is not None else None,
    )


def _improvement(baseline: float, candidate: float, direction: str) -> float:
    """How much better the candidate is (negative = worse), whatever the metric's direction."""
    return candidate - baseline if direction == "higher" else baseline - candidate


def _check_preconditions(
    config: GateConfig, baseline: dict, candidate: dict, rules: list[RuleResult]
) -> bool:
    """Same component and dataset on both sides; returns False when per-sample pairing is meaningless."""
    problems = []
    for side, report in (("baseline", baseline), ("candidate", candidate)):
        if report.get("component") != config.component:
            problems.append(
                f"the {side} report is for component {report.get('component')!r}, the gate config for "
                f"{config.component!r}"
            )
    base_hash, cand_hash = baseline["dataset"]["hash"], candidate["dataset"]["hash"]
    if base_hash != cand_hash:
        problems.append(
            f"baseline and candidate were evaluated on different datasets (hash {base_hash[:12]} vs "
            f"{cand_hash[:12]}); evaluate both on the same data"
        )
    base_ids = {sample["id"] for sample in baseline["per_sample"]}
    cand_ids = {sample["id"] for sample in candidate["per_sample"]}
    if base_ids != cand_ids:
        only_base, only_cand = sorted(base_ids - cand_ids), sorted(cand_ids - base_ids)
        problems.append(
            f"the reports list different samples: {len(only_base)} only in the baseline "
            f"({', '.join(only_base[:3])}), {len(only_cand)} only in the candidate "
            f"({', '.join(only_cand[:3])})"
        )
    if problems:
        rules.append(RuleResult(name="comparable", status=ERROR, message="; ".join(problems)))
        return False
    rules.append(RuleResult(name="comparable", status=PASS, message="same component, dataset and samples"))
    return True


def _check_metrics(config: GateConfig, baseline: dict, candidate: dict, result: GateResult) -> None:
    for name, rule in config.metrics.items():
        base_value = baseline["metrics"].get(name)
        cand_value = candidate["metrics"].get(name)
        rule_name = f"metric[{name}]"
        missing = [
            side for side, value in (("baseline", base_value), ("candidate", cand_value)) if value is None
        ]
        if missing:
            message = f"metric {name!r} is missing from the {' and '.join(missing)} report"
            result.rules.append(RuleResult(rule_name, ERROR, message, base_value, cand_value))
            result.metrics.append(MetricRow(name, base_value, cand_value, None, rule.direction, ERROR))
            continue
        delta = cand_value - base_value
        worse_by = -_improvement(base_value, cand_value, rule.direction)
        allowed = rule.tolerance if rule.mode == "absolute" else rule.tolerance * abs(base_value)
        tolerance_text = (
            f"tolerance {rule.tolerance:g}"
            if rule.mode == "absolute"
            else f"tolerance {rule.tolerance:.1%} of baseline = {allowed:.4g}"
        )
        if worse_by > allowed + _SLACK:
            status = FAIL
            message = (
                f"{name} got worse: {base_value:.4f} -> {cand_value:.4f} (delta {delta:+.4f}, "
                f"{rule.direction} is better, {tolerance_text})"
            )
        else:
            status = PASS
            message = (
                f"{name} {base_value:.4f} -> {cand_value:.4f} (delta {delta:+.4f}, within {tolerance_text})"
            )
        result.rules.append(RuleResult(rule_name, status, message, base_value, cand_value, delta))
        result.metrics.append(MetricRow(name, base_value, cand_value, delta, rule.direction, status))
    # Metrics without a rule still appear in the table, for information.
    for name in sorted(set(baseline["metrics"]) | set(candidate["metrics"])):
        if name not in config.metrics:
            base_value, cand_value = baseline["metrics"].get(name), candidate["metrics"].get(name)
            delta = cand_value - base_value if base_value is not None and cand_value is not None else None
            result.metrics.append(MetricRow(name, base_value, cand_value, delta, "higher", "INFO"))


def _class_row(result: GateResult, name: str) -> ClassRow:
    for row in result.classes:
        if row.name == name:
            return row
    row = ClassRow(name=name, baseline=None, candidate=None, delta=None)
    result.classes.append(row)
    return row


def _check_per_class(config: GateConfig, baseline: dict, candidate: dict, result: GateResult) -> None:
    rule = config.per_class
    if rule is None:
        return
    metric = rule.metric
    base_classes, cand_classes = baseline["per_class"], candidate["per_class"]
    if not base_classes and not cand_classes:
        result.rules.append(
            RuleResult(
                "per_class",
                ERROR,
                f"gate.yaml has per_class rules on {metric!r} but neither report has per_class metrics",
            )
        )
        return
    for name in sorted(set(base_classes) | set(cand_classes)):
        base_value = base_classes.get(name, {}).get(metric)
        cand_value = cand_classes.get(name, {}).get(metric)
        row = _class_row(result, name)
        row.baseline, row.candidate = base_value, cand_value
        if base_value is not None and cand_value is not None:
            row.delta = cand_value - base_value
        if cand_value is None:
            where = "has no entry for this class" if name not in cand_classes else f"has no {metric!r}"
            message = f"class {name!r}: the candidate report {where} (the baseline has {base_value})"
            result.rules.append(RuleResult(f"per_class[{name}]", ERROR, message, base_value, None))
            row.failing = True
            row.reasons.append("missing in candidate")
            continue
        if rule.max_drop is not None:
            if base_value is None:
                if name in base_classes:
                    message = f"class {name!r}: the baseline report has no {metric!r} for this class"
                    result.rules.append(
                        RuleResult(f"per_class.max_drop[{name}]", ERROR, message, None, cand_value)
                    )
                    row.failing = True
                    row.reasons.append("missing in baseline")
                # A class the baseline did not have is new: only the floor applies to it.
            else:
                drop = -_improvement(base_value, cand_value, rule.direction)
                if drop > rule.max_drop + _SLACK:
                    status = FAIL
                    message = (
                        f"class {name!r} {metric} dropped {base_value:.4f} -> {cand_value:.4f} "
                        f"({-drop:+.4f}, max_drop {rule.max_drop:g})"
                    )
                    row.failing = True
                    row.reasons.append(f"drop {drop:.3f} > {rule.max_drop:g}")
                else:
                    status = PASS
                    message = f"class {name!r} {metric} {base_value:.4f} -> {cand_value:.4f}"
                result.rules.append(
                    RuleResult(
                        f"per_class.max_drop[{name}]", status, message, base_value, cand_value, row.delta
                    )
                )
        if rule.floor is not None:
            below = (
                cand_value < rule.floor - _SLACK
                if rule.direction == "higher"
                else cand_value > rule.floor + _SLACK
            )
            side = "below" if rule.direction == "higher" else "above"
            if below:
                was = f" (baseline {base_value:.4f})" if base_value is not None else " (new class)"
                message = f"class {name!r} {metric} {cand_value:.4f} is {side} the floor {rule.floor:g}{was}"
                row.failing = True
                row.reasons.append(f"{side} floor {rule.floor:g}")
                status = FAIL
            else:
                message = f"class {name!r} {metric} {cand_value:.4f} meets the floor {rule.floor:g}"
                status = PASS
            result.rules.append(
                RuleResult(f"per_class.floor[{name}]", status, message, base_value, cand_value, row.delta)
            )


@dataclass(frozen=True)
class _PairedScores:
    """Candidate - baseline differences with the video (cluster) of each sample.

    overall [N] and overall_clusters [N]: the primary score; by_class {class: [N_class]} and
    clusters_by_class {class: [N_class]}: the per-class scores of the samples that have that class.
    """

    overall: np.ndarray
    overall_clusters: list[str]
    by_class: dict[str, np.ndarray]
    clusters_by_class: dict[str, list[str]]


def _paired_scores(baseline: dict, candidate: dict) -> _PairedScores:
    """The paired differences, each sample labelled with its video (`stats.cluster_of` of its id).

    Frames of one video are resampled together (issue 15): the ids our components write say which
    video a frame or person belongs to, so no gate.yaml setting is needed.
    """
    cand_by_id = {sample["id"]: sample for sample in candidate["per_sample"]}
    overall: list[float] = []
    overall_clusters: list[str] = []
    by_class: dict[str, list[float]] = {}
    clusters_by_class: dict[str, list[str]] = {}
    for sample in baseline["per_sample"]:
        other = cand_by_id[sample["id"]]
        cluster = stats.cluster_of(sample["id"])
        overall.append(other["score"] - sample["score"])
        overall_clusters.append(cluster)
        for name, value in sample["classes"].items():
            if name in other["classes"]:
                by_class.setdefault(name, []).append(other["classes"][name] - value)
                clusters_by_class.setdefault(name, []).append(cluster)
    return _PairedScores(
        overall=np.asarray(overall, dtype=np.float64),
        overall_clusters=overall_clusters,
        by_class={k: np.asarray(v, dtype=np.float64) for k, v in sorted(by_class.items())},
        clusters_by_class={k: clusters_by_class[k] for k in sorted(clusters_by_class)},
    )


def _sample_phrase(test: stats.BootstrapResult) -> str:
    """'12 samples' or '450 samples in 3 videos (resampled by video)'."""
    if test.clusters == test.n:
        return f"{test.n} samples"
    return f"{test.n} samples in {test.clusters} videos (resampled by video)"


def _check_paired(config: GateConfig, baseline: dict, candidate: dict, result: GateResult) -> None:
    rule = config.paired
    if rule is None:
        return
    if not baseline["per_sample"]:
        message = "gate.yaml has a paired test but the reports have no per_sample scores"
        result.rules.append(RuleResult("paired[score]", ERROR, message))
        return
    scores = _paired_scores(baseline, candidate)
    try:
        test = stats.paired_bootstrap(
            scores.overall,
            margin=rule.margin,
            confidence=rule.confidence,
            resamples=rule.resamples,
            seed=rule.seed,
            clusters=scores.overall_clusters,
        )
    except GateError as error:
        result.rules.append(RuleResult("paired[score]", ERROR, str(error)))
        return
    interval = f"mean {test.mean_difference:+.4f}, {rule.confidence:.0%} lower bound {test.lower:+.4f}"
    on = _sample_phrase(test)
    if test.passed:
        status, message = PASS, f"non-inferior on {on}: {interval} >= -margin {rule.margin:g}"
    else:
        status, message = (
            FAIL,
            f"not shown non-inferior on {on}: {interval} < -margin {rule.margin:g}",
        )
    result.rules.append(RuleResult("paired[score]", status, message, None, None, test.mean_difference))
    result.paired = {**asdict(test), "passed": test.passed}
    if test.clusters < _FEW_SAMPLES:
        unit = "samples" if test.clusters == test.n else "videos"
        result.notes.append(
            f"the paired test has only {test.clusters} {unit}: a bootstrap interval on so few is weak "
            "evidence (evaluate on more videos for a meaningful paired test)"
        )

    if not rule.per_class:
        return
    if not scores.by_class:
        message = "paired.per_class is on but the per_sample entries carry no per-class scores"
        result.rules.append(RuleResult("paired.per_class", ERROR, message))
        return
    class_tests = stats.per_class_tests(
        scores.by_class,
        margin=rule.margin,
        confidence=rule.confidence,
        resamples=rule.resamples,
        seed=rule.seed,
        clusters_by_class=scores.clusters_by_class,
    )
    for class_test in class_tests:
        outcome = class_test.result
        row = _class_row(result, class_test.name)
        row.paired_n = outcome.n
        row.paired_mean = outcome.mean_difference
        row.paired_lower, row.paired_upper = outcome.lower, outcome.upper
        row.paired_adjusted_p = class_test.adjusted_p_value
        detail = (
            f"class {class_test.name!r} on {_sample_phrase(outcome)}: mean {outcome.mean_difference:+.4f}, "
            f"lower bound {outcome.lower:+.4f}, Holm-adjusted p {class_test.adjusted_p_value:.4f} "
            f"(alpha {class_test.alpha:.3g}, margin {rule.margin:g})"
        )
        if class_test.passed:
            status, message = PASS, f"non-inferior: {detail}"
        else:
            status, message = FAIL, f"not shown non-inferior: {detail}"
            row.failing = True
            row.reasons.append("paired test")
        result.rules.append(
            RuleResult(
                f"paired.per_class[{class_test.name}]", status, message, None, None, outcome.mean_difference
            )
        )


def _find_broken_and_fixed(
    config: GateConfig, baseline: dict, candidate: dict, result: GateResult, candidate_dir: str | Path | None
) -> None:
    """Samples whose per-class score crossed `broken_threshold` downwards (broken) or upwards (fixed)."""
    threshold = config.paired.broken_threshold if config.paired else 0.5
    cand_by_id = {sample["id"]: sample for sample in candidate["per_sample"]}
    has_classes = any(sample["classes"] for sample in baseline["per_sample"])
    broken: dict[str, list[str]] = {}
    fixed: dict[str, list[str]] = {}
    for sample in baseline["per_sample"]:
        other = cand_by_id[sample["id"]]
        pairs = (
            [(name, value, other["classes"].get(name)) for name, value in sample["classes"].items()]
            if has_classes
            else [(OVERALL, sample["score"], other["score"])]
        )
        for name, before, after in pairs:
            if after is None:
                continue
            if before >= threshold > after:
                broken.setdefault(name, []).append(sample["id"])
            elif after >= threshold > before:
                fixed.setdefault(name, []).append(sample["id"])
    result.newly_broken = {name: ids for name, ids in sorted(broken.items())}
    result.newly_fixed = {name: ids for name, ids in sorted(fixed.items())}
    for name, ids in broken.items():
        if name != OVERALL:
            _class_row(result, name).newly_broken = ids[:_MAX_LISTED_SAMPLES]
    for name, ids in fixed.items():
        if name != OVERALL:
            _class_row(result, name).newly_fixed = ids[:_MAX_LISTED_SAMPLES]
    broken_pairs = {(sample_id, name) for name, ids in broken.items() for sample_id in ids}
    broken_ids = {sample_id for sample_id, _ in broken_pairs}
    for failure in candidate["failures"]:
        if (failure["sample_id"], failure["class"]) in broken_pairs or (
            failure["sample_id"] in broken_ids and not has_classes
        ):
            entry = dict(failure)
            if failure.get("image") and candidate_dir is not None:
                entry["image_path"] = str(Path(candidate_dir) / failure["image"])
            result.broken_failures.append(entry)
