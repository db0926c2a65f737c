import numpy as np
import pytest

from walkout_tracking.errors import DataError
from walkout_tracking.motchallenge import (
    detections_per_frame,
    read_mot_file,
    tracks_to_table,
    write_mot_results,
)


def test_read_det_file_and_split_per_frame(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n3,-1,0,0,5,5,0.5,-1,-1,-1\n\n1,-1,1,2,3,4,0.8\n")
    table = read_mot_file(path)
    assert table.frames.tolist() == [1, 1, 3] and table.num_frames == 3
    frames = detections_per_frame(table, num_frames=4)
    assert [len(f) for f in frames] == [2, 0, 1, 0]
    np.testing.assert_allclose(frames[0][0], [10, 20, 40, 60, 0.9])


def test_gt_min_confidence_filters_rows(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,0,0,10,10,1,1,1\n1,2,0,0,10,10,0,1,1\n")
    assert read_mot_file(path, min_confidence=1).ids.tolist() == [1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,-1,10,20,30", "at least 7"),
        ("1,-1,10,abc,30,40,0.9", "column y"),
        ("1,-1,10,20,-30,40,0.9", "negative box size"),
        ("0,-1,10,20,30,40,0.9", "frame must be an integer >= 1"),
        ("1.5,-1,10,20,30,40,0.9", "frame must be an integer"),
        ("1,-1,10,20,nan,40,0.9", "finite"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,20,30,40,0.9,-1,-1,-1\n" + line + "\n")
    with pytest.raises(DataError, match=message) as error:
        read_mot_file(path)
    assert f"{path}:2" in str(error.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_mot_file(tmp_path / "nope.txt")


def test_results_round_trip(tmp_path):
    tracks = [np.array([[10.0, 20.0, 40.0, 60.0, 2.0], [0.0, 0.0, 5.0, 5.0, 1.0]]), np.empty((0, 5))]
    table = tracks_to_table(tracks)
    path = write_mot_results(tmp_path / "out" / "seq.txt", table)
    assert path.read_text().splitlines()[0] == "1,1,0.00,0.00,5.00,5.00,1,-1,-1,-1"
    again = read_mot_file(path)
    assert again.ids.tolist() == [1, 2]
    np.testing.assert_allclose(again.boxes[1], [10, 20, 30, 40])
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["seq.txt"]
