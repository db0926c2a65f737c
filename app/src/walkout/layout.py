"""The store layout as the engine needs it: slot rectangles with their planogram SKU, entrance, exit.

`StoreLayout` is built from the simulator's `layout.yaml` (copied beside every video) by
`load_layout`; tests build it directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from walkout.errors import LayoutError
from walkout.observations import Box, box_center, point_in_box


@dataclass(frozen=True)
class Slot:
    """One shelf slot: `shelf` and `name` identify it, `sku` is what the planogram puts there.

    The simulator stacks `capacity` units per slot; the camera sees only the top one.

    box: x1 y1 x2 y2 in image pixels (where the slot's products are seen from the ceiling camera).
    """

    shelf: str
    name: str
    sku: str
    box: Box
    capacity: int = 3  # units stacked in the slot when the store opens (the simulator's default)

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) of the slot's center in pixels."""
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    @property
    def key(self) -> tuple[str, str]:
        """(shelf, slot name): unique within a store."""
        return (self.shelf, self.name)


@dataclass(frozen=True)
class StoreLayout:
    """Slots, entrance and exit zones (boxes in image pixels) and the camera's frame rate."""

    slots: tuple[Slot, ...]
    entrance: Box
    exit: Box
    fps: float = 10.0
    width: int = 320
    height: int = 240
    exit_side: str | None = None  # the image border the exit opens to: left, right, top or bottom

    def slot_at(self, x: float, y: float, margin: float = 0.0) -> Slot | None:
        """The slot whose box (grown by `margin` pixels) contains (x, y); the nearest center wins ties."""
        inside = [slot for slot in self.slots if point_in_box(x, y, slot.box, margin)]
        if not inside:
            return None
        return min(
            inside, key=lambda s: ((s.box[0] + s.box[2]) / 2 - x) ** 2 + ((s.box[1] + s.box[3]) / 2 - y) ** 2
        )

    def in_exit(self, x: float, y: float, margin: float = 0.0) -> bool:
        """True when (x, y) lies in the exit zone."""
        return point_in_box(x, y, self.exit, margin)

    def leaves_through_exit(self, box: Box, *, margin: float, border_px: float) -> bool:
        """True when a shopper last seen in `box` has left through the exit.

        Either the box center lies in the exit zone (grown by `margin`), or the box touches, within
        `border_px`, the image border the exit opens to: shoppers walk out of view there, not always
        through the painted zone.
        """
        return self.in_exit(*box_center(box), margin=margin) or self.at_exit_border(box, border_px=border_px)

    def at_exit_border(self, box: Box, *, border_px: float) -> bool:
        """True when `box` touches, within `border_px`, the image border the exit opens to (False when
        the exit opens to no border)."""
        touches = {
            "left": box[0] <= border_px,
            "right": box[2] >= self.width - border_px,
            "top": box[1] <= border_px,
            "bottom": box[3] >= self.height - border_px,
        }
        return self.exit_side is not None and touches[self.exit_side]

    def in_entrance(self, x: float, y: float, margin: float = 0.0) -> bool:
        """True when (x, y) lies in the entrance zone."""
        return point_in_box(x, y, self.entrance, margin)


def _rect_to_box(rect: object, *, where: str) -> Box:
    """A simulator rect [x, y, w, h] (pixels) as a box x1 y1 x2 y2."""
    if (
        not isinstance(rect, list | tuple)
        or len(rect) != 4
        or not all(isinstance(v, int | float) for v in rect)
    ):
        raise LayoutError(f"{where}: expected a rect [x, y, w, h] of 4 numbers, got {rect!r}")
    x, y, w, h = (float(v) for v in rect)
    if w <= 0 or h <= 0:
        raise LayoutError(f"{where}: width and height must be > 0, got {list(rect)}")
    return (x, y, x + w, y + h)


def parse_layout(data: object, *, source: str, fps: float = 10.0) -> StoreLayout:
    """Build a StoreLayout from the simulator's layout mapping (keys floor, slots, entrance, exit, ...).

    Only the keys the engine needs are read; the simulator validates the rest when it writes the file.
    """
    if not isinstance(data, dict):
        raise LayoutError(f"{source}: a layout must be a mapping with keys floor, slots, entrance, exit")
    for key in ("slots", "entrance", "exit"):
        if key not in data:
            raise LayoutError(f"{source}: missing key {key!r} (is this a walkout-sim layout.yaml?)")
    floor = data.get("floor") or {}
    slots = []
    for index, slot in enumerate(data["slots"] or []):
        where = f"{source}: slots[{index}]"
        if not isinstance(slot, dict) or not all(k in slot for k in ("id", "shelf", "rect", "sku")):
            raise LayoutError(f"{where}: expected a mapping with id, shelf, rect and sku")
        slots.append(
            Slot(
                shelf=str(slot["shelf"]),
                name=str(slot["id"]),
                sku=str(slot["sku"]),
                box=_rect_to_box(slot["rect"], where=f"{where}.rect"),
                capacity=int(slot.get("capacity", 3)),
            )
        )
    if not slots:
        raise LayoutError(f"{source}: 'slots' is empty; the engine needs at least one slot")
    zones = {}
    for key in ("entrance", "exit"):
        zone = data[key]
        if not isinstance(zone, dict) or "rect" not in zone:
            raise LayoutError(f"{source}: {key} must be a mapping with a rect [x, y, w, h]")
        zones[key] = _rect_to_box(zone["rect"], where=f"{source}: {key}.rect")
    width, height = int(floor.get("width", 320)), int(floor.get("height", 240))
    exit_side = data["exit"].get("side")
    if exit_side is None:  # not given: the border the exit zone touches
        x1, y1, x2, y2 = zones["exit"]
        sides = {"left": x1 <= 0, "right": x2 >= width, "top": y1 <= 0, "bottom": y2 >= height}
        exit_side = next((side for side, touching in sides.items() if touching), None)
    if exit_side not in (None, "left", "right", "top", "bottom"):
        raise LayoutError(f"{source}: exit.side must be left, right, top or bottom, got {exit_side!r}")
    return StoreLayout(
        slots=tuple(slots),
        entrance=zones["entrance"],
        exit=zones["exit"],
        fps=float(fps),
        width=width,
        height=height,
        exit_side=exit_side,
    )


def load_layout(path: str | os.PathLike, *, fps: float = 10.0) -> StoreLayout:
    """Read a simulator `layout.yaml`; LayoutError names the file and the bad field."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"layout file {path} does not exist (every video folder carries a layout.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise LayoutError(f"{path} is not valid YAML: {error}") from error
    return parse_layout(data, source=str(path), fps=fps)
