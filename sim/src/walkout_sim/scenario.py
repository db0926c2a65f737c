"""Scenario schema: a script of shoppers (who enters when, which slots they visit, pick or put back).

A scenario YAML file::

    name: pick_then_put_back          # required, used as the video name
    description: free text
    frames: 120                       # optional; default: until every shopper has left (+0.5 s)
    seed: 0                           # lighting, noise and default appearances
    shoppers:
      - id: 1                         # persistent track id, >= 1, unique
        enter_s: 0.0                  # when the shopper appears at the entrance
        start: entrance               # or [x, y]: already inside the store at enter_s
        speed: 2.5                    # optional, pixels per frame
        appearance: {shirt: [b, g, r], hair: [b, g, r], skin: [b, g, r]}   # optional
        leave: true                   # walk out through the exit after the last action
        actions:                      # done in order
          - {do: pick, slot: A1-03}               # take the top item of a slot
          - {do: pick, sku: cola}                 # ... or of the nearest slot showing that SKU
          - {do: pick, slot: B1-04, sku: chips}   # both: take the top of B1-04, a misplaced chips
                                                  #   (needed when a put-back of another SKU
                                                  #   into that slot is in the script)
          - {do: wait, s: 5}                      # stand still
          - {do: put_back, slot: A1-05}           # return a held item (default: the last picked,
                                                  #   or `sku:`; default slot: where it came from)
          - {do: walk_to, point: [160, 130]}      # walk somewhere
          # any action may carry not_before_s: do not start the reach/step before this time

Random videos are sampled into this same schema (:func:`sample_scenario`).
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from walkout_sim.config import ShopperConfig
from walkout_sim.errors import ConfigError
from walkout_sim.layout import Colour, Layout
from walkout_sim.navigation import Navigator
from walkout_sim.schema import build, read_yaml, require

HANDS = 2

SHIRTS: tuple[Colour, ...] = (
    (200, 80, 40),
    (170, 60, 30),
    (40, 40, 180),
    (30, 30, 140),
    (50, 150, 50),
    (40, 110, 40),
    (30, 160, 220),
    (140, 50, 140),
    (60, 60, 60),
    (200, 200, 200),
    (120, 120, 20),
    (150, 110, 190),
)
HAIR: tuple[Colour, ...] = ((25, 25, 30), (30, 60, 100), (60, 120, 170), (140, 140, 150), (20, 30, 60))
SKIN: tuple[Colour, ...] = ((150, 180, 220), (120, 150, 200), (80, 110, 160), (60, 80, 120))


@dataclass(frozen=True)
class Appearance:
    """Clothing and body colours (BGR) of one shopper; what an appearance embedding can latch on to."""

    shirt: Colour
    hair: Colour
    skin: Colour
    cap: Colour | None = None


@dataclass(frozen=True)
class Action:
    """One scripted step; see the module docstring for the meaning of each ``do``."""

    do: Literal["pick", "put_back", "wait", "walk_to"]
    slot: str | None = None
    sku: str | None = None
    s: float = 0.0
    point: tuple[float, float] | None = None
    not_before_s: float = 0.0

    def check(self, source: str, path: str) -> None:
        require(self.s >= 0, source, path, "s", f"must be >= 0 seconds, got {self.s}")
        require(
            self.not_before_s >= 0, source, path, "not_before_s", f"must be >= 0, got {self.not_before_s}"
        )
        if self.do == "pick":
            require(
                self.slot is not None or self.sku is not None,
                source,
                path,
                "slot",
                "a pick needs `slot` (a slot id), `sku` (an SKU id) or both (the SKU expected on top"
                " of that slot, e.g. an item put back there from another slot)",
            )
        if self.do == "walk_to":
            require(self.point is not None, source, path, "point", "walk_to needs `point: [x, y]`")
        if self.do == "wait":
            require(self.s > 0, source, path, "s", "wait needs `s:` > 0 seconds")


@dataclass(frozen=True)
class ShopperScript:
    """One shopper of a scenario."""

    id: int
    actions: tuple[Action, ...] = ()
    enter_s: float = 0.0
    start: Literal["entrance"] | tuple[float, float] = "entrance"
    heading_deg: float = 0.0
    speed: float | None = None
    appearance: Appearance | None = None
    leave: bool = True

    def check(self, source: str, path: str) -> None:
        require(self.id >= 1, source, path, "id", f"must be >= 1 (0 is reserved), got {self.id}")
        require(self.enter_s >= 0, source, path, "enter_s", f"must be >= 0 seconds, got {self.enter_s}")
        if self.speed is not None:
            require(
                0.3 <= self.speed <= 8,
                source,
                path,
                "speed",
                f"must be 0.3..8 pixels/frame, got {self.speed}",
            )


@dataclass(frozen=True)
class Scenario:
    """A scripted video."""

    name: str
    shoppers: tuple[ShopperScript, ...]
    description: str = ""
    frames: int | None = None
    seed: int = 0

    def check(self, source: str, path: str) -> None:
        require(
            self.name.replace("_", "").replace("-", "").isalnum(),
            source,
            path,
            "name",
            f"use letters, digits, _ and - only (it names a folder), got {self.name!r}",
        )
        if self.frames is not None:
            require(1 <= self.frames <= 6000, source, path, "frames", f"must be 1..6000, got {self.frames}")
        ids = [s.id for s in self.shoppers]
        require(len(ids) == len(set(ids)), source, path, "shoppers", f"shopper ids must be unique, got {ids}")


@dataclass(frozen=True)
class ExpectedEvent:
    """What the script says must happen: type, shopper, SKU and slot (None: any slot showing the SKU)."""

    type: str
    shopper_id: int
    sku: str
    slot: str | None


def validate_scenario(scenario: Scenario, layout: Layout, source: str) -> list[ExpectedEvent]:
    """Check a scenario against a layout (slot/SKU ids, hands, put-backs) and return its expected events.

    Raises ConfigError naming the file and the field. Assumes stacks are not emptied by others
    (scripted scenarios should not race for the last unit of a slot).

    A put-back may leave an item in a slot of another SKU (mis-shelved); that item is then the slot's
    top. Shoppers act in parallel, so the script alone does not say whether a later pick from that
    slot takes the misplaced item or the planogram SKU beneath: such a pick must name the SKU it
    expects (``{do: pick, slot: ..., sku: ...}``), which must be the planogram SKU or one that a
    put-back of the script leaves there.
    """
    expected, picks = _expected_events(scenario, layout, source)
    misplaced: dict[str, dict[str, set[int]]] = {}  # slot -> misplaced SKU -> shoppers leaving it there
    for event in expected:
        if (
            event.type == "put_back"
            and event.slot is not None
            and event.sku != layout.slot_by_id(event.slot).sku
        ):
            misplaced.setdefault(event.slot, {}).setdefault(event.sku, set()).add(event.shopper_id)
    for path, action in picks:
        if action.slot is None:
            continue
        planogram = layout.slot_by_id(action.slot).sku
        left_there = {sku: sorted(ids) for sku, ids in sorted(misplaced.get(action.slot, {}).items())}
        require(
            action.sku is not None or not left_there,
            source,
            path,
            "sku",
            f"slot {action.slot} may show an item put back there from elsewhere ({left_there}, SKU: "
            f"shoppers) or its planogram SKU {planogram!r}: say which one this pick takes with `sku:`",
        )
        require(
            action.sku is None or action.sku == planogram or action.sku in left_there,
            source,
            path,
            "sku",
            f"slot {action.slot} can only show {planogram!r} or what the script puts back there "
            f"({sorted(left_there)}), got {action.sku!r}",
        )
    return expected


def _expected_events(
    scenario: Scenario, layout: Layout, source: str
) -> tuple[list[ExpectedEvent], list[tuple[str, Action]]]:
    """Per shopper, in script order: check ids, hands and put-backs; return the expected events and the
    picks as (field path, action).

    A pick from a slot expects the SKU it names, else the slot's planogram SKU (a pick from a slot
    that may hold a misplaced item is checked by :func:`validate_scenario`).
    """
    slot_ids = [slot.id for slot in layout.slots]
    sku_ids = [sku.id for sku in layout.catalog]
    expected = []
    picks: list[tuple[str, Action]] = []
    for s_index, shopper in enumerate(scenario.shoppers):
        held: list[tuple[str, str | None]] = []  # (sku, slot it came from)
        if shopper.start != "entrance":
            x, y = shopper.start
            require(
                0 <= x < layout.floor.width and 0 <= y < layout.floor.height,
                source,
                f"shoppers[{s_index}]",
                "start",
                f"must be 'entrance' or a point on the {layout.floor.width}x{layout.floor.height} floor",
            )
        for a_index, action in enumerate(shopper.actions):
            path = f"shoppers[{s_index}].actions[{a_index}]"
            if action.slot is not None:
                require(
                    action.slot in slot_ids,
                    source,
                    path,
                    "slot",
                    f"unknown slot {action.slot!r}; allowed: {slot_ids}",
                )
            if action.sku is not None:
                require(
                    action.sku in sku_ids,
                    source,
                    path,
                    "sku",
                    f"unknown SKU {action.sku!r}; allowed: {sku_ids}",
                )
            if action.do == "pick":
                require(
                    len(held) < HANDS,
                    source,
                    path,
                    "do",
                    f"shopper {shopper.id} already holds {HANDS} items (one per hand); put one back first",
                )
                sku = action.sku if action.sku is not None else layout.slot_by_id(action.slot).sku
                held.append((sku, action.slot))
                expected.append(ExpectedEvent("pick", shopper.id, sku, action.slot))
                picks.append((path, action))
            elif action.do == "put_back":
                require(len(held) > 0, source, path, "do", f"shopper {shopper.id} holds nothing to put back")
                if action.sku is not None:
                    matches = [i for i, (sku, _) in enumerate(held) if sku == action.sku]
                    require(
                        bool(matches),
                        source,
                        path,
                        "sku",
                        f"shopper {shopper.id} does not hold {action.sku!r}; holds {[h[0] for h in held]}",
                    )
                    index = matches[-1]
                else:
                    index = len(held) - 1
                sku, origin = held.pop(index)
                slot = action.slot if action.slot is not None else origin
                expected.append(ExpectedEvent("put_back", shopper.id, sku, slot))
    return expected, picks


def scenario_dir() -> Path:
    """Folder of the named scenarios shipped as package data."""
    return Path(str(importlib.resources.files("walkout_sim") / "data" / "scenarios"))


def shipped_scenarios() -> list[str]:
    """Names of the shipped scenarios, sorted."""
    return sorted(path.stem for path in scenario_dir().glob("*.yaml"))


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A scenario file path from a shipped scenario name or a path. Raises ConfigError if neither exists."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(str(path), "", "no such scenario file")
        return path
    shipped = scenario_dir() / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    raise ConfigError(
        str(name_or_path), "", f"no such scenario file or shipped scenario; shipped: {shipped_scenarios()}"
    )


def load_scenario(name_or_path: str | Path, layout: Layout) -> tuple[Scenario, list[ExpectedEvent]]:
    """Load, validate (also against ``layout``) and return a scenario with its expected events."""
    path = resolve_scenario_path(name_or_path)
    data = read_yaml(path)
    scenario = build(Scenario, data, str(path))
    return scenario, validate_scenario(scenario, layout, str(path))


def random_appearance(rng: np.random.Generator) -> Appearance:
    """Shirt, hair and skin colours drawn from small palettes (similar shirts exist on purpose)."""
    shirt = np.array(SHIRTS[rng.integers(len(SHIRTS))]) + rng.integers(-12, 13, size=3)
    cap = None
    if rng.random() < 0.2:
        cap = tuple(int(c) for c in SHIRTS[rng.integers(len(SHIRTS))])
    return Appearance(
        shirt=tuple(int(c) for c in np.clip(shirt, 0, 255)),
        hair=HAIR[rng.integers(len(HAIR))],
        skin=SKIN[rng.integers(len(SKIN))],
        cap=cap,
    )


def random_floor_point(layout: Layout, navigator: Navigator, rng: np.random.Generator, avoid: list) -> tuple:
    """A walkable point inside the floor, at least 26 px from each point in ``avoid``."""
    margin = 14
    for _ in range(200):
        point = (
            float(rng.uniform(margin, layout.floor.width - margin)),
            float(rng.uniform(margin + 20, layout.floor.height - margin)),
        )
        if not navigator.blocked(point) and all(math.dist(point, other) >= 26 for other in avoid):
            return point
    return (layout.floor.width / 2, layout.floor.height - 22.0)


def sample_scenario(
    layout: Layout, shoppers: ShopperConfig, frames: int, fps: int, rng: np.random.Generator, name: str
) -> Scenario:
    """A random scenario in the shipped schema: initial shoppers inside, Poisson arrivals, Zipf-like picks.

    SKUs are drawn by catalog popularity (so rare SKUs are rare in picks); slots are found at run
    time (``pick: {sku}``); put-backs go to the same slot or, sometimes, another one.
    """
    navigator = Navigator(layout)
    popularity = np.array([sku.popularity for sku in layout.catalog], dtype=float)
    popularity /= popularity.sum()
    duration = frames / fps
    scripts = []
    starts: list[tuple[float, float]] = []
    count = int(rng.integers(shoppers.initial[0], shoppers.initial[1] + 1))
    enter_times = [0.0] * count
    if shoppers.arrivals_per_minute > 0:
        t = float(rng.exponential(60 / shoppers.arrivals_per_minute))
        while t < duration:
            enter_times.append(t)
            t += float(rng.exponential(60 / shoppers.arrivals_per_minute))
    for index, enter_s in enumerate(enter_times):
        inside = index < count
        start: str | tuple[float, float] = "entrance"
        if inside:
            start = random_floor_point(layout, navigator, rng, starts)
            starts.append(start)
        actions = _random_actions(layout, shoppers, popularity, rng)
        scripts.append(
            ShopperScript(
                id=index + 1,
                actions=tuple(actions),
                enter_s=round(enter_s, 2),
                start=start,
                heading_deg=float(rng.uniform(-180, 180)),
                speed=round(float(rng.uniform(*shoppers.walk_speed)), 3),
                appearance=random_appearance(rng),
            )
        )
    return Scenario(name=name, shoppers=tuple(scripts), frames=frames, seed=int(rng.integers(2**31)))


def _random_actions(
    layout: Layout, shoppers: ShopperConfig, popularity: np.ndarray, rng: np.random.Generator
) -> list[Action]:
    """Picks by popularity with occasional put-backs, never holding more than two items."""
    actions: list[Action] = []
    held: list[str] = []
    picks = int(rng.integers(shoppers.picks[0], shoppers.picks[1] + 1))
    for _ in range(picks):
        if len(held) == HANDS:
            break
        sku = layout.catalog[int(rng.choice(len(popularity), p=popularity))].id
        actions.append(Action(do="pick", sku=sku))
        held.append(sku)
        if rng.random() < shoppers.put_back_probability:
            actions.append(Action(do="wait", s=round(float(rng.uniform(0.5, 4.0)), 1)))
            slot = None
            if rng.random() < shoppers.put_back_elsewhere_probability:
                slot = layout.slots[int(rng.integers(len(layout.slots)))].id
            actions.append(Action(do="put_back", sku=sku, slot=slot))
            held.remove(sku)
    return actions
