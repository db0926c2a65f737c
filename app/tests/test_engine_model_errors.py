"""The engine under the errors real models make (each seen in QC on simulator videos).

Trackers split one person into two tracks, swap ids and revive old ones; detectors lose a held item
for a second; a tracker drops a body half out of the image before it has left. Each test scripts one
such error into hand-built frames and fails without the rule that absorbs it.
"""

from __future__ import annotations

import dataclasses

import pytest

from walkout.engine import Engine, EngineConfig, overlap_of_smaller, shoppers_doubled_through_a_shared_wrist
from walkout.errors import ConfigError
from walkout.observations import (
    FrameObservation,
    ProductObservation,
    ShopperObservation,
    box_center,
    point_in_box,
)

from .test_engine import near


def _shift_box(box, dx=0.0, dy=0.0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def _with_shoppers(frame: FrameObservation, shoppers) -> FrameObservation:
    return FrameObservation(frame=frame.frame, shoppers=tuple(shoppers), products=frame.products)


def _renumber(frames, old: int, new: int, after: int):
    """The tracker gives track `old` the id `new` from frame `after` + 1 on."""
    result = []
    for frame in frames:
        if frame.frame > after:
            frame = _with_shoppers(
                frame,
                [dataclasses.replace(s, track_id=new) if s.track_id == old else s for s in frame.shoppers],
            )
        result.append(frame)
    return result


def _restart_track(frames, old: int, new: int, turn: int, *, drift: tuple[float, float], coast: int = 2):
    """From frame `turn` on, the body is track `new`; track `old` stays `coast` more frames on its
    last box moved by `drift` (a Kalman box that slid off the body as it turned)."""
    frames = _renumber(frames, old, new, after=turn - 1)
    before = next(s for f in frames if f.frame == turn - 1 for s in f.shoppers if s.track_id == old)
    ghost = dataclasses.replace(before, box=_shift_box(before.box, *drift))
    return [_with_shoppers(f, [*f.shoppers, ghost]) if turn <= f.frame < turn + coast else f for f in frames]


def _miss_held_items(frames, first: int, last: int):
    """The detector misses every product away from the shelf (below y = 45) in frames first..last."""
    result = []
    for frame in frames:
        if first <= frame.frame <= last:
            products = tuple(p for p in frame.products if box_center(p.box)[1] < 45)
            frame = FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products)
        result.append(frame)
    return result


def _clipped_to_image(frames):
    """Boxes cut at the image's right (320) and bottom (240) borders, as a body leaving it is seen."""
    clipped = []
    for frame in frames:
        shoppers = [
            dataclasses.replace(s, box=(s.box[0], s.box[1], min(s.box[2], 320.0), min(s.box[3], 240.0)))
            for s in frame.shoppers
        ]
        clipped.append(_with_shoppers(frame, shoppers))
    return clipped


def _feed(frames, layout, config: EngineConfig | None = None) -> Engine:
    engine = Engine(layout=layout, config=config)
    for frame in frames:
        engine.step(frame)
    engine.finish()
    return engine


def test_a_duplicate_track_born_on_a_shopper_gets_no_cart(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((160.0, 120.0), 8).wait(12).walk(scene.EXIT, 12)
    frames = scene.frames()
    # frames 30-41: the tracker also reports a second, slightly shifted box on the same person
    split = []
    for frame in frames:
        if 30 <= frame.frame <= 41:
            original = frame.shoppers[0]
            twin = ShopperObservation(
                track_id=99, box=_shift_box(original.box, 2.0, 1.0), keypoints=original.keypoints.copy()
            )
            frame = _with_shoppers(frame, [*frame.shoppers, twin])
        split.append(frame)
    engine = _feed(split, layout)
    assert engine.shopper_of_track(99) is None
    assert set(engine.trajectories) == {1}
    assert engine.receipts_json() == {"1": {"apple": 1}}


def test_a_held_item_stays_with_its_holder_when_another_hand_comes_closer(scene, layout):
    holder, neighbour = scene.actor(1), scene.actor(2)
    holder.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    holder.walk((160.0, 120.0), 8).wait(16).walk(scene.EXIT, 12)
    neighbour.walk((30.0, 210.0), 1).walk((178.0, 124.0), 20).wait(14).walk(scene.EXIT, 14)
    frames = scene.frames()
    # frames 28-39: the neighbour's wrist lies on the held apple, the holder's 3 px from it
    touched = []
    for frame in frames:
        if 28 <= frame.frame <= 39:
            apple = next(p for p in frame.products if p.sku == "apple" and box_center(p.box)[1] > 60)
            x, y = box_center(apple.box)
            shoppers = []
            for s in frame.shoppers:
                points = s.keypoints.copy()
                points[6, :2] = (x, y) if s.track_id == 2 else (x + 3.0, y)
                shoppers.append(dataclasses.replace(s, keypoints=points))
            frame = _with_shoppers(frame, shoppers)
        touched.append(frame)
    engine = _feed(touched, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}, "2": {}}
    assert not [e for e in engine.events if e.type == "handover"]


@pytest.mark.parametrize("revived_tracks_return", [False, True])
def test_a_revived_track_id_does_not_bring_back_the_shopper_it_lost(scene, layout, revived_tracks_return):
    first, newcomer = scene.actor(1), scene.actor(50)
    first.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    first.walk((160.0, 120.0), 8).wait(20).walk(scene.EXIT, 12)
    newcomer.at(40).walk(scene.ENTRANCE, 1).wait(4).walk((100.0, 150.0), 10).walk(scene.EXIT, 20)
    frames = scene.frames()
    # The tracker renames the first shopper 7 at frame 30 and later hands the freed id 1 to the
    # newcomer at the entrance.
    frames = _renumber(_renumber(frames, 1, 7, after=30), 50, 1, after=0)
    # (revived on a newcomer out of their walking reach, the old id is not theirs with
    # `revived_tracks_return` either)
    engine = _feed(frames, layout, EngineConfig(revived_tracks_return=revived_tracks_return))
    receipts = engine.receipts_json()
    assert receipts["1"] == {"apple": 1}
    assert sorted(map(str, receipts.values())) == sorted(map(str, [{"apple": 1}, {}]))
    # shopper 1 is the one who took the apple all along, never the newcomer
    last_seen_as_7 = max(f.frame for f in frames if any(s.track_id == 7 for s in f.shoppers))
    assert max(engine.trajectories[1]) == last_seen_as_7


def test_an_item_the_detector_lost_for_a_moment_is_not_put_back(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.wait(24).walk(near(scene.slot_center("A3")), 8).reach("A3", hand="left").walk(scene.EXIT, 15)
    # frames 20-31, while the shopper stands at A1: the held apple is not detected
    engine = _feed(_miss_held_items(scene.frames(), 20, 31), layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    types = [e.type for e in engine.events]
    assert types.count("pick") == 1 and "put_back" not in types


def _exit_layout(layout):
    return dataclasses.replace(layout, exit_side="right")


def _walk_out(scene, *, frames_to_border: int):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A2")), 10).reach("A2", take=True)
    shopper.walk((280.0, 220.0), 12).walk((306.0, 220.0), frames_to_border)
    return scene.frames()


def test_a_shopper_still_in_the_doorway_when_the_video_ends_gets_no_receipt(scene, layout):
    # slowly (about 1 px a frame) towards the right border; the video ends 1 frame after the tracker
    # lost them with their box 14 px inside the image: they have not walked out yet
    frames = _walk_out(scene, frames_to_border=26)
    engine = _feed(frames[:-5], _exit_layout(layout))
    assert engine.receipts_json() == {}
    assert engine.carts() == {1: {"bread": 1}}


def test_a_shopper_striding_out_as_the_video_ends_gets_a_receipt(scene, layout):
    # fast (about 9 px a frame): their box would have crossed the border by the last frame
    frames = _walk_out(scene, frames_to_border=3)
    engine = _feed(frames[:-3], _exit_layout(layout))
    assert engine.receipts_json() == {"1": {"bread": 1}}
    # decided by the video's end, not by a confirmed exit: flagged for a person to look at
    (reason,) = engine.review_reasons()["1"]
    assert "the video ended" in reason and "doorway" in reason
    unflagged = _feed(frames[:-3], _exit_layout(layout), EngineConfig(review_end_of_video_exits=False))
    assert unflagged.receipts_json() == {"1": {"bread": 1}} and unflagged.review_reasons() == {"1": []}
    # a shopper whose exit was confirmed before the video ended is not flagged
    assert _feed(frames, _exit_layout(layout)).review_reasons() == {"1": []}


def _feed_looking_at_the_doorway(frames, layout, doorway, config: EngineConfig | None = None) -> Engine:
    engine = Engine(layout=layout, config=config)
    for frame in frames:
        engine.step(frame)
    engine.finish(doorway=doorway)
    return engine


def _lost_at_the_border(scene, *, gone: int):
    """A shopper walks slowly (1 px a frame) to the right border with a bread; the tracker loses the
    body once its box touches the border (rows 208-232), and the video ends `gone` frames later."""
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A2")), 10).reach("A2", take=True)
    shopper.walk((280.0, 220.0), 12).walk((309.0, 220.0), 29)
    frames = _clipped_to_image(scene.frames())
    lost = next(i for i, f in enumerate(frames) if f.shoppers and f.shoppers[0].box[2] >= 318.0)
    return frames[: lost + 1] + [_with_shoppers(frames[lost + k], []) for k in range(1, gone + 1)]


def test_the_last_frames_look_at_the_doorway_decides_who_walked_out(scene, layout):
    # Lost at the border 2 frames before the end, walking 1 px a frame: by walking speed the rest of
    # the body (14 px) is still in the doorway, so without a look no receipt is issued.
    frames = _lost_at_the_border(scene, gone=2)
    exit_layout = _exit_layout(layout)
    assert _feed(frames, exit_layout).receipts_json() == {}
    # The last frame shows nothing at the border: the body has gone (a receipt, flagged as the end's call)
    engine = _feed_looking_at_the_doorway(frames, exit_layout, doorway=())
    assert engine.receipts_json() == {"1": {"bread": 1}}
    assert "the video ended 2 frame(s)" in engine.review_reasons()["1"][0]
    # ... something at the border along the rows where the body was lost: still in the doorway
    engine = _feed_looking_at_the_doorway(frames, exit_layout, doorway=((212, 226),))
    assert engine.receipts_json() == {} and engine.carts() == {1: {"bread": 1}}
    # ... something far along the border from there is not this shopper
    assert _feed_looking_at_the_doorway(frames, exit_layout, doorway=((20, 40),)).receipts_json() == {
        "1": {"bread": 1}
    }
    # ... something there, all of it within the box of a second shopper standing tracked in the
    # doorway all along: that is the second shopper's body, and the first has gone
    other = dataclasses.replace(frames[-3].shoppers[0], track_id=2, box=(300.0, 180.0, 320.0, 206.0))
    with_other = [_with_shoppers(f, [*f.shoppers, other]) for f in frames]
    assert _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((190, 204),)).receipts_json() == {
        "1": {"bread": 1}
    }
    # ... reaching past that box into the first one's rows (206-212): the first is still there too
    assert _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((190, 212),)).receipts_json() == {}
    # ... something there, all of it within the box of a second shopper tracked at the border beside
    # the rows where the first was lost (208-232): the two bodies look like one there, the look cannot
    # say the first has gone, and by walking speed they have not (2413/val_0001 of the 27th round)
    beside = dataclasses.replace(frames[-3].shoppers[0], track_id=2, box=(296.0, 200.0, 320.0, 226.0))
    with_beside = [_with_shoppers(f, [*f.shoppers, beside]) for f in frames]
    assert _feed_looking_at_the_doorway(with_beside, exit_layout, doorway=((204, 222),)).receipts_json() == {}
    # ... while with the border empty there, they have gone
    assert _feed_looking_at_the_doorway(with_beside, exit_layout, doorway=()).receipts_json() == {
        "1": {"bread": 1}
    }
    # off: the look is ignored
    off = EngineConfig(end_doorway_frames=0)
    assert _feed_looking_at_the_doorway(frames, exit_layout, doorway=(), config=off).receipts_json() == {}


