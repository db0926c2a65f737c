"""Mis-shelved items in the engine: a put-back into a slot of another SKU is booked by what the hand
released, and a later pick from that slot by what the hand took (hand-built scenes, exact inputs)."""

from __future__ import annotations

import numpy as np

from walkout.engine import Engine
from walkout.layout import Slot, StoreLayout
from walkout.observations import FrameObservation, ProductObservation, ShopperObservation


def run_frames(frames, layout) -> Engine:
    """Feed `frames` to a fresh engine; return it finished."""
    engine = Engine(layout=layout)
    for frame in frames:
        engine.step(frame)
    engine.finish()
    return engine


def near(slot_center, dy=25.0):
    """A standing spot below a slot."""
    return (slot_center[0], slot_center[1] + dy)


def hide_slot(frames, center, first: int, last: int) -> list[FrameObservation]:
    """The frames with the product on top of the slot at `center` unseen in frames first..last
    (arms and bodies over the shelf)."""
    out = []
    for frame in frames:
        products = frame.products
        if first <= frame.frame <= last:
            products = tuple(
                p
                for p in products
                if abs((p.box[0] + p.box[2]) / 2 - center[0]) > 1
                or abs((p.box[1] + p.box[3]) / 2 - center[1]) > 1
            )
        out.append(FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products))
    return out


def misshelve_then_pick(scene, gap: int):
    """Shopper 1 takes a cheese from A3 and leaves it in the apple slot A1; `gap` frames after that
    put-back, shopper 2 (waiting beside A1) reaches into A1 and takes the cheese. Both walk out."""
    a1 = scene.slot_center("A1")
    first = scene.actor(1)
    first.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A3")), 10).reach("A3", take=True).wait(4)
    first.walk(near(a1, 20.0), 8).reach("A1", give=True).walk(scene.EXIT, 20)
    put_back_frame = 1 + 10 + 6 + 4 + 8 + 3 + 1  # the middle frame of the second reach
    second = scene.actor(2)
    second.walk((a1[0] - 25.0, a1[1] + 30.0), 1).wait(put_back_frame + gap - 5)
    second.reach("A1", take=True).walk(scene.EXIT, 20)
    return put_back_frame


def test_misshelved_item_taken_by_another_shopper_is_charged_to_them(scene, layout):
    put_back_frame = misshelve_then_pick(scene, gap=20)
    frames = scene.frames()
    assert [(e["type"], e["shopper_id"], e["sku"], e["slot"], e["frame"]) for e in scene.events][1:] == [
        ("put_back", 1, "cheese", "A1", put_back_frame),
        ("pick", 2, "cheese", "A1", put_back_frame + 20),
    ]
    engine = run_frames(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}, "2": {"cheese": 1}}
    assert [(e.type, e.shopper_id, e.sku, e.slot) for e in engine.events] == [
        ("pick", 1, "cheese", "A3"),
        ("put_back", 1, "cheese", "A1"),
        ("pick", 2, "cheese", "A1"),
    ]


def test_misshelved_item_taken_moments_later_while_the_slot_was_hidden(scene, layout):
    """The camera saw apples on A1 just before the cheese was left there, and nothing since (arms over
    the shelf): that old view says nothing about the top after the booked put-back. The cheese in the
    second shopper's hand is a pick of the misplaced cheese, not a misread to refuse."""
    put_back_frame = misshelve_then_pick(scene, gap=6)
    frames = hide_slot(scene.frames(), scene.slot_center("A1"), put_back_frame, put_back_frame + 12)
    engine = run_frames(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}, "2": {"cheese": 1}}
    assert [(e.type, e.shopper_id, e.sku) for e in engine.events] == [
        ("pick", 1, "cheese"),
        ("put_back", 1, "cheese"),
        ("pick", 2, "cheese"),
    ]


