"""Training with PyTorch-Ignite: heatmap regression on augmented person crops.

One run: refuse blind data, split off validation videos (or read --val-data), train with AdamW and a
warmup + cosine learning-rate schedule, validate each epoch (OKS AP through pycocotools on the
validation persons), keep the best checkpoint by validation AP, log to TensorBoard and to a ClearML
experiment (walkout_ci.experiment), upload the best weights to the experiment.

Output folder: best.pt, last.pt (checkpoints, see model.py), config.yaml (the resolved config),
summary.json (best epoch, validation metrics, training time, experiment id), tensorboard/.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from ignite.handlers.tensorboard_logger import OutputHandler, TensorboardLogger
from torch.utils.data import DataLoader, RandomSampler

from walkout_ci import experiment as tracking
from walkout_ci import pins
from walkout_ci.blind import refuse_blind
from walkout_ci.pins import InitialWeights
from walkout_ci.store import atomic_write_text
from walkout_pose.config import PoseConfig, load_config
from walkout_pose.data import (
    KeypointDataset,
    Person,
    PersonCrops,
    load_keypoints_dataset,
    sample_count,
    split_by_video,
    trainable,
)
from walkout_pose.errors import ConfigError, DataError
from walkout_pose.evaluate import compute_metrics, predict_persons
from walkout_pose.model import build_model, load_checkpoint, save_checkpoint
from walkout_pose.predict import PACKAGE_DIR

LOGGER = logging.getLogger("walkout_pose.train")
PROJECT = "walkout/pose"


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run produced."""

    best_checkpoint: Path
    last_checkpoint: Path
    experiment_id: str
    best_epoch: int
    best_metrics: dict[str, float]
    train_seconds: float