def test_a_track_that_coasts_back_off_a_body_walking_out_still_walks_out(scene, layout):
    # A shopper walks out through the exit's image border above the painted exit zone; the tracker's
    # box reaches the border, then coasts 5 and 10 px back into the store, off the body, and is lost
    # there (2410/val_0006 of the 27th round: a whole receipt never issued).
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A2")), 10).reach("A2", take=True)
    shopper.walk((280.0, 150.0), 12).walk((309.0, 150.0), 29).walk((340.0, 150.0), 31)
    frames = _clipped_to_image(scene.frames())
    at_border = next(i for i, f in enumerate(frames) if f.shoppers and f.shoppers[0].box[2] >= 318.0)
    last = frames[at_border].shoppers[0]
    coasting = [
        _with_shoppers(
            frames[at_border + k], [dataclasses.replace(last, box=_shift_box(last.box, dx=-5.0 * k))]
        )
        for k in (1, 2)
    ]
    gone = [_with_shoppers(frames[at_border + k], []) for k in range(3, 13)]
    walked_out = frames[: at_border + 1] + coasting + gone
    assert _feed(walked_out, _exit_layout(layout)).receipts_json() == {"1": {"bread": 1}}
    # coasting for longer than `exit_coast_frames` before the loss: lost inside the store
    off = EngineConfig(exit_coast_frames=1)
    assert _feed(walked_out, _exit_layout(layout), off).receipts_json() == {}


def test_a_receipt_issued_while_the_body_is_still_in_the_doorway_at_the_end_is_taken_back(scene, layout):
    # Fast out (9 px a frame): the exit is confirmed `exit_confirm_frames` after the tracker lost the
    # body, and the video ends a frame later, with the rest of the body still lingering in the doorway.
    frames = _walk_out(scene, frames_to_border=3)
    exit_layout = _exit_layout(layout)
    assert _feed(frames, exit_layout).receipts_json() == {"1": {"bread": 1}}
    engine = _feed_looking_at_the_doorway(frames, exit_layout, doorway=((214, 230),))
    assert engine.receipts_json() == {} and engine.carts() == {1: {"bread": 1}}
    # Someone tracked at the border in the last frame over those rows explains what is seen there.
    last = frames[-1]
    other = dataclasses.replace(frames[-7].shoppers[0], track_id=2, box=(300.0, 206.0, 320.0, 236.0))
    with_other = [*frames[:-1], _with_shoppers(last, [*last.shoppers, other])]
    engine = _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((214, 230),))
    assert engine.receipts_json() == {"1": {"bread": 1}}
    # ... but only the part its box covers: rows 200-205 are still the first shopper's body
    engine = _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((200, 230),))
    assert engine.receipts_json() == {}
    # ... and a part only a pixel or two long beside it is that box's edge falling short of its body,
    # not the first shopper (2402/val_0014 of the 27th round: one row left, a receipt taken back)
    engine = _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((204, 230),))
    assert engine.receipts_json() == {"1": {"bread": 1}}
    strict = EngineConfig(end_doorway_min_piece_px=1)
    assert (
        _feed_looking_at_the_doorway(
            with_other, exit_layout, doorway=((204, 230),), config=strict
        ).receipts_json()
        == {}
    )
    # ... and in model mode up to 3 px: the detector's box falls that short of its body at the border
    # (2463/val_0018 of the 28th round: a 3-row strip below a shopper still in view withheld the
    # receipt of one who had left 16 frames before)
    assert _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((203, 230),)).receipts_json() == {}
    slack = EngineConfig(end_doorway_box_slack_px=3)
    engine = _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((203, 230),), config=slack)
    assert engine.receipts_json() == {"1": {"bread": 1}}
    # ... a part a box did not cut off a longer stretch is something the look saw on its own, however short
    engine = _feed_looking_at_the_doorway(with_other, exit_layout, doorway=((200, 202),), config=slack)
    assert engine.receipts_json() == {}
    # A body lost longer ago than `end_doorway_frames` is not the one in the doorway.
    short = EngineConfig(end_doorway_frames=5)
    assert _feed_looking_at_the_doorway(
        frames, exit_layout, doorway=((214, 230),), config=short
    ).receipts_json() == {"1": {"bread": 1}}


def test_an_exit_confirmed_on_the_videos_last_frame_is_flagged(scene, layout):
    # The video ends exactly `exit_confirm_frames` after the tracker lost the shopper at the exit: the
    # receipt is confirmed on the last frame itself, with nothing after it that could show the shopper
    # still in the doorway, so it is the video end's call as much as one issued at the end (flagged).
    frames = _walk_out(scene, frames_to_border=3)[:-1]
    engine = _feed(frames, _exit_layout(layout))
    assert engine.receipts_json() == {"1": {"bread": 1}}
    (reason,) = engine.review_reasons()["1"]
    assert "the video ended 5 frame(s)" in reason and "doorway" in reason
    unflagged = _feed(frames, _exit_layout(layout), EngineConfig(review_end_of_video_exits=False))
    assert unflagged.receipts_json() == {"1": {"bread": 1}} and unflagged.review_reasons() == {"1": []}


def test_a_shopper_leaving_through_the_exit_corner_gets_a_receipt_in_oracle_mode(scene, layout):
    # Ground truth: the simulator stops annotating a person under 5% visible. Leaving slowly through
    # the corner, the last annotated box is an 8 px sliver at the border; the video ends 4 frames on.
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A2")), 10).reach("A2", take=True)
    shopper.walk((280.0, 220.0), 12).walk((324.0, 226.0), 44)
    clipped = _clipped_to_image(scene.frames())
    last_box = next(f for f in reversed(clipped) if f.shoppers).shoppers[0].box
    assert 311.0 <= last_box[0] <= 313.0 and last_box[2] == 320.0
    engine = _feed(clipped[:-2], _exit_layout(layout))
    assert engine.receipts_json() == {"1": {"bread": 1}}


def _move_wrist(frame: FrameObservation, track_id: int, to: tuple[float, float]) -> FrameObservation:
    """The pose model draws a wrist at `to`; the item held there is drawn with it."""
    shoppers, products = [], list(frame.products)
    for s in frame.shoppers:
        if s.track_id == track_id:
            old = (float(s.keypoints[6, 0]), float(s.keypoints[6, 1]))
            products = [
                dataclasses.replace(p, box=_shift_box(p.box, to[0] - old[0], to[1] - old[1]))
                if abs(box_center(p.box)[0] - old[0]) < 0.5 and abs(box_center(p.box)[1] - old[1]) < 0.5
                else p
                for p in products
            ]
            points = s.keypoints.copy()
            points[6, :2] = to
            s = dataclasses.replace(s, keypoints=points)
        shoppers.append(s)
    return FrameObservation(frame=frame.frame, shoppers=tuple(shoppers), products=tuple(products))


def test_a_pick_booked_at_a_slot_showing_another_sku_moves_to_the_slot_the_hand_visited(scene, layout):
    # Pose drift: on the way in the wrist comes within 10 px of A2 (bread), at its deepest it is
    # drawn 6 px from A1 (apple); the bread in the hand cannot have come from A1.
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A2")), 10).reach("A2", take=True)
    shopper.walk(scene.EXIT, 15)
    drawn = {12: (95.0, 50.0), 13: (95.0, 44.0), 14: (95.0, 40.0), 15: (61.0, 30.0), 16: (95.0, 40.0)}
    frames = [_move_wrist(f, 1, drawn[f.frame]) if f.frame in drawn else f for f in scene.frames()]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == {"1": {"bread": 1}}
    [pick] = [e for e in engine.events if e.type == "pick"]
    assert pick.slot == "A2" and pick.review and "A1" in pick.review


