"""Running a trained detector: model references, the `Detector` wrapper, and prediction on files.

`Detector.detect(images)` takes BGR uint8 frames [H, W, 3] (as OpenCV reads them) and returns one
`Detections` per frame: boxes x1 y1 x2 y2 in pixels, scores, class indices into `class_names`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from tqdm import tqdm

from walkout_detection.atomic import atomic_write_text
from walkout_detection.checkpoint import Checkpoint, load_checkpoint
from walkout_detection.config import EvaluateConfig
from walkout_detection.drawing import class_colour, draw_box
from walkout_detection.errors import CheckpointError, DataError
from walkout_detection.model import CenterNet, Detections, decode, pad_to_multiple

PACKAGE_DIR = Path(__file__).resolve().parents[2]
EXPERIMENTS_DIR = PACKAGE_DIR / "experiments"
PIN_PATH = PACKAGE_DIR / "model_ref.yaml"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov"}


def resolve_weights(ref: str | Path) -> Path:
    """Turn a model reference (experiment id, model_ref.yaml path or checkpoint path) into a verified
    local weights file, through walkout_ci's pins (searching this package's bundled experiments)."""
    from walkout_ci import pins
    from walkout_ci.errors import WalkoutCIError

    try:
        return Path(pins.resolve_model_ref(str(ref), search=[EXPERIMENTS_DIR]))
    except WalkoutCIError as error:
        raise CheckpointError(f"could not resolve model reference {str(ref)!r}: {error}") from error


def select_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Detector:
    """A ready-to-run detector: network (eval mode), class names and decoding settings."""

    def __init__(
        self, *, model: CenterNet, class_names: list[str], settings: EvaluateConfig, device: torch.device
    ) -> None:
        self.model = model.to(device).eval()
        self.class_names = list(class_names)
        self.settings = settings
        self.device = device
        self.experiment_id: str | None = None
        self.weights_path: Path | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint, *, device: torch.device) -> Detector:
        detector = cls(
            model=checkpoint.model,
            class_names=checkpoint.class_names,
            settings=checkpoint.config.evaluate,
            device=device,
        )
        detector.experiment_id = checkpoint.experiment_id
        detector.weights_path = checkpoint.path
        return detector

    @torch.inference_mode()
    def detect(self, images_bgr: list[np.ndarray], *, min_score: float | None = None) -> list[Detections]:
        """Detect objects in BGR uint8 frames [H, W, 3]; frames of one call must share a size."""
        if not images_bgr:
            return []
        shapes = {image.shape for image in images_bgr}
        if len(shapes) > 1:
            return [result for image in images_bgr for result in self.detect([image], min_score=min_score)]
        height, width = images_bgr[0].shape[:2]
        batch = np.stack([cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images_bgr])
        tensor = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        outputs = self.model(pad_to_multiple(tensor))
        return decode(
            outputs,
            max_detections=self.settings.max_detections,
            min_score=self.settings.min_score if min_score is None else min_score,
            image_size=(height, width),
        )


def load_detector(ref: str | Path, *, device: str = "auto") -> Detector:
    """Resolve a model reference and return a ready `Detector` on the chosen device."""
    torch_device = select_device(device)
    checkpoint = load_checkpoint(resolve_weights(ref), map_location=torch_device)
    return Detector.from_checkpoint(checkpoint, device=torch_device)


def detections_to_json(detections: Detections, class_names: list[str]) -> list[dict[str, Any]]:
    """[{"class": name, "score": float, "bbox": [x1, y1, x2, y2]}] with pixel coordinates."""
    return [
        {
            "class": class_names[int(label)],
            "score": round(float(score), 4),
            "bbox": [round(float(v), 2) for v in box],
        }
        for box, score, label in zip(detections.boxes, detections.scores, detections.labels, strict=True)
    ]


def draw_detections(image_bgr: np.ndarray, detections: Detections, class_names: list[str]) -> np.ndarray:
    """A copy of the frame with each detection drawn as a class-coloured box labelled 'name score'."""
    canvas = image_bgr.copy()
    for box, score, label in zip(detections.boxes, detections.scores, detections.labels, strict=True):
        draw_box(canvas, box, class_colour(int(label)), text=f"{class_names[int(label)]} {score:.2f}")
    return canvas


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Image files, videos, and folders (their images, sorted); DataError for anything missing."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            paths.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
                raise DataError(f"{path} is neither an image nor a video (by its suffix {path.suffix!r})")
            paths.append(path)
        else:
            raise DataError(f"input {path} does not exist")
    return paths


def read_video_frames(path: Path) -> Iterator[np.ndarray]:
    """BGR frames of a video file via cv2.VideoCapture; DataError if it cannot be opened."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataError(f"video {path} cannot be opened by OpenCV")
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield frame
    finally:
        capture.release()


def predict_files(
    detector: Detector,
    inputs: list[str | Path],
    *,
    output: Path,
    preview_dir: Path | None = None,
    score_threshold: float | None = None,
    model_ref: str = "",
) -> dict[str, Any]:
    """Detect on images and videos and write the detections JSON (atomically) to `output`.

    JSON: {"model": ref, "class_names": [...], "score_threshold": t, "results": [{"source": path,
    "frame": int | null (1-based for videos), "detections": [{"class", "score", "bbox": [x1, y1, x2, y2]}]}]}.
    preview_dir: annotated copies (<stem>.png for images, <stem>_preview.avi for videos).
    """
    threshold = detector.settings.score_threshold if score_threshold is None else score_threshold
    results: list[dict[str, Any]] = []
    if preview_dir is not None:
        preview_dir.mkdir(parents=True, exist_ok=True)
    for path in tqdm(expand_inputs(inputs), desc="predict", unit="file", leave=False):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            writer = None
            try:
                for frame_number, frame in enumerate(read_video_frames(path), start=1):
                    detections = detector.detect([frame], min_score=threshold)[0]
                    results.append(
                        {
                            "source": str(path),
                            "frame": frame_number,
                            "detections": detections_to_json(detections, detector.class_names),
                        }
                    )
                    if preview_dir is not None:
                        if writer is None:
                            fps = cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) or 10.0
                            writer = cv2.VideoWriter(
                                str(preview_dir / f"{path.stem}_preview.avi"),
                                cv2.VideoWriter_fourcc(*"MJPG"),
                                fps,
                                (frame.shape[1], frame.shape[0]),
                            )
                        writer.write(draw_detections(frame, detections, detector.class_names))
            finally:
                if writer is not None:
                    writer.release()
        else:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"image {path} cannot be decoded")
            detections = detector.detect([image], min_score=threshold)[0]
            results.append(
                {
                    "source": str(path),
                    "frame": None,
                    "detections": detections_to_json(detections, detector.class_names),
                }
            )
            if preview_dir is not None:
                cv2.imwrite(
                    str(preview_dir / f"{path.stem}.png"),
                    draw_detections(image, detections, detector.class_names),
                )
    payload = {
        "model": model_ref,
        "class_names": detector.class_names,
        "score_threshold": threshold,
        "results": results,
    }
    atomic_write_text(output, json.dumps(payload, indent=1))
    return payload
