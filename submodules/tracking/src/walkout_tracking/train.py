"""Metric-learning training of the appearance embedding with PyTorch-Ignite.

Data: person crops of every ground-truth identity in the training sequences (a simulator export or
MOTChallenge folders with videos). Each batch holds P identities x K crops (P x K sampling); the loss
is the batch-hard triplet loss on cosine distance (Hermans et al. 2017). Validation each epoch:
rank-1 re-identification accuracy among crops of the same validation sequence (the situation the
tracker faces: telling apart the shoppers present in one video). The best epoch is kept.

Logging: TensorBoard (`<out>/tensorboard`), a ClearML experiment through `walkout_ci.experiment`
(parameters, training data manifest, per-epoch scalars, final metrics, the best checkpoint as the
`weights` artifact), and a progress bar.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from collections.abc import Sequence as Sequence_
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from ignite.handlers.tensorboard_logger import TensorboardLogger

from walkout_ci import experiment as ci_experiment
from walkout_ci.blind import refuse_blind
from walkout_ci.datasets import merge_manifests
from walkout_ci.store import atomic_write_json
from walkout_tracking.config import TrackingConfig
from walkout_tracking.data import CropSet, Sequence, extract_crops, find_sequences
from walkout_tracking.errors import DataError
from walkout_tracking.model import build_model, images_to_tensor, save_checkpoint
from walkout_tracking.motchallenge import write_atomic

LOGGER = logging.getLogger("walkout_tracking.train")
PROJECT = "walkout/tracking"
# Validation compares crops at least this many frames apart (1 s at the simulator's 10 fps).
VALIDATION_FRAME_GAP = 10


def batch_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Batch-hard triplet loss on cosine distance.

    embeddings: float [B, D] unit rows; labels: int [B]; groups: int [B] or None. For each anchor:
    hardest positive (largest distance, same label, not itself) and hardest negative (smallest
    distance, other label, and with `groups` the same group: the tracker only ever tells apart the
    shoppers of one video); loss = mean(relu(d_pos - d_neg + margin)) over anchors that have both.
    """
    distance = 1.0 - embeddings @ embeddings.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive_mask = same & ~eye
    negative_mask = ~same
    if groups is not None:
        negative_mask = negative_mask & (groups[:, None] == groups[None, :])
    valid = positive_mask.any(dim=1) & negative_mask.any(dim=1)
    if not bool(valid.any()):
        return embeddings.sum() * 0.0
    hardest_positive = distance.masked_fill(~positive_mask, float("-inf")).max(dim=1).values
    hardest_negative = distance.masked_fill(~negative_mask, float("inf")).min(dim=1).values
    losses = torch.relu(hardest_positive - hardest_negative + margin)
    return losses[valid].mean()


def rank1_accuracy(
    embeddings: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    frames: np.ndarray | None = None,
    min_frame_gap: int = 0,
) -> float:
    """Share of crops whose nearest other crop (cosine) of the same group has the same label.

    embeddings: float [N, D] unit rows; labels, groups, frames: int [N]. Only crops at least
    `min_frame_gap` frames away from the query are candidates (neighbouring frames of one person are
    near-identical and would make the task trivial). Crops with no correct candidate are not
    queries. Returns a value in [0, 1]; NaN if no crop is a query.
    """
    similarity = embeddings @ embeddings.T
    allowed = groups[:, None] == groups[None, :]
    if frames is not None and min_frame_gap > 0:
        allowed &= np.abs(frames[:, None] - frames[None, :]) >= min_frame_gap
    np.fill_diagonal(allowed, False)
    similarity[~allowed] = -np.inf
    same = (labels[:, None] == labels[None, :]) & allowed
    queries = same.any(axis=1)
    if not queries.any():
        return float("nan")
    nearest = similarity.argmax(axis=1)
    return float((labels[nearest] == labels)[queries].mean())


def sample_sequence_pk_batch(
    by_label: list[np.ndarray], label_groups: np.ndarray, rng: np.random.Generator, p: int, k: int
) -> np.ndarray:
    """Indices of one P x K batch whose identities come from as few sequences as possible: sequences
    are drawn at random and all their identities taken (at most P in all, the last sequence's drawn
    at random), so every identity has negatives from its own video. by_label: crop indices of each
    identity; label_groups: int [L] the sequence of each identity."""
    chosen: list[int] = []
    for group in rng.permutation(np.unique(label_groups)):
        members = np.flatnonzero(label_groups == group)
        chosen += rng.permutation(members)[: p - len(chosen)].tolist()
        if len(chosen) >= p:
            break
    picks = [rng.choice(by_label[i], size=k, replace=len(by_label[i]) < k) for i in chosen]
    return np.concatenate(picks)


