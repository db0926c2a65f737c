"""Render a GateResult: Markdown PR comment, self-contained HTML, JUnit XML and the JSON verdict.

- report.md: verdict, experiment links, metric table (baseline / candidate / delta), paired test with
  its confidence interval, per-class table sorted by delta (failing rows marked), newly broken / fixed
  samples, every rule. Always under `MARKDOWN_LIMIT` characters (GitHub's comment limit is 65,536):
  long tables are cut with a note saying how many rows were left out.
- report.html: the same content, a per-class delta chart (inline SVG) and a gallery of the debug
  images of newly broken samples, base64-embedded so the file stands alone as a CI artifact.
- junit.xml: one test case per rule (FAIL -> <failure>, ERROR -> <error>), so any CI lists them.
- verdict.json: `GateResult.to_dict()`.

Every value that comes from a report or a config (class and metric names, notes, messages, model
refs, ids, links) is untrusted: in report.md it is escaped as literal text (`md_escape`) or shown
as a code span (`_md_code`), link destinations are percent-encoded; in report.html it is
HTML-escaped. Debug images are embedded only when they are regular files inside the candidate's
report folder with no symlink on the way (`_report_image`); others are skipped with a note.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import stat
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from urllib.parse import quote

from walkout_ci.gate import ERROR, FAIL, PASS, ClassRow, GateResult, ModelSide
from walkout_ci.report import atomic_write_text

MARKDOWN_LIMIT = 60_000
_ICONS = {PASS: "✅", FAIL: "❌", ERROR: "⛔", "INFO": "ℹ️"}
_MAX_CLASS_ROWS = 200
_MAX_RULE_ROWS = 300
_MAX_LISTED_IDS = 10
_MAX_GALLERY_IMAGES = 60
_MAX_IMAGE_BYTES = 2_000_000
# The whole gallery stays a loadable page / CI artifact.
_MAX_GALLERY_BYTES = 25_000_000
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}


def write_outputs(result: GateResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write report.md, report.html, junit.xml and verdict.json into `out_dir` (atomically each)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "markdown": atomic_write_text(out_dir / "report.md", render_markdown(result)),
        "html": atomic_write_text(out_dir / "report.html", render_html(result)),
        "junit": atomic_write_text(out_dir / "junit.xml", render_junit(result)),
        "verdict": atomic_write_text(out_dir / "verdict.json", render_json(result)),
    }


def render_json(result: GateResult) -> str:
    """The verdict.json text."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _delta(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


# Characters that start Markdown / HTML syntax anywhere in a line (emphasis, links, images, code,
# raw HTML, entities, table cells, strikethrough, autolinks of URLs and e-mail addresses).
_MD_SPECIAL = re.compile(r"([\\`*{}\[\]()#!|~:@\"])")
# "_" is emphasis only at a word boundary (sku_03 is safe, _x_ is not).
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MD_WWW = re.compile(r"(?i)(www)\.")
# At the start of a line these begin a list, heading or quote.
_MD_LINE_START = re.compile(r"^(\s*)([-+=])")
_MD_ORDERED = re.compile(r"^(\s*\d+)\.")
_URL_SAFE = "/:?#@!$&'*+,;=%-._~"


def _one_line(value: object) -> str:
    return re.sub(r"[\r\n\t\v\f]+", " ", str(value))


def md_escape(text: object) -> str:
    """Untrusted text (class / metric names, messages, notes, ids) as literal Markdown text.

    Every character that could start Markdown or HTML syntax is backslash-escaped, so `**PASS**`,
    `[x](http://evil)`, `<img src=x>` or a bare URL render as the characters themselves; newlines
    become spaces (a value never ends its table row or starts a new block).
    """
    # Entities, not backslashes, for raw HTML: every Markdown dialect decodes them as text.
    text = _one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    text = _MD_WWW.sub(r"\1\\.", text)
    text = _MD_LINE_START.sub(lambda match: match.group(1) + "\\" + match.group(2), text)
    return _MD_ORDERED.sub(lambda match: match.group(1) + "\\.", text)


def _md_code(value: object, *, in_table: bool = True) -> str:
    """Untrusted text as a Markdown code span (shown verbatim: no emphasis, links or HTML inside).

    In a table `|` is escaped (GFM splits cells on it even inside code spans). A value with `<`,
    `>`, `&` or a backtick becomes `<code>` + escaped text instead: a backtick could close the span,
    and some renderers (and GitHub inside an HTML block) would see raw HTML such as `</details>`.
    """
    text = _one_line(value)
    if any(char in text for char in "<>&`"):
        return f"<code>{md_escape(text)}</code>"
    if in_table:
        text = text.replace("|", "\\|")
    # A code span strips one space at each end when both are there; keep the value as it is.
    pad = " " if text.startswith(" ") or text.endswith(" ") or not text else ""
    return f"`{pad}{text}{pad}`"


