"""walkout_pose: a top-down shopper pose estimator (7 keypoints, pure PyTorch).

model = walkout_pose.load_production_model()
keypoints = walkout_pose.estimate(model, frame_bgr, boxes_xyxy)  # float32 [N, 7, 3]: x, y, confidence
"""

from walkout_pose.config import KEYPOINT_NAMES
from walkout_pose.predict import estimate, load_model, load_production_model

__all__ = ["KEYPOINT_NAMES", "estimate", "load_model", "load_production_model"]
__version__ = "0.1.0"
