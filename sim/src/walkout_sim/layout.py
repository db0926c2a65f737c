"""The store layout: floor, shelf units with slots, entrance/exit zones, ceiling occluders, SKU catalog.

All geometry is in image pixels of the top-down camera (x to the right, y down). Rectangles are
``[x, y, w, h]`` with integer pixels. The default store ships as package data (``data/store.yaml``).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import yaml

from walkout_sim.errors import ConfigError
from walkout_sim.schema import build, read_yaml, require, to_plain

Colour = tuple[int, int, int]
Rect = tuple[int, int, int, int]

SHAPES = ("rect", "circle", "ellipse", "triangle", "diamond", "hexagon")
PATTERNS = ("solid", "band", "stripes", "dots", "cross", "ring", "cap", "checker")
ACCESS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


def _check_colour(colour: Colour, source: str, path: str, name: str) -> None:
    require(
        all(0 <= c <= 255 for c in colour), source, path, name, f"BGR values must be 0..255, got {colour}"
    )


def _check_rect(rect: Rect, source: str, path: str, name: str) -> None:
    require(
        rect[2] > 0 and rect[3] > 0, source, path, name, f"width and height must be > 0, got {list(rect)}"
    )


@dataclass(frozen=True)
class Floor:
    """The visible floor: the image size of the camera and the floor look."""

    width: int = 320
    height: int = 240
    colour: Colour = (178, 184, 188)
    tile: int = 16

    def check(self, source: str, path: str) -> None:
        require(32 <= self.width <= 4096, source, path, "width", f"must be 32..4096 pixels, got {self.width}")
        require(
            32 <= self.height <= 4096, source, path, "height", f"must be 32..4096 pixels, got {self.height}"
        )
        require(self.tile >= 2, source, path, "tile", f"must be >= 2 pixels, got {self.tile}")
        _check_colour(self.colour, source, path, "colour")


@dataclass(frozen=True)
class Shelf:
    """A shelf unit (an obstacle shoppers walk around)."""

    id: str
    rect: Rect
    colour: Colour = (96, 118, 140)

    def check(self, source: str, path: str) -> None:
        _check_rect(self.rect, source, path, "rect")
        _check_colour(self.colour, source, path, "colour")


@dataclass(frozen=True)
class Slot:
    """A place on a shelf holding a stack of one planogram SKU; the top unit is what the camera sees.

    access: the side of the shelf a shopper stands on to reach the slot (up, down, left, right).
    """

    id: str
    shelf: str
    rect: Rect
    sku: str
    access: Literal["up", "down", "left", "right"]
    capacity: int = 3

    def check(self, source: str, path: str) -> None:
        _check_rect(self.rect, source, path, "rect")
        require(1 <= self.capacity <= 20, source, path, "capacity", f"must be 1..20, got {self.capacity}")


@dataclass(frozen=True)
class Zone:
    """Entrance or exit: a floor rectangle touching the image border; ``side`` is the border it opens to."""

    rect: Rect
    side: Literal["left", "right", "top", "bottom"]
    colour: Colour = (120, 160, 120)

    def check(self, source: str, path: str) -> None:
        _check_rect(self.rect, source, path, "rect")
        _check_colour(self.colour, source, path, "colour")


@dataclass(frozen=True)
class Occluder:
    """Something hanging from the ceiling between camera and floor (a sign, a lamp): drawn on top of all."""

    id: str
    rect: Rect
    colour: Colour = (110, 60, 30)

    def check(self, source: str, path: str) -> None:
        _check_rect(self.rect, source, path, "rect")
        _check_colour(self.colour, source, path, "colour")


@dataclass(frozen=True)
class Sku:
    """One product of the catalog and its look.

    size: [w, h] pixels (about 8-16); popularity: relative pick weight (need not sum to 1).
    pattern_colour: the colour of the pattern drawn over the base colour.
    """

    id: str
    shape: Literal["rect", "circle", "ellipse", "triangle", "diamond", "hexagon"]
    colour: Colour
    size: tuple[int, int]
    popularity: float
    pattern: Literal["solid", "band", "stripes", "dots", "cross", "ring", "cap", "checker"] = "solid"
    pattern_colour: Colour = (250, 250, 250)
    name: str = ""

    def check(self, source: str, path: str) -> None:
        _check_colour(self.colour, source, path, "colour")
        _check_colour(self.pattern_colour, source, path, "pattern_colour")
        require(
            all(4 <= s <= 40 for s in self.size),
            source,
            path,
            "size",
            f"must be 4..40 pixels, got {self.size}",
        )
        require(self.popularity > 0, source, path, "popularity", f"must be > 0, got {self.popularity}")


@dataclass(frozen=True)
class Layout:
    """A whole store. Cross-references (slot -> shelf, slot -> SKU) are checked at load."""

    name: str
    floor: Floor
    shelves: tuple[Shelf, ...]
    slots: tuple[Slot, ...]
    entrance: Zone
    exit: Zone
    catalog: tuple[Sku, ...]
    occluders: tuple[Occluder, ...] = field(default_factory=tuple)

    def check(self, source: str, path: str) -> None:
        require(len(self.catalog) >= 1, source, path, "catalog", "needs at least one SKU")
        require(len(self.slots) >= 1, source, path, "slots", "needs at least one slot")
        for kind, items in (("shelves", self.shelves), ("slots", self.slots), ("catalog", self.catalog)):
            seen: set[str] = set()
            for index, item in enumerate(items):
                require(item.id not in seen, source, path, f"{kind}[{index}].id", f"duplicate id {item.id!r}")
                seen.add(item.id)
        shelf_ids = [shelf.id for shelf in self.shelves]
        sku_ids = [sku.id for sku in self.catalog]
        shelves = {shelf.id: shelf for shelf in self.shelves}
        skus = {sku.id: sku for sku in self.catalog}
        for index, slot in enumerate(self.slots):
            require(
                slot.shelf in shelf_ids,
                source,
                path,
                f"slots[{index}].shelf",
                f"unknown shelf {slot.shelf!r}; allowed: {shelf_ids}",
            )
            require(
                slot.sku in sku_ids,
                source,
                path,
                f"slots[{index}].sku",
                f"unknown SKU {slot.sku!r}; allowed: {sku_ids}",
            )
            x, y, w, h = slot.rect
            sx, sy, sw, sh = shelves[slot.shelf].rect
            require(
                sx <= x and sy <= y and x + w <= sx + sw and y + h <= sy + sh,
                source,
                path,
                f"slots[{index}].rect",
                f"must lie inside shelf {slot.shelf} {list(shelves[slot.shelf].rect)}, got {list(slot.rect)}",
            )
            size = skus[slot.sku].size
            require(
                size[0] <= w and size[1] <= h,
                source,
                path,
                f"slots[{index}].rect",
                f"too small for {slot.sku} ({size[0]}x{size[1]} px), got {w}x{h}",
            )
        for index, shelf in enumerate(self.shelves):
            x, y, w, h = shelf.rect
            require(
                x >= 0 and y >= 0 and x + w <= self.floor.width and y + h <= self.floor.height,
                source,
                path,
                f"shelves[{index}].rect",
                f"must lie inside the {self.floor.width}x{self.floor.height} floor, got {list(shelf.rect)}",
            )
        for name, rect in (("entrance.rect", self.entrance.rect), ("exit.rect", self.exit.rect)):
            x, y, w, h = rect
            require(
                x >= 0 and y >= 0 and x + w <= self.floor.width and y + h <= self.floor.height,
                source,
                path,
                name,
                f"must lie inside the {self.floor.width}x{self.floor.height} floor, got {list(rect)}",
            )

    # Convenience look-ups (pure functions of the frozen data).
    def sku_index(self, sku_id: str) -> int:
        """Position of an SKU in the catalog (its COCO category id is this + 2; person is 1)."""
        return [sku.id for sku in self.catalog].index(sku_id)

    def slot_by_id(self, slot_id: str) -> Slot:
        """The slot called ``slot_id``; KeyError if there is none."""
        for slot in self.slots:
            if slot.id == slot_id:
                return slot
        raise KeyError(slot_id)


def default_layout_path() -> Path:
    """Path of the default store layout shipped as package data."""
    return Path(str(importlib.resources.files("walkout_sim") / "data" / "store.yaml"))


def load_layout(path: str | Path | None = None) -> Layout:
    """Load and validate a layout YAML file (default: the shipped store). Raises ConfigError."""
    path = Path(path) if path is not None else default_layout_path()
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(
            str(path), "", "a layout file must be a mapping with keys name, floor, shelves, ..."
        )
    return build(Layout, data, str(path))


def shuffle_planogram(layout: Layout, rng: np.random.Generator) -> Layout:
    """The same store re-merchandised: the runs of equal SKUs along the slot order are shuffled.

    Facing counts (and so the class imbalance) stay the same; positions change, so a detector cannot
    learn "this shelf position is cola". Runs move across the whole store when every SKU fits every
    slot (true of the default store), otherwise only between slots of the same size.
    """
    sizes = {sku.id: sku.size for sku in layout.catalog}
    fits_anywhere = all(
        sizes[slot.sku][0] <= other.rect[2] and sizes[slot.sku][1] <= other.rect[3]
        for slot in layout.slots
        for other in layout.slots
    )
    groups: dict[tuple, list[int]] = {}
    for index, slot in enumerate(layout.slots):
        groups.setdefault(() if fits_anywhere else (slot.rect[2], slot.rect[3]), []).append(index)
    skus = [slot.sku for slot in layout.slots]
    for indices in groups.values():
        runs: list[list[str]] = []
        for index in indices:
            if runs and runs[-1][-1] == skus[index]:
                runs[-1].append(skus[index])
            else:
                runs.append([skus[index]])
        order = rng.permutation(len(runs))
        flat = [sku for position in order for sku in runs[position]]
        for index, sku in zip(indices, flat, strict=True):
            skus[index] = sku
    return replace(
        layout, slots=tuple(replace(slot, sku=sku) for slot, sku in zip(layout.slots, skus, strict=True))
    )


def layout_to_yaml(layout: Layout) -> str:
    """A layout as YAML that :func:`load_layout` reads back to an equal Layout."""
    return yaml.safe_dump(to_plain(layout), sort_keys=False, default_flow_style=None, width=110)
