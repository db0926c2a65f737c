"""Hand-built frame sequences for the engine tests: a tiny scripted store with exact ground truth.

`Scene` moves scripted shoppers through a 320x240 store with one shelf of three slots, keeps the
shelf stock, draws held products at the wrist and carried ones on the body, and records the
ground-truth events it scripted. `scene.frames()` gives the FrameObservations the engine eats.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from walkout.layout import Slot, StoreLayout
from walkout.observations import FrameObservation, ProductObservation, ShopperObservation

SLOTS = (
    Slot(shelf="A", name="A1", sku="apple", box=(40.0, 20.0, 70.0, 40.0)),
    Slot(shelf="A", name="A2", sku="bread", box=(80.0, 20.0, 110.0, 40.0)),
    Slot(shelf="A", name="A3", sku="cheese", box=(120.0, 20.0, 150.0, 40.0)),
)
LAYOUT = StoreLayout(slots=SLOTS, entrance=(0.0, 200.0, 40.0, 240.0), exit=(280.0, 200.0, 320.0, 240.0))
ENTRANCE = (20.0, 220.0)
EXIT = (300.0, 220.0)


def slot_center(name: str) -> tuple[float, float]:
    """Center of the test slot `name`."""
    slot = next(s for s in SLOTS if s.name == name)
    return ((slot.box[0] + slot.box[2]) / 2, (slot.box[1] + slot.box[3]) / 2)


@dataclass
class Step:
    """What one shopper does in one frame."""

    center: tuple[float, float]
    reach: tuple[float, float] | None = None  # where the reaching wrist is, when reaching
    hand: str = "right"  # the hand that reaches, takes, gives or hands over
    take: str | None = None  # slot name a product leaves into the hand this frame
    give: str | None = None  # slot name the hand's product goes into this frame
    hand_to: int | None = None  # track id of the shopper whose right hand receives the product this frame
    visible: bool = True


@dataclass
class Actor:
    """A scripted shopper: `steps[frame]`, plus what it holds."""

    track_id: int
    steps: dict[int, Step] = field(default_factory=dict)
    holding: dict[str, str] = field(default_factory=dict)  # hand -> SKU (one item per hand)
    brought: dict[str, str] = field(default_factory=dict)  # products the shopper walks in with
    next_frame: int = 1

    def at(self, frame: int) -> Actor:
        """Continue the script from `frame`."""
        self.next_frame = frame
        return self

    def _add(self, step: Step) -> None:
        self.steps[self.next_frame] = step
        self.next_frame += 1

    @property
    def position(self) -> tuple[float, float]:
        """Where the last scripted step left the shopper."""
        return self.steps[max(self.steps)].center if self.steps else ENTRANCE

    def walk(self, to: tuple[float, float], frames: int) -> Actor:
        """Walk in a straight line to `to` over `frames` frames."""
        start = self.position if self.steps else to
        for index in range(1, frames + 1):
            t = index / frames
            self._add(Step(center=(start[0] + (to[0] - start[0]) * t, start[1] + (to[1] - start[1]) * t)))
        return self

    def wait(self, frames: int) -> Actor:
        """Stand still."""
        for _ in range(frames):
            self._add(Step(center=self.position))
        return self

    def reach(
        self, slot: str, frames: int = 6, *, take: bool = False, give: bool = False, hand: str = "right"
    ) -> Actor:
        """Reach into `slot` for `frames` frames; in the middle frame take one product or give one back."""
        target = slot_center(slot)
        for index in range(frames):
            middle = index == frames // 2
            # the wrist moves in, rests at the slot center at the middle frame, and moves out
            depth = 1.0 - abs(index - frames // 2) / (frames // 2 + 1)
            start = self.position
            reach = (start[0] + (target[0] - start[0]) * depth, start[1] + (target[1] - start[1]) * depth)
            if index == frames // 2:
                reach = target
            self._add(
                Step(
                    center=self.position,
                    reach=reach,
                    hand=hand,
                    take=slot if take and middle else None,
                    give=slot if give and middle else None,
                )
            )
        return self

    def hand_over(self, to_track: int, hand: str = "right") -> Actor:
        """Pass the product in `hand` to the right hand of another shopper this frame."""
        self._add(Step(center=self.position, hand=hand, hand_to=to_track))
        return self

    def vanish(self, frames: int) -> Actor:
        """Not seen by the tracker for `frames` frames (stays in place)."""
        for _ in range(frames):
            self._add(Step(center=self.position, visible=False))
        return self


def _keypoints(center: tuple[float, float], reach: tuple[float, float] | None, hand: str) -> np.ndarray:
    """Keypoints [7, 3] of a top-down body at `center`; the `hand` wrist at `reach` when reaching."""
    cx, cy = center
    left_wrist = (cx - 9.0, cy + 8.0)
    right_wrist = (cx + 9.0, cy + 8.0)
    if reach is not None and hand == "right":
        right_wrist = reach
    elif reach is not None:
        left_wrist = reach
    points = [
        (cx, cy),
        (cx - 8.0, cy),
        (cx + 8.0, cy),
        ((cx - 8.0 + left_wrist[0]) / 2, (cy + left_wrist[1]) / 2),
        ((cx + 8.0 + right_wrist[0]) / 2, (cy + right_wrist[1]) / 2),
        left_wrist,
        right_wrist,
    ]
    return np.array([(x, y, 2.0) for x, y in points], dtype=np.float64)


def _product(sku: str, x: float, y: float) -> ProductObservation:
    return ProductObservation(sku=sku, box=(x - 4.0, y - 4.0, x + 4.0, y + 4.0), score=0.95)


class Scene:
    """A scripted store: add actors, then `frames()` renders observations and ground truth."""

    ENTRANCE = ENTRANCE
    EXIT = EXIT
    slot_center = staticmethod(slot_center)

    def __init__(self, stock: dict[str, int] | None = None) -> None:
        self.actors: list[Actor] = []
        initial = stock if stock is not None else {"A1": 2, "A2": 2, "A3": 2}
        self.stock: dict[str, list[str]] = {s.name: [s.sku] * initial.get(s.name, 0) for s in SLOTS}
        self.events: list[dict] = []
        self.hide_stock: set[str] = set()  # slots whose products the camera cannot see
        self.hide_held_skus = False

    def actor(self, track_id: int) -> Actor:
        """A new scripted shopper with tracker id `track_id`."""
        actor = Actor(track_id=track_id)
        self.actors.append(actor)
        return actor

    def receipts(self) -> dict[str, dict[str, int]]:
        """What each actor who walked to the exit holds (the ground-truth receipts)."""
        receipts = {}
        for actor in self.actors:
            last = actor.steps[max(actor.steps)]
            if abs(last.center[0] - EXIT[0]) < 1 and abs(last.center[1] - EXIT[1]) < 1:
                receipts[str(actor.track_id)] = dict(Counter(actor.holding.values()))
        return receipts

    def frames(self) -> list[FrameObservation]:
        """Run the script; one FrameObservation per frame (plus a few empty frames at the end)."""
        for actor in self.actors:
            actor.holding = dict(actor.brought)
        last_frame = max(max(a.steps) for a in self.actors) + 6
        by_id = {a.track_id: a for a in self.actors}
        frames = []
        for frame in range(1, last_frame + 1):
            shoppers, products = [], []
            for actor in self.actors:
                step = actor.steps.get(frame)
                if step is None:
                    continue
                if step.take:
                    assert step.hand not in actor.holding, "the reaching hand must be free to take"
                    sku = self.stock[step.take].pop()
                    actor.holding[step.hand] = sku
                    self.events.append(self._event("pick", frame, actor, sku, step.take))
                if step.give:
                    sku = actor.holding.pop(step.hand)
                    self.stock[step.give].append(sku)
                    self.events.append(self._event("put_back", frame, actor, sku, step.give))
                if step.hand_to is not None:
                    by_id[step.hand_to].holding["right"] = actor.holding.pop(step.hand)
                if not step.visible:
                    continue
                keypoints = _keypoints(step.center, step.reach, step.hand)
                shoppers.append(
                    ShopperObservation(
                        track_id=actor.track_id,
                        box=(
                            step.center[0] - 12,
                            step.center[1] - 12,
                            step.center[0] + 12,
                            step.center[1] + 12,
                        ),
                        keypoints=keypoints,
                    )
                )
                for hand, sku in sorted(actor.holding.items()):  # a held item is drawn at its wrist
                    wrist = keypoints[5 if hand == "left" else 6]
                    products.append(_product(sku, wrist[0], wrist[1]))
            for slot in SLOTS:
                if slot.name in self.hide_stock:
                    continue
                if self.stock[slot.name]:  # a stack: the camera sees its top item at the slot center
                    center = slot_center(slot.name)
                    products.append(_product(self.stock[slot.name][-1], center[0], center[1]))
            frames.append(FrameObservation(frame=frame, shoppers=tuple(shoppers), products=tuple(products)))
        return frames

    @staticmethod
    def _event(kind: str, frame: int, actor: Actor, sku: str, slot: str) -> dict:
        return {
            "type": kind,
            "frame": frame,
            "shopper_id": actor.track_id,
            "sku": sku,
            "shelf": "A",
            "slot": slot,
        }


@pytest.fixture
def scene() -> Scene:
    """An empty scripted store with two products in each slot."""
    return Scene()


@pytest.fixture
def layout() -> StoreLayout:
    """The scripted store's layout."""
    return LAYOUT