def test_a_pick_lost_in_a_track_swap_is_charged_to_the_relinked_shopper(scene, layout):
    taker, neighbour = scene.actor(3), scene.actor(2)
    taker.walk(scene.ENTRANCE, 1).walk((55.0, 55.0), 10).reach("A1", take=True).wait(12).walk(scene.EXIT, 15)
    neighbour.walk((30.0, 210.0), 1).walk((75.0, 55.0), 10).wait(18).walk(scene.EXIT, 15)
    swapped = []
    for frame in scene.frames():
        if frame.frame >= 16:
            # the tracker moves id 3 onto the neighbour and drops id 2; the taker vanishes for two
            # frames and comes back as id 4, which re-links to the neighbour's lost shopper
            shoppers = []
            for s in frame.shoppers:
                if s.track_id == 2:
                    shoppers.append(dataclasses.replace(s, track_id=3))
                elif frame.frame >= 18:
                    shoppers.append(dataclasses.replace(s, track_id=4))
            frame = _with_shoppers(frame, shoppers)
        swapped.append(frame)
    engine = _feed(swapped, layout)
    # engine shopper 2 walked out on the taker's body: the apple is charged to them, flagged
    assert engine.receipts_json() == {"2": {"apple": 1}, "3": {}}
    [pick] = [e for e in engine.events if e.type == "pick"]
    assert pick.shopper_id == 2 and pick.review and "pick not seen" in pick.review


