from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from walkout_detection.data import ImageRecord, balanced_sample_weights, held_sample_weights, load_coco
from walkout_detection.errors import ConfigError
from walkout_detection.train import (
    learning_rate_factor,
    limit_images,
    make_sampler,
    run_progress,
    selection_key,
    split_holdout,
)


def _record(index: int, labels: list[int], held: list[bool] | None = None) -> ImageRecord:
    return ImageRecord(
        image_id=index,
        sample_id=str(index),
        path=Path("x.png"),
        width=1,
        height=1,
        boxes=np.zeros((len(labels), 4), np.float32),
        labels=np.array(labels, dtype=np.int64),
        held=np.array(held if held is not None else [False] * len(labels), dtype=bool),
    )


def test_held_weights_favour_the_rarest_product_in_a_hand() -> None:
    # Every image has shelf stock of classes 1 and 2; class 1 is held in 10 images, class 2 in one.
    records = [_record(i, [1, 2]) for i in range(89)]
    records += [_record(89 + i, [1, 2, 1], [False, False, True]) for i in range(10)]
    records.append(_record(99, [1, 2, 2], [False, False, True]))
    weights = held_sample_weights(records, num_classes=3)
    assert weights[:89].sum() == 0.0  # nothing held: chosen by the base sampler only
    # weights 1/10 for each of the ten, 1/1 for the rare one -> the rare image is half of the draws
    assert weights[99] == pytest.approx(0.5)
    assert weights[89:99] == pytest.approx(np.full(10, 0.05))
    # Class balance alone cannot see it: every image holds both classes on the shelf.
    assert balanced_sample_weights(records, 3)[99] == pytest.approx(0.01)


def test_sampler_mixes_a_share_of_held_draws_and_refuses_data_without_held_products() -> None:
    records = [_record(i, [1, 2]) for i in range(99)] + [_record(99, [1, 2, 2], [False, False, True])]
    draws = 4000
    sampler = make_sampler(
        records,
        num_classes=3,
        balanced=True,
        samples=draws,
        generator=torch.Generator().manual_seed(0),
        held_share=0.3,
    )
    # 0.7 x 1/100 (balanced: all alike) + 0.3 x 1 (the only image with a held product)
    assert Counter(list(sampler))[99] / draws == pytest.approx(0.307, abs=0.03)
    unmarked = [_record(i, [1, 2]) for i in range(5)]
    with pytest.raises(ConfigError, match=r"held_sampling_share = 0\.3 but no training image has a held"):
        make_sampler(
            unmarked, num_classes=3, balanced=True, samples=10, generator=torch.Generator(), held_share=0.3
        )


def test_balanced_sampler_draws_the_rare_class_far_more_often_than_the_plain_one() -> None:
    # 1 image of 100 holds the rare class 1.
    records = [_record(i, [0]) for i in range(99)] + [_record(99, [0, 1])]
    draws = 4000
    balanced = make_sampler(
        records, num_classes=2, balanced=True, samples=draws, generator=torch.Generator().manual_seed(0)
    )
    plain = make_sampler(
        records, num_classes=2, balanced=False, samples=draws, generator=torch.Generator().manual_seed(0)
    )
    rare_balanced = Counter(list(balanced))[99] / draws
    rare_plain = Counter(list(plain))[99] / draws
    # weights: rare image 1/1, each common image 1/100 -> the rare image is ~1/(1 + 0.99) of the draws
    assert rare_balanced == pytest.approx(1 / 1.99, abs=0.03)
    assert rare_plain == pytest.approx(0.01, abs=0.006)


def test_learning_rate_warms_up_then_anneals() -> None:
    assert learning_rate_factor(0, warmup=10, progress=0.0) == pytest.approx(0.1)
    assert learning_rate_factor(10, warmup=10, progress=0.0) == pytest.approx(1.0)
    assert learning_rate_factor(50, warmup=10, progress=0.5) == pytest.approx(0.525)
    assert learning_rate_factor(99, warmup=10, progress=1.0) == pytest.approx(0.05)


def test_progress_follows_the_time_budget_when_it_runs_out_first() -> None:
    assert run_progress(10, total=100, elapsed_s=5.0, time_limit_s=0.0) == pytest.approx(0.1)
    assert run_progress(10, total=100, elapsed_s=50.0, time_limit_s=100.0) == pytest.approx(0.5)


def test_holdout_and_limit_keep_coco_and_records_in_step(small_dataset: Path) -> None:
    dataset = load_coco(small_dataset)
    training, validation = split_holdout(dataset, 0.1)
    assert len(training) + len(validation) == len(dataset) and len(validation) >= 1
    ids = {record.image_id for record in validation.images}
    assert {image["id"] for image in validation.coco["images"]} == ids
    assert all(annotation["image_id"] in ids for annotation in validation.coco["annotations"])
    limited = limit_images(dataset, 5)
    assert len(limited) == 5 and len(limited.coco["images"]) == 5


def test_checkpoints_are_ranked_by_the_selection_metric_then_the_other() -> None:
    # AP50 saturated: epoch 6 wins a tie-break at the third decimal by AP50 with a worse AP.
    early = {"AP50": 0.999, "AP": 0.972}
    late = {"AP50": 0.998, "AP": 0.980}
    assert selection_key(early, "AP50") > selection_key(late, "AP50")
    assert selection_key(late, "AP") > selection_key(early, "AP")
    assert selection_key({"AP50": 0.99, "AP": 0.9}, "AP") < selection_key({"AP50": 0.995, "AP": 0.9}, "AP")
