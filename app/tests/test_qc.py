"""System QC end to end in oracle mode: the report contract, debug sheets, and fail-closed errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from walkout.cli import main
from walkout_ci.report import read_report


def _split(tmp_path: Path, rendered: dict[str, Path], names: list[str]) -> Path:
    """A split folder holding copies of some rendered scenario videos."""
    root = tmp_path / "split"
    for name in names:
        shutil.copytree(rendered[name] / "videos" / name, root / "videos" / name)
    return root


def test_oracle_qc_writes_a_valid_perfect_report(tmp_path, rendered_scenarios, capsys):
    split = _split(tmp_path, rendered_scenarios, ["single_pick", "two_at_one_shelf", "put_back_other_slot"])
    report_dir = tmp_path / "report"
    assert (
        main(["qc", "--oracle", "--videos", str(split), "--report-dir", str(report_dir), "--jobs", "2"]) == 0
    )
    report = read_report(report_dir)  # walkout-ci's own validator
    assert report["component"] == "app"
    metrics = report["metrics"]
    assert metrics["receipt_exact_match"] == 1.0
    assert metrics["item_f1"] == 1.0
    assert metrics["false_charges_per_100"] == 0.0
    assert metrics["missed_items_per_100"] == 0.0
    assert metrics["event_f1"] == 1.0
    assert metrics["shoppers"] == 4
    assert {s["id"] for s in report["per_sample"]} == {
        "single_pick",
        "two_at_one_shelf",
        "put_back_other_slot",
    }
    assert all(s["score"] == 1.0 for s in report["per_sample"])
    assert "apple" in report["per_class"]
    assert report["failures"] == []
    assert (report_dir / "videos" / "single_pick.json").is_file()
    # how much of the metrics the video's end is: nothing here (every shopper walked out in time)
    assert report["extra"]["video_end"] == {
        "wrong_receipts": 0,
        "false_charges": 0,
        "missed_items": 0,
        "issued_as_carried": 0,
        "false_charges_per_100": 0.0,
        "missed_items_per_100": 0.0,
    }
    assert "video_end_false_charges_per_100: 0.0000" in capsys.readouterr().out


def test_a_wrong_receipt_becomes_a_failure_with_a_contact_sheet(tmp_path, rendered_scenarios):
    split = _split(tmp_path, rendered_scenarios, ["single_pick"])
    receipts_path = split / "videos" / "single_pick" / "receipts.json"
    truth = json.loads(receipts_path.read_text())
    shopper = next(iter(truth))
    truth[shopper] = {**truth[shopper], "truffle": 1}  # the truth now says a truffle was taken too
    receipts_path.write_text(json.dumps(truth))
    report_dir = tmp_path / "report"
    assert (
        main(["qc", "--oracle", "--videos", str(split), "--report-dir", str(report_dir), "--jobs", "1"]) == 0
    )
    report = read_report(report_dir)
    assert report["metrics"]["receipt_exact_match"] == 0.0
    assert report["metrics"]["missed_items_per_100"] == 100.0
    [failure] = report["failures"]
    assert failure["kind"] == "missed_item" and failure["class"] == "truffle"
    image = report_dir / failure["image"]
    assert image.is_file() and image.stat().st_size > 1000
    assert report["per_sample"][0]["classes"]["truffle"] == 0.0


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_video_makes_qc_an_error_without_a_report(tmp_path, rendered_scenarios, damage, capsys):
    split = _split(tmp_path, rendered_scenarios, ["single_pick", "rare_sku"])
    video = split / "videos" / "rare_sku" / "video.avi"
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a video" * 100)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.json").write_text("{}")  # a stale report must not survive
    assert (
        main(["qc", "--oracle", "--videos", str(split), "--report-dir", str(report_dir), "--jobs", "2"]) == 2
    )
    assert not (report_dir / "report.json").exists()
    errors = json.loads((report_dir / "errors.json").read_text())
    assert errors["verdict"] == "ERROR" and list(errors["errors"]) == ["rare_sku"]
    assert "rare_sku" in capsys.readouterr().err


def test_qc_on_a_missing_folder_exits_2(tmp_path, capsys):
    code = main(["qc", "--oracle", "--videos", str(tmp_path / "nope"), "--report-dir", str(tmp_path / "r")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_on_a_missing_video_exits_2(tmp_path, capsys):
    code = main(["run", str(tmp_path / "missing.avi"), "--oracle", "--out", str(tmp_path / "out.json")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_oracle_writes_receipts(tmp_path, rendered_scenarios):
    video = rendered_scenarios["pick_then_put_back"] / "videos" / "pick_then_put_back"
    out = tmp_path / "receipts.json"
    assert main(["run", str(video), "--oracle", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["receipts"] == json.loads((video / "receipts.json").read_text())
    assert [e["type"] for e in written["events"]] == ["pick", "put_back"]
