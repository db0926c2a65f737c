"""The decision engine: frames of shoppers, poses and product detections in; events, carts, receipts out.

Pure and deterministic: no model code, no I/O, no randomness; the same frames give the same output.

How it decides:
- Hands: each shopper has two hands, followed frame to frame through the wrist keypoints (the pose
  labels left/right are kept unless swapping them explains the motion much better, so a pose model
  that flips left and right does not teleport items). A product detection belongs to the nearest
  wrist within `hand_radius_px`, unless it sits where a slot shows its top item (`stock_radius_px`
  from the slot's center): that is shelf stock.
- Reaches: while a wrist is inside a slot, what its hand holds cannot be read (shelf stock is right
  there). A reach episode lasts from the first frame the wrist enters a slot until `after_window`
  readable frames after it left. The hand's item before the episode (confirmed with hysteresis over
  its last readable frames) and after it (a vote over the frames after, where the SKU the slot is
  believed to show on top gets extra votes) decide: empty -> X is a pick of X, X -> empty a
  put-back of X, X -> Y both. The slot is the one under the wrist at the reach's deepest point (the
  wrist farthest from the body), which is also the event's frame: the moment the product left the
  slot. Two shoppers reaching into one shelf at once are told apart because each hand is judged on
  its own; a put-back into another slot is booked where the hand emptied; the SKU comes from the
  product in the hand, so a hidden or misplaced slot top does not matter.
- Identity: a track that disappears is kept for `max_lost_frames`; a new track that appears near a
  lost shopper continues that shopper (same hands, same cart). A shopper whose last position was in
  the exit zone and who has been gone for `exit_confirm_frames` has left: their cart becomes a receipt.
- Hand-over: one hand losing an item away from the shelves while another shopper's hand, close by,
  gains the same SKU moves the item from one cart to the other.
- Review: what the engine cannot decide cleanly is still decided (best guess) but flagged with a
  reason; a receipt with a flagged event is flagged too (the review rate is a QC metric).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from walkout.errors import ConfigError
from walkout.layout import Slot, StoreLayout
from walkout.observations import (
    WRIST_INDICES,
    FrameObservation,
    ProductObservation,
    ShopperObservation,
    box_center,
)

SIDES = ("left", "right")
SHOULDERS = (1, 2)
Point = tuple[float, float]


@dataclass(frozen=True)
class EngineConfig:
    """Thresholds of the engine (pixels are image pixels at the layout's resolution).

    Keypoint visibilities are on a 0..1 scale (oracle mode maps COCO v=2 to 1.0 and v=1, labelled but
    hidden, to 0.6; the pose model gives a confidence).
    """

    min_product_score: float = 0.5  # product detections below this are ignored
    min_keypoint_visibility: float = 0.3  # wrists below this are not used at all
    item_visibility: float = (
        0.8  # a hand is only read (holds X / holds nothing) when its wrist is this visible
    )
    reach_radius_px: float = 7.0  # a wrist this close to a slot's center is reaching into it
    near_slot_px: float = 14.0  # a hand whose item changes this close to a slot center is taken as a reach
    hand_radius_px: float = 9.0  # a product this close to a wrist is in that hand
    stock_radius_px: float = 5.0  # a product this close to a slot's center is the slot's top item
    after_window: int = 5  # readable frames after a reach that tell what the hand took or left
    after_min_sightings: int = 2  # an item seen in this many of them is in the hand
    slot_prior_votes: float = 1.5  # extra votes for the SKU the slot is believed to show on top
    free_window: int = 7  # readable frames that confirm a change of a hand away from any reach
    free_min_sightings: int = 5  # ... an item seen this often is held
    free_min_empty: int = 6  # ... a hand seen empty this often holds nothing
    max_lost_frames: int = 30  # how long a vanished track may come back as the same shopper
    relink_distance_px: float = 60.0  # how far from its last box a lost shopper may reappear
    exit_margin_px: float = 10.0  # the exit zone grown by this much
    exit_confirm_frames: int = 3  # frames gone from the exit zone before the receipt is issued
    handover_window_frames: int = 6  # a loss and a gain this close in time can be a hand-over
    handover_distance_px: float = 20.0  # and the two hands this close
    hand_swap_ratio: float = 0.5  # swap pose left/right when that costs less than this fraction

    def __post_init__(self) -> None:
        checks = {
            "min_product_score": 0.0 <= self.min_product_score <= 1.0,
            "min_keypoint_visibility": self.min_keypoint_visibility >= 0.0,
            "item_visibility": self.item_visibility >= 0.0,
            "reach_radius_px": self.reach_radius_px > 0.0,
            "near_slot_px": self.near_slot_px >= self.reach_radius_px,
            "hand_radius_px": self.hand_radius_px > 0.0,
            "stock_radius_px": self.stock_radius_px >= 0.0,
            "after_window": self.after_window >= 1,
            "after_min_sightings": 1 <= self.after_min_sightings <= self.after_window,
            "slot_prior_votes": self.slot_prior_votes >= 0.0,
            "free_window": self.free_window >= 1,
            "free_min_sightings": 1 <= self.free_min_sightings <= self.free_window,
            "free_min_empty": 1 <= self.free_min_empty <= self.free_window,
            "max_lost_frames": self.max_lost_frames >= 0,
            "relink_distance_px": self.relink_distance_px >= 0.0,
            "exit_margin_px": self.exit_margin_px >= 0.0,
            "exit_confirm_frames": self.exit_confirm_frames >= 1,
            "handover_window_frames": self.handover_window_frames >= 0,
            "handover_distance_px": self.handover_distance_px >= 0.0,
            "hand_swap_ratio": 0.0 < self.hand_swap_ratio <= 1.0,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"engine config: {key}={getattr(self, key)!r} is out of range")


@dataclass
class Event:
    """A decided pick / put_back (or hand-over) with its evidence.

    frame: the frame the product left (pick) or entered (put_back) the slot, as well as it is known.
    confidence: in [0, 1]; review: None, or why a person should look at it.
    """

    type: str
    frame: int
    shopper_id: int
    sku: str
    shelf: str | None
    slot: str | None
    confidence: float
    review: str | None = None
    to_shopper_id: int | None = None  # hand-overs only

    def to_dict(self) -> dict:
        """The events.json form (the simulator's keys plus confidence and review)."""
        data = {
            "type": self.type,
            "frame": self.frame,
            "shopper_id": self.shopper_id,
            "sku": self.sku,
            "shelf": self.shelf,
            "slot": self.slot,
            "confidence": round(self.confidence, 4),
            "review": self.review,
        }
        if self.to_shopper_id is not None:
            data["to_shopper_id"] = self.to_shopper_id
        return data


@dataclass(frozen=True)
class Receipt:
    """What a shopper who walked out is charged: SKU -> quantity, with the review reasons (if any)."""

    shopper_id: int
    items: dict[str, int]
    exit_frame: int
    review: list[str]


@dataclass
class _Episode:
    """One reach of one hand into the shelves."""

    before: str | None
    start_frame: int
    slots: dict[tuple[str, str], int] = field(default_factory=dict)  # slot -> frames the wrist was in it
    peak_extension: float = -1.0
    peak_frame: int = 0
    peak_slot: tuple[str, str] | None = None
    after: list[str | None] = field(default_factory=list)


@dataclass
class _Hand:
    position: Point | None = None
    trail: list[Point] = field(default_factory=list)  # positions of the last `free_window` readable frames
    near_slot: tuple[tuple[str, str], int] | None = None  # last slot the wrist was close to, and when
    confirmed: str | None = None
    recent: list[str | None] = field(default_factory=list)
    episode: _Episode | None = None


@dataclass
class _Shopper:
    shopper_id: int
    last_box: tuple[float, float, float, float]
    last_frame: int
    hands: tuple[_Hand, _Hand] = field(default_factory=lambda: (_Hand(), _Hand()))
    cart: Counter = field(default_factory=Counter)
    review_reasons: list[str] = field(default_factory=list)
    left: bool = False


def _vote(
    readings: list[str | None], *, prior: str | None, prior_votes: float, min_sightings: int
) -> str | None:
    """The SKU a hand holds according to `readings` (None = seen empty), or None.

    The most seen SKU wins (`prior`, the SKU the shelf makes likely, gets `prior_votes` extra when it
    was seen at all; ties go to the prior, then alphabetically, so the result is deterministic); it
    counts only when seen at least `min_sightings` times, since a missed detection is far more
    common than an item appearing from nowhere.
    """
    counts = Counter(r for r in readings if r is not None)
    if not counts:
        return None
    scored = sorted(
        counts, key=lambda sku: (-(counts[sku] + (prior_votes if sku == prior else 0.0)), sku != prior, sku)
    )
    best = scored[0]
    return best if counts[best] >= min_sightings else None


def _distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


class Engine:
    """Feed `step(frame)` in frame order, then `finish()`; read `events`, `carts()`, `receipts`."""

    def __init__(self, *, layout: StoreLayout, config: EngineConfig | None = None) -> None:
        self.layout = layout
        self.config = config or EngineConfig()
        self.events: list[Event] = []
        self.receipts: list[Receipt] = []
        # shopper id -> frame -> box: where each shopper was (for matching shoppers to ground truth)
        self.trajectories: dict[int, dict[int, list[float]]] = {}
        self._shoppers: dict[int, _Shopper] = {}
        self._track_to_shopper: dict[int, int] = {}
        self._frame = 0
        self._slots = {s.key: s for s in layout.slots}
        # what each slot is believed to hold, bottom to top (planogram stock, then picks and put-backs)
        self._stacks = {s.key: [s.sku] * s.capacity for s in layout.slots}
        # hand changes away from the shelves, waiting for a partner: (frame, shopper, kind, sku, point)
        self._free_changes: list[tuple[int, int, str, str, tuple[Point, ...]]] = []

    # ----------------------------------------------------------------------------------------------
    # public API

    def step(self, observation: FrameObservation) -> list[Event]:
        """Advance one frame; return the events decided during it."""
        if observation.frame <= self._frame:
            raise ValueError(f"frames must increase: got frame {observation.frame} after {self._frame}")
        self._frame = observation.frame
        before = len(self.events)
        present = self._update_identities(observation)
        wrists = {sid: self._locate_hands(self._shoppers[sid], obs) for sid, obs in present.items()}
        products = [p for p in observation.products if p.score >= self.config.min_product_score]
        items = self._assign_products(wrists, products)
        for shopper_id, obs in present.items():
            self._update_hands(self._shoppers[shopper_id], obs, wrists[shopper_id], items)
        self._check_exits(set(present))
        return self.events[before:]

    def finish(self) -> None:
        """End of video: resolve open reaches; shoppers gone from the exit zone get their receipts."""
        for shopper in self._shoppers.values():
            if shopper.left:
                continue
            self._resolve_open_episodes(shopper)
            if shopper.last_frame < self._frame and self._in_exit(shopper.last_box):
                self._issue_receipt(shopper)

    def carts(self) -> dict[int, dict[str, int]]:
        """Live carts of shoppers still in the store: shopper id -> SKU -> quantity."""
        return {
            s.shopper_id: {sku: q for sku, q in sorted(s.cart.items()) if q > 0}
            for s in self._shoppers.values()
            if not s.left
        }

    def receipts_json(self) -> dict[str, dict[str, int]]:
        """Receipts in the simulator's receipts.json form: {"<shopper_id>": {sku: qty}}."""
        return {str(r.shopper_id): dict(r.items) for r in self.receipts}

    def review_reasons(self) -> dict[str, list[str]]:
        """Why each issued receipt needs a human look: {"<shopper_id>": [reasons]} (empty: none)."""
        return {str(r.shopper_id): list(r.review) for r in self.receipts}

    def shopper_of_track(self, track_id: int) -> int | None:
        """The shopper id a tracker id currently belongs to."""
        return self._track_to_shopper.get(track_id)

    # ----------------------------------------------------------------------------------------------
    # identities

    def _update_identities(self, observation: FrameObservation) -> dict[int, ShopperObservation]:
        present: dict[int, ShopperObservation] = {}
        new_tracks = []
        for shopper_obs in observation.shoppers:
            shopper_id = self._track_to_shopper.get(shopper_obs.track_id)
            if shopper_id is not None and not self._shoppers[shopper_id].left and shopper_id not in present:
                present[shopper_id] = shopper_obs
            else:
                new_tracks.append(shopper_obs)
        for shopper_obs in sorted(new_tracks, key=lambda s: s.track_id):
            shopper_id = self._relink(shopper_obs, set(present))
            if shopper_id is None:
                shopper_id = self._new_shopper(shopper_obs)
            self._track_to_shopper[shopper_obs.track_id] = shopper_id
            present[shopper_id] = shopper_obs
        for shopper_id, shopper_obs in present.items():
            shopper = self._shoppers[shopper_id]
            shopper.last_box = shopper_obs.box
            shopper.last_frame = observation.frame
            self.trajectories.setdefault(shopper_id, {})[observation.frame] = [
                float(v) for v in shopper_obs.box
            ]
        return present

    def _new_shopper(self, shopper_obs: ShopperObservation) -> int:
        # Keep the tracker's id when it is free (in oracle mode these are the simulator's ids).
        shopper_id = shopper_obs.track_id
        if shopper_id in self._shoppers:
            shopper_id = max(self._shoppers) + 1
        self._shoppers[shopper_id] = _Shopper(
            shopper_id=shopper_id, last_box=shopper_obs.box, last_frame=self._frame
        )
        center = box_center(shopper_obs.box)
        if self._frame > 1 and not self.layout.in_entrance(*center, margin=30.0):
            self._shoppers[shopper_id].review_reasons.append(
                f"shopper appeared at frame {self._frame} away from the entrance (a lost track?)"
            )
        return shopper_id

    def _relink(self, shopper_obs: ShopperObservation, taken: set[int]) -> int | None:
        """A lost shopper that this new track plausibly continues (nearest last position), or None."""
        center = box_center(shopper_obs.box)
        best, best_distance = None, float("inf")
        for shopper in self._shoppers.values():
            if shopper.left or shopper.shopper_id in taken or shopper.last_frame >= self._frame:
                continue
            if self._frame - shopper.last_frame > self.config.max_lost_frames:
                continue
            distance = _distance(center, box_center(shopper.last_box))
            if distance <= self.config.relink_distance_px and distance < best_distance:
                best, best_distance = shopper.shopper_id, distance
        return best

    def _check_exits(self, present: set[int]) -> None:
        for shopper in self._shoppers.values():
            if shopper.left or shopper.shopper_id in present:
                continue
            gone = self._frame - shopper.last_frame
            if self._in_exit(shopper.last_box) and gone >= self.config.exit_confirm_frames:
                self._resolve_open_episodes(shopper)
                self._issue_receipt(shopper)

    def _in_exit(self, box: tuple[float, float, float, float]) -> bool:
        return self.layout.in_exit(*box_center(box), margin=self.config.exit_margin_px)

    def _issue_receipt(self, shopper: _Shopper) -> None:
        shopper.left = True
        items = {sku: q for sku, q in sorted(shopper.cart.items()) if q > 0}
        self.receipts.append(
            Receipt(
                shopper_id=shopper.shopper_id,
                items=items,
                exit_frame=shopper.last_frame,
                review=list(shopper.review_reasons),
            )
        )

    # ----------------------------------------------------------------------------------------------
    # hands and products

    def _locate_hands(self, shopper: _Shopper, obs: ShopperObservation) -> list[tuple[Point, float] | None]:
        """This frame's (wrist point, visibility) of the shopper's hand 0 and hand 1 (None: not seen).

        The pose's left/right labels are kept unless the swapped assignment is much closer to where
        the hands were last frame (a left/right flip of the pose model).
        """
        config = self.config
        seen: list[tuple[Point, float] | None] = []
        for side in SIDES:
            x, y, visibility = obs.keypoints[WRIST_INDICES[side]]
            seen.append(
                ((float(x), float(y)), float(visibility))
                if visibility >= config.min_keypoint_visibility
                else None
            )
        previous = [hand.position for hand in shopper.hands]
        if all(s is not None for s in seen) and all(p is not None for p in previous):
            keep = _distance(previous[0], seen[0][0]) + _distance(previous[1], seen[1][0])
            swap = _distance(previous[0], seen[1][0]) + _distance(previous[1], seen[0][0])
            if swap < config.hand_swap_ratio * keep and keep - swap > 6.0:
                seen.reverse()
        return seen

    def _assign_products(
        self, wrists: dict[int, list[tuple[Point, float] | None]], products: list[ProductObservation]
    ) -> dict[tuple[int, int], str]:
        """{(shopper id, hand index): SKU} for products in hands (nearest pairs first, one item per hand)."""
        config = self.config
        pairs = []
        for index, product in enumerate(products):
            center = box_center(product.box)
            slot = self.layout.slot_at(*center)
            if slot is not None and _distance(center, slot.center) <= config.stock_radius_px:
                continue  # the slot's top item, drawn at the slot center
            for shopper_id, hands in wrists.items():
                for hand_index, wrist in enumerate(hands):
                    if wrist is None:
                        continue
                    distance = _distance(center, wrist[0])
                    if distance <= config.hand_radius_px:
                        pairs.append((distance, -product.score, index, shopper_id, hand_index))
        items: dict[tuple[int, int], str] = {}
        used = set()
        for _, _, index, shopper_id, hand_index in sorted(pairs):
            if index in used or (shopper_id, hand_index) in items:
                continue
            used.add(index)
            items[(shopper_id, hand_index)] = products[index].sku
        return items

    def _stack_top(self, slot: Slot) -> str | None:
        """The SKU a slot is believed to show on top (None when believed empty)."""
        stack = self._stacks[slot.key]
        return stack[-1] if stack else None

    def _nearest_slot(self, point: Point, radius: float) -> tuple[Slot, float] | None:
        """The slot whose center is nearest to `point` if within `radius` pixels, with that distance."""
        best = None
        for slot in self.layout.slots:
            distance = _distance(point, slot.center)
            if distance <= radius and (best is None or distance < best[1]):
                best = (slot, distance)
        return best

    def _body_center(self, obs: ShopperObservation) -> Point:
        points = [
            obs.keypoints[i] for i in SHOULDERS if obs.keypoints[i][2] >= self.config.min_keypoint_visibility
        ]
        if len(points) == 2:
            return ((points[0][0] + points[1][0]) / 2.0, (points[0][1] + points[1][1]) / 2.0)
        return box_center(obs.box)

    def _update_hands(
        self,
        shopper: _Shopper,
        obs: ShopperObservation,
        wrists: list[tuple[Point, float] | None],
        items: dict[tuple[int, int], str],
    ) -> None:
        config = self.config
        body = self._body_center(obs)
        for hand_index, (hand, wrist) in enumerate(zip(shopper.hands, wrists, strict=True)):
            if wrist is None:
                continue
            point, visibility = wrist
            hand.position = point
            near = self._nearest_slot(point, config.near_slot_px)
            if near is not None:
                hand.near_slot = (near[0].key, self._frame)
            slot = near[0] if near is not None and near[1] <= config.reach_radius_px else None
            if slot is not None:
                if hand.episode is None:
                    hand.episode = _Episode(before=hand.confirmed, start_frame=self._frame)
                episode = hand.episode
                episode.after.clear()  # still reaching: what the hand holds is read after it leaves
                episode.slots[slot.key] = episode.slots.get(slot.key, 0) + 1
                extension = _distance(point, body)
                if extension > episode.peak_extension:
                    episode.peak_extension, episode.peak_frame, episode.peak_slot = (
                        extension,
                        self._frame,
                        slot.key,
                    )
                continue
            if visibility < config.item_visibility:
                continue  # the hand is hidden: what it holds is unknown this frame
            item = items.get((shopper.shopper_id, hand_index))
            if hand.episode is not None:
                hand.episode.after.append(item)
                if len(hand.episode.after) >= config.after_window:
                    self._resolve_episode(shopper, hand)
                continue
            hand.recent.append(item)
            del hand.recent[: -config.free_window]
            hand.trail.append(point)
            del hand.trail[: -config.free_window]
            confirmed = self._confirm_free(hand)
            if confirmed != hand.confirmed:
                self._free_change(shopper, hand, hand.confirmed, confirmed)
                hand.confirmed = confirmed

    def _confirm_free(self, hand: _Hand) -> str | None:
        """What a hand away from the shelves holds: changes only on strong evidence (hysteresis)."""
        config = self.config
        seen = _vote(
            hand.recent, prior=hand.confirmed, prior_votes=0.0, min_sightings=config.free_min_sightings
        )
        if seen is not None:
            return seen
        if hand.recent.count(None) >= config.free_min_empty:
            return None
        return hand.confirmed

    # ----------------------------------------------------------------------------------------------
    # reach episodes

    def _resolve_open_episodes(self, shopper: _Shopper) -> None:
        for hand in shopper.hands:
            if hand.episode is not None:
                self._resolve_episode(shopper, hand, final=True)

    def _resolve_episode(self, shopper: _Shopper, hand: _Hand, *, final: bool = False) -> None:
        episode = hand.episode
        assert episode is not None
        hand.episode = None
        notes = []
        slot = self._slots[episode.peak_slot] if episode.peak_slot is not None else None
        if episode.after:
            # An empty hand reaching in most likely takes what the slot shows on top.
            prior = self._stack_top(slot) if episode.before is None and slot is not None else episode.before
            after = _vote(
                episode.after,
                prior=prior,
                prior_votes=self.config.slot_prior_votes,
                min_sightings=min(self.config.after_min_sightings, len(episode.after)),
            )
        else:
            after = episode.before
            if final:
                notes.append("the shopper left view while reaching into a shelf")
        hand.confirmed = after
        hand.recent = list(episode.after[-self.config.free_window :])
        if after == episode.before:
            return
        confidence = 1.0
        agreeing = episode.after.count(after)
        if episode.after and agreeing < len(episode.after):
            confidence = agreeing / len(episode.after)
            if agreeing * 2 <= len(episode.after):
                notes.append(f"the hand was read as {sorted(map(str, episode.after))} after the reach")
        if len(episode.slots) > 1 and slot is not None:
            confidence = min(confidence, 0.9)
        if episode.before is not None:
            self._put_back(shopper, episode.peak_frame, slot, episode.before, confidence, notes)
        if after is not None:
            self._pick(shopper, episode.peak_frame, slot, after, confidence, notes)

    def _pick(
        self,
        shopper: _Shopper,
        frame: int,
        slot: Slot | None,
        sku: str,
        confidence: float,
        notes: list[str],
    ) -> None:
        notes = list(notes)
        if slot is not None and slot.sku != sku and confidence < 1.0:
            notes.append(f"{sku} taken from slot {slot.name} whose planogram holds {slot.sku}")
        shopper.cart[sku] += 1
        if slot is not None and self._stacks[slot.key]:
            self._stacks[slot.key].pop()
        self._emit(shopper, "pick", frame, sku, slot, confidence, notes)

    def _put_back(
        self,
        shopper: _Shopper,
        frame: int,
        slot: Slot | None,
        sku: str,
        confidence: float,
        notes: list[str],
    ) -> None:
        notes = list(notes)
        if shopper.cart[sku] > 0:
            shopper.cart[sku] -= 1
        else:
            notes.append(f"put back {sku} that is not in the cart")
            confidence = min(confidence, 0.3)
        if slot is not None:
            self._stacks[slot.key].append(sku)
        self._emit(shopper, "put_back", frame, sku, slot, confidence, notes)

    def _emit(
        self,
        shopper: _Shopper,
        kind: str,
        frame: int,
        sku: str,
        slot: Slot | None,
        confidence: float,
        notes: list[str],
    ) -> None:
        review = "; ".join(notes) or None
        event = Event(
            type=kind,
            frame=frame,
            shopper_id=shopper.shopper_id,
            sku=sku,
            shelf=slot.shelf if slot else None,
            slot=slot.name if slot else None,
            confidence=confidence,
            review=review,
        )
        self.events.append(event)
        if review:
            shopper.review_reasons.append(f"frame {frame} {kind} {sku}: {review}")

    # ----------------------------------------------------------------------------------------------
    # hand-overs

    def _free_change(self, shopper: _Shopper, hand: _Hand, old: str | None, new: str | None) -> None:
        """A hand's item changed outside a seen reach.

        Close to a slot it is a reach the pose did not show deep enough (booked, flagged for review);
        elsewhere a loss is paired with a nearby gain of the same SKU by another shopper (a hand-over);
        anything else (an item flickering out of view) changes no cart.
        """
        near = hand.near_slot
        if near is not None and self._frame - near[1] <= self.config.free_window + 2:
            notes = ["the reach was not seen deep in the slot"]
            if old is not None:
                self._put_back(shopper, near[1], self._slots[near[0]], old, 0.6, notes)
            if new is not None:
                self._pick(shopper, near[1], self._slots[near[0]], new, 0.6, notes)
            return
        window = self.config.handover_window_frames
        self._free_changes = [c for c in self._free_changes if self._frame - c[0] <= window]
        trail = tuple(hand.trail)
        for kind, sku in (("loss", old), ("gain", new)):
            if sku is None:
                continue
            partner = self._handover_partner(shopper, kind, sku, trail)
            if partner is None:
                self._free_changes.append((self._frame, shopper.shopper_id, kind, sku, trail))
                continue
            giver, taker = (shopper, partner) if kind == "loss" else (partner, shopper)
            if giver.cart[sku] <= 0:
                continue  # the giver never paid for it: a detection flicker, not a hand-over
            giver.cart[sku] -= 1
            taker.cart[sku] += 1
            self.events.append(
                Event(
                    type="handover",
                    frame=self._frame,
                    shopper_id=giver.shopper_id,
                    sku=sku,
                    shelf=None,
                    slot=None,
                    confidence=0.8,
                    to_shopper_id=taker.shopper_id,
                )
            )

    def _handover_partner(
        self, shopper: _Shopper, kind: str, sku: str, trail: tuple[Point, ...]
    ) -> _Shopper | None:
        """The shopper whose opposite change of `sku` is waiting and whose hand came within reach."""
        wanted = "gain" if kind == "loss" else "loss"
        for index, (_, other_id, other_kind, other_sku, other_trail) in enumerate(self._free_changes):
            if other_id == shopper.shopper_id or other_kind != wanted or other_sku != sku:
                continue
            closest = min((_distance(a, b) for a in trail for b in other_trail), default=float("inf"))
            if closest <= self.config.handover_distance_px:
                del self._free_changes[index]
                return self._shoppers[other_id]
        return None