def test_an_item_out_of_view_away_from_the_shelves_is_not_charged_again_when_it_reappears(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((160.0, 120.0), 8).wait(16).walk(near(scene.slot_center("A1")), 8).reach("A1", hand="left")
    shopper.walk(scene.EXIT, 15)
    # from the middle of the store back to the shelf the apple is not detected
    engine = _feed(_miss_held_items(scene.frames(), 26, 53), layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    assert [e.type for e in engine.events].count("pick") == 1


def test_an_item_seen_in_the_hand_only_after_the_reach_is_charged_at_that_reach(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((160.0, 120.0), 8).wait(10).walk(scene.EXIT, 15)
    # the taken apple is missed until the shopper is away from the shelf
    engine = _feed(_miss_held_items(scene.frames(), 15, 26), layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [pick] = [e for e in engine.events if e.type == "pick"]
    assert pick.slot == "A1" and pick.frame <= 17 and "after the reach" in pick.review


def test_a_track_born_beside_a_shopper_as_they_are_lost_continues_that_shopper(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((160.0, 120.0), 8).wait(6).walk(scene.EXIT, 15)
    frames = scene.frames()
    [pick] = scene.events
    turn = pick["frame"] + 3
    # The shopper turns away from the shelf: the tracker starts track 7 on the body while track 1
    # coasts two more frames on a box that drifted off it (too little overlap to be a duplicate).
    frames = _restart_track(frames, 1, 7, turn, drift=(-14.0, -14.0))
    engine = _feed(frames, layout)
    assert engine.receipts_json() == {"1": {"apple": 1}}
    assert engine.shopper_of_track(7) == 1


def test_a_track_born_on_a_shopper_that_outlived_them_walks_out_as_that_shopper(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk((160.0, 120.0), 10).wait(25)
    shopper.walk(near(scene.slot_center("A1")), 10).reach("A1", take=True).walk(scene.EXIT, 15)
    frames = scene.frames()
    # Standing in the aisle, the body gets a second track (7), which then keeps it; track 1 stays
    # 15 frames on a box beside it and is lost for good, far longer than `takeover_frames`. Track 7
    # takes the apple and walks out; it never walked in.
    frames = _restart_track(frames, 1, 7, 20, drift=(-14.0, -14.0), coast=15)
    engine = _feed(frames, layout)
    assert engine.receipts_json() == {"1": {"apple": 1}}
    assert [e.shopper_id for e in engine.events] == [1]
    assert set(engine.trajectories) == {1}
    # the newcomer's reason for review goes with the receipt
    assert any("away from the entrance" in r for r in engine.review_reasons()["1"])

    off = _feed(frames, layout, EngineConfig(exit_takeover_frames=0))
    assert off.receipts_json() == {"7": {"apple": 1}}


def test_a_track_born_inside_is_not_merged_into_a_shopper_lost_far_from_it(scene, layout):
    lost = scene.actor(1)
    lost.walk(scene.ENTRANCE, 1).walk((250.0, 120.0), 10).wait(10).vanish(40)
    # another person first seen in the aisle as shopper 1 is lost 150 px away: someone else
    other = scene.actor(2).at(15)
    other.walk((100.0, 120.0), 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    other.walk(scene.EXIT, 15)
    engine = _feed(scene.frames(), layout)
    assert engine.receipts_json() == {"2": {"apple": 1}}


def test_a_lost_track_id_revived_across_the_store_is_not_its_old_shopper(scene, layout):
    leaver, stayer = scene.actor(1), scene.actor(2)
    leaver.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    leaver.walk(scene.EXIT, 15)
    stayer.walk((30.0, 210.0), 1).walk(near(scene.slot_center("A3")), 10).reach("A3", take=True)
    stayer.walk((100.0, 110.0), 8).wait(40).walk(scene.EXIT, 15)
    frames = scene.frames()
    leaver_last = max(f.frame for f in frames if any(s.track_id == 1 for s in f.shoppers))
    # Two frames after the leaver's track ends at the exit, the tracker re-identifies id 1 on the
    # other shopper, across the store, and drops id 2.
    frames = _renumber(frames, 2, 1, after=leaver_last + 1)
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}, "2": {"cheese": 1}}


def test_a_put_back_seen_before_it_happened_is_booked_once_the_slot_shows_the_item(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True).wait(10)
    shopper.walk(near(scene.slot_center("A3")), 6).reach("A3").wait(4).reach("A3", give=True)
    shopper.walk(scene.EXIT, 15)
    frames = scene.frames()
    [_, put_back] = scene.events
    first_reach = put_back["frame"] - 10  # the middle of the reach before the one that gives
    a1 = scene.slot_center("A1")
    # The detector loses the held apple from the first reach into A3 until it lies in the slot: the
    # engine reads the first reach as the put-back, while A3 still shows cheese on top.
    lost = []
    for frame in frames:
        if first_reach - 1 <= frame.frame <= put_back["frame"]:
            kept = tuple(p for p in frame.products if p.sku != "apple" or box_center(p.box) == a1)
            frame = FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=kept)
        lost.append(frame)
    engine = _feed(lost, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    [booked] = [e for e in engine.events if e.type == "put_back"]
    assert booked.slot == "A3" and "only" in booked.review


def test_a_track_restarted_at_the_entrance_on_a_body_in_full_view_continues_that_shopper(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((50.0, 185.0), 10).wait(6).walk(scene.EXIT, 20)
    frames = scene.frames()
    # Back by the entrance, the shopper turns: track 7 starts on the body (wholly in view, not
    # walking in from outside the image) while track 1 coasts two frames on a drifted box.
    [pick] = scene.events
    turn = pick["frame"] + 14  # standing by the entrance (the walk there ends 12 frames after the pick)
    frames = _restart_track(frames, 1, 7, turn, drift=(14.0, -14.0))
    engine = _feed(frames, layout)
    assert engine.receipts_json() == {"1": {"apple": 1}}


def test_a_put_back_booked_at_a_slot_beside_the_one_that_received_the_item_is_moved_there(scene, layout):
    # A cheese (from A3) is left in the apple slot A1 (mis-shelved), but pose draws the wrist's deepest
    # point 5 px from A2 (bread). A2 shows bread after the reach, A1 changes to cheese: the item went
    # into A1, so the shopper is not charged (without the rule: "still charged", a false charge).
    shopper = scene.actor(1)
    a1 = scene.slot_center("A1")
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A3")), 10).reach("A3", take=True).wait(4)
    shopper.walk(near(a1, 20.0), 8).reach("A1", give=True).walk(scene.EXIT, 20)
    frames = scene.frames()
    [_, put_back] = scene.events
    deepest = put_back["frame"]
    drawn = {deepest - 1: (a1[0], a1[1] + 10.0), deepest: (90.0, 30.0), deepest + 1: (a1[0], a1[1] + 10.0)}
    frames = [_move_wrist(f, 1, drawn[f.frame]) if f.frame in drawn else f for f in frames]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    [booked] = [e for e in engine.events if e.type == "put_back"]
    assert booked.slot == "A1" and "booked at A2" in booked.review


def _take_an_apple_then_reach_into_a3(scene) -> None:
    """Shopper 1 takes an apple from A1, walks off for 18 frames, reaches into A3 (cheese), leaves."""
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((135.0, 70.0), 8).wait(10).walk(near(scene.slot_center("A3")), 5).reach("A3", hand="left")
    shopper.walk(scene.EXIT, 15)


def test_an_item_first_read_after_a_reach_into_another_slot_is_charged_at_the_earlier_reach(scene, layout):
    _take_an_apple_then_reach_into_a3(scene)
    # the taken apple is missed until the shopper reaches into A3 (cheese), half a second later: it
    # is first read in the hand after that reach, which cannot have given it
    engine = _feed(_miss_held_items(scene.frames(), 15, 43), layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [pick] = [e for e in engine.events if e.type == "pick"]
    assert pick.slot == "A1" and pick.frame <= 17
    assert "first read in the hand after a reach into A3" in pick.review


def test_an_item_missed_for_a_whole_walk_between_shelves_is_charged_at_the_earlier_reach(scene, layout):
    # As above, but the shopper walks about for 6 seconds before the reach into A3 (2432/val_0001 of
    # the 27th round: a truffle unseen for 78 frames, then refused after a reach into a cola slot)
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((135.0, 70.0), 8).wait(60).walk(near(scene.slot_center("A3")), 5).reach("A3", hand="left")
    shopper.walk(scene.EXIT, 15)
    frames = _miss_held_items(scene.frames(), 15, 93)
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [pick] = [e for e in engine.events if e.type == "pick"]
    assert pick.slot == "A1" and "first read in the hand after a reach into A3" in pick.review
    # only the reaches of the last `late_pick_frames`: refused, and the apple is missed
    short = _feed(frames, layout, EngineConfig(earlier_reach_frames=40))
    assert short.receipts_json() == {"1": {}}
    assert [e.type for e in short.events] == ["rejected_pick"]


def test_a_second_unit_read_after_a_reach_into_another_slot_is_not_charged_at_a_reach_that_gave_one(
    scene, layout
):
    _take_an_apple_then_reach_into_a3(scene)
    # after the reach into A3 the detector sees the apple in the right hand in the left one too
    frames = []
    for frame in scene.frames():
        held = [p for p in frame.products if box_center(p.box)[1] >= 45]
        if frame.frame >= 47 and held:
            [held] = held
            x, y = box_center(held.box)
            lx, ly = frame.shoppers[0].keypoints[5, :2]
            ghost = dataclasses.replace(held, box=_shift_box(held.box, dx=lx - x, dy=ly - y))
            frame = FrameObservation(
                frame=frame.frame, shoppers=frame.shoppers, products=(*frame.products, ghost)
            )
        frames.append(frame)
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    assert [e.type for e in engine.events].count("pick") == 1


def test_a_second_unit_read_after_a_reach_elsewhere_is_not_charged_at_an_earlier_empty_reach(scene, layout):
    # The shopper reaches into A1 and comes away empty, reaches in again and takes an apple (booked),
    # then reaches into A3 (cheese), after which the detector sees the held apple in the left hand too.
    # That "second apple" cannot come from A3; the earlier reach into A1 showed apples, but A1 has
    # given this shopper its apple since: the apple read now is that one (without the rule: a second
    # apple booked at the empty reach, a false charge; afterlook seed 2372/val_0016, a tea).
    a1, a3 = scene.slot_center("A1"), scene.slot_center("A3")
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(a1), 10).reach("A1").walk((135.0, 70.0), 3)
    shopper.walk(near(a1), 3).reach("A1", take=True).walk((135.0, 70.0), 6).wait(6).walk(near(a3), 5)
    shopper.reach("A3", hand="left").walk(scene.EXIT, 15)
    frames = scene.frames()
    [pick] = scene.events
    at_a3 = min(
        (f for f in frames if f.frame > pick["frame"] + 4 and f.shoppers),
        key=lambda f: abs(f.shoppers[0].keypoints[5, 0] - a3[0]) + abs(f.shoppers[0].keypoints[5, 1] - a3[1]),
    ).frame
    ghosted = []
    for frame in frames:
        held = [p for p in frame.products if box_center(p.box)[1] >= 45]
        if frame.frame >= at_a3 + 2 and len(held) == 1:
            x, y = box_center(held[0].box)
            lx, ly = frame.shoppers[0].keypoints[5, :2]
            ghost = dataclasses.replace(held[0], box=_shift_box(held[0].box, dx=lx - x, dy=ly - y))
            frame = FrameObservation(
                frame=frame.frame, shoppers=frame.shoppers, products=(*frame.products, ghost)
            )
        ghosted.append(frame)
    engine = _feed(ghosted, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    assert [(e.type, e.frame) for e in engine.events if e.type == "pick"] == [("pick", pick["frame"])]


def test_a_sliver_still_boxed_at_the_exit_when_the_video_ends_has_walked_out_if_configured(scene, layout):
    # A detector that learned partly visible persons boxes a body down to a few pixels; the simulator
    # stops annotating it (and counts the shopper as gone) under 5% in view.
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A2")), 10).reach("A2", take=True)
    shopper.walk((280.0, 220.0), 12).walk((340.0, 220.0), 40)
    clipped = _clipped_to_image(scene.frames())
    # the video ends on the first frame where no more than 4 px of the body is boxed
    end = next(
        i for i, f in enumerate(clipped) if f.shoppers and f.shoppers[0].box[2] - f.shoppers[0].box[0] <= 4.0
    )
    assert clipped[end].shoppers[0].box[2] - clipped[end].shoppers[0].box[0] > 2.0
    frames = clipped[: end + 1]
    exit_layout = _exit_layout(layout)
    assert _feed(frames, exit_layout).receipts_json() == {}  # default: seen in the last frame = still here
    sliver = EngineConfig(end_sliver_px=4.5)
    assert _feed(frames, exit_layout, sliver).receipts_json() == {"1": {"bread": 1}}
    # a wider body in the doorway is still in the store
    assert _feed(clipped[: end - 3], exit_layout, sliver).receipts_json() == {}


def test_a_put_back_is_booked_where_the_slot_shows_the_item_not_at_a_deeper_reach_after_it(scene, layout):
    # The shopper puts the apple back into A1, stands at the shelf with the hands out of sight for 16
    # frames, then reaches into A2 (bread) before the hands are read again: one long visit. Pose stops
    # the wrist 5 px short in A1, so A2 is the visit's deepest reach; A2 shows bread after it, A1 the
    # apple: the apple went back into A1. Without the rule the put-back is booked at A2, rejected, and
    # the apple stays charged (a false charge); the visit ends long after the reach into A1, so what
    # A1 showed right after it must still be remembered then.
    shopper = scene.actor(1)
    a1 = scene.slot_center("A1")
    shopper.walk(scene.ENTRANCE, 1).walk(near(a1), 10).reach("A1", take=True).wait(10)
    shopper.reach("A1", give=True).wait(16).reach("A2").walk(scene.EXIT, 20)
    frames = scene.frames()
    [_, put_back] = scene.events
    short = put_back["frame"]
    frames = [_move_wrist(f, 1, (a1[0], a1[1] + 5.0)) if f.frame == short else f for f in frames]
    frames = [_hide_wrists(f) if short + 3 <= f.frame <= short + 18 else f for f in frames]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    [booked] = [e for e in engine.events if e.type == "put_back"]
    assert booked.slot == "A1"
    assert not [e for e in engine.events if e.type == "rejected_put_back"]


def _hide_wrists(frame: FrameObservation) -> FrameObservation:
    """Both wrists seen too faintly for the hands to be read (behind a body or a shelf's edge)."""
    shoppers = []
    for s in frame.shoppers:
        points = s.keypoints.copy()
        points[5:7, 2] = 0.5
        shoppers.append(dataclasses.replace(s, keypoints=points))
    return _with_shoppers(frame, shoppers)


def test_a_put_back_read_away_from_the_shelf_goes_to_the_near_slot_showing_the_item(scene, layout):
    # Pose stops the wrist short of the slots: holding the apple, it passes 9 px from A2's center
    # (bread), then the apple goes back into A1 with the wrist 11 px from A1's. The loss is read away
    # from any reach; A2 is the latest approach about as deep as a reach, but A2 shows bread, A1 the
    # apple: the apple went back into A1 (without the rule the put-back is booked at A2, rejected,
    # and the apple stays charged: a false charge).
    shopper = scene.actor(1)
    a1, a2 = scene.slot_center("A1"), scene.slot_center("A2")
    shopper.walk(scene.ENTRANCE, 1).walk(near(a1), 10).reach("A1", take=True).wait(10)
    shopper.wait(5).reach("A1", give=True).walk(scene.EXIT, 20)
    frames = scene.frames()
    [_, put_back] = scene.events
    give = put_back["frame"]
    drawn = {f: (a2[0], a2[1] + 9.0) for f in range(give - 5, give - 3)}
    drawn |= {f: (a1[0], a1[1] + 11.0) for f in range(give - 1, give + 2)}
    frames = [_move_wrist(f, 1, drawn[f.frame]) if f.frame in drawn else f for f in frames]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    [booked] = [e for e in engine.events if e.type == "put_back"]
    assert booked.slot == "A1"


def test_a_shopper_the_exit_border_took_away_from_the_exit_who_walks_on_as_a_new_track_gets_one_receipt(
    scene, layout
):
    # The exit opens to the right image border. Holding an apple, the shopper walks up to that border
    # far above the exit zone, where the tracker loses track 1 (an exit, by the border rule: a receipt)
    # while track 7, born beside the body 7 frames before, walks on: it takes a cheese and leaves
    # through the exit. One shopper, one receipt with both items, flagged; without the rule track 7
    # is charged the cheese (a receipt for nobody) and the shopper's receipt misses it.
    layout = dataclasses.replace(layout, exit_side="right")
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((308.0, 100.0), 20)
    lost = max(shopper.steps)
    newcomer = scene.actor(7).at(lost - 7)
    newcomer.walk((288.0, 100.0), 1).wait(10).walk(near(scene.slot_center("A3")), 15).reach("A3", take=True)
    newcomer.walk(scene.EXIT, 20)
    frames = scene.frames()
    engine = _feed(frames, layout)
    assert engine.receipts_json() == {"1": {"apple": 1, "cheese": 1}}
    assert any("the receipt was amended" in reason for reason in engine.review_reasons()["1"])
    assert {e.shopper_id for e in engine.events if e.type == "pick"} == {1}
    off = _feed(frames, layout, EngineConfig(exit_takeover_at_border=False))
    assert off.receipts_json() == {"1": {"apple": 1}, "7": {"cheese": 1}}


def _take_an_apple_from_hidden_a1_then_reach_into_a2(
    scene, *, wait: int = 5
) -> tuple[list[FrameObservation], dict]:
    """Shopper 1 takes an apple from A1 (its stock hidden from the camera), reaches into A2 (bread)
    with the left hand `wait` frames later, and leaves: (frames, the pick's ground-truth event)."""
    scene.hide_stock = {"A1"}
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.wait(wait).reach("A2", frames=4, hand="left").walk(scene.EXIT, 20)
    frames = scene.frames()
    [pick] = scene.events
    return frames, pick


def test_an_item_misread_in_the_hand_for_a_moment_and_refused_where_it_left_is_not_charged(scene, layout):
    # The shopper takes an apple from A1 (its stock hidden from the camera). Right after, the detector
    # reads a cheese in the other hand until the next reach: a doubtful pick from A1, whose planogram
    # holds apples. On the next reach, into A2, the "cheese" leaves the hand, but A2 goes on showing
    # bread: it was never there, and is not charged (without the rule: "still charged", a false charge).
    frames, pick = _take_an_apple_from_hidden_a1_then_reach_into_a2(scene)
    misread = {pick["frame"] + k for k in (2, 3, 4, 6, 7, 8, 9)}  # one frame read right
    frames = [_with_product_at_left_wrist(f, 1, "cheese") if f.frame in misread else f for f in frames]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [undone] = [e for e in engine.events if e.sku == "cheese"]
    assert undone.type == "rejected_pick" and "a misread" in undone.review


def test_an_item_misread_in_the_hand_until_a_later_reach_that_refuses_it_is_not_charged(scene, layout):
    # As above, but the shopper stands 20 frames before reaching into A2, the "cheese" read in the hand
    # all that while (one frame read right): the refusing reach comes more than `shelf_view_frames`
    # after the doubtful pick, yet within `misread_refused_frames`. First-look seeds 2362 and 2363
    # showed this 25 and 13 frames after the pick (without the rule: "still charged", a false charge).
    frames, pick = _take_an_apple_from_hidden_a1_then_reach_into_a2(scene, wait=20)
    a2_reach = pick["frame"] + 21
    misread = {f for f in range(pick["frame"] + 2, a2_reach + 4) if f != pick["frame"] + 5}
    frames = [_with_product_at_left_wrist(f, 1, "cheese") if f.frame in misread else f for f in frames]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [undone] = [e for e in engine.events if e.sku == "cheese"]
    assert undone.type == "rejected_pick" and "a misread" in undone.review
    off = _feed(frames, layout, EngineConfig(misread_refused_frames=0))
    assert off.receipts_json() == {"1": {"apple": 1, "cheese": 1}}
    assert [e.type for e in off.events if e.sku == "cheese"] == ["pick", "rejected_put_back"]


def _with_product_at_left_wrist(frame: FrameObservation, track_id: int, sku: str) -> FrameObservation:
    """The detector sees a `sku` product in the left hand of `track_id` this frame."""
    shopper = next(s for s in frame.shoppers if s.track_id == track_id)
    x, y = float(shopper.keypoints[5, 0]), float(shopper.keypoints[5, 1])
    product = ProductObservation(sku=sku, box=(x - 4.0, y - 4.0, x + 4.0, y + 4.0), score=0.95)
    return FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=(*frame.products, product))


def test_an_item_back_in_view_takes_no_reach_from_a_put_back_in_the_same_visit(scene, layout):
    # The shopper holds a cheese (left hand) and an apple (right). Standing beside A2, the detector
    # loses the cheese for a while: the cart keeps it (`kept`). Then the apple goes back into A1, the
    # hand brushes A2 on the way out, and the cheese is read again. The cheese is back in view, not
    # taken: it must not take the reach into A1, where the apple went. Without the rule the apple's
    # put-back is pushed to A2, refused (A2 shows bread), and the apple stays charged: a false charge.
    shopper = scene.actor(1)
    a1, a2, a3 = scene.slot_center("A1"), scene.slot_center("A2"), scene.slot_center("A3")
    shopper.walk(scene.ENTRANCE, 1).walk(near(a3), 10).reach("A3", take=True, hand="left")
    shopper.walk(near(a1), 10).reach("A1", take=True).walk(near(a2), 6).wait(12)
    hidden = range(max(shopper.steps) - 11, max(shopper.steps) + 13)
    shopper.walk(near(a1), 6).reach("A1", give=True).reach("A2", frames=4).walk(scene.EXIT, 20)

    def without_held_cheese(frame: FrameObservation) -> FrameObservation:
        products = tuple(p for p in frame.products if not (p.sku == "cheese" and box_center(p.box)[1] > 45))
        return FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products)

    frames = [without_held_cheese(f) if f.frame in hidden else f for f in scene.frames()]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"cheese": 1}}
    [booked] = [e for e in engine.events if e.type == "put_back"]
    assert booked.sku == "apple" and booked.slot == "A1"


@pytest.mark.parametrize("apple_hidden_frames", [0, 16])
def test_an_item_that_leaves_one_hand_at_a_track_swap_and_shows_up_in_the_other_goes_with_it(
    scene, layout, apple_hidden_frames
):
    # Shopper 1 takes an apple from A1 and waits by A2; shopper 2 walks up beside them and reaches
    # into A2 without taking anything. Where the two boxes overlap the tracker swaps their ids: track 1
    # now follows shopper 2's empty hand at A2 (the apple "left the hand" there, refused: A2 shows
    # bread, still charged) and track 2 follows shopper 1, an apple in hand that no reach gave it.
    # The apple goes with the hand that holds it (without the rule track 1 pays for it, and the
    # shopper who walks out with it does not). The gain is read before the refusal is booked (at the
    # end of the reach), or, with the apple unseen for a while after the swap, after it.
    a1, a2 = scene.slot_center("A1"), scene.slot_center("A2")
    first = scene.actor(1)
    first.walk(scene.ENTRANCE, 1).walk(near(a1), 10).reach("A1", take=True).walk(near(a2), 8).wait(30)
    first.walk(scene.EXIT, 25)
    second = scene.actor(2).at(15)
    second.walk(scene.ENTRANCE, 1).walk((a2[0] + 4.0, a2[1] + 25.0), 12).wait(3)
    swap = max(second.steps)
    second.reach("A2", frames=8).wait(10).walk(scene.EXIT, 25)
    frames = _renumber(_renumber(_renumber(scene.frames(), 1, 99, swap), 2, 1, swap), 99, 2, swap)
    frames = _miss_held_items(frames, swap + 1, swap + apple_hidden_frames)
    assert scene.receipts() == {"1": {"apple": 1}, "2": {}}
    engine = _feed(frames, layout)
    assert engine.receipts_json() == {"1": {}, "2": {"apple": 1}}  # the ids swapped at `swap`
    [handover] = [e for e in engine.events if e.type == "handover"]
    assert (handover.shopper_id, handover.to_shopper_id) == (1, 2) and "swapped track ids" in handover.review
    off = _feed(frames, layout, EngineConfig(swap_handover_frames=0))
    assert off.receipts_json() == {"1": {"apple": 1}, "2": {}}


def test_a_put_back_that_landed_beside_a_deeper_reach_made_after_it_is_booked_where_it_landed(scene, layout):
    # The shopper takes an apple from A1 and returns it into A2 (another SKU's slot), the wrist
    # stopping 10 px short of A2's center (near, not a reach); right after, the other hand reaches
    # into A3 before the loss could be confirmed away from the shelves. The loss is read at the end
    # of that visit and booked at its only reach, A3, which shows cheese: refused. A2 shows the apple
    # from the moment it landed, before A3's reach: that is where it went, not charged. (Without the
    # rule, "A2 showed the apple just before A3's reach" reads as the apple having been there all
    # along, and the apple stays charged: a false charge.)
    a1, a2 = scene.slot_center("A1"), scene.slot_center("A2")
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(a1), 10).reach("A1", take=True).walk(near(a2), 10)
    give = range(max(shopper.steps) + 1, max(shopper.steps) + 7)
    shopper.reach("A2", give=True).reach("A3", frames=4, hand="left").walk(scene.EXIT, 20)
    short = (a2[0], a2[1] + 10.0)

    def stopping_short(frame: FrameObservation) -> FrameObservation:
        wrist = next(s for s in frame.shoppers if s.track_id == 1).keypoints[6, :2]
        return _move_wrist(frame, 1, short) if wrist[1] < short[1] else frame

    frames = [stopping_short(f) if f.frame in give else f for f in scene.frames()]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    [booked] = [e for e in engine.events if e.type == "put_back"]
    assert booked.slot == "A2" and "apple is on A2" in booked.review


def test_a_put_back_dated_before_its_item_was_taken_is_flagged(scene, layout):
    # The shopper reaches into A2 (its top hidden from the camera) and takes nothing, then takes an
    # apple from A1 and stands by A2 again, the wrist 14 px from A2's center (near, not a reach),
    # where the detector stops reading the apple. The loss is booked as a put-back at A2's closest
    # approach, which came before the apple was taken: mostly that undoes a misread pick, but here it
    # drops a real item, so a person should look (without the rule the receipt is not flagged).
    scene.hide_stock = {"A2"}
    a1, a2 = scene.slot_center("A1"), scene.slot_center("A2")
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(a2), 10).reach("A2", frames=4)
    shopper.walk(near(a1), 8).reach("A1", take=True).walk(near(a2), 8)
    by_a2 = range(max(shopper.steps) + 1, max(shopper.steps) + 15)
    shopper.wait(len(by_a2)).walk(scene.EXIT, 20)

    def without_held_apple(frame: FrameObservation) -> FrameObservation:
        products = tuple(p for p in frame.products if not (p.sku == "apple" and box_center(p.box)[1] > 41))
        return FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products)

    frames = [_move_wrist(f, 1, (a2[0], a2[1] + 14.0)) if f.frame in by_a2 else f for f in scene.frames()]
    frames = [without_held_apple(f) if f.frame >= by_a2[0] else f for f in frames]
    engine = _feed(frames, layout)
    [pick] = [e for e in engine.events if e.type == "pick"]
    [put_back] = [e for e in engine.events if e.type == "put_back"]
    assert put_back.frame < pick.frame and put_back.slot == "A2"
    assert f"before it was taken (frame {pick.frame})" in put_back.review
    assert engine.review_reasons()["1"]


