import motmetrics
import numpy as np
import pytest

from walkout_tracking._motmetrics_compat import _asfarray, ensure_motmetrics_compat


def test_motmetrics_needs_the_shim_and_works_with_it(monkeypatch):
    """Fails when motmetrics stops needing np.asfarray (then delete the shim) or the shim breaks."""
    monkeypatch.delattr(np, "asfarray", raising=False)
    objs, hyps = [[0, 0, 10, 10]], [[0, 0, 10, 10]]
    with pytest.raises(AttributeError, match="asfarray"):
        motmetrics.distances.iou_matrix(objs, hyps, max_iou=0.5)
    assert ensure_motmetrics_compat() is True
    assert ensure_motmetrics_compat() is False  # idempotent: only adds when missing
    np.testing.assert_allclose(motmetrics.distances.iou_matrix(objs, hyps, max_iou=0.5), [[0.0]])


def test_asfarray_semantics_match_numpy_1():
    assert _asfarray([1, 2]).dtype == np.float64
    assert _asfarray(np.array([1, 2], dtype=np.float32)).dtype == np.float64
    assert _asfarray([1, 2], dtype=np.float32).dtype == np.float32
    assert _asfarray([1, 2], dtype=np.int32).dtype == np.float64
