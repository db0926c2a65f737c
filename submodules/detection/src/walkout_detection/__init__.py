"""walkout_detection: a compact CenterNet-style product and person detector, trainable and gated in CI.

`load_production_model()` returns the pinned production `Detector` (see predict.Detector.detect).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from walkout_detection.predict import Detector

__version__ = "0.1.0"


def load_production_model(*, device: str = "auto") -> Detector:
    """The production detector: resolves this package's model_ref.yaml through walkout_ci (server,
    local store, then the bundled experiments/ export) and loads it with weights_only=True."""
    from walkout_detection.predict import PIN_PATH, load_detector

    return load_detector(PIN_PATH, device=device)