def test_an_item_lost_from_view_at_one_slot_and_put_into_the_next_is_not_charged(scene, layout):
    """The detector loses the held cheese as the hand passes A1 (apples), and the hand leaves it on A2
    (bread) half a second later. The loss is read as a put-back into A1, which refuses it (apples still
    on top); when the cheese then shows on top of A2, a slot the hand went to that never showed cheese
    before, it was put back there: the shopper is not charged."""
    a1, a2 = scene.slot_center("A1"), scene.slot_center("A2")
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A3")), 10).reach("A3", take=True).wait(4)
    shopper.walk(near(a1), 8).reach("A1").wait(20).walk(near(a2), 4).reach("A2", give=True)
    shopper.walk(scene.EXIT, 20)
    lost_from, put_back_frame = 30, 63  # the A1 reach starts; the middle frame of the A2 reach
    frames = []
    for frame in scene.frames():
        products = frame.products
        if lost_from <= frame.frame <= put_back_frame:  # the held cheese unseen; shelf stock still seen
            products = tuple(p for p in products if p.sku != "cheese" or _at(p, scene.slot_center("A3")))
        frames.append(FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products))
    assert scene.events[-1] == {**scene.events[-1], "type": "put_back", "slot": "A2", "frame": put_back_frame}
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    pick, put_back = engine.events
    assert (pick.type, pick.slot, put_back.type, put_back.sku, put_back.slot) == (
        "pick", "A3", "put_back", "cheese", "A2"
    )  # fmt: skip
    assert put_back.review.startswith("cheese showed on top of A2 only")
    assert engine.review_reasons()["1"]  # booked late and elsewhere: a person looks


