"""Inference: person boxes in a frame -> keypoints in frame pixels.

The API the app calls:

    model = walkout_pose.load_production_model()
    keypoints = walkout_pose.estimate(model, frame_bgr, boxes_xyxy)
    # frame_bgr: uint8 [H, W, 3] BGR; boxes_xyxy: float [N, 4] x1 y1 x2 y2 in frame pixels
    # keypoints: float32 [N, 7, 3]: x, y in frame pixels and a confidence in [0, 1], keypoints in
    #   KEYPOINT_NAMES order (head, left/right shoulder, left/right elbow, left/right wrist)
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional
from tqdm import tqdm

from walkout_pose.config import KEYPOINT_NAMES, ModelConfig, PoseConfig
from walkout_pose.data import read_image
from walkout_pose.errors import CheckpointError, InputError
from walkout_pose.model import PoseNet, load_checkpoint
from walkout_pose.transforms import (
    FLIP_PAIRS,
    apply_affine,
    box_to_crop_region,
    crop_matrix,
    decode_heatmaps,
    heatmap_to_crop,
    invert_affine,
    warp_crop,
)

PACKAGE_DIR = Path(__file__).resolve().parents[2]


def check_frame(frame_bgr: object) -> np.ndarray:
    """The frame as uint8 [H, W, 3]; InputError naming the problem otherwise."""
    if not isinstance(frame_bgr, np.ndarray):
        raise InputError(f"frame must be a numpy uint8 array [H, W, 3] (BGR); got {type(frame_bgr).__name__}")
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.shape[0] < 1 or frame_bgr.shape[1] < 1:
        raise InputError(f"frame must have shape [H, W, 3] (BGR); got {list(frame_bgr.shape)}")
    if frame_bgr.dtype != np.uint8:
        raise InputError(f"frame must be uint8 (as cv2.imread returns it); got {frame_bgr.dtype}")
    return frame_bgr


def check_boxes(boxes_xyxy: object, frame_shape: Sequence[int]) -> np.ndarray:
    """Person boxes as float64 [N, 4]; InputError naming the bad box and why otherwise.

    A box must be finite, have x2 > x1 and y2 > y1, and overlap the frame (a box entirely outside it
    has no pixels to look at: that is a caller bug, not a person).
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(
            f"boxes must be an array [N, 4] of x1 y1 x2 y2 in frame pixels; got shape {list(boxes.shape)}"
        )
    height, width = frame_shape[:2]
    for index, (x1, y1, x2, y2) in enumerate(boxes):
        if not np.isfinite([x1, y1, x2, y2]).all():
            raise InputError(f"box {index} {boxes[index].tolist()} has non-finite coordinates")
        if x2 <= x1 or y2 <= y1:
            raise InputError(
                f"box {index} {boxes[index].tolist()} is empty or inverted; boxes are x1 y1 x2 y2 with "
                "x2 > x1, y2 > y1 (not x y w h)"
            )
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise InputError(
                f"box {index} {boxes[index].tolist()} lies entirely outside the {width}x{height} frame; "
                "pass boxes in the same frame's pixel coordinates"
            )
    return boxes


