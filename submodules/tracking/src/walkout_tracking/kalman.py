"""The per-track Kalman filter, exactly SORT's constant-velocity model on (centre, area, aspect).

State x [7, 1] = [u, v, s, r, du, dv, ds]: centre x/y (pixels), area (pixels^2), aspect w/h, and
the velocities of the first three (aspect is assumed constant). Measurement z [4, 1] = [u, v, s, r].
The noise settings are SORT's (Bewley et al. 2016) so that motion-only mode is comparable with the
reference tracker.
"""

from __future__ import annotations

import math

import numpy as np
from filterpy.kalman import KalmanFilter

from walkout_tracking.boxes import bbox_to_z, z_to_bbox

STATE_DIM = 7
MEASUREMENT_DIM = 4


def new_box_filter(box: np.ndarray) -> KalmanFilter:
    """A filterpy `KalmanFilter` initialised on one box (x1 y1 x2 y2, array [>=4]), zero velocity."""
    kf = KalmanFilter(dim_x=STATE_DIM, dim_z=MEASUREMENT_DIM)
    kf.F = np.array(
        [
            [1, 0, 0, 0, 1, 0, 0],
            [0, 1, 0, 0, 0, 1, 0],
            [0, 0, 1, 0, 0, 0, 1],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0, 1],
        ],
        dtype=np.float64,
    )
    kf.H = np.eye(MEASUREMENT_DIM, STATE_DIM, dtype=np.float64)
    # Area and aspect are measured much less reliably than the centre.
    kf.R[2:, 2:] *= 10.0
    # The initial velocities are unknown: give them a large uncertainty.
    kf.P[4:, 4:] *= 1000.0
    kf.P *= 10.0
    kf.Q[-1, -1] *= 0.01
    kf.Q[4:, 4:] *= 0.01
    kf.x[:4] = bbox_to_z(box)
    return kf


def predict_box(kf: KalmanFilter) -> np.ndarray:
    """Advance the filter one frame and return the predicted box x1 y1 x2 y2 (array [4]).

    If the area velocity would make the area non-positive, the area velocity is zeroed first (SORT's
    guard): a box that shrinks to nothing is a filter artefact, not a person walking away.
    """
    if kf.x[6, 0] + kf.x[2, 0] <= 0:
        # Copy first: the batched functions share state arrays between x and x_prior/x_post.
        kf.x = kf.x.copy()
        kf.x[6, 0] = 0.0
    kf.predict()
    return z_to_bbox(kf.x)


def update_box(kf: KalmanFilter, box: np.ndarray) -> None:
    """Correct the filter with one observed box (x1 y1 x2 y2, array [>=4])."""
    kf.update(bbox_to_z(box))


def filter_box(kf: KalmanFilter) -> np.ndarray:
    """The filter's current box estimate x1 y1 x2 y2 (array [4])."""
    return z_to_bbox(kf.x)


def predict_boxes(filters: list[KalmanFilter]) -> np.ndarray:
    """Advance many filters one frame at once; returns their predicted boxes, float array [N, 4].

    Numerically the same as calling `predict_box` on each filter (same guard, x = F x,
    P = F P F^T + Q, prior copies kept as filterpy does), but one batched matrix product instead of
    N small ones: per-track filterpy calls dominated the tracker's run time. All filters must come
    from `new_box_filter` (same F and Q) with filterpy's default fading factor alpha = 1.
    """
    if not filters:
        return np.empty((0, 4), dtype=np.float64)
    transition = filters[0].F
    noise = filters[0].Q
    # np.array over the list is markedly cheaper than np.stack for a handful of tiny arrays.
    states = np.array([kf.x for kf in filters])  # [N, 7, 1]
    covariances = np.array([kf.P for kf in filters])  # [N, 7, 7]
    shrinking = states[:, 6, 0] + states[:, 2, 0] <= 0
    states[shrinking, 6, 0] = 0.0
    states = transition @ states
    covariances = transition @ covariances @ transition.T + noise
    # As in update_boxes: the prior shares the (never modified in place) state arrays.
    for index, kf in enumerate(filters):
        kf.x = kf.x_prior = states[index]
        kf.P = kf.P_prior = covariances[index]
    return z_to_boxes(states[:, :4, 0])


def z_to_boxes(measurements: np.ndarray) -> np.ndarray:
    """Vectorised `z_to_bbox`: measurements float array [N, 4] (u, v, s, r) -> boxes [N, 4] x1 y1 x2 y2.

    Rows with a non-positive area or aspect become zero-size boxes at their centre.
    """
    # A plain loop: trackers hold a handful of boxes, where a dozen numpy calls cost more than the math.
    rows = []
    for u, v, area, aspect in np.asarray(measurements)[:, :4].tolist():
        product = area * aspect
        if area > 0 and product > 0:
            width = math.sqrt(product)
            height = area / width
        else:
            width = height = 0.0
        rows.append((u - 0.5 * width, v - 0.5 * height, u + 0.5 * width, v + 0.5 * height))
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def boxes_to_z(boxes: np.ndarray) -> np.ndarray:
    """Vectorised `bbox_to_z`: boxes float array [N, >=4] x1 y1 x2 y2 -> measurements [N, 4, 1]."""
    rows = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64)[:, :4].tolist():
        width = x2 - x1
        height = y2 - y1
        rows.append((x1 + width / 2.0, y1 + height / 2.0, width * height, width / height))
    return np.array(rows, dtype=np.float64).reshape(-1, 4, 1)


def update_boxes(filters: list[KalmanFilter], boxes: np.ndarray) -> np.ndarray:
    """Correct many filters at once, filter i with box i (boxes: float array [N, >=4] x1 y1 x2 y2).

    The same equations and bookkeeping as filterpy's `KalmanFilter.update` (Joseph-form covariance
    update; y, S, SI, K, z, x_post, P_post set; cached likelihoods cleared), batched over filters for
    speed; `tests/test_kalman.py` checks it against `update_box` on every field. Filters must come
    from `new_box_filter` (same H and R). Returns the corrected boxes, float array [N, 4].
    """
    if not filters:
        return np.empty((0, 4), dtype=np.float64)
    measurement = filters[0].H
    noise = filters[0].R
    identity = np.eye(STATE_DIM)
    z = boxes_to_z(boxes)
    states = np.array([kf.x for kf in filters])
    covariances = np.array([kf.P for kf in filters])
    residual = z - measurement @ states
    pht = covariances @ measurement.T
    innovation = measurement @ pht + noise
    innovation_inverse = np.linalg.inv(innovation)
    gain = pht @ innovation_inverse
    states = states + gain @ residual
    i_kh = identity - gain @ measurement
    covariances = i_kh @ covariances @ i_kh.transpose(0, 2, 1) + gain @ noise @ gain.transpose(0, 2, 1)
    # filterpy keeps separate copies in x_post/P_post; nothing here or in filterpy writes these arrays
    # in place (every step builds new ones), so sharing the view is equivalent and cheaper.
    for index, kf in enumerate(filters):
        kf._log_likelihood = None
        kf._likelihood = None
        kf._mahalanobis = None
        kf.y = residual[index]
        kf.S = innovation[index]
        kf.SI = innovation_inverse[index]
        kf.K = gain[index]
        kf.x = states[index]
        kf.P = covariances[index]
        kf.z = z[index]
        kf.x_post = kf.x
        kf.P_post = kf.P
    return z_to_boxes(states[:, :4, 0])
