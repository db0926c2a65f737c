"""Reports meant for people: hostile names render as text; only safe debug images are embedded."""

from __future__ import annotations

import re
from pathlib import Path

import markdown
import pytest

from walkout_ci import render
from walkout_ci.gate import FAIL, ClassRow, GateResult, MetricRow, ModelSide, RuleResult
from walkout_ci.testing import TINY_PNG_HEX

HOSTILE = [
    "**PASS**",
    "[x](http://evil)",
    "<img src=x onerror=alert(1)>",
    "`code` | cell",
    "</details><script>alert(1)</script>",
    "![i](http://evil/i.png)",
    "www.evil.com",
    "_emph_ ~~strike~~ &lt;",
]


def hostile_result(report_dir: Path, images: dict[str, str] | None = None) -> GateResult:
    """A FAIL result whose every free-text field holds hostile Markdown/HTML."""
    name = " ".join(HOSTILE)
    failures = [
        {"sample_id": f"s{index}", "class": name, "kind": "missed", "image": image}
        for index, image in enumerate((images or {}).values())
    ]
    return GateResult(
        verdict=FAIL,
        component="detection",
        rules=[RuleResult(name=f"per_class.max_drop[{name}]", status=FAIL, message=f"{name} dropped")],
        metrics=[
            MetricRow(name=name, baseline=0.9, candidate=0.5, delta=-0.4, direction="higher", status=FAIL)
        ],
        classes=[
            ClassRow(
                name=name,
                baseline=0.9,
                candidate=0.5,
                delta=-0.4,
                failing=True,
                reasons=[name],
                newly_broken=["s0"],
            )
        ],
        newly_broken={name: [f"{HOSTILE[3]}`x"]},
        broken_failures=failures,
        baseline=ModelSide(experiment_id=name, model_ref=name, link="https://ok.example/a(b)|c d"),
        candidate=ModelSide(
            experiment_id=name, model_ref=name, code_commit=HOSTILE[3], link=name, report_dir=str(report_dir)
        ),
        primary_metric=name,
        notes=[name, "line one\n# heading?\n- list?"],
        evaluations={"candidate": {"experiment_link": name, "duration_s": 1.0}},
    )


def test_hostile_names_render_as_text_in_markdown(tmp_path: Path) -> None:
    text = render.render_markdown(hostile_result(tmp_path))
    # Hostile text may appear only inside a code span (shown verbatim), never as live Markdown/HTML.
    outside_code = re.sub(r"(`+)(?:(?!\1).)+?\1", "", text)
    for raw in ("**PASS**", "](http://evil)", "<img", "<script", "](http://evil/i.png)", "~~strike"):
        assert raw not in outside_code, raw
    assert outside_code.count("</details>") == 1 and outside_code.count("<details>") == 1
    assert "\n# heading" not in text and "\n- list?" not in text  # a note cannot start a block
    assert "https://ok.example/a%28b%29%7Cc%20d" in text  # link destinations cannot break out
    # Rendered (Python-Markdown with tables): nothing hostile became a link, image, script or bold.
    page = markdown.markdown(text, extensions=["tables"])
    assert "http://evil" not in re.findall(r'href="([^"]*)"', page)
    assert not re.search(r"<(img|script)\b", page)
    assert "<strong>PASS</strong>" not in page and "<em>emph</em>" not in page
    assert "**PASS**" in page and "[x](http" in page  # shown as the characters themselves


def test_table_rows_keep_their_cells(tmp_path: Path) -> None:
    text = render.render_markdown(hostile_result(tmp_path))
    rows = [line for line in text.splitlines() if line.startswith("| ❌ ") and "dropped" in line]
    assert len(rows) == 1
    # Every "|" of the hostile value is escaped: the row still has exactly the rules table's 3 cells.
    assert len(re.findall(r"(?<!\\)\|", rows[0])) == 4


def test_hostile_names_are_escaped_in_html(tmp_path: Path) -> None:
    page = render.render_html(hostile_result(tmp_path))
    assert not re.search(r"<(img|script)\b(?![^>]*data:image)", page)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="http://evil' not in page


def test_only_regular_files_inside_the_report_folder_are_embedded(tmp_path: Path) -> None:
    report = tmp_path / "report"
    (report / "images").mkdir(parents=True)
    (report / "images" / "ok.png").write_bytes(bytes.fromhex(TINY_PNG_HEX))
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"SECRET-BYTES")
    (report / "images" / "passwd.png").symlink_to("/etc/passwd")
    (report / "images" / "secret.png").symlink_to(secret)
    (report / "linked").symlink_to(tmp_path, target_is_directory=True)
    images = {
        "ok": "images/ok.png",
        "symlink": "images/passwd.png",
        "symlink_png": "images/secret.png",
        "symlinked_folder": "linked/secret.png",
        "dotdot": "../secret.png",
        "absolute": str(secret),
        "missing": "images/missing.png",
    }
    page = render.render_html(hostile_result(report, images))
    assert page.count("data:image/png;base64,") == 1
    assert "U0VDUkVU" not in page  # base64 of "SECRET"
    assert "5 skipped: not a regular file inside the report folder" in page
    assert "1 not embedded (missing" in page


@pytest.mark.parametrize("limit", [2_000, 5_000])
def test_a_truncated_comment_cuts_at_a_line_and_closes_details(tmp_path: Path, limit: int) -> None:
    result = hostile_result(tmp_path)
    result.rules = result.rules * 200
    text = render.render_markdown(result, limit=limit)
    assert len(text) <= limit and "comment truncated" in text
    assert text.count("<details>") == text.count("</details>")
