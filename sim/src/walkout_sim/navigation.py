"""Walking paths that avoid shelves: a visibility graph over the corners of inflated shelf rectangles.

Points are ``(x, y)`` floats in image pixels. Shelves are inflated by the body radius so a path that
misses the inflated rectangle keeps the shopper's body off the shelf.
"""

from __future__ import annotations

import heapq
import math

from walkout_sim.layout import ACCESS, Layout, Slot

Point = tuple[float, float]
BODY_MARGIN = 9.0  # half the shoulder width: the body centre stays this far from any shelf
STANDOFF = 11.0  # where a shopper stands in front of a slot: this far from the shelf edge


class Navigator:
    """Shortest obstacle-free polyline paths in one layout (pure geometry, no randomness)."""

    def __init__(self, layout: Layout, margin: float = BODY_MARGIN) -> None:
        self.width = layout.floor.width
        self.height = layout.floor.height
        self.obstacles = [
            (x - margin, y - margin, x + w + margin, y + h + margin)
            for x, y, w, h in (s.rect for s in layout.shelves)
        ]
        corners = []
        for x1, y1, x2, y2 in self.obstacles:
            for cx, cy in ((x1 - 1, y1 - 1), (x2 + 1, y1 - 1), (x1 - 1, y2 + 1), (x2 + 1, y2 + 1)):
                if not self.blocked((cx, cy)):
                    corners.append((cx, cy))
        self.corners = corners

    def blocked(self, point: Point) -> bool:
        """True if ``point`` lies strictly inside an inflated shelf."""
        x, y = point
        return any(x1 < x < x2 and y1 < y < y2 for x1, y1, x2, y2 in self.obstacles)

    def visible(self, a: Point, b: Point) -> bool:
        """True if the segment a-b misses the interior of every inflated shelf (Liang-Barsky clipping)."""
        for x1, y1, x2, y2 in self.obstacles:
            if _segment_hits_box(a, b, x1 + 1e-6, y1 + 1e-6, x2 - 1e-6, y2 - 1e-6):
                return False
        return True

    def path(self, start: Point, goal: Point) -> list[Point]:
        """Waypoints from start (excluded) to goal (included) around the shelves (straight when clear)."""
        if self.visible(start, goal):
            return [goal]
        nodes = [start, goal, *self.corners]
        distance = {0: 0.0}
        previous: dict[int, int] = {}
        queue = [(0.0, 0)]
        done: set[int] = set()
        while queue:
            cost, index = heapq.heappop(queue)
            if index in done:
                continue
            done.add(index)
            if index == 1:
                break
            for other in range(1, len(nodes)):
                if other in done or not self.visible(nodes[index], nodes[other]):
                    continue
                new_cost = cost + math.dist(nodes[index], nodes[other])
                if new_cost < distance.get(other, math.inf):
                    distance[other] = new_cost
                    previous[other] = index
                    heapq.heappush(queue, (new_cost, other))
        if 1 not in previous:
            return [goal]  # unreachable: walk straight (the layout validator keeps this from happening)
        route = [1]
        while route[-1] != 0:
            route.append(previous[route[-1]])
        return [nodes[i] for i in reversed(route[:-1])]


def _segment_hits_box(a: Point, b: Point, x1: float, y1: float, x2: float, y2: float) -> bool:
    """True if the segment a-b intersects the open box (x1, y1)-(x2, y2)."""
    t0, t1 = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in ((-dx, a[0] - x1), (dx, x2 - a[0]), (-dy, a[1] - y1), (dy, y2 - a[1])):
        if p == 0:
            if q <= 0:
                return False
        else:
            t = q / p
            if p < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
            if t0 >= t1:
                return False
    return True


def slot_centre(slot: Slot) -> Point:
    """Centre of a slot rectangle."""
    x, y, w, h = slot.rect
    return (x + w / 2, y + h / 2)


def stand_point(layout: Layout, slot: Slot, along_offset: float = 0.0) -> tuple[Point, float]:
    """Where a shopper stands to reach ``slot`` and the heading (radians) facing the shelf.

    along_offset shifts the stand point along the shelf edge (to make room for another shopper).
    """
    shelf = next(s for s in layout.shelves if s.id == slot.shelf)
    sx, sy, sw, sh = shelf.rect
    cx, cy = slot_centre(slot)
    ax, ay = ACCESS[slot.access]
    if ax == 0:
        edge = sy + sh if ay > 0 else sy
        point = (cx + along_offset, edge + ay * STANDOFF)
    else:
        edge = sx + sw if ax > 0 else sx
        point = (edge + ax * STANDOFF, cy + along_offset)
    heading = math.atan2(-ay, -ax)
    return point, heading