def _md_url(url: str) -> str:
    """A link destination with every character that could end it or the table cell percent-encoded."""
    return quote(_one_line(url), safe=_URL_SAFE)


def _interval(row: ClassRow) -> str:
    """A class's paired mean difference and its interval, or a dash when it was not tested."""
    if row.paired_mean is None:
        return "–"
    return f"{_delta(row.paired_mean)} [{_delta(row.paired_lower)}, {_delta(row.paired_upper)}]"


def _link_md(side: ModelSide) -> str:
    experiment = side.experiment_id or "(no experiment id)"
    text = _md_code(experiment)
    if side.link and side.link.startswith(("http://", "https://")):
        text = f"[{md_escape(experiment)}]({_md_url(side.link)})"
    elif side.link:
        text += f" (store: {_md_code(side.link)})"
    return text


def _evaluation_md(result: GateResult, which: str, *, markdown: bool = True) -> str:
    """How one side's evaluation was obtained (ran / cached) and its test experiment link."""
    info = result.evaluations.get(which) or {}
    if not info:
        return "–"
    duration = info.get("duration_s", 0)
    duration = duration if isinstance(duration, int | float) else 0
    parts = ["cached" if info.get("from_cache") else f"ran in {duration:.1f} s"]
    link = info.get("experiment_link")
    if link and markdown and str(link).startswith(("http://", "https://")):
        parts.append(f"[test experiment]({_md_url(str(link))})")
    elif link:
        parts.append(f"test experiment {_md_code(link)}" if markdown else f"test experiment {link}")
    return ", ".join(parts)