def _at(product: ProductObservation, center) -> bool:
    x, y = box_center(product.box)
    return abs(x - center[0]) <= 1 and abs(y - center[1]) <= 1


def test_an_item_lost_from_view_is_not_put_back_into_its_own_slot_by_its_look_alone(scene, layout):
    """The same loss at A1, but the hand then only comes near A3, the cheese's own slot, which showed
    cheese all along: that proves nothing, and the shopper walks out with the cheese (charged)."""
    a1, a3 = scene.slot_center("A1"), scene.slot_center("A3")
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(a3), 10).reach("A3", take=True).wait(4)
    shopper.walk(near(a1), 8).reach("A1").wait(20).walk(near(a3), 4).reach("A3").walk(scene.EXIT, 20)
    frames = []
    for frame in scene.frames():
        products = frame.products
        if frame.frame >= 30:  # the held cheese unseen from the A1 reach on; shelf stock still seen
            products = tuple(p for p in products if p.sku != "cheese" or _at(p, a3))
        frames.append(FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products))
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"cheese": 1}}
    assert [e.type for e in engine.events] == ["pick", "rejected_put_back"]


def test_one_held_item_read_as_two_by_hands_that_disagreed_is_charged_once(scene, layout):
    # The shopper takes an apple from A1 (its planogram SKU). Right after, the detector now and then
    # reads an apple in the other hand too, and once a cheese: the hands disagree, yet two apples are
    # the most common reading, so a second apple is booked at low confidence. On the next reach, into
    # A2, the phantom apple "leaves the hand", but A2 goes on showing bread: one apple was read as two,
    # and only one is charged (without the rule: "still charged", a false charge).
    frames, pick = _take_an_apple_from_hidden_a1_then_reach_into_a2(scene)
    twice = {pick["frame"] + k for k in (2, 4, 7, 9)}
    cheese = {pick["frame"] + 3}
    frames = [
        _with_product_at_left_wrist(f, 1, "apple")
        if f.frame in twice
        else _with_product_at_left_wrist(f, 1, "cheese")
        if f.frame in cheese
        else f
        for f in frames
    ]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [undone] = [e for e in engine.events if e.type == "rejected_pick"]
    assert undone.sku == "apple" and "a misread" in undone.review
    off = _feed(frames, layout, EngineConfig(misread_pick_confidence=0.0))
    assert off.receipts_json() == {"1": {"apple": 2}}


def test_a_held_item_read_as_another_sku_after_a_reach_is_not_a_third_item(scene, layout):
    # The shopper holds a cheese (left hand) and takes an apple from A1 (right; A1's stock is hidden
    # from the camera, so the shelf cannot refuse what the hand shows). After the reach the detector
    # reads the cheese as bread in two frames and loses it in two more, and goes on flickering
    # between the two until the shopper is gone. The cheese, still read once, is kept (a loss needs it
    # gone from every reading), and the bread, read twice, looks like a second pick. Two hands hold
    # two items: the bread, never read beside the cheese, is the cheese misread (without the rule: a
    # bread charged too, a false charge).
    scene.hide_stock = {"A1"}
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A3")), 10).reach(
        "A3", take=True, hand="left"
    )
    shopper.walk(near(scene.slot_center("A1")), 10).reach("A1", take=True).walk(scene.EXIT, 20)
    frames = scene.frames()
    apple = next(e for e in scene.events if e["sku"] == "apple")

    def left_hand_reads(frame: FrameObservation) -> FrameObservation:
        # from 2 frames after the pick on, the left hand reads nothing, bread, nothing, bread, cheese,
        # then cheese, nothing, bread over and over: never steady enough to confirm a change
        k = frame.frame - apple["frame"]
        reads = {2: None, 3: "bread", 4: None, 5: "bread", 6: "cheese"}.get(k)
        if k >= 7:
            reads = ("bread", "cheese", None)[k % 3]
        if k < 2 or reads == "cheese" or not frame.shoppers:
            return frame
        products = tuple(p for p in frame.products if not (p.sku == "cheese" and box_center(p.box)[1] > 45))
        frame = FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products)
        return _with_product_at_left_wrist(frame, 1, "bread") if reads == "bread" else frame

    frames = [left_hand_reads(f) for f in frames]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1, "cheese": 1}}
    # the dropped gain is a guess: the receipt goes to a person, saying which item was not booked
    assert any("bread not booked" in reason for reason in engine.review_reasons()["1"])
    off = _feed(frames, layout, EngineConfig(max_items_held=0))
    assert off.receipts_json() == {"1": {"apple": 1, "bread": 1, "cheese": 1}}
    assert not any("not booked" in reason for reason in off.review_reasons()["1"])


def test_a_held_item_first_misread_as_another_sku_is_not_charged_when_read_right_back_at_its_slot(
    scene, layout
):
    # The shopper reaches into A1 (apples; its stock hidden from the camera until the hand is back)
    # and the detector reads a cheese in the left hand (in every frame but one: the readings
    # disagree): a doubtful pick from A1, whose planogram holds apples. 26 frames later, past
    # `shelf_view_frames`, the hand is back at A1 and an apple is read in it; the cheese is never
    # read again, and A1, in view now, shows apples, refusing it. Read as cheese at first and as the
    # slot's own apple now, at that slot: one item misread, not two (without the rule: the cheese
    # "still charged", a false charge).
    a1 = scene.slot_center("A1")
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(a1), 10).reach("A1").wait(20).reach("A1", take=True)
    shopper.walk(scene.EXIT, 20)
    recorded = scene.frames()
    [pick] = scene.events
    back_at_a1 = pick["frame"] - 3
    first_reach = back_at_a1 - 23  # the first reach's deepest frame
    frames = []
    for frame in recorded:
        if first_reach + 2 <= frame.frame < back_at_a1 - 1 and frame.frame != first_reach + 4:
            frame = _with_product_at_left_wrist(frame, 1, "cheese")
        if frame.frame < back_at_a1:
            products = tuple(p for p in frame.products if not _at(p, a1))
            frame = FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products)
        frames.append(frame)
    # 26 frames is also within `misread_refused_frames` (30), whose refusal alone undoes the pick:
    # turned off here, so that this rule is what is tested.
    assert _feed(frames, layout).receipts_json() == {"1": {"apple": 1}}
    engine = _feed(frames, layout, EngineConfig(misread_refused_frames=0))
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [undone] = [e for e in engine.events if e.sku == "cheese"]
    assert undone.type == "rejected_pick" and "with apple read in the hand instead" in undone.review
    assert engine.review_reasons()["1"]  # a guess: a person looks
    off = _feed(frames, layout, EngineConfig(misread_refused_frames=0, misread_swap_frames=0))
    assert off.receipts_json() == {"1": {"apple": 1, "cheese": 1}}


def test_a_held_item_first_misread_as_another_sku_is_not_charged_when_read_right_on_the_way_out(
    scene, layout
):
    # The shopper takes an apple from A1 (its stock hidden from the camera), and the detector reads it
    # as a cheese (in every frame but one: the readings disagree): a doubtful pick from A1, whose
    # planogram holds apples. Walking away from the shelves, the hand is read with an apple from
    # `misread_at + 14` on, and the cheese never again. Read as cheese at first and as the pick slot's
    # own apple now: one item misread, not two (without the rule: the cheese lost from view stays in
    # the cart, the apple is a late pick at A1, and the shopper pays for both).
    scene.hide_stock = {"A1"}
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.walk((160.0, 200.0), 12).walk(scene.EXIT, 20)
    recorded = scene.frames()
    [pick] = scene.events
    misread_at = pick["frame"] + 1

    def as_cheese(frame: FrameObservation) -> FrameObservation:
        if not misread_at <= frame.frame < misread_at + 14 or frame.frame == misread_at + 3:
            return frame
        products = tuple(
            dataclasses.replace(p, sku="cheese") if p.sku == "apple" else p for p in frame.products
        )
        return FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products)

    frames = [as_cheese(f) for f in recorded]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    [undone] = [e for e in engine.events if e.sku == "cheese"]
    assert undone.type == "rejected_pick" and "read as apple (its planogram SKU)" in undone.review
    [apple] = [e for e in engine.events if e.sku == "apple"]
    assert (apple.type, apple.slot, apple.frame) == ("pick", "A1", pick["frame"])
    assert engine.review_reasons()["1"]  # a guess: a person looks
    off = _feed(frames, layout, EngineConfig(misread_swap_frames=0))
    assert off.receipts_json() == {"1": {"apple": 1, "cheese": 1}}


def _left_wrist_drawn_at_right_wrist(frame: FrameObservation, track_id: int, *, of: int, dx: float = 0.0):
    """The pose model draws shopper `track_id`'s left wrist at shopper `of`'s right wrist, `dx` px to
    its right (two shoppers side by side, seen from above)."""
    theirs = next(s for s in frame.shoppers if s.track_id == of).keypoints[6, :2]
    shoppers = []
    for s in frame.shoppers:
        if s.track_id == track_id:
            points = s.keypoints.copy()
            points[5, :2] = (theirs[0] + dx, theirs[1])
            s = dataclasses.replace(s, keypoints=points)
        shoppers.append(s)
    return _with_shoppers(frame, shoppers)


