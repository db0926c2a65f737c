"""Mis-shelved items in the engine: a put-back into a slot of another SKU is booked by what the hand
released, and a later pick from that slot by what the hand took (hand-built scenes, exact inputs)."""

from __future__ import annotations

from walkout.engine import Engine
from walkout.observations import FrameObservation


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
