"""Training with PyTorch-Ignite: focal-loss CenterNet, validation AP each epoch, best-model selection.

A run writes to its output folder: best.pt and last.pt (checkpoints), tensorboard/ (event files),
config.yaml and metrics.json. It is tracked as a ClearML experiment through walkout_ci (offline when
no server is configured), whose id is stored in the checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
import yaml
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from ignite.handlers.tensorboard_logger import OutputHandler, TensorboardLogger
from tqdm import tqdm

from walkout_detection.atomic import atomic_write_text
from walkout_detection.checkpoint import load_checkpoint, save_checkpoint
from walkout_detection.config import DetectionConfig, load_config
from walkout_detection.data import (
    CocoDataset,
    DetectionTrainingSet,
    balanced_sample_weights,
    collate,
    held_sample_weights,
    load_coco,
)
from walkout_detection.errors import ConfigError, DataError
from walkout_detection.evaluate import evaluate_detections, run_detector
from walkout_detection.losses import centernet_loss
from walkout_detection.model import CenterNet
from walkout_detection.predict import (
    EXPERIMENTS_DIR,
    Detector,
    draw_detections,
    select_device,
)

if TYPE_CHECKING:
    from walkout_ci.pins import InitialWeights

PROJECT = "walkout/detection"
# Validation fraction held out of the training set when no separate validation set is given.
HOLDOUT_FRACTION = 0.1


@dataclass
class TrainResult:
    """Outcome of a training run."""

    best_checkpoint: Path
    last_checkpoint: Path
    best_metrics: dict[str, float]
    best_epoch: int
    epochs_run: int
    train_seconds: float
    experiment_id: str | None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so a run is reproducible on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def refuse_blind_data(folder: Path) -> None:
    """Refuse a dataset whose manifest marks it blind (through walkout_ci), as a DataError."""
    from walkout_ci.blind import refuse_blind
    from walkout_ci.errors import WalkoutCIError

    try:
        refuse_blind(folder)
    except WalkoutCIError as error:
        raise DataError(f"refusing to train on {folder}: {error}") from error


def split_holdout(dataset: CocoDataset, fraction: float) -> tuple[CocoDataset, CocoDataset]:
    """Deterministic train/validation split by position (every k-th image goes to validation)."""
    step = max(2, round(1 / fraction))
    # Small sets still hold out their last image, so validation is never empty.
    held = {index for index in range(len(dataset.images)) if index % step == step - 1} or {
        len(dataset.images) - 1
    }
    validation = [record for index, record in enumerate(dataset.images) if index in held]
    training = [record for index, record in enumerate(dataset.images) if index not in held]
    return _subset(dataset, training), _subset(dataset, validation)


def _subset(dataset: CocoDataset, records: list) -> CocoDataset:
    """The dataset restricted to `records` (the COCO dict too, so COCOeval sees the same images)."""
    ids = {record.image_id for record in records}
    coco = dict(dataset.coco)
    coco["images"] = [image for image in dataset.coco["images"] if image["id"] in ids]
    coco["annotations"] = [item for item in dataset.coco["annotations"] if item["image_id"] in ids]
    return CocoDataset(
        json_path=dataset.json_path,
        root=dataset.root,
        class_names=dataset.class_names,
        category_ids=dataset.category_ids,
        images=records,
        coco=coco,
    )


def limit_images(dataset: CocoDataset, count: int) -> CocoDataset:
    """At most `count` images, evenly spaced over the dataset (keeps validation cheap but representative)."""
    if len(dataset) <= count:
        return dataset
    picks = np.linspace(0, len(dataset) - 1, count).round().astype(int)
    return _subset(dataset, [dataset.images[index] for index in sorted(set(picks.tolist()))])


def require_held_products(records: list, held_share: float) -> None:
    """Raise ConfigError when held_share > 0 and no record marks a held product."""
    if held_share > 0 and not any(r.held is not None and r.held.any() for r in records):
        raise ConfigError(
            f"train.held_sampling_share = {held_share} but no training image has a held product "
            "(COCO annotations with `held_by`, as walkout-sim writes them); set it to 0 for this data"
        )


def require_known_classes(crowd_classes: tuple[str, ...], class_names: list[str]) -> None:
    """Raise ConfigError when `train.learn_crowd_classes` names a class the training data does not have."""
    unknown = [name for name in crowd_classes if name not in class_names]
    if unknown:
        raise ConfigError(
            f"train.learn_crowd_classes names {', '.join(map(repr, unknown))}, not a class of the training "
            f"data; its classes are {', '.join(class_names)}"
        )


def selection_key(metrics: dict[str, float], select_metric: str) -> tuple[float, float]:
    """How validation metrics rank checkpoints for best.pt: `select_metric` first, the other of AP50 / AP
    second (a higher tuple is better)."""
    other = "AP" if select_metric == "AP50" else "AP50"
    return (metrics[select_metric], metrics[other])


def make_sampler(
    records: list,
    *,
    num_classes: int,
    balanced: bool,
    samples: int,
    generator: torch.Generator,
    held_share: float = 0.0,
) -> torch.utils.data.Sampler:
    """Class-balanced sampler (inverse frequency of each image's rarest class) or the plain shuffle,
    with a share `held_share` of the draws made by held products instead (`held_sample_weights`).

    Raises ConfigError when held_share > 0 and no image has a held product (a dataset that does not
    mark them: only walkout-sim's COCO export writes `held_by`).
    """
    if held_share > 0:
        require_held_products(records, held_share)
        held = held_sample_weights(records, num_classes)
        if balanced:
            base = balanced_sample_weights(records, num_classes)
        else:
            base = np.full(len(records), 1.0 / len(records))
        weights = torch.as_tensor((1.0 - held_share) * base + held_share * held)
        return torch.utils.data.WeightedRandomSampler(weights, samples, replacement=True, generator=generator)
    if balanced:
        weights = torch.as_tensor(balanced_sample_weights(records, num_classes))
        return torch.utils.data.WeightedRandomSampler(weights, samples, replacement=True, generator=generator)
    return torch.utils.data.RandomSampler(range(len(records)), num_samples=samples, generator=generator)


def learning_rate_factor(iteration: int, *, warmup: int, progress: float) -> float:
    """Linear warm-up over `warmup` iterations, then cosine decay to 5% of the base rate as
    `progress` (fraction of the run done, 0..1) goes to 1."""
    if warmup and iteration < warmup:
        return (iteration + 1) / warmup
    progress = min(1.0, max(0.0, progress))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def run_progress(iteration: int, *, total: int, elapsed_s: float, time_limit_s: float) -> float:
    """Fraction of the run done: by iterations, or by the time budget when that runs out first
    (so a run cut short by its time limit has still annealed its learning rate)."""
    by_iterations = iteration / max(1, total)
    by_time = elapsed_s / time_limit_s if time_limit_s else 0.0
    return max(by_iterations, by_time)


def make_train_step(
    *,
    model: CenterNet,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    use_amp: bool,
    size_weight: float,
    offset_weight: float,
) -> Callable[[Engine, Any], dict[str, float]]:
    """The Ignite step: one optimiser update on a batch (uint8 images, target dict); returns the losses."""

    def step(engine: Engine, batch: tuple[torch.Tensor, dict[str, torch.Tensor]]) -> dict[str, float]:
        model.train()
        images, targets = batch
        images = images.to(device, non_blocking=True).float().div_(255.0)
        targets = {key: value.to(device, non_blocking=True) for key, value in targets.items()}
        with torch.autocast(device_type=device.type, enabled=use_amp):
            outputs = model(images)
        losses = centernet_loss(outputs, targets, size_weight=size_weight, offset_weight=offset_weight)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.unscale_(optimizer)
        # Clipping keeps the early focal-loss spikes from wrecking the BatchNorm statistics.
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        return {key: float(value.detach()) for key, value in losses.items()}

    return step


def train(
    *,
    config: DetectionConfig,
    train_data: Path,
    output_dir: Path,
    val_data: Path | None = None,
    name: str = "train",
    progress: bool = True,
) -> TrainResult:
    """Train a detector on a COCO dataset and return where the best checkpoint is.

    train_data / val_data: dataset folders or COCO JSON files (see data.find_coco_json); without
    val_data, every 10th training image is held out. Blind datasets are refused.
    """
    from walkout_ci import experiment

    train_dataset = load_coco(train_data, learn_crowd=config.train.crowd_class_names())
    refuse_blind_data(train_dataset.root)
    if val_data is not None:
        val_dataset = load_coco(val_data, class_names=train_dataset.class_names)
        refuse_blind_data(val_dataset.root)
    else:
        train_dataset, val_dataset = split_holdout(train_dataset, HOLDOUT_FRACTION)
    if not len(train_dataset) or not len(val_dataset):
        raise DataError(f"training set {train_data} is too small to train and validate on")
    require_held_products(train_dataset.images, config.train.held_sampling_share)
    require_known_classes(config.train.crowd_class_names(), train_dataset.class_names)

    from walkout_ci import pins

    # Checked before the experiment starts: a wrong reference is a config error, not a failed run.
    initial = pins.initial_weights_for(
        config.train.init_from,
        None,
        lambda ref: initial_weights(ref, config=config, class_names=train_dataset.class_names),
    )
    train_dataset_crowd = config.train.crowd_class_names()
    exp = experiment.start(project=PROJECT, name=name, params=config.to_dict())
    try:
        # A cloned experiment (walkout-ci clone) may override parameters: what the tracker hands back wins.
        config = load_config(exp.params)
        tracked = config
        require_known_classes(config.train.crowd_class_names(), train_dataset.class_names)
        if config.train.crowd_class_names() != train_dataset_crowd:
            # The clone learns other crowd classes: read the data again the way it asks for.
            train_dataset = load_coco(train_data, learn_crowd=config.train.crowd_class_names())
            if val_data is None:
                train_dataset, _ = split_holdout(train_dataset, HOLDOUT_FRACTION)
        initial = pins.initial_weights_for(
            config.train.init_from,
            initial,
            lambda ref: initial_weights(ref, config=tracked, class_names=train_dataset.class_names),
        )
        if initial is not None:
            exp.initialize_from(initial.experiment_dir)
        manifest = train_dataset.root / "manifest.json"
        if manifest.is_file():
            exp.set_training_data(manifest)
        result = _train_tracked(
            config=config,
            initial_state=initial.state_dict if initial is not None else None,
            exp=exp,
            train_dataset=train_dataset,
            val_dataset=limit_images(val_dataset, config.train.max_val_images),
            output_dir=output_dir,
            progress=progress,
        )
    except BaseException:
        exp.close(status="failed")
        raise
    exp.close()
    return result


def initial_weights(ref: str, *, config: DetectionConfig, class_names: list[str]) -> InitialWeights:
    """Load the weights `train.init_from` names (an experiment id or a model_ref.yaml).

    Raises ConfigError naming the reference when it is a bare checkpoint or cannot be found, or when
    its network shape or class names differ from this run's (the fix is named: match the model
    section, or train from scratch); CheckpointError when its weights cannot be loaded.
    """
    from walkout_ci import pins

    def checked_state(weights: Path) -> dict[str, torch.Tensor]:
        checkpoint = load_checkpoint(weights)
        if checkpoint.config.model != config.model:
            raise ConfigError(
                f"train.init_from={ref!r} has model {dataclasses.asdict(checkpoint.config.model)}, this run "
                f"{dataclasses.asdict(config.model)}: set the model section to the source's, or leave "
                "train.init_from empty to train from scratch"
            )
        if checkpoint.class_names != list(class_names):
            raise ConfigError(
                f"train.init_from={ref!r} was trained on classes {checkpoint.class_names}, the training set "
                f"has {list(class_names)}: fine-tuning needs the same classes in the same order"
            )
        return checkpoint.model.state_dict()

    return pins.load_initial_weights(
        ref, search=[EXPERIMENTS_DIR], key="train.init_from", load_state=checked_state, error=ConfigError
    )


def _reseed_worker(worker_id: int) -> None:
    """Give each DataLoader worker its own flip sequence (workers start with copies of one generator)."""
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng([int(info.seed) % 2**32, worker_id])


def _train_tracked(
    *,
    config: DetectionConfig,
    initial_state: dict[str, torch.Tensor] | None,
    exp: Any,
    train_dataset: CocoDataset,
    val_dataset: CocoDataset,
    output_dir: Path,
    progress: bool,
) -> TrainResult:
    """The training loop proper, reporting to an already started experiment `exp`; `initial_state`
    (fine-tuning) replaces the random initialisation."""
    settings = config.train
    seed_everything(settings.seed)
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    device = select_device(settings.device)
    use_amp = settings.amp and device.type == "cuda"
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))

    class_names = train_dataset.class_names
    num_classes = len(class_names)
    model = CenterNet.from_config(config.model, num_classes=num_classes)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    model = model.to(device)
    training_set = DetectionTrainingSet(
        dataset=train_dataset, flip_probability=settings.flip_probability, seed=settings.seed
    )
    generator = torch.Generator().manual_seed(settings.seed)
    samples = settings.samples_per_epoch or len(training_set)
    sampler = make_sampler(
        train_dataset.images,
        num_classes=num_classes,
        balanced=settings.balanced_sampling,
        samples=samples,
        generator=generator,
        held_share=settings.held_sampling_share,
    )
    loader = torch.utils.data.DataLoader(
        training_set,
        batch_size=settings.batch_size,
        sampler=sampler,
        collate_fn=collate,
        drop_last=False,
        num_workers=settings.num_workers,
        persistent_workers=settings.num_workers > 0,
        worker_init_fn=_reseed_worker,
        pin_memory=device.type == "cuda",
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    total_iterations = settings.epochs * len(loader)
    began = time.perf_counter()
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda iteration: learning_rate_factor(
            iteration,
            warmup=settings.warmup_iterations,
            progress=run_progress(
                iteration,
                total=total_iterations,
                elapsed_s=time.perf_counter() - began,
                time_limit_s=settings.time_limit_s,
            ),
        ),
    )
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    trainer = Engine(
        make_train_step(
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            device=device,
            use_amp=use_amp,
            size_weight=settings.size_loss_weight,
            offset_weight=settings.offset_loss_weight,
        )
    )
    detector = Detector(model=model, class_names=class_names, settings=config.evaluate, device=device)
    tensorboard = TensorboardLogger(log_dir=str(output_dir / "tensorboard"))
    tensorboard.attach(
        trainer,
        log_handler=OutputHandler(tag="train", output_transform=lambda output: output),
        event_name=Events.ITERATION_COMPLETED(every=10),
    )
    if progress:
        ProgressBar(persist=False).attach(trainer, output_transform=lambda output: {"loss": output["loss"]})

    state: dict[str, Any] = {"best": None, "best_epoch": 0, "validated_epoch": 0, "history": []}
    best_path = output_dir / "best.pt"
    last_path = output_dir / "last.pt"

    def validate(engine: Engine) -> None:
        if state["validated_epoch"] == engine.state.epoch:
            return
        state["validated_epoch"] = engine.state.epoch
        detections, _ = run_detector(detector, val_dataset, progress=False)
        result = evaluate_detections(
            val_dataset,
            detections,
            score_threshold=config.evaluate.score_threshold,
            match_iou=config.evaluate.match_iou,
        )
        epoch = engine.state.epoch
        metrics = {key: result.metrics[key] for key in ("AP", "AP50", "AP75", "F1_per_image")}
        min_class_ap50 = min((values["AP50"] for values in result.per_class.values()), default=0.0)
        metrics["min_class_AP50"] = min_class_ap50
        elapsed = time.perf_counter() - began
        state["history"].append({"epoch": epoch, "elapsed_s": round(elapsed, 1), **metrics})
        for key, value in metrics.items():
            tensorboard.writer.add_scalar(f"val/{key}", value, epoch)
            exp.log_scalar("val", key, value, epoch)
        for class_name, values in result.per_class.items():
            exp.log_scalar("val_AP50_per_class", class_name, values["AP50"], epoch)
        exp.log_scalar("train", "loss", engine.state.output["loss"], epoch)
        ranking = selection_key(metrics, settings.select_metric)
        if state["best"] is None or ranking > selection_key(state["best"], settings.select_metric):
            state["best"] = metrics
            state["best_epoch"] = epoch
            save_checkpoint(
                best_path,
                model=model,
                config=config,
                class_names=class_names,
                experiment_id=exp.id,
                metrics=metrics,
            )
        save_checkpoint(
            last_path,
            model=model,
            config=config,
            class_names=class_names,
            experiment_id=exp.id,
            metrics=metrics,
        )
        frame = _read_bgr(val_dataset.images[0].path)
        found = detector.detect([frame], min_score=config.evaluate.score_threshold)[0]
        exp.log_image("validation", "detections", draw_detections(frame, found, class_names), epoch)
        # One line per epoch even without progress bars: a long run must show it is alive.
        tqdm.write(
            f"epoch {epoch}: val AP50 {metrics['AP50']:.3f} AP {metrics['AP']:.3f} "
            f"min class AP50 {min_class_ap50:.3f} ({elapsed:.0f} s)"
        )

    def stop_on_time_limit(engine: Engine) -> None:
        if settings.time_limit_s and time.perf_counter() - began > settings.time_limit_s:
            engine.terminate()

    trainer.add_event_handler(Events.EPOCH_COMPLETED, validate)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, stop_on_time_limit)
    # A run stopped by the time limit still validates (and may save) its final weights.
    trainer.add_event_handler(Events.TERMINATE, validate)
    try:
        trainer.run(loader, max_epochs=settings.epochs)
    finally:
        tensorboard.close()
    train_seconds = time.perf_counter() - began
    best = state["best"] or {}
    summary = {
        "class_names": class_names,
        "best_epoch": state["best_epoch"],
        "best_metrics": best,
        "epochs_run": trainer.state.epoch,
        "train_seconds": round(train_seconds, 1),
        "experiment_id": exp.id,
        "history": state["history"],
        "train_images": len(train_dataset),
        "val_images": len(val_dataset),
    }
    atomic_write_text(output_dir / "metrics.json", json.dumps(summary, indent=1))
    exp.log_metrics({f"val_{key}": value for key, value in best.items()} | {"train_seconds": train_seconds})
    exp.upload_weights(best_path, name="weights")
    return TrainResult(
        best_checkpoint=best_path,
        last_checkpoint=last_path,
        best_metrics=best,
        best_epoch=state["best_epoch"],
        epochs_run=trainer.state.epoch,
        train_seconds=train_seconds,
        experiment_id=exp.id,
    )


def _read_bgr(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"image {path} is missing or cannot be decoded")
    return image