def sample_pk_batch(by_label: list[np.ndarray], rng: np.random.Generator, p: int, k: int) -> np.ndarray:
    """Indices of one P x K batch: P distinct identities (fewer if fewer exist), K crops each (with
    replacement when an identity has fewer than K crops). by_label: crop indices of each identity."""
    chosen = rng.choice(len(by_label), size=min(p, len(by_label)), replace=False)
    picks = [rng.choice(by_label[i], size=k, replace=len(by_label[i]) < k) for i in chosen]
    return np.concatenate(picks)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips, 90-degree rotations (top-down people face any direction; square crops only) and
    brightness/contrast jitter (the simulator's lighting drift). images: float [B, 3, H, W] in [0, 1]."""
    batch = images.shape[0]
    flip = torch.rand(batch, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    if images.shape[2] == images.shape[3]:
        turns = torch.randint(0, 4, (batch,), generator=generator)
        images = torch.stack(
            [torch.rot90(img, int(t), dims=(1, 2)) for img, t in zip(images, turns, strict=True)]
        )
    brightness = 0.8 + 0.4 * torch.rand(batch, 1, 1, 1, generator=generator)
    return (images * brightness).clamp_(0.0, 1.0)


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    margin: float,
    scaler: torch.amp.GradScaler | None,
    groups: torch.Tensor | None = None,
) -> float:
    """One optimisation step on one P x K batch; returns the loss value."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    device_type = images.device.type
    with torch.autocast(device_type=device_type, enabled=scaler is not None):
        embeddings = model(images)
    loss = batch_hard_triplet_loss(embeddings.float(), labels, margin, groups)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return float(loss.item())


@torch.inference_mode()
def embed_crops(
    model: torch.nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 256
) -> np.ndarray:
    """Embeddings of uint8 crops [N, H, W, 3] -> float32 [N, D]."""
    model.eval()
    chunks = [
        model(images_to_tensor(images[start : start + batch_size]).to(device)).float().cpu().numpy()
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, 1), dtype=np.float32)


def split_sequences(
    sequences: list[Sequence], fraction: float, seed: int
) -> tuple[list[Sequence], list[Sequence]]:
    """Hold out whole sequences for validation (at least one when there are two or more)."""
    if len(sequences) < 2 or fraction <= 0:
        return sequences, []
    count = min(len(sequences) - 1, max(1, round(len(sequences) * fraction)))
    order = np.random.default_rng(seed).permutation(len(sequences))
    held = set(order[:count].tolist())
    train = [s for i, s in enumerate(sequences) if i not in held]
    val = [s for i, s in enumerate(sequences) if i in held]
    return train, val


def training_manifest(data_dirs: list[Path], out_dir: Path) -> Path | None:
    """The manifest that records what the model was trained on: the folder's own manifest.json, or
    for several folders their manifests joined (walkout_ci.datasets.merge_manifests) and written to
    `<out_dir>/training_manifest.json`. None when no folder has one (MOTChallenge data); a DataError
    when only some do (the record would be incomplete)."""
    having = [folder for folder in data_dirs if (folder / "manifest.json").is_file()]
    if not having:
        return None
    if len(having) != len(data_dirs):
        missing = ", ".join(str(folder) for folder in data_dirs if folder not in having)
        raise DataError(
            f"{missing}: no manifest.json, while the other training folders have one; train on "
            "simulator exports only, or on MOTChallenge folders only"
        )
    if len(data_dirs) == 1:
        return data_dirs[0] / "manifest.json"
    path = out_dir / "training_manifest.json"
    atomic_write_json(path, merge_manifests(data_dirs))
    return path


def resolve_device(name: str) -> torch.device:
    """'cpu' | 'cuda' | 'auto' (CUDA when available) -> torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("train.device is 'cuda' but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device(name)


@dataclass(frozen=True)
class TrainResult:
    """Where training put things and how the best epoch scored."""

    best_checkpoint: Path
    last_checkpoint: Path
    experiment_id: str
    best_epoch: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {
            "experiment_id": self.experiment_id,
            "best_checkpoint": str(self.best_checkpoint),
            "last_checkpoint": str(self.last_checkpoint),
            "best_epoch": self.best_epoch,
            "metrics": self.metrics,
        }


class _Batches:
    """Endless P x K batches for Ignite (`epoch_length` bounds each epoch)."""

    def __init__(self, crops: CropSet, config: TrackingConfig, device: torch.device) -> None:
        cfg = config.train
        labels = crops.labels
        self.by_label = [np.flatnonzero(labels == label) for label in np.unique(labels)]
        self.crops = crops
        self.rng = np.random.default_rng(cfg.seed)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.p = cfg.identities_per_batch
        self.k = cfg.crops_per_identity
        self.device = device
        self.same_sequence = cfg.negatives == "same_sequence"
        self.label_groups = np.array([crops.groups[rows[0]] for rows in self.by_label], dtype=np.int64)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        while True:
            if self.same_sequence:
                index = sample_sequence_pk_batch(self.by_label, self.label_groups, self.rng, self.p, self.k)
            else:
                index = sample_pk_batch(self.by_label, self.rng, self.p, self.k)
            images = augment(images_to_tensor(self.crops.images[index]), self.generator)
            labels = torch.from_numpy(self.crops.labels[index])
            groups = None
            if self.same_sequence:
                groups = torch.from_numpy(self.crops.groups[index]).to(self.device)
            yield images.to(self.device), labels.to(self.device), groups


def train(
    *,
    config: TrackingConfig,
    data_dir: str | Path | Sequence_[str | Path],
    out_dir: str | Path,
    val_dir: str | Path | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Train the appearance model on `data_dir` (one folder or several, e.g. simulator parts; each is
    refused if it is the blind set); write `<out_dir>/best.pt`, `<out_dir>/last.pt` and
    `<out_dir>/tensorboard/`; record a ClearML experiment with the training data's manifest (several
    folders: their manifests joined, `<out_dir>/training_manifest.json`)."""
    cfg = config.train
    data_dirs = [Path(data_dir)] if isinstance(data_dir, str | Path) else [Path(d) for d in data_dir]
    if not data_dirs:
        raise DataError("no training data: give at least one --data folder")
    out_dir = Path(out_dir)
    for folder in data_dirs:
        refuse_blind(folder)
    if val_dir is not None:
        refuse_blind(val_dir)
    # Before the slow crop extraction: a training record that would miss frames is refused up front.
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = training_manifest(data_dirs, out_dir)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    use_amp = device.type == "cuda"

    sequences = [sequence for folder in data_dirs for sequence in find_sequences(folder)]
    if val_dir is not None:
        train_sequences, val_sequences = sequences, find_sequences(val_dir)
    else:
        train_sequences, val_sequences = split_sequences(sequences, cfg.validation_fraction, cfg.seed)
    crop_args = {
        "height": config.model.crop_height,
        "width": config.model.crop_width,
        "max_per_identity": cfg.max_crops_per_identity,
        "min_box_height": cfg.min_box_height,
        "seed": cfg.seed,
    }
    train_crops = extract_crops(train_sequences, **crop_args, box_jitter=cfg.box_jitter)
    val_crops = extract_crops(val_sequences, **crop_args) if val_sequences else train_crops
    if len(np.unique(train_crops.labels)) < 2:
        raise DataError(
            f"{', '.join(map(str, data_dirs))}: metric learning needs at least 2 identities, found 1"
        )

    model = build_model(config.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=cfg.epochs * cfg.batches_per_epoch
    )
    scaler = torch.amp.GradScaler("cuda") if use_amp else None

    exp = ci_experiment.start(project=PROJECT, name="train-appearance", params=config.to_dict())
    if manifest is not None:
        exp.set_training_data(manifest)
    tensorboard = TensorboardLogger(log_dir=str(out_dir / "tensorboard"))
    best = {"rank1": -1.0, "epoch": 0}
    best_path = out_dir / "best.pt"
    last_path = out_dir / "last.pt"

    def step(engine: Engine, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]) -> float:
        images, labels, groups = batch
        loss = train_step(model, optimizer, images, labels, margin=cfg.margin, scaler=scaler, groups=groups)
        scheduler.step()
        return loss

    trainer = Engine(step)
    if show_progress:
        ProgressBar(persist=False).attach(trainer, output_transform=lambda loss: {"loss": loss})

    @trainer.on(Events.ITERATION_COMPLETED(every=10))
    def _log_loss(engine: Engine) -> None:
        tensorboard.writer.add_scalar("train/loss", engine.state.output, engine.state.iteration)
        exp.log_scalar("loss", "train", engine.state.output, engine.state.iteration)

    @trainer.on(Events.EPOCH_COMPLETED)
    def _validate(engine: Engine) -> None:
        embeddings = embed_crops(model, val_crops.images, device)
        rank1 = rank1_accuracy(
            embeddings,
            val_crops.labels,
            val_crops.groups,
            val_crops.frames,
            min_frame_gap=VALIDATION_FRAME_GAP,
        )
        epoch = engine.state.epoch
        tensorboard.writer.add_scalar("val/rank1", rank1, epoch)
        exp.log_scalar("rank1", "val", rank1, epoch)
        LOGGER.info("epoch %d: validation rank-1 %.4f", epoch, rank1)
        if rank1 > best["rank1"] or best["epoch"] == 0:
            best.update(rank1=rank1, epoch=epoch)
            save_checkpoint(best_path, model, config, {"val_rank1": rank1, "epoch": epoch})

    started = time.perf_counter()
    try:
        trainer.run(
            _Batches(train_crops, config, device), max_epochs=cfg.epochs, epoch_length=cfg.batches_per_epoch
        )
        save_checkpoint(last_path, model, config, {"epoch": cfg.epochs})
        metrics = {
            "val_rank1": float(best["rank1"]),
            "best_epoch": float(best["epoch"]),
            "train_crops": float(len(train_crops)),
            "train_identities": float(len(np.unique(train_crops.labels))),
            "val_crops": float(len(val_crops)),
            "train_time_s": time.perf_counter() - started,
        }
        exp.upload_weights(best_path, name="weights")
        exp.log_metrics(metrics)
    except BaseException:
        exp.close(status="failed")
        tensorboard.close()
        raise
    exp.close()
    tensorboard.close()
    result = TrainResult(
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        experiment_id=exp.id,
        best_epoch=int(best["epoch"]),
        metrics=metrics,
    )
    write_atomic(out_dir / "train_result.json", json.dumps(result.to_dict(), indent=1) + "\n")
    return result