def crop_persons(
    frame_bgr: np.ndarray, boxes_xyxy: np.ndarray, config: ModelConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Cut every person out of a frame.

    Returns (crops uint8 [N, input_height, input_width, 3], matrices float [N, 2, 3] frame -> crop).
    """
    output_size = (config.input_width, config.input_height)
    aspect = config.input_width / config.input_height
    crops = np.zeros((len(boxes_xyxy), config.input_height, config.input_width, 3), dtype=np.uint8)
    matrices = np.zeros((len(boxes_xyxy), 2, 3))
    for index, box in enumerate(boxes_xyxy):
        center, size = box_to_crop_region(box, aspect=aspect, margin=config.box_margin)
        matrices[index] = crop_matrix(center, size, output_size)
        crops[index] = warp_crop(frame_bgr, matrices[index], output_size)
    return crops, matrices


def model_device(model: torch.nn.Module) -> torch.device:
    """The device the model's weights live on."""
    return next(model.parameters()).device


def flip_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """Mirror heatmaps [B, K, h, w] of a horizontally flipped crop back and swap left/right keypoints.

    Heatmap column j of a flipped crop is column w - 1 - j of the original (see transforms), so the
    mirror is exact.
    """
    order = list(range(heatmaps.shape[1]))
    for left, right in FLIP_PAIRS:
        order[left], order[right] = right, left
    return torch.flip(heatmaps, dims=[3])[:, order]


def smooth_heatmaps(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-blur every heatmap [B, K, h, w] (same size out).

    The log-parabola refinement of decode_heatmaps is exact for a Gaussian blob; a network's heatmap
    is only roughly one, and blurring it with a Gaussian first (as in DARK, Zhang et al. 2020) keeps
    the peak where it is while making its neighbourhood Gaussian-shaped again.
    """
    if sigma <= 0:
        return heatmaps
    radius = max(1, round(2 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=heatmaps.dtype, device=heatmaps.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = heatmaps.shape[1]
    peak = heatmaps.amax(dim=(2, 3), keepdim=True)
    flat = heatmaps.clamp(min=0)
    flat = functional.conv2d(
        functional.pad(flat, (radius, radius, 0, 0), mode="replicate"),
        kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1),
        groups=channels,
    )
    flat = functional.conv2d(
        functional.pad(flat, (0, 0, radius, radius), mode="replicate"),
        kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1),
        groups=channels,
    )
    # Keep the original peak height: it is the keypoint's confidence.
    return flat * (peak.clamp(min=0) / flat.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6))


def predict_heatmaps(model: PoseNet, batch: torch.Tensor) -> torch.Tensor:
    """Heatmaps float [B, K, h, w] for crops [B, 3, H, W], with the model's inference options applied
    (config.flip_test: average with the mirrored crop's heatmaps; config.decode_blur: smoothing)."""
    heatmaps = model(batch).float()
    if model.config.flip_test:
        heatmaps = 0.5 * (heatmaps + flip_heatmaps(model(torch.flip(batch, dims=[3])).float()))
    return smooth_heatmaps(heatmaps, model.config.decode_blur)


@torch.inference_mode()
def keypoints_from_crops(
    model: PoseNet, crops: np.ndarray, matrices: np.ndarray, *, batch_size: int = 32
) -> np.ndarray:
    """Run the network on crops and map the decoded keypoints back to frame pixels.

    crops: uint8 [N, H, W, 3] BGR. matrices: float [N, 2, 3] frame -> crop.
    Returns float32 [N, K, 3]: x, y (frame pixels), confidence in [0, 1].
    """
    result = np.zeros((len(crops), len(model.keypoint_names), 3), dtype=np.float32)
    if len(crops) == 0:
        return result
    device = model_device(model)
    stride = model.config.heatmap_stride
    for start in range(0, len(crops), batch_size):
        # NHWC uint8 -> an NCHW view with channels-last strides: the layout oneDNN convolutions prefer.
        batch = torch.from_numpy(crops[start : start + batch_size]).permute(0, 3, 1, 2)
        batch = batch.to(device).float().div_(255.0).contiguous(memory_format=torch.channels_last)
        heatmaps = predict_heatmaps(model, batch).cpu().numpy()
        points, confidence = decode_heatmaps(heatmaps)
        crop_points = heatmap_to_crop(points, stride)
        for offset, (person_points, person_confidence) in enumerate(
            zip(crop_points, confidence, strict=True)
        ):
            inverse = invert_affine(matrices[start + offset])
            result[start + offset, :, :2] = apply_affine(person_points, inverse)
            result[start + offset, :, 2] = person_confidence
    return result


def estimate(
    model: PoseNet, frame_bgr: np.ndarray, boxes_xyxy: np.ndarray, *, batch_size: int = 32
) -> np.ndarray:
    """Keypoints of every person box in one frame.

    frame_bgr: uint8 [H, W, 3] BGR. boxes_xyxy: float [N, 4] x1 y1 x2 y2 in frame pixels (N may be 0).
    Returns float32 [N, 7, 3]: x, y in frame pixels and a confidence in [0, 1] for each keypoint, in
    KEYPOINT_NAMES order. Raises InputError for a malformed frame or a bad box (naming its index).
    """
    frame_bgr = check_frame(frame_bgr)
    boxes = check_boxes(boxes_xyxy, frame_bgr.shape)
    if len(boxes) == 0:
        return np.zeros((0, len(KEYPOINT_NAMES), 3), dtype=np.float32)
    crops, matrices = crop_persons(frame_bgr, boxes, model.config)
    model.eval()
    return keypoints_from_crops(model, crops, matrices, batch_size=batch_size)


def predict_frames(
    model: PoseNet,
    frames: Sequence[tuple[Path, np.ndarray]],
    *,
    batch_size: int,
    progress: bool = False,
) -> tuple[np.ndarray, float]:
    """Keypoints for the person boxes of many frames; the one batched inference path of evaluation.

    frames: (image path, boxes float [n, 4] x1 y1 x2 y2 in frame pixels) per frame; each image is read
    once and crops of consecutive frames share a batch of `batch_size`.
    Returns (float32 [N, K, 3] x, y in frame pixels and confidence, N = all boxes in `frames` order;
    seconds spent). Raises DataError for an unreadable image, InputError for a bad box.
    """
    total = sum(len(boxes) for _, boxes in frames)
    result = np.zeros((total, len(model.keypoint_names), 3), dtype=np.float32)
    started = time.perf_counter()
    pending_crops: list[np.ndarray] = []
    pending_matrices: list[np.ndarray] = []
    pending_start = 0
    pending_count = 0

    def flush() -> None:
        nonlocal pending_start, pending_count
        if pending_count:
            result[pending_start : pending_start + pending_count] = keypoints_from_crops(
                model, np.concatenate(pending_crops), np.concatenate(pending_matrices), batch_size=batch_size
            )
            pending_crops.clear()
            pending_matrices.clear()
            pending_start += pending_count
            pending_count = 0

    model.eval()
    for path, boxes in tqdm(frames, desc="pose predict", unit="frame", disable=not progress):
        if len(boxes) == 0:
            continue
        frame = read_image(path)
        crops, matrices = crop_persons(frame, check_boxes(boxes, frame.shape), model.config)
        pending_crops.append(crops)
        pending_matrices.append(matrices)
        pending_count += len(boxes)
        if pending_count >= batch_size:
            flush()
    flush()
    return result, time.perf_counter() - started


def resolve_weights(ref: str | os.PathLike) -> Path:
    """A local checkpoint path for a model reference.

    ref: a checkpoint path, a `model_ref.yaml` path, or a ClearML experiment id (looked up in
    <package>/experiments, then the walkout-ci store), resolved by walkout_ci.pins.resolve_model_ref.
    """
    path = Path(ref)
    if path.is_file() and path.suffix not in (".yaml", ".yml"):
        return path
    from walkout_ci import pins  # imported here: plain checkpoint paths work without walkout_ci's store
    from walkout_ci.errors import WalkoutCIError

    try:
        return Path(pins.resolve_model_ref(str(ref), search=[PACKAGE_DIR / "experiments"]))
    except WalkoutCIError as error:
        raise CheckpointError(f"cannot resolve model reference {str(ref)!r}: {error}") from error


def load_model(
    ref: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> tuple[PoseNet, PoseConfig, Path]:
    """Load a model from a reference (see resolve_weights).

    Returns (model in eval mode, the checkpoint's config, the local weights path).
    """
    weights = resolve_weights(ref)
    model, config = load_checkpoint(weights, device=device)
    return model, config, weights


def load_production_model(*, device: str | torch.device = "cpu") -> PoseNet:
    """The pinned production model (<package>/model_ref.yaml), in eval mode on `device`.

    Works from a fresh clone with no server: the pinned experiment is exported in <package>/experiments.
    """
    pin = PACKAGE_DIR / "model_ref.yaml"
    if not pin.is_file():
        raise CheckpointError(f"no production pin at {pin}; pin a model with `walkout-ci pin`")
    model, _, _ = load_model(pin, device=device)
    return model