def _class_line(row: ClassRow, paired: bool) -> str:
    mark = "❌ " if row.failing else ""
    name = f"**{md_escape(row.name)}**" if row.failing else md_escape(row.name)
    cells = [f"{mark}{name}", _number(row.baseline), _number(row.candidate), _delta(row.delta)]
    if paired:
        interval = _interval(row)
        p_value = "–" if row.paired_adjusted_p is None else f"{row.paired_adjusted_p:.3f}"
        cells += [interval, p_value]
    cells += [
        str(len(row.newly_broken)),
        str(len(row.newly_fixed)),
        md_escape(", ".join(row.reasons)) or "–",
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(result: GateResult, *, limit: int = MARKDOWN_LIMIT) -> str:
    """The PR comment; at most `limit` characters.

    When the full comment is too long, the rule list keeps only the rules that did not pass, then the
    text is cut (with a note) as a last resort.
    """
    text = _markdown(result, only_unpassed_rules=False)
    if len(text) > limit:
        text = _markdown(result, only_unpassed_rules=True)
    if len(text) > limit:
        note = "\n\n_(comment truncated to fit the size limit; the full report is in report.html)_\n"
        closing = "\n\n</details>\n"
        # Cut at a line end, so no escape sequence or code span is split (which could turn the rest
        # of a hostile value into live Markdown), and close an open <details>.
        cut = text[: limit - len(note) - len(closing)].rpartition("\n")[0]
        if cut.count("<details>") > cut.count("</details>"):
            note += closing
        text = cut + note
    return text


def _markdown(result: GateResult, *, only_unpassed_rules: bool) -> str:
    lines = [
        f"## {_ICONS[result.verdict]} walkout-ci gate: **{result.verdict}** — "
        f"{_md_code(result.component, in_table=False)}",
        "",
        md_escape(result.summary()),
        "",
    ]
    primary = next((row for row in result.metrics if row.name == result.primary_metric), None)
    if primary is not None:
        lines += [
            f"**Primary metric {md_escape(primary.name)}** ({md_escape(primary.direction)} is better): "
            f"{_number(primary.baseline)} → {_number(primary.candidate)} ({_delta(primary.delta)})",
            "",
        ]
    lines += [
        "| | Baseline (pin at merge-base) | Candidate |",
        "|---|---|---|",
        f"| Experiment | {_link_md(result.baseline)} | {_link_md(result.candidate)} |",
        f"| Model | {_md_code(result.baseline.model_ref or '–')} | "
        f"{_md_code(result.candidate.model_ref or '–')} |",
        f"| Weights sha256 | {_md_code((result.baseline.weights_sha256 or '–')[:12])} | "
        f"{_md_code((result.candidate.weights_sha256 or '–')[:12])} |",
        f"| Code commit | {_md_code((result.baseline.code_commit or '–')[:12])} | "
        f"{_md_code((result.candidate.code_commit or '–')[:12])} |",
        f"| Evaluation | {_evaluation_md(result, 'baseline')} | {_evaluation_md(result, 'candidate')} |",
        "",
    ]
    if result.metrics:
        lines += ["### Metrics", "", "| | Metric | Baseline | Candidate | Delta |", "|---|---|---|---|---|"]
        for row in result.metrics:
            lines.append(
                f"| {_ICONS.get(row.status, '')} | {md_escape(row.name)} | {_number(row.baseline)} | "
                f"{_number(row.candidate)} | {_delta(row.delta)} |"
            )
        lines.append("")
    if result.paired:
        paired = result.paired
        status = PASS if paired["passed"] else FAIL
        two_sided = 2 * paired["confidence"] - 1
        lines += [
            "### Paired test (per-sample score, candidate − baseline)",
            "",
            f"{_ICONS[status]} n = {paired['n']}, mean {_delta(paired['mean_difference'])}, "
            f"{two_sided:.0%} CI [{_delta(paired['lower'])}, {_delta(paired['upper'])}]; "
            f"non-inferior when the {paired['confidence']:.0%} lower bound ≥ −margin "
            f"({-paired['margin']:+.4f}).",
            "",
        ]
    if result.classes:
        paired_columns = any(row.paired_mean is not None for row in result.classes)
        header = "| Class | Baseline | Candidate | Delta |"
        rule = "|---|---|---|---|"
        if paired_columns:
            header += " Paired mean [CI] | Holm p |"
            rule += "---|---|"
        header += " Newly broken | Newly fixed | Failing because |"
        rule += "---|---|---|"
        lines += ["### Per class (sorted by delta, worst first)", "", header, rule]
        rows = result.classes
        shown = [row for row in rows if row.failing][:_MAX_CLASS_ROWS]
        shown += [row for row in rows if not row.failing][: max(0, _MAX_CLASS_ROWS - len(shown))]
        shown.sort(key=rows.index)
        lines += [_class_line(row, paired_columns) for row in shown]
        if len(shown) < len(rows):
            lines.append(f"\n_{len(rows) - len(shown)} passing classes not shown (see report.html)._")
        lines.append("")
    if result.newly_broken or result.newly_fixed:
        lines += ["### Newly broken / newly fixed samples", ""]
        for title, table in (("broken", result.newly_broken), ("fixed", result.newly_fixed)):
            for name, ids in table.items():
                listed = ", ".join(_md_code(sample, in_table=False) for sample in ids[:_MAX_LISTED_IDS])
                more = f" … (+{len(ids) - _MAX_LISTED_IDS})" if len(ids) > _MAX_LISTED_IDS else ""
                lines.append(f"- newly {title} in **{md_escape(name)}** ({len(ids)}): {listed}{more}")
        lines.append("")
    if result.notes:
        lines += ["### Notes", "", *[f"- {md_escape(note)}" for note in result.notes], ""]
    rules = [item for item in result.rules if item.status != PASS] if only_unpassed_rules else result.rules
    title = "Rules that did not pass" if only_unpassed_rules else "All rules"
    lines += [f"<details><summary>{title}</summary>", "", "| | Rule | Result |", "|---|---|---|"]
    for item in rules[:_MAX_RULE_ROWS]:
        lines.append(f"| {_ICONS[item.status]} | {_md_code(item.name)} | {md_escape(item.message)} |")
    if len(rules) > _MAX_RULE_ROWS or len(rules) < len(result.rules):
        lines.append(f"\n_{len(result.rules) - min(len(rules), _MAX_RULE_ROWS)} more rules in junit.xml._")
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def _svg_delta_chart(rows: list[ClassRow]) -> str:
    """Horizontal bars of per-class delta (red = worse, green = better, outlined = failing)."""
    rows = [row for row in rows if row.delta is not None][:_MAX_CLASS_ROWS]
    if not rows:
        return "<p>No per-class deltas to chart.</p>"
    bar_height, label_width, chart_width = 18, 180, 420
    scale = max(abs(row.delta) for row in rows) or 1.0
    middle = label_width + chart_width / 2
    height = bar_height * len(rows) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + chart_width + 80}" height="{height}" '
        'role="img" aria-label="per-class delta chart">',
        f'<line x1="{middle}" y1="0" x2="{middle}" y2="{height - 20}" stroke="#555"/>',
    ]
    for index, row in enumerate(rows):
        y = index * bar_height + 4
        width = abs(row.delta) / scale * (chart_width / 2 - 10)
        x = middle if row.delta >= 0 else middle - width
        color = "#2e7d32" if row.delta >= 0 else "#c62828"
        outline = ' stroke="#000" stroke-width="2"' if row.failing else ""
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 12}" text-anchor="end" font-size="12">'
            f"{html.escape(row.name)}</text>"
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(width, 1):.1f}" height="{bar_height - 4}" '
            f'fill="{color}"{outline}/>'
        )
        text_x = middle + (width + 4 if row.delta >= 0 else -width - 4)
        anchor = "start" if row.delta >= 0 else "end"
        parts.append(
            f'<text x="{text_x:.1f}" y="{y + 12}" text-anchor="{anchor}" font-size="11">'
            f"{row.delta:+.3f}</text>"
        )
    parts.append(
        f'<text x="{middle}" y="{height - 5}" text-anchor="middle" font-size="11">'
        f"delta (candidate − baseline), scale ±{scale:.3f}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _report_image(report_dir: str | None, relative: object) -> Path | None:
    """The debug image `relative` of a report folder, if it is safe to embed; else None.

    A missing file raises FileNotFoundError (reported as missing, not as unsafe).

    Safe: a relative path (no `..`, no backslash) to a regular file inside `report_dir` with no
    symlink on the way (the folder itself may be reached through one). A report written by code
    under review could otherwise make the page embed any file the gate can read (e.g. /etc/passwd).
    """
    if not report_dir or not isinstance(relative, str) or not relative or "\0" in relative:
        return None
    parts = Path(relative).parts
    if Path(relative).is_absolute() or "\\" in relative or ".." in parts:
        return None
    base = Path(report_dir)
    current = base
    try:
        for part in parts:
            current = current / part
            if stat.S_ISLNK(current.lstat().st_mode):
                return None
        if not stat.S_ISREG(current.lstat().st_mode):
            return None
        if not current.resolve().is_relative_to(base.resolve()):
            return None
    except FileNotFoundError:
        raise
    except OSError:
        return None
    return current


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of `path`, opened without following a symlink, if it is a regular file <= limit."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit + 1)[:limit]


def _gallery(result: GateResult) -> str:
    items = []
    skipped = 0
    unsafe = 0
    embedded = 0
    for failure in result.broken_failures:
        relative = failure.get("image")
        if not relative:
            continue
        try:
            image = _report_image(result.candidate.report_dir, relative)
        except FileNotFoundError:
            skipped += 1
            continue
        if image is None:
            unsafe += 1
            continue
        mime = _IMAGE_TYPES.get(image.suffix.lower())
        data = _read_regular(image, _MAX_IMAGE_BYTES) if mime is not None else None
        if data is None or len(items) >= _MAX_GALLERY_IMAGES or embedded + len(data) > _MAX_GALLERY_BYTES:
            skipped += 1
            continue
        embedded += len(data)
        encoded = base64.b64encode(data).decode("ascii")
        caption = (
            f"<b>{html.escape(str(failure['sample_id']))}</b> · {html.escape(str(failure['class']))} · "
            f"{html.escape(str(failure['kind']))}"
            f"<br>expected: {html.escape(json.dumps(failure.get('expected')))}"
            f"<br>predicted: {html.escape(json.dumps(failure.get('predicted')))}"
        )
        items.append(
            f'<figure><img src="data:{mime};base64,{encoded}" alt="">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    if not items:
        note = "No debug images for newly broken samples."
    else:
        note = (
            f"{len(items)} debug images of newly broken samples (expected vs predicted drawn on the frame)."
        )
    if skipped:
        note += f" {skipped} not embedded (missing, too large, unknown type or over the limit)."
    if unsafe:
        note += (
            f" {unsafe} skipped: not a regular file inside the report folder (a symlink, an absolute path "
            "or a path leaving the folder)."
        )
    return f"<p>{note}</p><div class='gallery'>{''.join(items)}</div>"


def _html_table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_link(side: ModelSide) -> str:
    experiment = html.escape(side.experiment_id or "(no experiment id)")
    if side.link and side.link.startswith(("http://", "https://")):
        return f'<a href="{html.escape(side.link)}">{experiment}</a>'
    if side.link:
        return f"{experiment} <small>(store: {html.escape(side.link)})</small>"
    return experiment


def render_html(result: GateResult) -> str:
    """A self-contained HTML page (no external resources)."""
    escape = html.escape
    sections = [
        f"<h1 class='{result.verdict.lower()}'>{_ICONS[result.verdict]} walkout-ci gate: {result.verdict} — "
        f"{escape(result.component)}</h1>",
        f"<p>{escape(result.summary())}</p>",
        _html_table(
            ["", "Baseline (pin at merge-base)", "Candidate"],
            [
                ["Experiment", _html_link(result.baseline), _html_link(result.candidate)],
                [
                    "Model",
                    escape(result.baseline.model_ref or "–"),
                    escape(result.candidate.model_ref or "–"),
                ],
                [
                    "Weights sha256",
                    escape((result.baseline.weights_sha256 or "–")[:12]),
                    escape((result.candidate.weights_sha256 or "–")[:12]),
                ],
                [
                    "Code commit",
                    escape((result.baseline.code_commit or "–")[:12]),
                    escape((result.candidate.code_commit or "–")[:12]),
                ],
                [
                    "Evaluation",
                    escape(_evaluation_md(result, "baseline", markdown=False)),
                    escape(_evaluation_md(result, "candidate", markdown=False)),
                ],
            ],
        ),
    ]
    if result.metrics:
        sections.append("<h2>Metrics</h2>")
        sections.append(
            _html_table(
                ["", "Metric", "Baseline", "Candidate", "Delta"],
                [
                    [
                        _ICONS.get(row.status, ""),
                        escape(row.name),
                        _number(row.baseline),
                        _number(row.candidate),
                        _delta(row.delta),
                    ]
                    for row in result.metrics
                ],
                ["fail" if row.status in (FAIL, ERROR) else "" for row in result.metrics],
            )
        )
    if result.paired:
        paired = result.paired
        sections.append(
            "<h2>Paired test (per-sample score)</h2>"
            f"<p>n = {paired['n']}, mean {_delta(paired['mean_difference'])}, "
            f"{2 * paired['confidence'] - 1:.0%} CI [{_delta(paired['lower'])}, {_delta(paired['upper'])}], "
            f"margin {paired['margin']:g}: "
            f"{'non-inferior' if paired['passed'] else 'NOT shown non-inferior'}</p>"
        )
    if result.classes:
        sections.append("<h2>Per class (sorted by delta)</h2>")
        sections.append(_svg_delta_chart(result.classes))
        sections.append(
            _html_table(
                [
                    "Class",
                    "Baseline",
                    "Candidate",
                    "Delta",
                    "Paired mean [CI]",
                    "Holm p",
                    "Newly broken",
                    "Newly fixed",
                    "Failing because",
                ],
                [
                    [
                        ("❌ " if row.failing else "") + escape(row.name),
                        _number(row.baseline),
                        _number(row.candidate),
                        _delta(row.delta),
                        _interval(row),
                        "–" if row.paired_adjusted_p is None else f"{row.paired_adjusted_p:.3f}",
                        escape(", ".join(row.newly_broken)) or "–",
                        escape(", ".join(row.newly_fixed)) or "–",
                        escape(", ".join(row.reasons)) or "–",
                    ]
                    for row in result.classes
                ],
                ["fail" if row.failing else "" for row in result.classes],
            )
        )
    sections.append("<h2>Newly broken samples: debug images</h2>")
    sections.append(_gallery(result))
    if result.notes:
        sections.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{escape(note)}</li>" for note in result.notes) + "</ul>"
        )
    sections.append("<h2>All rules</h2>")
    sections.append(
        _html_table(
            ["", "Rule", "Result"],
            [[_ICONS[item.status], escape(item.name), escape(item.message)] for item in result.rules],
            ["fail" if item.status != PASS else "" for item in result.rules],
        )
    )
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}tr.fail td{background:#fde0e0}"
        "h1.pass{color:#2e7d32}h1.fail,h1.error{color:#c62828}.gallery{display:flex;flex-wrap:wrap;gap:12px}"
        "figure{margin:0;max-width:340px;font-size:12px}figure img{max-width:340px;border:1px solid #999}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>walkout-ci gate {escape(result.component)}: {result.verdict}</title>"
        f"<style>{style}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def render_junit(result: GateResult) -> str:
    """JUnit XML: one <testcase> per rule; FAIL is a <failure>, ERROR an <error>."""
    failures = sum(item.status == FAIL for item in result.rules)
    errors = sum(item.status == ERROR for item in result.rules)
    suites = ElementTree.Element("testsuites")
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name=f"walkout-ci gate {result.component}",
        tests=str(len(result.rules)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
    )
    for item in result.rules:
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"walkout_ci.gate.{result.component}", name=item.name
        )
        if item.status == FAIL:
            ElementTree.SubElement(
                case, "failure", message=item.message[:500], type="regression"
            ).text = item.message
        elif item.status == ERROR:
            ElementTree.SubElement(
                case, "error", message=item.message[:500], type="could-not-evaluate"
            ).text = item.message
    ElementTree.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
    )
