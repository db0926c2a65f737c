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


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,1,10,20,30,40,1,1,1", r"duplicate \(frame, id\) = \(1, 1\), already on line 1"),
        ("4,2,10,20,30,40,1,1,1", r"column frame is 4, past the sequence's last frame 3"),
        ("0,2,10,20,30,40,1,1,1", r"column frame must be an integer >= 1"),
        ("2,2,10,20,30,nan,1,1,1", r"column h .*finite"),
        ("2,2,10,20,30,-4,1,1,1", r"column h: negative box size"),
        ("2,2,10,20,-1,4,1,1,1", r"column w: negative box size"),
    ],
)
def test_gt_rows_are_checked_against_the_sequence(tmp_path, line, message):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,20,30,40,1,1,1\n" + line + "\n")
    with pytest.raises(DataError, match=message) as error:
        read_mot_file(path, min_confidence=1, num_frames=3)
    assert f"{path}:2" in str(error.value)


def test_duplicates_are_errors_even_in_rows_not_considered(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("2,5,0,0,10,10,0,1,1\n2,5,3,3,10,10,0,1,1\n")
    with pytest.raises(DataError, match="duplicate"):
        read_mot_file(path, min_confidence=1)


def test_detections_without_identity_may_share_a_frame(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("3,-1,0,0,10,10,0.9\n3,-1,5,5,10,10,0.8\n")
    table = read_mot_file(path, num_frames=3)
    assert table.frames.tolist() == [3, 3]
    # Same-frame detections keep the file's order (the tracker's input order).
    assert table.confidences.tolist() == [0.9, 0.8]


def test_ground_truth_frames_past_seqinfo_length_are_rejected(tmp_path):
    from walkout_tracking.data import read_ground_truth, read_sequence

    sequence = tmp_path / "seq"
    (sequence / "gt").mkdir(parents=True)
    (sequence / "seqinfo.ini").write_text("[Sequence]\nname=seq\nseqLength=2\n")
    (sequence / "gt" / "gt.txt").write_text("1,1,0,0,10,10,1,1,1\n3,1,0,0,10,10,1,1,1\n")
    with pytest.raises(DataError, match=r"gt\.txt:2: column frame is 3, past .* last frame 2"):
        read_ground_truth(read_sequence(sequence))


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
