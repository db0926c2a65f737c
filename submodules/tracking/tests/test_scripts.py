"""scripts/detections_to_mot.py: detector JSON -> MOTChallenge sequences the evaluator reads."""

import importlib.util
import json
from pathlib import Path

from walkout_tracking.data import find_sequences
from walkout_tracking.motchallenge import read_mot_file

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "detections_to_mot.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("detections_to_mot", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_person_detections_become_det_txt(sim_train, tmp_path):
    video = sim_train / "videos" / "train_0000" / "video.avi"
    payload = {
        "results": [
            {
                "source": str(video),
                "frame": 2,
                "detections": [
                    {"class": "person", "score": 0.8, "bbox": [10.0, 20.0, 40.0, 60.0]},
                    {"class": "milk", "score": 0.9, "bbox": [1.0, 1.0, 5.0, 5.0]},
                ],
            }
        ]
    }
    detections = tmp_path / "det.json"
    detections.write_text(json.dumps(payload))
    out = tmp_path / "mot"
    assert (
        _load_script().main(["--detections", str(detections), "--data", str(sim_train), "--out", str(out)])
        == 0
    )
    table = read_mot_file(out / "train_0000" / "det" / "det.txt")
    assert table.frames.tolist() == [2]
    assert table.boxes.tolist() == [[10.0, 20.0, 30.0, 40.0]]
    sequence = find_sequences(out)[0]
    assert sequence.gt_path is not None and sequence.video_path is not None


def test_unknown_video_is_an_error(sim_train, tmp_path):
    detections = tmp_path / "det.json"
    detections.write_text(
        json.dumps({"results": [{"source": "/elsewhere.avi", "frame": 1, "detections": []}]})
    )
    assert (
        _load_script().main(
            ["--detections", str(detections), "--data", str(sim_train), "--out", str(tmp_path)]
        )
        == 2
    )