@pytest.fixture(scope="session")
def rendered_scenarios(tmp_path_factory) -> dict[str, Path]:
    """Every shipped simulator scenario rendered once per test session: {name: split folder}.

    Only the videos and their ground truth are needed, so the COCO image export is thinned out.
    """
    from walkout_sim.config import GeneratorConfig, OutputConfig
    from walkout_sim.generate import render_scenario
    from walkout_sim.scenario import shipped_scenarios

    root = tmp_path_factory.mktemp("scenarios")
    config = GeneratorConfig(output=OutputConfig(image_stride=1000))
    rendered = {}
    for name in shipped_scenarios():
        render_scenario(name, root / name, config=config)
        rendered[name] = root / name
    return rendered


def make_video_score(name: str, *, judged: int, exact: int, false_charges: int = 0, missed: int = 0):
    """A scored video (walkout.evaluate.VideoScore) with `judged` ground-truth shoppers of one item
    each, `exact` of them right, and the given false-charged and missed items."""
    from walkout.evaluate import VideoScore
    from walkout.metrics import EventCounts, ItemCounts, ReceiptComparison

    comparison = ReceiptComparison(
        shoppers=judged,
        receipts=judged,
        exact_receipts=exact,
        items=ItemCounts(
            true_positives=judged - missed, false_positives=false_charges, false_negatives=missed
        ),
    )
    return VideoScore(
        video=name,
        comparison=comparison,
        events=EventCounts(),
        receipts_issued=judged,
        receipts_flagged=0,
        frames=100,
        seconds=1.0,
    )


@pytest.fixture
def video_score():
    """make_video_score, for tests that build QC statistics from hand-made video scores."""
    return make_video_score