# A strip of narrow wall slots (17 px, as on the simulator's wall shelf): an apple slot and two cola slots.
NARROW = StoreLayout(
    slots=(
        Slot(shelf="W", name="W-06", sku="apple", box=(100.0, 0.0, 117.0, 22.0)),
        Slot(shelf="W", name="W-11", sku="cola", box=(194.0, 0.0, 211.0, 22.0)),
        Slot(shelf="W", name="W-12", sku="cola", box=(211.0, 0.0, 228.0, 22.0)),
    ),
    entrance=(0.0, 200.0, 22.0, 240.0),
    exit=(298.0, 200.0, 320.0, 240.0),
)


def _body(center, left_wrist=None) -> ShopperObservation:
    """Track 1 seen from above at `center`; the left wrist at `left_wrist` (else at rest)."""
    cx, cy = center
    left = left_wrist if left_wrist is not None else (cx - 9.0, cy + 8.0)
    right = (cx + 9.0, cy + 8.0)
    points = [
        (cx, cy),
        (cx - 8, cy),
        (cx + 8, cy),
        ((cx - 8 + left[0]) / 2, (cy + left[1]) / 2),
        (cx + 8, cy + 4),
    ]
    points += [left, right]
    keypoints = np.array([(x, y, 1.0) for x, y in points])
    return ShopperObservation(track_id=1, box=(cx - 12, cy - 12, cx + 12, cy + 12), keypoints=keypoints)


def _item(sku, point) -> ProductObservation:
    return ProductObservation(
        sku=sku, box=(point[0] - 4, point[1] - 4, point[0] + 4, point[1] + 4), score=0.95
    )


def test_shallow_misshelved_put_back_is_booked_where_the_item_landed():
    """Seen in oracle mode on a random video: standing back from the wall, a shopper stretches to leave
    an apple in cola slot W-12. The clamped wrist passes 9.9 px from W-11's center on the way and only
    comes 10.8 px from W-12's, where it lets go. The apple shows on top of W-12 from then on: the
    put-back is W-12's, not a rejected one into W-11 (which would still charge the apple)."""
    tops = {"W-06": ["apple", "apple"], "W-11": ["cola"] * 3, "W-12": ["cola"] * 3}
    centers = {slot.name: slot.center for slot in NARROW.slots}
    # the left wrist's path towards W-12, frame by frame, from the failing video; it lets go at frame 61
    stretch = {
        51: (199.5, 22.0), 52: (199.5, 22.0), 53: (199.5, 22.0), 54: (199.5, 22.0), 55: (199.5, 22.0),
        56: (200.4, 21.8), 57: (202.7, 21.1), 58: (205.7, 20.4), 59: (208.7, 19.6), 60: (211.0, 18.9),
        61: (212.0, 18.7), 62: (210.2, 19.5), 63: (206.0, 21.4), 64: (201.0, 23.8), 65: (196.8, 25.7),
        66: (195.0, 26.5),
    }  # fmt: skip
    frames, holding = [], None
    for frame in range(1, 100):
        left = None
        if frame <= 30:  # at the apple slot: a full reach in, the apple taken at frame 16
            center = (108.5, 45.0)
            if 13 <= frame <= 19:
                depth = 1.0 - abs(frame - 16) / 4
                left = (99.5 + (108.5 - 99.5) * depth, 53.0 + (11.0 - 53.0) * depth)
            if frame == 16:
                holding = tops["W-06"].pop()
        elif frame <= 40:  # walk along the wall
            center = (108.5 + (210.0 - 108.5) * (frame - 30) / 10, 45.0)
        elif frame <= 85:
            center = (210.0, 45.0)
            left = stretch.get(frame)
            if frame == 61:
                tops["W-12"].append(holding)
                holding = None
        else:  # and away
            center = (210.0, 45.0 + 6.0 * (frame - 85))
        body = _body(center, left)
        products = [_item(stack[-1], centers[name]) for name, stack in tops.items() if stack]
        if holding is not None:
            products.append(_item(holding, tuple(body.keypoints[5][:2])))
        frames.append(FrameObservation(frame=frame, shoppers=(body,), products=tuple(products)))
    engine = run_frames(frames, NARROW)
    assert [(e.type, e.sku, e.slot, e.frame) for e in engine.events] == [
        ("pick", "apple", "W-06", 16),
        ("put_back", "apple", "W-12", 61),
    ]
    assert engine.carts() == {1: {}}
