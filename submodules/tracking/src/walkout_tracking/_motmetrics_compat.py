"""The one place that makes py-motmetrics 1.4.0 work with NumPy 2.

motmetrics 1.4.0 calls `np.asfarray` (in `motmetrics.distances.iou_matrix`), which NumPy 2.0
removed. `ensure_motmetrics_compat()` adds the alias, only if it is missing, with NumPy 1's
semantics (convert to a float64 array, or keep an existing inexact dtype). Every function of ours
that calls motmetrics calls this first, explicitly; nothing is patched at import time.
`tests/test_motmetrics_compat.py` fails when motmetrics no longer needs the shim (remove it then)
or when the shim stops working.
"""

from __future__ import annotations

import numpy as np


def _asfarray(a, dtype=np.float64):
    """NumPy 1.x `asfarray`: `a` as an array of an inexact (float/complex) dtype."""
    if not np.issubdtype(dtype, np.inexact):
        dtype = np.float64
    return np.asarray(a, dtype=dtype)


def ensure_motmetrics_compat() -> bool:
    """Add `np.asfarray` if this NumPy lacks it. Returns True when the alias was added now."""
    if hasattr(np, "asfarray"):
        return False
    np.asfarray = _asfarray
    return True
