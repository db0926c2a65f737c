"""The store world over time: shoppers walk, reach, pick and put back; slots hold stacks of items.

:func:`simulate` yields one :class:`FrameState` per frame (1-based ``index``). Geometry is in image
pixels; keypoints are float arrays [7, 2] (x, y) in ARCHITECTURE.md order: head, left_shoulder,
right_shoulder, left_elbow, right_elbow, left_wrist, right_wrist.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from walkout_sim.errors import ScenarioError
from walkout_sim.layout import Layout, Slot
from walkout_sim.navigation import Navigator, Point, slot_centre, stand_point
from walkout_sim.scenario import Action, Appearance, Scenario, ShopperScript, random_appearance

SHOULDER_HALF = 9.5
UPPER_ARM = 10.5
FOREARM = 10.0
REACH = UPPER_ARM + FOREARM - 0.5
PERSONAL_SPACE = 22.0
DEFAULT_SPEED = 2.6
MAX_TURN = math.radians(40)  # per frame
MIN_GAP = 18.0  # centres closer than this mean overlapping bodies: walkers are pushed apart
STALL_FRAMES = 30  # a walker that has not moved for this long takes a detour
MAX_QUEUE_FRAMES = 100  # after this long waiting for a free stand point, go anyway
ARRIVAL_SLACK = 10.0  # a walker kept this close to its goal by others counts as arrived
MAX_FRAMES = 6000
LEFT, RIGHT = 0, 1


@dataclass
class PersonState:
    """One shopper in one frame.

    keypoints: float array [7, 2]; held: (hand, sku) pairs with hand 0 = left, 1 = right;
    velocity: (dx, dy) pixels per frame (for motion blur).
    """

    track_id: int
    centre: Point
    heading: float
    keypoints: np.ndarray
    velocity: Point
    held: list[tuple[int, str]]
    appearance: Appearance


@dataclass
class FrameState:
    """The world in one frame: persons and the slots whose visible top item changed at this frame."""

    index: int
    persons: list[PersonState]
    slot_changes: list[tuple[int, str | None]]


@dataclass
class SimulationResult:
    """Filled in while :func:`simulate` runs: events, receipts of shoppers who left, frames simulated."""

    events: list[dict] = field(default_factory=list)
    receipts: dict[str, dict[str, int]] = field(default_factory=dict)
    frames: int = 0


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def _left_of(heading: float) -> np.ndarray:
    # Seen from the ceiling (an unmirrored map), a person facing +y-up has their left at -x.
    forward = _unit(heading)
    return np.array([forward[1], -forward[0]])


def _two_link_elbow(shoulder: np.ndarray, wrist: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """Elbow position for an arm from shoulder to wrist, bending towards ``outward``."""
    delta = wrist - shoulder
    distance = max(float(np.hypot(*delta)), 1e-6)
    distance_c = min(distance, UPPER_ARM + FOREARM - 1e-3)
    along = (UPPER_ARM**2 - FOREARM**2 + distance_c**2) / (2 * distance_c)
    height = math.sqrt(max(UPPER_ARM**2 - along**2, 0.0))
    direction = delta / distance
    perpendicular = np.array([-direction[1], direction[0]])
    if perpendicular @ outward < 0:
        perpendicular = -perpendicular
    return shoulder + direction * along + perpendicular * height


class Agent:
    """A shopper following its script, one frame at a time."""

    def __init__(
        self,
        script: ShopperScript,
        layout: Layout,
        navigator: Navigator,
        rng: np.random.Generator,
        reach_frames: int,
        dwell_frames: tuple[int, int],
        fps: int,
        stacks: list[list[str]],
    ) -> None:
        self.script = script
        self.stacks = stacks  # shared by all agents: the shelves' contents, top of each stack last
        self.layout = layout
        self.navigator = navigator
        self.rng = rng
        self.fps = fps
        self.reach_frames = reach_frames
        self.dwell_frames = dwell_frames
        self.speed = script.speed if script.speed is not None else DEFAULT_SPEED
        self.appearance = script.appearance if script.appearance is not None else random_appearance(rng)
        self.zone_offset = float(rng.uniform(-1, 1))
        if script.start == "entrance":
            zone = layout.entrance
            self.position = np.array(self._outside_point(zone.rect, zone.side), dtype=float)
            self.heading = math.atan2(*(np.array(self._zone_centre(zone.rect)) - self.position)[::-1])
        else:
            self.position = np.array(script.start, dtype=float)
            self.heading = math.radians(script.heading_deg)
        self.queued = 0  # frames spent waiting for a free stand point
        self.velocity = np.zeros(2)
        self.walking = False  # moved along a path this frame (only walkers are pushed apart)
        self.stalled = 0
        self.last_remaining = math.inf  # distance to the next waypoint at the previous frame
        self.phase = float(rng.uniform(0, 2 * math.pi))
        self.hands: list[tuple[str, str] | None] = [None, None]  # (sku, slot it came from)
        self.actions = list(script.actions)
        self.task: dict | None = None
        self.path: list[Point] = []
        self.reach_hand = LEFT
        self.reach_target: np.ndarray | None = None
        self.reach_progress = 0.0
        self.done = False
        self.left_store = False
        self.picked: dict[str, int] = {}
        self.entry_path_done = script.start != "entrance"
        if script.start == "entrance":
            self.path = [self._zone_centre(layout.entrance.rect)]

    def _zone_centre(self, rect: tuple[int, int, int, int]) -> Point:
        """This shopper's own point of a zone (shoppers spread over its width instead of queueing in line)."""
        x, y, w, h = rect
        return (x + w / 2 + self.zone_offset * w * 0.35, y + h / 2 + self.zone_offset * h * 0.35)

    def _outside_point(self, rect: tuple[int, int, int, int], side: str) -> Point:
        """A point beyond the image border next to a zone, where shoppers appear and vanish."""
        centre = self._zone_centre(rect)
        offset = 24.0
        if side == "left":
            return (-offset, centre[1])
        if side == "right":
            return (self.layout.floor.width + offset, centre[1])
        if side == "top":
            return (centre[0], -offset)
        return (centre[0], self.layout.floor.height + offset)

    # ---- planning -------------------------------------------------------------------------------

    def claimed_points(self) -> list[np.ndarray]:
        """Where this shopper stands or is about to stand (for others choosing a stand point)."""
        points = [self.position]
        if self.task is not None and self.task.get("stand") is not None:
            points.append(np.array(self.task["stand"]))
        return points

    def _choose_stand(self, slot: Slot, others: list[Agent]) -> tuple[Point, float, bool]:
        """A stand point for ``slot`` (shifted along the shelf if someone is there), its heading, and
        whether it is free (at least PERSONAL_SPACE from everyone else's position and stand point).
        When none is free, the least crowded candidate is returned with free = False.
        """
        claimed = [p for other in others if other is not self for p in other.claimed_points()]
        best, best_clearance = None, -1.0
        for offset in (0.0, -7.0, 7.0, -12.0, 12.0):
            point, heading = stand_point(self.layout, slot, offset)
            if self.navigator.blocked(point):
                continue
            clearance = min((math.dist(point, c) for c in claimed), default=math.inf)
            if clearance >= PERSONAL_SPACE:
                return point, heading, True
            if clearance > best_clearance:
                best, best_clearance = (point, heading), clearance
        if best is None:
            best = stand_point(self.layout, slot, 0.0)
        return best[0], best[1], False

    def _find_slot_for_sku(self, sku: str, tops: list[str | None]) -> Slot | None:
        candidates = [slot for i, slot in enumerate(self.layout.slots) if tops[i] == sku]
        if not candidates:
            return None
        return min(candidates, key=lambda s: (math.dist(slot_centre(s), self.position), s.id))

    def _start_next(self, frame: int, others: list[Agent], tops: list[str | None]) -> None:
        if not self.actions:
            if self.script.leave and not self.done:
                zone = self.layout.exit
                self.path = [
                    *self.navigator.path(tuple(self.position), self._zone_centre(zone.rect)),
                    self._outside_point(zone.rect, zone.side),
                ]
                self.task = {"kind": "leave"}
            else:
                self.task = {"kind": "idle"}
            self.done = True
            return
        action: Action = self.actions.pop(0)
        not_before = round(action.not_before_s * self.fps)
        if action.do == "wait":
            self.task = {"kind": "wait", "until": max(frame + round(action.s * self.fps), not_before)}
            return
        if action.do == "walk_to":
            self.path = self.navigator.path(tuple(self.position), tuple(action.point))
            self.task = {"kind": "walk", "not_before": not_before}
            return
        if action.do == "pick":
            slot = self.layout.slot_by_id(action.slot) if action.slot is not None else None
            if slot is None:
                slot = self._find_slot_for_sku(action.sku, tops)
                if slot is None:
                    self._drop_put_back(action.sku)  # nothing of that SKU left: skip the pick
                    return
            hand = None
        else:
            held = [i for i, h in enumerate(self.hands) if h is not None]
            if action.sku is not None:
                held = [i for i in held if self.hands[i][0] == action.sku]
            if not held:
                raise ScenarioError(
                    f"shopper {self.script.id}: put_back at frame {frame + 1} but holds nothing matching"
                )
            hand = held[-1]
            slot_id = action.slot if action.slot is not None else self.hands[hand][1]
            slot = self.layout.slot_by_id(slot_id)
        stand, heading, free = self._choose_stand(slot, others)
        if not free and self.queued < MAX_QUEUE_FRAMES:
            # Someone is standing where this shopper needs to stand: wait where we are, try again.
            self.queued += 1
            self.actions.insert(0, action)
            return
        self.queued = 0
        self.path = self.navigator.path(tuple(self.position), stand)
        dwell = int(self.rng.integers(self.dwell_frames[0], self.dwell_frames[1] + 1))
        self.task = {
            "kind": action.do,
            "slot": slot,
            "stand": stand,
            "face": heading,
            "hand": hand,
            "not_before": max(not_before, 0),
            "dwell": dwell,
            "phase": "walk",
            "sku": action.sku,
        }

    # ---- per-frame update -----------------------------------------------------------------------

    def step(
        self,
        frame: int,
        others: list[Agent],
        tops: list[str | None],
        result: SimulationResult,
        changes: list[tuple[int, str | None]],
    ) -> None:
        """Advance one frame (``frame`` is 0-based); may append events to ``result`` and slot changes."""
        self.velocity = np.zeros(2)
        self.walking = False
        if not self.entry_path_done:
            if self._walk(others):
                self.entry_path_done = True
            return
        if self.task is None:
            self._start_next(frame, others, tops)
            if self.task is None:
                return
        kind = self.task["kind"]
        if kind in ("leave", "walk"):
            if kind == "walk" and frame < self.task.get("not_before", 0):
                return
            if self._walk(others):
                if kind == "leave":
                    self.left_store = True
                self.task = None
        elif kind == "wait":
            if frame + 1 >= self.task["until"]:
                self.task = None
        elif kind in ("pick", "put_back"):
            self._shop(frame, tops, result, changes, others)

    def _walk(self, others: list[Agent]) -> bool:
        """Move along the path; True once the last waypoint is reached."""
        self.walking = True
        # Progress towards the next waypoint over the last frame, after others pushed back (see _separate);
        # jostling sideways in place is not progress.
        if self.path:
            remaining = math.dist(tuple(self.position), self.path[0])
            self.stalled = self.stalled + 1 if self.last_remaining - remaining < 0.3 else 0
            self.last_remaining = remaining
        # Cut corners once the next waypoint is in sight: smoother paths, and two shoppers heading
        # for the same shelf corner from opposite sides do not block each other there.
        while len(self.path) > 1 and self.navigator.visible(tuple(self.position), self.path[1]):
            self.path.pop(0)
        if not self.path:
            return True
        target = np.array(self.path[0])
        delta = target - self.position
        distance = float(np.hypot(*delta))
        if len(self.path) == 1 and distance < ARRIVAL_SLACK and self.stalled > 5:
            # Held off the last few pixels by someone next to the goal: close enough, stop here.
            self.path.pop()
            self.stalled = 0
            return True
        if self.stalled > STALL_FRAMES:
            self._detour(others)
            target = np.array(self.path[0])
            delta = target - self.position
            distance = float(np.hypot(*delta))
        arrives = distance <= self.speed
        step = delta if arrives else delta / distance * self.speed
        new = self.position + step
        # Plain floats in this loop: it runs for every pair of shoppers every frame.
        new_x, new_y = float(new[0]), float(new[1])
        length = max(math.hypot(float(step[0]), float(step[1])), 1e-6)
        direction_x, direction_y = float(step[0]) / length, float(step[1]) / length
        side_x, side_y = -direction_y, direction_x
        push_x = push_y = 0.0
        reach_ahead = 2.5 * PERSONAL_SPACE
        for other in others:
            if other is self:
                continue
            away_x, away_y = new_x - float(other.position[0]), new_y - float(other.position[1])
            gap = math.hypot(away_x, away_y)
            if 1e-6 < gap < PERSONAL_SPACE:
                scale = (PERSONAL_SPACE - gap) * 0.35 / gap
                push_x += away_x * scale
                push_y += away_y * scale
            # Someone ahead within a body width of our line: sidestep early, as people do.
            ahead = -(away_x * direction_x + away_y * direction_y)
            lateral = -(away_x * side_x + away_y * side_y)
            if 0 < ahead < reach_ahead and abs(lateral) < PERSONAL_SPACE:
                sidestep = (1.0 if lateral >= 0 else -1.0) * 1.2 * (1 - ahead / reach_ahead)
                push_x -= side_x * sidestep
                push_y -= side_y * sidestep
        push = np.array([push_x, push_y])
        norm = float(np.hypot(*push))
        if norm > self.speed:
            push *= self.speed / norm
        if norm > 0 and not self.navigator.blocked(tuple(new + push)):
            new = new + push
        if arrives:
            self.path.pop(0)
        self.velocity = new - self.position
        self.position = new
        if float(np.hypot(*self.velocity)) > 0.3:
            self._turn_towards(math.atan2(self.velocity[1], self.velocity[0]))
        self.phase += float(np.hypot(*self.velocity)) * 0.35
        return not self.path

    def _detour(self, others: list[Agent]) -> None:
        """Stuck behind someone for a while: step aside to a free nearby point, then carry on.

        A shopper heading for a slot also picks its stand point again (someone may stand there now).
        """
        self.stalled = 0
        if self.task is not None and self.task.get("stand") is not None and self.task.get("phase") == "walk":
            stand, heading, _ = self._choose_stand(self.task["slot"], others)
            self.task["stand"], self.task["face"] = stand, heading
            self.path = self.navigator.path(tuple(self.position), stand)
        for _ in range(20):
            offset = self.rng.uniform(-30, 30, 2)
            point = (float(self.position[0] + offset[0]), float(self.position[1] + offset[1]))
            inside = 0 <= point[0] < self.layout.floor.width and 0 <= point[1] < self.layout.floor.height
            if (
                inside
                and not self.navigator.blocked(point)
                and self.navigator.visible(tuple(self.position), point)
            ):
                self.path.insert(0, point)
                return

    def _turn_towards(self, target: float) -> None:
        difference = (target - self.heading + math.pi) % (2 * math.pi) - math.pi
        self.heading += max(-MAX_TURN, min(MAX_TURN, difference))

    def _shop(
        self,
        frame: int,
        tops: list[str | None],
        result: SimulationResult,
        changes: list[tuple[int, str | None]],
        others: list[Agent],
    ) -> None:
        task = self.task
        if task["phase"] == "walk":
            if self._walk(others):
                task["phase"] = "face"
                task["ready"] = frame + task["dwell"]
            return
        if task["phase"] == "face":
            self._turn_towards(task["face"])
            if (
                frame >= task["ready"]
                and frame >= task["not_before"]
                and abs((task["face"] - self.heading + math.pi) % (2 * math.pi) - math.pi) < 1e-3
            ):
                self._begin_reach(task)
            return
        # phase == "reach": progress goes 0 -> 1 (hand at the slot) -> 0 over reach_frames.
        task["k"] += 1
        half = self.reach_frames // 2
        k = task["k"]
        if k < half:
            self.reach_progress = k / half
        elif k == half:
            self.reach_progress = 1.0
            self._grab(frame, task, tops, result, changes)
        else:
            self.reach_progress = max(0.0, 1.0 - (k - half) / max(self.reach_frames - half - 1, 1))
        if k >= self.reach_frames - 1:
            self.reach_progress = 0.0
            self.reach_target = None
            self.task = None

    def _drop_put_back(self, sku: str | None) -> None:
        """Forget the first later put-back of ``sku``: the pick it would undo did not happen."""
        for index, later in enumerate(self.actions):
            if later.do == "put_back" and later.sku == sku:
                del self.actions[index]
                return

    def _retarget_put_back(self, wanted: str, taken: str) -> None:
        """The first later put-back of ``wanted`` returns ``taken`` instead (the pick took another SKU)."""
        for index, later in enumerate(self.actions):
            if later.do == "put_back" and later.sku == wanted:
                self.actions[index] = replace(later, sku=taken)
                return

    def _begin_reach(self, task: dict) -> None:
        slot: Slot = task["slot"]
        centre = np.array(slot_centre(slot))
        if task["kind"] == "pick":
            side = (centre - self.position) @ _left_of(self.heading)
            preferred = LEFT if side > 0 else RIGHT
            free = [h for h in (preferred, 1 - preferred) if self.hands[h] is None]
            if not free:
                raise ScenarioError(
                    f"shopper {self.script.id}: both hands are full, cannot pick from {slot.id}"
                )
            task["hand"] = free[0]
        self.reach_hand = task["hand"]
        self.reach_target = centre
        self.reach_progress = 0.0
        task["phase"] = "reach"
        task["k"] = 0

    def _grab(
        self,
        frame: int,
        task: dict,
        tops: list[str | None],
        result: SimulationResult,
        changes: list[tuple[int, str | None]],
    ) -> None:
        slot: Slot = task["slot"]
        slot_index = self.layout.slots.index(slot)
        hand = task["hand"]
        if task["kind"] == "pick":
            sku = tops[slot_index]
            if sku is None:
                # Emptied by someone else meanwhile: the hand comes back empty, nothing happened.
                self._drop_put_back(task["sku"])
                return
            if task["sku"] is not None and sku != task["sku"]:
                # Someone took the (misplaced) item this shopper came for and another SKU lies beneath:
                # the hand takes what is on top, and a later put-back of the wanted SKU returns this one.
                self._retarget_put_back(task["sku"], sku)
            stacks = self.stacks
            stacks[slot_index].pop()
            tops[slot_index] = stacks[slot_index][-1] if stacks[slot_index] else None
            changes.append((slot_index, tops[slot_index]))
            self.hands[hand] = (sku, slot.id)
            self.picked[sku] = self.picked.get(sku, 0) + 1
        else:
            sku = self.hands[hand][0]
            self.hands[hand] = None
            self.stacks[slot_index].append(sku)
            tops[slot_index] = sku
            changes.append((slot_index, sku))
            self.picked[sku] = self.picked.get(sku, 0) - 1
        result.events.append(
            {
                "type": task["kind"],
                "frame": frame + 1,
                "shopper_id": self.script.id,
                "sku": sku,
                "shelf": slot.shelf,
                "slot": slot.id,
            }
        )

    # ---- pose -----------------------------------------------------------------------------------

    def _reaching_arm(self, shoulder: np.ndarray, rest_wrist: np.ndarray, out: float) -> tuple:
        """Elbow and wrist of the reaching arm: the wrist eases from rest towards the slot (clamped to
        the arm's reach), the elbow follows by 2-link inverse kinematics, bending outward."""
        goal = self.reach_target - shoulder
        distance = float(np.hypot(*goal))
        if distance > REACH:
            goal = goal / distance * REACH
        target = shoulder + goal
        t = self.reach_progress
        t = t * t * (3 - 2 * t)  # ease in/out
        wrist = rest_wrist + (target - rest_wrist) * t
        elbow = _two_link_elbow(shoulder, wrist, _left_of(self.heading) * out)
        return (float(elbow[0]), float(elbow[1])), (float(wrist[0]), float(wrist[1]))

    def pose(self) -> PersonState:
        """Keypoints from position, heading, walking phase, reach and carried items.

        Rest poses are written in body coordinates (forward, left) and mapped to the image with plain
        floats (this runs for every shopper every frame); only a reaching arm needs the 2-link solver.
        """
        centre_x, centre_y = float(self.position[0]), float(self.position[1])
        forward_x, forward_y = math.cos(self.heading), math.sin(self.heading)
        left_x, left_y = forward_y, -forward_x  # see _left_of

        def to_image(ahead: float, leftwards: float) -> tuple[float, float]:
            return (
                centre_x + ahead * forward_x + leftwards * left_x,
                centre_y + ahead * forward_y + leftwards * left_y,
            )

        moving = math.hypot(float(self.velocity[0]), float(self.velocity[1])) > 0.3
        swing = 2.5 * math.sin(self.phase) if moving else 0.0
        head = to_image(1.5, 0.0)
        shoulders, elbows, wrists = [], [], []
        for hand in (LEFT, RIGHT):
            out = 1.0 if hand == LEFT else -1.0  # the outward side of this arm, in units of "left"
            shoulder = to_image(0.0, out * SHOULDER_HALF)
            if self.hands[hand] is not None:  # carrying: forearm held in front of the body
                elbow = to_image(4.0, out * (SHOULDER_HALF + 2.0))
                wrist = to_image(11.0, out * (SHOULDER_HALF - 1.5))
            else:  # relaxed, swinging with the walk
                elbow = to_image(1.5 + out * swing * 0.4, out * (SHOULDER_HALF + 2.5))
                wrist = to_image(6.5 + out * swing * 1.4, out * (SHOULDER_HALF + 3.0))
            if hand == self.reach_hand and self.reach_target is not None and self.reach_progress > 0:
                elbow, wrist = self._reaching_arm(np.array(shoulder), np.array(wrist), out)
            shoulders.append(shoulder)
            elbows.append(elbow)
            wrists.append(wrist)
        keypoints = np.array([head, shoulders[0], shoulders[1], elbows[0], elbows[1], wrists[0], wrists[1]])
        centre = (centre_x, centre_y)
        held = [(hand, item[0]) for hand, item in enumerate(self.hands) if item is not None]
        return PersonState(
            self.script.id,
            centre,
            self.heading,
            keypoints,
            (float(self.velocity[0]), float(self.velocity[1])),
            held,
            self.appearance,
        )


