"""The decision engine: frames of shoppers, poses and product detections in; events, carts, receipts out.

Pure and deterministic: no model code, no I/O, no randomness; the same frames give the same output.

How it decides (all per shopper):
- Holdings: every frame in which none of the shopper's wrists is inside a slot, the products they hold
  are counted: a product belongs to the nearest visible wrist within `hand_radius_px`, or, when it lies
  on no shelf slot, to the shopper whose body box holds it. The mode of the last `holdings_window` such
  frames is the shopper's confirmed holdings (a multiset of SKUs); the mode absorbs single-frame misses.
- Visits: from the first frame a wrist enters a slot until `holdings_window` free frames after the last
  one. What the shopper holds after the visit minus what they held before it is the visit's outcome:
  a gained SKU is a pick from the visited slot, a lost SKU a put-back into it. Because the hand is
  looked at, not the slot, two shoppers reaching into one shelf at once each get the product that
  left the slot in *their* hand; a put-back into another slot is seen where the hand emptied; and the
  SKU comes from the product in the hand even when the slot itself is hidden.
- Slot stock: while no wrist or body covers a slot, the products on it are counted; a drop in the
  stock of the picked SKU confirms the pick and gives its frame; it also picks the slot when a visit
  touched several.
- Identity: a track that disappears is kept for `max_lost_frames`; a new track that appears away
  from the entrance near a lost shopper continues that shopper (same cart). A shopper whose last
  position was in the exit zone and who has been gone for `exit_confirm_frames` has left: their cart
  becomes a receipt.
- Hand-over: when one shopper loses an item away from the shelves while another, within reach,
  gains the same SKU, the item moves from one cart to the other.
- Review: whatever the engine cannot decide cleanly is still decided (best guess) but flagged with a
  reason; a receipt with a flagged event is flagged too.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from walkout.errors import ConfigError
from walkout.layout import Slot, StoreLayout
from walkout.observations import (
    FrameObservation,
    ProductObservation,
    ShopperObservation,
    box_center,
    point_in_box,
)

SIDES = ("left", "right")


@dataclass(frozen=True)
class EngineConfig:
    """Thresholds of the engine (pixels are image pixels at the layout's resolution)."""

    min_product_score: float = 0.5  # product detections below this are ignored
    min_keypoint_visibility: float = 0.5  # wrists below this visibility/confidence are not used
    slot_margin_px: float = 2.0  # a wrist this close to a slot is "in" it
    hand_radius_px: float = 14.0  # a product this close to a wrist is in that hand
    stock_radius_px: float = 4.0  # a product this close to a slot's center sits on the shelf
    holdings_window: int = 3  # free frames whose mode is the confirmed holdings
    max_lost_frames: int = 30  # how long a vanished track may come back as the same shopper
    relink_distance_px: float = 60.0  # how far from its last box a lost shopper may reappear
    exit_confirm_frames: int = 3  # frames gone from the exit zone before the receipt is issued
    handover_window_frames: int = 10  # a loss and a gain this close in time can be a hand-over
    handover_distance_px: float = 50.0  # and their wrists this close
    stock_search_frames: int = 30  # how far back a pick's frame is searched in the slot's stock history

    def __post_init__(self) -> None:
        checks = {
            "min_product_score": 0.0 <= self.min_product_score <= 1.0,
            "min_keypoint_visibility": self.min_keypoint_visibility >= 0.0,
            "slot_margin_px": self.slot_margin_px >= 0.0,
            "hand_radius_px": self.hand_radius_px > 0.0,
            "stock_radius_px": self.stock_radius_px >= 0.0,
            "holdings_window": self.holdings_window >= 1,
            "max_lost_frames": self.max_lost_frames >= 0,
            "relink_distance_px": self.relink_distance_px >= 0.0,
            "exit_confirm_frames": self.exit_confirm_frames >= 1,
            "handover_window_frames": self.handover_window_frames >= 0,
            "handover_distance_px": self.handover_distance_px >= 0.0,
            "stock_search_frames": self.stock_search_frames >= 0,
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


@dataclass
class _Visit:
    """An open interaction of one shopper with the shelves."""

    start_frame: int
    before: Counter
    # slot key -> frames in which one of the shopper's wrists was in that slot
    slot_frames: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    free_after: list[Counter] = field(default_factory=list)


@dataclass
class _Shopper:
    shopper_id: int
    last_box: tuple[float, float, float, float]
    last_frame: int
    first_frame: int
    cart: Counter = field(default_factory=Counter)
    recent_free: list[Counter] = field(default_factory=list)
    confirmed: Counter = field(default_factory=Counter)
    visit: _Visit | None = None
    wrists: dict[str, tuple[float, float]] = field(default_factory=dict)
    review_reasons: list[str] = field(default_factory=list)
    left: bool = False


@dataclass(frozen=True)
class Receipt:
    """What a shopper who walked out is charged: SKU -> quantity, with the review verdict."""

    shopper_id: int
    items: dict[str, int]
    exit_frame: int
    review: list[str]


def _mode(observations: list[Counter]) -> Counter:
    """The most frequent multiset among `observations`; ties go to the most recent one."""
    if not observations:
        return Counter()
    keys = [tuple(sorted(c.elements())) for c in observations]
    counts = Counter(keys)
    best = max(counts.values())
    for key in reversed(keys):
        if counts[key] == best:
            return Counter(key)
    return Counter()  # unreachable: some key has the best count


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


class Engine:
    """Feed `step(frame)` in frame order, then `finish()`; read `events`, `carts()`, `receipts`."""

    def __init__(self, *, layout: StoreLayout, config: EngineConfig | None = None) -> None:
        self.layout = layout
        self.config = config or EngineConfig()
        self.events: list[Event] = []
        self.receipts: list[Receipt] = []
        self._shoppers: dict[int, _Shopper] = {}
        self._track_to_shopper: dict[int, int] = {}
        self._next_shopper_id = 1
        self._frame = 0
        # slot key -> list of (frame, Counter of SKUs on it) for frames when the slot was in clear view
        self._stock: dict[tuple[str, str], list[tuple[int, Counter]]] = {s.key: [] for s in layout.slots}
        # recent hand changes away from shelves: (frame, shopper id, "gain"|"loss", sku, wrist positions)
        self._free_changes: list[tuple[int, int, str, str, tuple[tuple[float, float], ...]]] = []
        self._slots = {s.key: s for s in layout.slots}
        # shopper id -> frame -> box: where each shopper was (for matching shoppers to ground truth)
        self.trajectories: dict[int, dict[int, list[float]]] = {}

    # ----------------------------------------------------------------------------------------------
    # public API

    def step(self, observation: FrameObservation) -> list[Event]:
        """Advance one frame; return the events decided during it."""
        if observation.frame <= self._frame:
            raise ValueError(f"frames must increase: got frame {observation.frame} after {self._frame}")
        self._frame = observation.frame
        before = len(self.events)
        products = [p for p in observation.products if p.score >= self.config.min_product_score]
        present = self._update_identities(observation)
        assigned, stock = self._assign_products(present, products)
        self._record_stock(present, stock)
        for shopper_id, shopper_obs in present.items():
            self._update_shopper(self._shoppers[shopper_id], shopper_obs, assigned.get(shopper_id, Counter()))
        self._check_exits(set(present))
        return self.events[before:]

    def finish(self) -> None:
        """End of video: resolve open visits; shoppers gone from the exit zone get their receipts."""
        for shopper in self._shoppers.values():
            if shopper.left:
                continue
            if shopper.visit is not None:
                self._resolve_visit(shopper, final=True)
            if shopper.last_frame < self._frame and self._in_exit(shopper.last_box):
                self._issue_receipt(shopper)

    def carts(self) -> dict[int, dict[str, int]]:
        """Live carts of shoppers still in the store: shopper id -> SKU -> quantity."""
        return {
            s.shopper_id: {sku: q for sku, q in sorted(s.cart.items()) if q > 0}
            for s in self._shoppers.values()
            if not s.left
        }

    def review_reasons(self) -> dict[str, list[str]]:
        """Why each issued receipt needs a human look: {"<shopper_id>": [reasons]} (empty: none)."""
        return {str(r.shopper_id): list(r.review) for r in self.receipts}

    def receipts_json(self) -> dict[str, dict[str, int]]:
        """Receipts in the simulator's receipts.json form: {"<shopper_id>": {sku: qty}}."""
        return {str(r.shopper_id): dict(r.items) for r in self.receipts}

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
        # In oracle mode the tracker ids are the simulator's: keep them so receipts line up one-to-one.
        shopper_id = shopper_obs.track_id if shopper_obs.track_id not in self._shoppers else self._fresh_id()
        self._next_shopper_id = max(self._next_shopper_id, shopper_id + 1)
        self._shoppers[shopper_id] = _Shopper(
            shopper_id=shopper_id, last_box=shopper_obs.box, last_frame=self._frame, first_frame=self._frame
        )
        center = box_center(shopper_obs.box)
        if self._frame > 1 and not self.layout.in_entrance(*center, margin=20.0):
            self._shoppers[shopper_id].review_reasons.append(
                f"shopper appeared at frame {self._frame} away from the entrance (lost track?)"
            )
        return shopper_id

    def _fresh_id(self) -> int:
        while self._next_shopper_id in self._shoppers:
            self._next_shopper_id += 1
        return self._next_shopper_id

    def _relink(self, shopper_obs: ShopperObservation, taken: set[int]) -> int | None:
        """A lost shopper that this new track plausibly continues (nearest last position), or None."""
        center = box_center(shopper_obs.box)
        if self.layout.in_entrance(*center) and self._frame > 1:
            # A track starting at the entrance is a new shopper, unless someone was just lost right there.
            pass
        best, best_distance = None, float("inf")
        for shopper in self._shoppers.values():
            if shopper.left or shopper.shopper_id in taken or shopper.last_frame >= self._frame:
                continue
            gap = self._frame - shopper.last_frame
            if gap > self.config.max_lost_frames:
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
                if shopper.visit is not None:
                    self._resolve_visit(shopper, final=True)
                self._issue_receipt(shopper)

    def _in_exit(self, box: tuple[float, float, float, float]) -> bool:
        return self.layout.in_exit(*box_center(box), margin=10.0)

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
    # products

    def _assign_products(
        self, present: dict[int, ShopperObservation], products: list[ProductObservation]
    ) -> tuple[dict[int, Counter], list[ProductObservation]]:
        """Split detections into what each shopper holds and what lies on the shelves.

        A product centered on a slot (within `stock_radius_px` of its center) is shelf stock: the top
        of the slot's stack is drawn there, and a hand over it is inside the slot, where holdings are
        not read anyway. Otherwise it goes to the nearest visible wrist within `hand_radius_px`; one
        lying on no slot goes to the shopper whose box holds it (nearest box center); the rest is stock.
        """
        wrists = []
        for shopper_id, shopper_obs in present.items():
            for side in SIDES:
                point = shopper_obs.wrist(side, self.config.min_keypoint_visibility)
                if point is not None:
                    wrists.append((shopper_id, point))
        assigned: dict[int, Counter] = {}
        stock = []
        for product in products:
            center = box_center(product.box)
            slot = self.layout.slot_at(*center)
            if slot is not None and _distance(center, slot.center) <= self.config.stock_radius_px:
                stock.append(product)
                continue
            near = [(_distance(center, point), shopper_id) for shopper_id, point in wrists]
            near = [(d, sid) for d, sid in near if d <= self.config.hand_radius_px]
            if near:
                owner = min(near)[1]
            elif slot is None:
                holders = [
                    (_distance(center, box_center(obs.box)), sid)
                    for sid, obs in present.items()
                    if point_in_box(*center, obs.box)
                ]
                owner = min(holders)[1] if holders else None
            else:
                owner = None
            if owner is None:
                stock.append(product)
            else:
                assigned.setdefault(owner, Counter())[product.sku] += 1
        return assigned, stock

    def _record_stock(self, present: dict[int, ShopperObservation], stock: list[ProductObservation]) -> None:
        """Count shelf products per slot, for slots that no wrist or body covers this frame."""
        covered = set()
        for shopper_obs in present.values():
            for side in SIDES:
                point = shopper_obs.wrist(side, self.config.min_keypoint_visibility)
                if point is not None:
                    slot = self.layout.slot_at(*point, margin=self.config.slot_margin_px + 4.0)
                    if slot is not None:
                        covered.add(slot.key)
        counts: dict[tuple[str, str], Counter] = {key: Counter() for key in self._stock}
        for product in stock:
            slot = self.layout.slot_at(*box_center(product.box))
            if slot is not None:
                counts[slot.key][product.sku] += 1
        for key, count in counts.items():
            if key not in covered:
                self._stock[key].append((self._frame, count))

    # ----------------------------------------------------------------------------------------------
    # shoppers and visits

    def _update_shopper(self, shopper: _Shopper, shopper_obs: ShopperObservation, held: Counter) -> None:
        config = self.config
        reaching: dict[tuple[str, str], str] = {}
        shopper.wrists = {}
        for side in SIDES:
            point = shopper_obs.wrist(side, config.min_keypoint_visibility)
            if point is None:
                continue
            shopper.wrists[side] = point
            slot = self.layout.slot_at(*point, margin=config.slot_margin_px)
            if slot is not None:
                reaching[slot.key] = side
        if reaching:
            if shopper.visit is None:
                shopper.visit = _Visit(start_frame=self._frame, before=Counter(shopper.confirmed))
            shopper.visit.free_after.clear()  # the visit goes on
            for key in reaching:
                shopper.visit.slot_frames.setdefault(key, []).append(self._frame)
            return
        if shopper.visit is not None:
            shopper.visit.free_after.append(held)
            if len(shopper.visit.free_after) >= config.holdings_window:
                self._resolve_visit(shopper)
            return
        shopper.recent_free.append(held)
        del shopper.recent_free[: -config.holdings_window]
        confirmed = _mode(shopper.recent_free)
        if confirmed != shopper.confirmed:
            self._note_free_change(shopper, shopper.confirmed, confirmed)
            shopper.confirmed = confirmed

    def _resolve_visit(self, shopper: _Shopper, *, final: bool = False) -> None:
        visit = shopper.visit
        assert visit is not None
        shopper.visit = None
        after = _mode(visit.free_after) if visit.free_after else Counter(visit.before)
        shopper.confirmed = after
        shopper.recent_free = list(visit.free_after[-self.config.holdings_window :])
        gained = after - visit.before
        lost = visit.before - after
        reasons = []
        if final and not visit.free_after:
            reasons.append("the shopper left view while reaching into a shelf")
        for sku in sorted(lost.elements()):
            self._put_back(shopper, visit, sku, reasons)
        for sku in sorted(gained.elements()):
            self._pick(shopper, visit, sku, reasons)

    def _choose_slot(self, visit: _Visit, sku: str, change: int) -> tuple[Slot, float, str | None]:
        """The visited slot an item of `sku` left (change -1) or entered (+1), its confidence, why unsure.

        Preference: the slot whose clear-view stock of `sku` changed that way; then, for a pick, the
        slot whose planogram holds `sku`; then the slot the wrist stayed in longest.
        """
        keys = list(visit.slot_frames)
        evidence = [key for key in keys if self._stock_change(key, sku, visit) * change > 0]
        if len(evidence) == 1:
            return self._slots[evidence[0]], 1.0, None
        planogram = [key for key in keys if self._slots[key].sku == sku]
        if change < 0 and len(planogram) == 1:
            return self._slots[planogram[0]], 0.9, None
        longest = max(keys, key=lambda k: (len(visit.slot_frames[k]), visit.slot_frames[k][-1]))
        if len(keys) == 1:
            slot = self._slots[longest]
            if change < 0 and slot.sku != sku:
                return (
                    slot,
                    0.6,
                    f"{sku} taken from slot {slot.shelf}/{slot.name} whose planogram holds {slot.sku}",
                )
            return slot, 0.9, None
        return self._slots[longest], 0.5, f"several slots touched ({len(keys)}); chose the longest-visited"

    def _stock_change(self, key: tuple[str, str], sku: str, visit: _Visit) -> int:
        """Clear-view stock of `sku` in slot `key` after the visit minus before it (0 when unknown)."""
        history = self._stock[key]
        start, end = visit.slot_frames[key][0], visit.slot_frames[key][-1]
        before = [count for frame, count in history if frame < start]
        after = [count for frame, count in history if frame > end]
        if not before or not after:
            return 0
        return after[-1][sku] - before[-1][sku]

    def _event_frame(self, key: tuple[str, str], sku: str, visit: _Visit, change: int) -> int:
        """The frame the slot's stock of `sku` changed, else the last frame the wrist was in the slot."""
        frames = visit.slot_frames[key]
        return frames[len(frames) // 2] if change > 0 else frames[-1]

    def _pick(self, shopper: _Shopper, visit: _Visit, sku: str, reasons: list[str]) -> None:
        slot, confidence, why = self._choose_slot(visit, sku, -1)
        review = "; ".join([*reasons, why] if why else reasons) or None
        shopper.cart[sku] += 1
        self._emit(
            Event(
                type="pick",
                frame=self._event_frame(slot.key, sku, visit, -1),
                shopper_id=shopper.shopper_id,
                sku=sku,
                shelf=slot.shelf,
                slot=slot.name,
                confidence=confidence,
                review=review,
            ),
            shopper,
        )

    def _put_back(self, shopper: _Shopper, visit: _Visit, sku: str, reasons: list[str]) -> None:
        slot, confidence, why = self._choose_slot(visit, sku, +1)
        notes = [*reasons, why] if why else list(reasons)
        if shopper.cart[sku] > 0:
            shopper.cart[sku] -= 1
        else:
            notes.append(f"put back {sku} that is not in the cart")
            confidence = min(confidence, 0.3)
        self._emit(
            Event(
                type="put_back",
                frame=self._event_frame(slot.key, sku, visit, +1),
                shopper_id=shopper.shopper_id,
                sku=sku,
                shelf=slot.shelf,
                slot=slot.name,
                confidence=confidence,
                review="; ".join(notes) or None,
            ),
            shopper,
        )

    def _emit(self, event: Event, shopper: _Shopper) -> None:
        self.events.append(event)
        if event.review:
            shopper.review_reasons.append(f"frame {event.frame} {event.type} {event.sku}: {event.review}")

    # ----------------------------------------------------------------------------------------------
    # hand-overs

    def _note_free_change(self, shopper: _Shopper, old: Counter, new: Counter) -> None:
        """Pair a loss by one shopper with a gain of the same SKU by another nearby: a hand-over."""
        window = self.config.handover_window_frames
        self._free_changes = [c for c in self._free_changes if self._frame - c[0] <= window]
        wrists = tuple(shopper.wrists.values())
        for kind, diff in (("loss", old - new), ("gain", new - old)):
            for sku in sorted(diff.elements()):
                partner = self._handover_partner(shopper, kind, sku, wrists)
                if partner is None:
                    self._free_changes.append((self._frame, shopper.shopper_id, kind, sku, wrists))
                    continue
                giver, taker = (shopper, partner) if kind == "loss" else (partner, shopper)
                if giver.cart[sku] <= 0:
                    continue  # the giver never paid for it: a detection flicker, not a hand-over
                giver.cart[sku] -= 1
                taker.cart[sku] += 1
                self._emit(
                    Event(
                        type="handover",
                        frame=self._frame,
                        shopper_id=giver.shopper_id,
                        sku=sku,
                        shelf=None,
                        slot=None,
                        confidence=0.8,
                        to_shopper_id=taker.shopper_id,
                    ),
                    giver,
                )

    def _handover_partner(
        self, shopper: _Shopper, kind: str, sku: str, wrists: tuple[tuple[float, float], ...]
    ) -> _Shopper | None:
        wanted = "gain" if kind == "loss" else "loss"
        for index, (_, other_id, other_kind, other_sku, other_wrists) in enumerate(self._free_changes):
            if other_id == shopper.shopper_id or other_kind != wanted or other_sku != sku:
                continue
            close = any(
                _distance(a, b) <= self.config.handover_distance_px for a in wrists for b in other_wrists
            )
            if close:
                del self._free_changes[index]
                return self._shoppers[other_id]
        return None
