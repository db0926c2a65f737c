"""End to end through the real CLI, in-process: train -> evaluate -> predict on a tiny simulator export."""

import json

import yaml

from walkout_ci.report import read_report
from walkout_tracking.cli import main
from walkout_tracking.motchallenge import read_mot_file

TINY = {
    "model": {"channels": [8, 16], "embedding_dim": 16},
    "train": {
        "epochs": 2,
        "batches_per_epoch": 2,
        "identities_per_batch": 3,
        "crops_per_identity": 2,
        "max_crops_per_identity": 10,
        "min_box_height": 5,
    },
}


def test_train_evaluate_predict(sim_train, tmp_path, walkout_home, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "train"
    assert (
        main(["train", "--data", str(sim_train), "--config", str(config), "--out", str(out), "--quiet"]) == 0
    )
    summary = json.loads((out / "train_result.json").read_text())
    checkpoint = out / "best.pt"
    assert checkpoint.is_file() and (out / "last.pt").is_file()
    assert any((out / "tensorboard").iterdir())
    assert 0.0 <= summary["metrics"]["val_rank1"] <= 1.0
    record = json.loads(
        (walkout_home / "experiments" / summary["experiment_id"] / "experiment.json").read_text()
    )
    assert record["artifacts"]["weights"]["sha256"]
    assert record["training_data"][0]["split"] == "train"

    report_dir = tmp_path / "report"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(checkpoint),
                "--data",
                str(sim_train),
                "--report-dir",
                str(report_dir),
                "--quiet",
            ]
        )
        == 0
    )
    report = read_report(report_dir / "report.json")
    assert report["component"] == "tracking"
    assert {s["id"] for s in report["per_sample"]} == {"train_0000", "train_0001"}
    for name in ("MOTA", "IDF1", "HOTA", "IDSW", "MT", "ML"):
        assert name in report["metrics"]
    assert report["extra"]["appearance"] is True
    for failure in report["failures"]:
        assert failure["kind"] == "id_switch"
        assert failure["image"] is None or (report_dir / failure["image"]).is_file()
    assert (report_dir / "results" / "train_0000.txt").is_file()

    motion_dir = tmp_path / "motion"
    assert (
        main(
            [
                "evaluate",
                "--model",
                "motion-only",
                "--data",
                str(sim_train),
                "--report-dir",
                str(motion_dir),
                "--quiet",
            ]
        )
        == 0
    )
    assert read_report(motion_dir / "report.json")["extra"]["appearance"] is False

    predictions = tmp_path / "pred"
    assert (
        main(
            [
                "predict",
                "--model",
                str(checkpoint),
                "--data",
                str(sim_train),
                "--out",
                str(predictions),
                "--quiet",
            ]
        )
        == 0
    )
    table = read_mot_file(predictions / "train_0001.txt")
    assert len(table) > 0


def test_bad_inputs_exit_2_with_a_message(tmp_path, capsys, tud_det_path):
    assert (
        main(
            [
                "evaluate",
                "--model",
                "motion-only",
                "--data",
                str(tmp_path / "nope"),
                "--report-dir",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tmp_path / "missing.pt"),
                "--data",
                str(tmp_path),
                "--report-dir",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "missing.pt" in capsys.readouterr().err
    # A sequence whose det.txt has a negative width: the error names file and line.
    sequence = tmp_path / "seq"
    (sequence / "det").mkdir(parents=True)
    (sequence / "det" / "det.txt").write_text("1,-1,10,10,20,40,0.9\n2,-1,10,10,-20,40,0.9\n")
    assert (
        main(
            [
                "predict",
                "--model",
                "motion-only",
                "--data",
                str(sequence),
                "--out",
                str(tmp_path / "p"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "det.txt:2" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.json").exists()


def test_predict_on_real_mot_detections_without_frames(tmp_path, tud_det_path):
    sequence = tmp_path / "TUD-Campus"
    (sequence / "det").mkdir(parents=True)
    (sequence / "det" / "det.txt").write_text(tud_det_path.read_text())
    assert (
        main(
            [
                "predict",
                "--model",
                "motion-only",
                "--data",
                str(sequence),
                "--out",
                str(tmp_path / "p"),
                "--quiet",
            ]
        )
        == 0
    )
    table = read_mot_file(tmp_path / "p" / "TUD-Campus.txt")
    assert table.num_frames == 71 and len(set(table.ids.tolist())) > 5


def test_evaluation_that_cannot_run_fails_closed(tmp_path, capsys):
    """An appearance model on a sequence without frames is an error (exit 2), never a report."""
    from walkout_tracking.config import load_config
    from walkout_tracking.model import build_model, save_checkpoint

    config = load_config({"model": {"channels": [4], "embedding_dim": 4}})
    checkpoint = save_checkpoint(tmp_path / "m.pt", build_model(config.model), config, {})
    sequence = tmp_path / "data" / "seq"
    (sequence / "gt").mkdir(parents=True)
    (sequence / "gt" / "gt.txt").write_text("1,1,10,10,20,40,1,1,1\n2,1,12,10,20,40,1,1,1\n")
    report_dir = tmp_path / "report"
    code = main(
        [
            "evaluate",
            "--model",
            str(checkpoint),
            "--data",
            str(tmp_path / "data"),
            "--report-dir",
            str(report_dir),
        ]
    )
    assert code == 2
    assert "has no frames" in capsys.readouterr().err
    assert not (report_dir / "report.json").exists()


def test_train_on_several_parts_records_their_joined_manifest(sim_train, tmp_path, walkout_home):
    import shutil

    import walkout_sim

    second = tmp_path / "part2"
    walkout_sim.generate_split(second, split="train", videos=2, frames=40, seed=1)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "negatives": "same_sequence"}}))
    out = tmp_path / "train"
    args = ["train", "--data", str(sim_train), "--data", str(second), "--config", str(config)]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "train_result.json").read_text())
    one_part = tmp_path / "one"
    assert (
        main(["train", "--data", str(sim_train), "--config", str(config), "--out", str(one_part), "--quiet"])
        == 0
    )
    alone = json.loads((one_part / "train_result.json").read_text())
    # Crops of both parts' shoppers: more identities than one part has.
    assert summary["metrics"]["train_identities"] > alone["metrics"]["train_identities"]
    joined = json.loads((out / "training_manifest.json").read_text())
    assert len(joined["merged_from"]) == 2 and joined["split"] == "train"
    first_hashes = set(json.loads((sim_train / "manifest.json").read_text())["content_hashes"])
    second_hashes = set(json.loads((second / "manifest.json").read_text())["content_hashes"])
    assert set(joined["content_hashes"]) == first_hashes | second_hashes
    record = json.loads(
        (walkout_home / "experiments" / summary["experiment_id"] / "experiment.json").read_text()
    )
    assert record["training_data"][0]["split"] == "train"

    # A folder without a manifest beside one with it would leave frames out of the record: refused.
    bare = tmp_path / "bare"
    shutil.copytree(second, bare)
    (bare / "manifest.json").unlink()
    bad = ["train", "--data", str(sim_train), "--data", str(bare), "--out", str(tmp_path / "bad"), "--quiet"]
    assert main(bad) == 2