def test_a_holder_keeps_only_as_many_units_as_they_hold_when_a_neighbour_takes_another(scene, layout):
    holder, neighbour = scene.actor(1), scene.actor(2)
    holder.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    holder.walk((75.0, 65.0), 6).wait(30).walk(scene.EXIT, 14)
    neighbour.walk((30.0, 210.0), 1).walk(near(scene.slot_center("A1")), 22).reach("A1", take=True)
    neighbour.wait(16).walk(scene.EXIT, 14)
    frames = scene.frames()
    # From the neighbour's take on, the holder's free (left) wrist lies 3 px from the neighbour's new
    # apple, as two shoppers standing shoulder to shoulder are seen from above.
    take = next(e["frame"] for e in scene.events if e["shopper_id"] == 2)
    touching = [
        _left_wrist_drawn_at_right_wrist(f, 1, of=2, dx=3.0) if take + 3 <= f.frame <= take + 16 else f
        for f in frames
    ]
    engine = _feed(touching, layout)
    assert scene.receipts() == {"1": {"apple": 1}, "2": {"apple": 1}}
    assert engine.receipts_json() == scene.receipts()
    assert not [e for e in engine.events if e.type == "put_back"]


def test_a_put_back_onto_its_own_sku_is_not_refused_by_a_misread_of_the_slot(scene, layout):
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.wait(10).reach("A1", give=True).wait(10).walk(scene.EXIT, 15)
    frames = scene.frames()
    give = next(e["frame"] for e in scene.events if e["type"] == "put_back")
    # From the put-back on the detector reads the apple on top of A1 as cheese (A1 shows an apple
    # on top with or without the returned one: the look cannot tell whether it went back).
    center = scene.slot_center("A1")
    misread = []
    for frame in frames:
        if give < frame.frame:
            products = tuple(
                dataclasses.replace(p, sku="cheese") if box_center(p.box) == center else p
                for p in frame.products
            )
            frame = FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=products)
        misread.append(frame)
    engine = _feed(misread, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    assert [e.type for e in engine.events] == ["pick", "put_back"]


def test_a_product_boxed_a_second_time_as_another_sku_is_not_an_item_in_a_passing_hand(scene, layout):
    # A shopper reaches into A3 (its stock unseen) and takes nothing; then, their wrist beside A2, the
    # detector boxes A2's top bread a second time for a while, as an apple (a larger box off the
    # slot's centre, scored lower). Next to the wrist it reads as an apple in the hand, taken in that
    # reach. In model mode a box that a higher-scoring product box covers this much is that product
    # boxed twice (2432/val_0006 of the 27th round: a water held by one shopper, boxed again as a
    # cereal, was charged to another shopper whose wrist was nearer).
    scene.hide_stock = {"A3"}
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A3")), 12).reach("A3").wait(25)
    shopper.walk(scene.EXIT, 20)
    phantom = ProductObservation(sku="apple", box=(91.0, 26.0, 115.0, 50.0), score=0.6)
    frames = [
        _move_wrist(_with_products(f, [*f.products, phantom]), 1, (108.0, 45.0)) if 24 <= f.frame <= 40 else f
        for f in scene.frames()
    ]
    assert scene.receipts() == {"1": {}}
    assert _feed(frames, layout, EngineConfig(product_duplicate_overlap=0.5)).receipts_json() == {"1": {}}
    # off (ground-truth boxes, oracle mode): the apple is charged
    off = _feed(frames, layout)
    assert off.receipts_json() == {"1": {"apple": 1}}
    assert [e.type for e in off.events] == ["pick"]


def _with_products(frame: FrameObservation, products) -> FrameObservation:
    return FrameObservation(frame=frame.frame, shoppers=frame.shoppers, products=tuple(products))


def test_overlap_of_smaller_is_the_intersection_over_the_smaller_box():
    assert overlap_of_smaller((0.0, 0.0, 10.0, 10.0), (5.0, 0.0, 25.0, 20.0)) == 0.5
    assert overlap_of_smaller((0.0, 0.0, 10.0, 10.0), (2.0, 2.0, 4.0, 4.0)) == 1.0
    assert overlap_of_smaller((0.0, 0.0, 10.0, 10.0), (10.0, 0.0, 20.0, 10.0)) == 0.0
    assert overlap_of_smaller((0.0, 0.0, 0.0, 10.0), (0.0, 0.0, 10.0, 10.0)) == 0.0


def test_a_neighbours_item_read_through_a_shared_wrist_is_not_a_second_unit(scene, layout):
    # Two shoppers stand side by side at A1 and each takes an apple (right hands, two frames apart).
    # Then, for a while, the pose model draws the left shopper's free left wrist on the right
    # shopper's holding hand (their boxes overlap), so the apple in that hand is as near one as the
    # other, and by the tie goes to the left shopper, who reads two apples while the right one reads
    # none (2440/val_0010 of the 28th round: two milks charged to one shopper). In model mode two
    # units of a SKU, one in a hand whose wrist another shopper's shares, are not a reading.
    slot = scene.slot_center("A1")
    left, right = scene.actor(1), scene.actor(2)
    left.walk((20.0, 200.0), 1).walk(near((slot[0] - 8.0, slot[1])), 10).reach("A1", take=True)
    left.wait(20).walk(scene.EXIT, 16)
    right.walk((30.0, 210.0), 1).walk(near((slot[0] + 8.0, slot[1])), 12).reach("A1", take=True)
    right.wait(18).walk(scene.EXIT, 20)
    frames = scene.frames()
    takes = sorted(e["frame"] for e in scene.events if e["type"] == "pick")
    first, last = takes[-1] + 3, takes[-1] + 14  # from the right shopper's wrist leaving the shelf
    shared = [_left_wrist_drawn_at_right_wrist(f, 1, of=2) if first <= f.frame <= last else f for f in frames]
    assert scene.receipts() == {"1": {"apple": 1}, "2": {"apple": 1}}
    engine = _feed(shared, layout, EngineConfig(shared_wrist_px=3.0))
    assert engine.receipts_json() == scene.receipts()
    assert sorted((e.type, e.shopper_id) for e in engine.events) == [("pick", 1), ("pick", 2)]
    # off (ground-truth keypoints, oracle mode): the left shopper is charged the right one's apple
    assert _feed(shared, layout).receipts_json() == {"1": {"apple": 2}, "2": {"apple": 1}}


def test_shoppers_doubled_through_a_shared_wrist_need_two_units_and_another_shoppers_wrist():
    wrists = {
        1: [((10.0, 10.0), 0.9), ((30.0, 10.0), 0.9)],
        2: [((11.0, 12.0), 0.8), None],
        3: [((60.0, 10.0), 0.9), ((80.0, 10.0), 0.9)],
    }
    two_apples = {(1, 0): "apple", (1, 1): "apple"}
    # 1's left wrist is 2.2 px from 2's: two apples, one of them in that hand
    assert shoppers_doubled_through_a_shared_wrist(wrists, two_apples, 3.0) == {1}
    assert shoppers_doubled_through_a_shared_wrist(wrists, two_apples, 2.0) == set()  # beyond the radius
    assert shoppers_doubled_through_a_shared_wrist(wrists, two_apples, 0.0) == set()  # off
    # two items of different SKUs, or one unit, are what hands hold every day
    assert shoppers_doubled_through_a_shared_wrist(wrists, {(1, 0): "apple", (1, 1): "bread"}, 3.0) == set()
    assert shoppers_doubled_through_a_shared_wrist(wrists, {(1, 0): "apple"}, 3.0) == set()
    # two apples with no other shopper's wrist near either hand
    assert shoppers_doubled_through_a_shared_wrist(wrists, {(3, 0): "apple", (3, 1): "apple"}, 3.0) == set()


def test_an_item_read_in_a_neighbours_hand_while_lost_from_the_holders_is_not_the_neighbours_pick(
    scene, layout
):
    # The holder takes an apple and stands beside a neighbour at A2 (its stock unseen). The detector
    # misses the held apple for 8 frames (read as a put-back into A2), then reads it for 14 frames
    # with the neighbour's left wrist drawn on the holder's hand, half a pixel nearer: the neighbour
    # "picks" it from A2 (whose planogram holds bread: a doubtful pick). The neighbour walks away
    # without it, and once the holder's hands can be read again (3 faint frames) the apple is back in
    # the holder's hand: their put-back is undone, and so, with the rule, is the neighbour's pick
    # (2462/val_0011 of the 28th round: one bread charged to both).
    scene.hide_stock = {"A2"}
    holder, neighbour = scene.actor(1), scene.actor(2)
    holder.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    holder.walk((84.0, 33.0), 6).wait(18).walk((84.0, 90.0), 8).wait(20).walk(scene.EXIT, 20)
    neighbour.walk((30.0, 210.0), 1).walk((104.0, 33.0), 20).wait(20).walk((150.0, 90.0), 8)
    neighbour.wait(20).walk(scene.EXIT, 14)
    scripted = []
    for frame in scene.frames():
        mine = next((s for s in frame.shoppers if s.track_id == 1), None)
        theirs = next((s for s in frame.shoppers if s.track_id == 2), None)
        if 26 <= frame.frame <= 33:
            frame = _with_products(frame, [p for p in frame.products if p.sku != "apple"])
        elif 34 <= frame.frame <= 47:
            hand = mine.keypoints[6, :2].copy()
            mine_points, their_points = mine.keypoints.copy(), theirs.keypoints.copy()
            mine_points[6, :2] = (hand[0] + 0.5, hand[1])
            their_points[5, :2] = hand
            frame = _with_shoppers(
                frame,
                [
                    dataclasses.replace(mine, keypoints=mine_points),
                    dataclasses.replace(theirs, keypoints=their_points),
                ],
            )
        elif 48 <= frame.frame <= 50:
            frame = _with_shoppers(frame, [_hide_wrists(_with_shoppers(frame, [mine])).shoppers[0], theirs])
        scripted.append(frame)
    assert scene.receipts() == {"1": {"apple": 1}, "2": {}}
    engine = _feed(scripted, layout, EngineConfig(undo_neighbours_pick=True))
    assert engine.receipts_json() == scene.receipts()
    (undone,) = [e for e in engine.events if e.type == "rejected_pick"]
    assert undone.shopper_id == 2 and undone.sku == "apple" and "shopper 1's" in undone.review
    # off: the apple is charged to both
    assert _feed(scripted, layout).receipts_json() == {"1": {"apple": 1}, "2": {"apple": 1}}


def test_a_kept_item_back_in_the_hand_as_a_visit_starts_is_held_before_it(scene, layout):
    # The detector loses the held apple on the way from A1 (the cart keeps it) and sees it again
    # only as the hand reaches A3, then A2, where the shopper puts it (a mis-shelved return). Its one
    # sighting before each reach is too few to confirm it held, so without the rule the visit into
    # A2 starts "empty-handed" and the put-back is never seen (2502/val_0016 of the 29th round).
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.wait(8).walk(near(scene.slot_center("A3")), 10).reach("A3").wait(8)
    shopper.walk(near(scene.slot_center("A2")), 8).reach("A2", give=True).walk(scene.EXIT, 15)
    frames = scene.frames()
    give = next(e["frame"] for e in scene.events if e["type"] == "put_back")
    frames = _miss_held_items(frames, 30, give)
    assert scene.receipts() == {"1": {}}
    assert _feed(frames, layout).receipts_json() == {"1": {"apple": 1}}  # the error this guards
    engine = _feed(frames, layout, EngineConfig(kept_back_sightings=1))
    assert engine.receipts_json() == {"1": {}}
    assert [(e.type, e.slot) for e in engine.events if e.type == "put_back"] == [("put_back", "A2")]


def test_engine_config_checks_kept_back_sightings():
    with pytest.raises(ConfigError, match="kept_back_sightings"):
        EngineConfig(kept_back_sightings=6)


def test_a_refused_put_back_can_stop_being_a_review_reason_once_its_item_is_back_in_the_hand(scene, layout):
    # With `review_refusals_seen_back` off (the default keeps the flag): the detector misses the held
    # apple as the shopper's hand comes back from a reach into A3 (a cheese slot, which still shows
    # its cheese): the "put-back" is refused, the apple still charged and the receipt flagged. Frames
    # later the apple is in the hand again: the refusal was right, and a person has nothing left to
    # check. An apple never seen again stays a review reason.
    shopper = scene.actor(1)
    shopper.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    shopper.wait(8).walk(near(scene.slot_center("A3")), 10).reach("A3").wait(12).walk(scene.EXIT, 15)
    frames = scene.frames()
    unflag = EngineConfig(review_refusals_seen_back=False)
    back = _feed(_miss_held_items(frames, 38, 50), layout, unflag)
    assert back.receipts_json() == scene.receipts() == {"1": {"apple": 1}}
    refusal = next(e for e in back.events if e.type == "rejected_put_back")
    assert refusal.slot == "A3" and "read in the hand again" in refusal.review
    assert back.review_reasons() == {"1": []}
    kept_flagged = _feed(_miss_held_items(frames, 38, 50), layout)  # the default: flagged for good
    assert kept_flagged.review_reasons()["1"] and "still charged" in kept_flagged.review_reasons()["1"][0]
    never_back = _feed(_miss_held_items(frames, 38, len(frames)), layout, unflag)
    assert never_back.receipts_json() == {"1": {"apple": 1}}
    assert any("still charged" in reason for reason in never_back.review_reasons()["1"])


def test_a_track_id_the_tracker_revives_on_its_shopper_takes_them_back(scene, layout):
    first, second = scene.actor(1), scene.actor(2)
    first.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    first.walk((160.0, 120.0), 8).wait(30).walk(scene.EXIT, 15)
    second.walk((30.0, 210.0), 1).walk(near(scene.slot_center("A3")), 10).reach("A3", take=True)
    second.walk((190.0, 120.0), 8).wait(45).walk(scene.EXIT, 15)
    # Side by side, 30 px apart (2522/val_0009 of the 30th round): the first shopper is lost for
    # frames 30-31 and comes back as track 7, which the engine relinks to them. From frame 40 the
    # tracker moves 7 onto the second shopper, drops 2, and revives 1 on the first shopper, whom its
    # appearance model knew as 1 all along.
    tracked = []
    for frame in scene.frames():
        shoppers = []
        for s in frame.shoppers:
            if s.track_id == 1 and 30 <= frame.frame <= 31:
                continue
            if (s.track_id == 1 and 32 <= frame.frame <= 39) or (s.track_id == 2 and frame.frame >= 40):
                s = dataclasses.replace(s, track_id=7)
            shoppers.append(s)
        tracked.append(_with_shoppers(frame, shoppers))
    config = EngineConfig(revived_tracks_return=True)
    engine = _feed(tracked, layout, config)
    assert engine.receipts_json() == scene.receipts() == {"1": {"apple": 1}, "2": {"cheese": 1}}
    # shopper 1 stood where the first shopper stood, and walked out when they did
    assert box_center(engine.trajectories[1][50]) == (160.0, 120.0)
    assert box_center(engine.trajectories[2][50]) == (190.0, 120.0)
    first_out = max(f.frame for f in tracked if any(s.track_id == 1 for s in f.shoppers))
    assert max(engine.trajectories[1]) == first_out

    # Without the rule the revived id is relinked by distance to the second shopper, who was lost
    # that frame: the two trade bodies, and each walks out with the other's item.
    off = _feed(tracked, layout, dataclasses.replace(config, revived_tracks_return=False))
    assert box_center(off.trajectories[1][50]) == (190.0, 120.0)
    assert off.receipts_json() == {"1": {"cheese": 1}, "2": {"apple": 1}}


def test_an_item_gone_from_the_hand_before_a_reach_into_the_next_slot_was_put_back_before_it(scene, layout):
    # 2532/val_0010 of the 31st round, in oracle mode: the put-back into A1 stops 11 px short of its
    # center (the arm at its length), then the hand turns away (too faint to read) and reaches into A2
    # (bread). Only two readable frames showed the hand empty, too few to confirm the loss (5 of 7),
    # so the A2 visit started with the apple "held", and its put-back there was refused: charged.
    shopper = scene.actor(1)
    a1 = scene.slot_center("A1")
    shopper.walk(scene.ENTRANCE, 1).walk(near(a1), 10).reach("A1", take=True).wait(10)
    shopper.reach("A1", give=True).reach("A2").walk(scene.EXIT, 20)
    frames = scene.frames()
    [_, put_back] = scene.events
    give = put_back["frame"]
    frames = [
        _move_wrist(f, 1, (a1[0], a1[1] + 11.0)) if give - 1 <= f.frame <= give + 1 else f for f in frames
    ]
    frames = [_hide_wrists(f) if give + 2 <= f.frame <= give + 4 else f for f in frames]
    engine = _feed(frames, layout)
    assert engine.receipts_json() == scene.receipts() == {"1": {}}
    [booked] = [e for e in engine.events if e.type == "put_back"]
    assert booked.slot == "A1"
    assert "apple left the hand before the reach into A2" in booked.review  # a person looks
    assert engine.review_reasons()["1"]

    off = _feed(frames, layout, EngineConfig(loss_before_visit_sightings=0))
    assert off.receipts_json() == {"1": {"apple": 1}}
    assert [e.slot for e in off.events if e.type == "rejected_put_back"] == ["A2"]


def test_loss_before_visit_sightings_beyond_the_hands_window_is_a_config_error():
    with pytest.raises(ConfigError, match="loss_before_visit_sightings"):
        EngineConfig(loss_before_visit_sightings=8)


def _apple_taken_while_believed_gone(scene, layout):
    """A1 is believed to hold one apple (the planogram's count); shopper 2 takes it, and shopper 1
    then takes the apple still there (the belief was short by one, as after a misread pick), which
    the detector misses from the reach until the shopper has walked away from the shelf."""
    one_apple = dataclasses.replace(layout.slots[0], capacity=1)
    layout = dataclasses.replace(layout, slots=(one_apple, *layout.slots[1:]))
    first = scene.actor(2)
    first.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    first.walk(scene.EXIT, 12)
    second = scene.actor(1).at(40)
    second.walk(scene.ENTRANCE, 1).walk(near(scene.slot_center("A1")), 10).reach("A1", take=True)
    second.walk((135.0, 70.0), 8).wait(20).walk(scene.EXIT, 15)
    frames = scene.frames()
    [_, pick] = scene.events
    return _miss_held_items(frames, pick["frame"], pick["frame"] + 20), layout


def test_an_item_read_late_after_a_reach_into_a_slot_believed_empty_but_seen_full_is_charged(scene, layout):
    frames, layout = _apple_taken_while_believed_gone(scene, layout)
    engine = _feed(frames, layout, EngineConfig(late_pick_seen_on_empty=True))
    assert engine.receipts_json() == scene.receipts() == {"2": {"apple": 1}, "1": {"apple": 1}}
    [late] = [e for e in engine.events if e.type == "pick" and e.shopper_id == 1]
    assert late.slot == "A1" and "A1 was believed empty but seen showing apple" in late.review


def test_without_the_setting_an_item_read_late_after_a_reach_into_a_slot_believed_empty_is_missed(
    scene, layout
):
    frames, layout = _apple_taken_while_believed_gone(scene, layout)
    engine = _feed(frames, layout)
    assert engine.receipts_json() == {"2": {"apple": 1}, "1": {}}


def test_a_slot_believed_empty_and_not_seen_showing_the_item_gives_no_late_pick(scene, layout):
    frames, layout = _apple_taken_while_believed_gone(scene, layout)
    [_, pick] = scene.events
    a1 = layout.slots[0].box
    # the camera does not see A1's top in the frames before shopper 1's reach (arms and bodies in
    # the way; shopper 2 took the first apple long before)
    hidden = [
        FrameObservation(
            frame=f.frame,
            shoppers=f.shoppers,
            products=tuple(p for p in f.products if not point_in_box(*box_center(p.box), a1)),
        )
        if pick["frame"] - 15 <= f.frame <= pick["frame"]
        else f
        for f in frames
    ]
    engine = _feed(hidden, layout, EngineConfig(late_pick_seen_on_empty=True))
    assert engine.receipts_json() == {"2": {"apple": 1}, "1": {}}