def heatmap_loss(predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean squared error between heatmaps.

    predicted, target: float [B, K, h, w]; weights: float [B, K] (0 for unlabelled keypoints).
    """
    squared = (predicted - target) ** 2 * weights[:, :, None, None]
    return squared.mean()


def select_device(name: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cuda" without a GPU is a ConfigError."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    # Third-party code may still draw from NumPy's legacy global generator.
    np.random.seed(seed)
    torch.manual_seed(seed)


def learning_rate_factor(iteration: int, *, warmup: int, total: int) -> float:
    """Linear warmup for `warmup` iterations, then cosine decay to 1% at `total`."""
    if warmup and iteration < warmup:
        return (iteration + 1) / warmup
    progress = min(1.0, (iteration - warmup) / max(1, total - warmup))
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))


def subset(
    dataset: KeypointDataset, persons: list[Person], max_persons: int
) -> tuple[KeypointDataset, list[Person]]:
    """A dataset restricted to the frames of `persons` (whole frames, about `max_persons` persons).

    Whole frames are kept because COCO AP counts every ground-truth person of an evaluated frame;
    frames are taken evenly spaced over the split so that every video is represented.
    """
    count_by_image: dict[int, int] = {}
    for person in persons:
        count_by_image[person.image_id] = count_by_image.get(person.image_id, 0) + 1
    ordered = sorted(count_by_image)
    step = max(1, math.ceil(sum(count_by_image.values()) / max_persons))
    image_ids = ordered[::step]
    keep = set(image_ids)
    coco = dict(dataset.coco)
    coco["images"] = [image for image in dataset.coco["images"] if image["id"] in keep]
    coco["annotations"] = [a for a in dataset.coco["annotations"] if a.get("image_id") in keep]
    kept_persons = [person for person in dataset.persons if person.image_id in keep]
    restricted = KeypointDataset(
        annotation_path=dataset.annotation_path,
        root=dataset.root,
        coco=coco,
        persons=tuple(kept_persons),
        image_paths={key: value for key, value in dataset.image_paths.items() if key in keep},
    )
    return restricted, kept_persons


def _record_training_data(experiment: Any, dataset: KeypointDataset) -> None:
    manifest = dataset.root / "manifest.json"
    if manifest.is_file():
        experiment.set_training_data(manifest)
    else:
        LOGGER.warning(
            "%s has no manifest.json: the experiment cannot record its training frames for the "
            "blind-leakage check",
            dataset.root,
        )


def train(
    *,
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: PoseConfig,
    val_data: str | os.PathLike | None = None,
    experiment_name: str = "train",
    progress: bool = True,
) -> TrainResult:
    """Train a pose model; see the module docstring for what is written to `out_dir`.

    data: a training split (COCO keypoints). val_data: a validation split; without it whole videos
    of `data` are held out (train.val_fraction). Raises BlindSetError (walkout_ci) for a blind split,
    DataError for unusable data, ConfigError for a bad config.
    """
    for folder in (data, val_data):
        if folder is not None:
            refuse_blind(folder)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Checked before the experiment starts: a wrong reference is a config error, not a failed run.
    initial = pins.initial_weights_for(config.train.init_from, None, lambda ref: initial_weights(config))
    exp = tracking.start(project=PROJECT, name=experiment_name, params=config.to_dict())
    try:
        # A cloned experiment (ClearML agent / `walkout-ci clone`) hands its overridden params back.
        config = load_config(exp.params)
        tracked = config
        initial = pins.initial_weights_for(
            tracked.train.init_from, initial, lambda ref: initial_weights(tracked)
        )
        if initial is not None:
            exp.initialize_from(initial.experiment_dir)
        result = _run(
            data=data,
            val_data=val_data,
            out_dir=out_dir,
            config=config,
            initial_state=initial.state_dict if initial is not None else None,
            exp=exp,
            progress=progress,
        )
    except BaseException:
        exp.close(status="failed")
        raise
    exp.close()
    return result


def initial_weights(config: PoseConfig) -> InitialWeights:
    """Load the weights `train.init_from` names (an experiment id or a model_ref.yaml).

    Raises ConfigError naming the reference when it is a bare checkpoint or cannot be found, or when
    its model section differs from this run's; CheckpointError when its weights cannot be loaded.
    """
    ref = config.train.init_from

    def checked_state(weights: Path) -> dict[str, torch.Tensor]:
        model, source_config = load_checkpoint(weights)
        if source_config.model != config.model:
            raise ConfigError(
                f"train.init_from={ref!r} has model {dataclasses.asdict(source_config.model)}, this run "
                f"{dataclasses.asdict(config.model)}: set the model section to the source's, or leave "
                "train.init_from empty to train from scratch"
            )
        return model.state_dict()

    return pins.load_initial_weights(
        ref,
        search=[PACKAGE_DIR / "experiments"],
        key="train.init_from",
        load_state=checked_state,
        error=ConfigError,
    )


def _run(
    *,
    data: str | os.PathLike,
    val_data: str | os.PathLike | None,
    out_dir: Path,
    config: PoseConfig,
    initial_state: dict[str, torch.Tensor] | None,
    exp: Any,
    progress: bool,
) -> TrainResult:
    train_config = config.train
    seed_everything(train_config.seed)
    if train_config.num_threads:
        torch.set_num_threads(train_config.num_threads)
    device = select_device(train_config.device)
    use_amp = train_config.amp and device.type == "cuda"

    dataset = load_keypoints_dataset(data)
    # `data` may name the JSON file itself: check the split folder that holds the manifest too.
    refuse_blind(dataset.root)
    _record_training_data(exp, dataset)
    if val_data is not None:
        val_dataset = load_keypoints_dataset(val_data)
        train_persons = trainable(dataset.persons)
        val_persons = list(val_dataset.persons)
    else:
        train_persons, val_persons = split_by_video(
            dataset.persons, train_config.val_fraction, train_config.seed
        )
        train_persons = trainable(train_persons)
        val_dataset = dataset
    if not train_persons:
        raise DataError(f"{dataset.annotation_path}: no person with a labelled keypoint to train on")
    if not val_persons:
        raise DataError(
            f"no validation persons: pass --val-data or set train.val_fraction > 0 "
            f"(data: {dataset.annotation_path})"
        )
    val_dataset, val_persons = subset(val_dataset, val_persons, train_config.max_val_persons)

    # Channels-last: the memory layout oneDNN convolutions prefer (about 1.3x faster steps on CPU).
    model = build_model(config.model)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_config.learning_rate, weight_decay=train_config.weight_decay
    )
    crops = PersonCrops(
        persons=train_persons,
        model_config=config.model,
        train_config=train_config,
        augment=True,
        seed=train_config.seed,
    )
    generator = torch.Generator().manual_seed(train_config.seed)
    sampler = RandomSampler(
        crops, replacement=False, num_samples=sample_count(len(crops), train_config), generator=generator
    )
    loader = DataLoader(
        crops,
        batch_size=train_config.batch_size,
        sampler=sampler,
        num_workers=train_config.num_workers,
        drop_last=len(sampler) > train_config.batch_size,
        persistent_workers=train_config.num_workers > 0,
        pin_memory=device.type == "cuda",
    )
    total_iterations = max(1, len(loader) * train_config.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: learning_rate_factor(
            step, warmup=train_config.warmup_iterations, total=total_iterations
        ),
    )
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)

    def train_step(engine: Engine, batch: tuple[torch.Tensor, ...]) -> float:
        model.train()
        images, targets, weights = (tensor.to(device, non_blocking=True) for tensor in batch)
        images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=use_amp):
            predicted = model(images)
        loss = heatmap_loss(predicted.float(), targets, weights)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        return float(loss.item())

    trainer = Engine(train_step)
    if progress:
        ProgressBar(persist=False).attach(trainer, output_transform=lambda loss: {"loss": loss})
    tensorboard = TensorboardLogger(log_dir=str(out_dir / "tensorboard"))
    tensorboard.attach(
        trainer,
        log_handler=OutputHandler(tag="train", output_transform=lambda loss: {"loss": loss}),
        event_name=Events.ITERATION_COMPLETED(every=10),
    )
    state: dict[str, Any] = {"best_ap": -1.0, "best_epoch": 0, "best_metrics": {}, "history": []}
    started = time.perf_counter()
    cpu_started = time.process_time()

    @trainer.on(Events.ITERATION_COMPLETED(every=50))
    def log_loss(engine: Engine) -> None:
        exp.log_scalar("loss", "train", engine.state.output, engine.state.iteration)
        exp.log_scalar("learning_rate", "train", optimizer.param_groups[0]["lr"], engine.state.iteration)
        if not progress:
            LOGGER.info(
                "iteration %d/%d: loss %.5f (%.0f s)",
                engine.state.iteration,
                total_iterations,
                engine.state.output,
                time.perf_counter() - started,
            )

    @trainer.on(Events.EPOCH_COMPLETED)
    def validate(engine: Engine) -> None:
        epoch = engine.state.epoch
        with torch.inference_mode():
            predictions, _ = predict_persons(
                model, val_dataset, val_persons, batch_size=config.evaluate.batch_size, progress=False
            )
        metrics = compute_metrics(val_dataset, val_persons, predictions, config.evaluate)["metrics"]
        for name, value in metrics.items():
            tensorboard.writer.add_scalar(f"val/{name}", value, epoch)
            exp.log_scalar(name, "val", value, epoch)
        elapsed = time.perf_counter() - started
        cpu_used = time.process_time() - cpu_started
        state["history"].append({"epoch": epoch, "elapsed_s": elapsed, "cpu_s": cpu_used, **metrics})
        extra = {"epoch": epoch, "val_metrics": metrics, "experiment_id": exp.id}
        save_checkpoint(out_dir / "last.pt", model, config=config, extra=extra)
        if metrics["AP"] > state["best_ap"]:
            state.update(best_ap=metrics["AP"], best_epoch=epoch, best_metrics=metrics)
            save_checkpoint(out_dir / "best.pt", model, config=config, extra=extra)
        LOGGER.info(
            "epoch %d: val AP %.4f wrist PCK@0.1 %.4f (%.0f s wall, %.0f s CPU)",
            epoch,
            metrics["AP"],
            metrics["wrist_PCK@0.1"],
            elapsed,
            cpu_used,
        )
        if train_config.time_limit_s and elapsed >= train_config.time_limit_s:
            LOGGER.warning(
                "time limit of %.0f s reached after epoch %d: stopping", train_config.time_limit_s, epoch
            )
            engine.terminate()
        if train_config.cpu_time_limit_s and cpu_used >= train_config.cpu_time_limit_s:
            LOGGER.warning(
                "CPU time limit of %.0f s reached after epoch %d: stopping",
                train_config.cpu_time_limit_s,
                epoch,
            )
            engine.terminate()

    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    try:
        trainer.run(loader, max_epochs=train_config.epochs)
    finally:
        tensorboard.close()
    train_seconds = time.perf_counter() - started
    train_cpu_seconds = time.process_time() - cpu_started
    best = out_dir / "best.pt"
    exp.upload_weights(best, name="weights")
    exp.log_metrics(
        {
            **{f"val_{k}": v for k, v in state["best_metrics"].items()},
            "train_seconds": train_seconds,
            "train_cpu_seconds": train_cpu_seconds,
        }
    )
    summary = {
        "experiment_id": exp.id,
        "best_epoch": state["best_epoch"],
        "best_val_metrics": state["best_metrics"],
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "load_average_1min_at_end": os.getloadavg()[0],
        "train_persons": len(train_persons),
        "val_persons": len(val_persons),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "history": state["history"],
    }
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return TrainResult(
        best_checkpoint=best,
        last_checkpoint=out_dir / "last.pt",
        experiment_id=exp.id,
        best_epoch=state["best_epoch"],
        best_metrics=state["best_metrics"],
        train_seconds=train_seconds,
    )
