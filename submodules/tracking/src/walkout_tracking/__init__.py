"""walkout_tracking: the multi-shopper tracker (SORT + appearance embedding + ByteTrack second pass).

    from walkout_tracking import load_production_model
    model = load_production_model()          # the pinned appearance model (model_ref.yaml)
    tracker = model.make_tracker()           # a fresh Tracker per video
    tracks = tracker.update(detections, frame=frame_bgr)   # [N, 5] x1 y1 x2 y2 score -> [M, 5] x1 y1 x2 y2 id

Nothing heavy is imported here: importing the package has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from walkout_tracking.predict import LoadedModel

__version__ = "0.1.0"


def load_production_model(*, device: str = "cpu") -> LoadedModel:
    """The production model pinned in this package's `model_ref.yaml` (resolved through walkout-ci:
    ClearML server, local store, then the bundled `experiments/` export). Raises CheckpointError or
    walkout_ci's PinError when it cannot be resolved."""
    from walkout_tracking.predict import PACKAGE_DIR, load_tracking_model

    return load_tracking_model(str(PACKAGE_DIR / "model_ref.yaml"), device=device)


__all__ = ["__version__", "load_production_model"]