def _separate(agents: list[Agent], iterations: int = 2) -> None:
    """Push overlapping walkers apart (bodies are solid); standing or reaching shoppers stay put.

    A positional constraint after everyone stepped: pairs closer than MIN_GAP move apart along the
    line between them, split between the walkers of the pair, never into a shelf.
    """
    for _ in range(iterations):
        for i, a in enumerate(agents):
            for b in agents[i + 1 :]:
                away = a.position - b.position
                gap = float(np.hypot(*away))
                movers = [agent for agent in (a, b) if agent.walking]
                if gap >= MIN_GAP or not movers:
                    continue
                direction = away / gap if gap > 1e-6 else np.array([1.0, 0.0])
                share = (MIN_GAP - gap) / len(movers)
                for agent in movers:
                    sign = 1.0 if agent is a else -1.0
                    moved = agent.position + sign * direction * share
                    if not agent.navigator.blocked(tuple(moved)):
                        agent.velocity = agent.velocity + (moved - agent.position)
                        agent.position = moved


def initial_stacks(layout: Layout) -> list[list[str]]:
    """Every slot full with its planogram SKU (a list per slot, top of stack last)."""
    return [[slot.sku] * slot.capacity for slot in layout.slots]


def simulate(
    scenario: Scenario,
    layout: Layout,
    fps: int,
    rng: np.random.Generator,
    frames: int | None = None,
    reach_s: float = 1.2,
    dwell_s: tuple[float, float] = (0.2, 1.0),
    max_concurrent: int = 6,
    result: SimulationResult | None = None,
) -> Iterator[FrameState]:
    """Yield the world frame by frame; fills ``result`` (events, receipts) as it goes.

    frames: video length; None runs until every shopper has left (plus half a second).
    Shoppers whose enter time has come wait outside while ``max_concurrent`` are in view.
    """
    result = result if result is not None else SimulationResult()
    navigator = Navigator(layout)
    stacks = initial_stacks(layout)
    tops: list[str | None] = [stack[-1] for stack in stacks]
    reach_frames = max(4, round(reach_s * fps))
    dwell_frames = (round(dwell_s[0] * fps), max(round(dwell_s[0] * fps), round(dwell_s[1] * fps)))
    pending = sorted(scenario.shoppers, key=lambda s: (s.enter_s, s.id))
    active: list[Agent] = []
    limit = frames if frames is not None else MAX_FRAMES
    tail = None
    for frame in range(limit):
        changes: list[tuple[int, str | None]] = []
        while pending and round(pending[0].enter_s * fps) <= frame and len(active) < max_concurrent:
            script = pending.pop(0)
            agent = Agent(
                script,
                layout,
                navigator,
                np.random.default_rng([scenario.seed, script.id]),
                reach_frames,
                dwell_frames,
                fps,
                stacks,
            )
            active.append(agent)
        for agent in list(active):
            agent.step(frame, active, tops, result, changes)
        _separate(active)
        for agent in list(active):
            if agent.left_store:
                result.receipts[str(agent.script.id)] = {
                    sku: n for sku, n in sorted(agent.picked.items()) if n
                }
                active.remove(agent)
        persons = [agent.pose() for agent in sorted(active, key=lambda a: a.script.id)]
        result.frames = frame + 1
        yield FrameState(frame + 1, persons, changes)
        if frames is None and not pending and not active:
            tail = frame if tail is None else tail
            if frame - tail >= fps // 2:
                return
    if frames is None:
        raise ScenarioError(f"scenario {scenario.name!r} did not finish within {MAX_FRAMES} frames")
