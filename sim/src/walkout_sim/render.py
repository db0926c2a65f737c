"""Rendering frames and their exact ground truth.

The static store (floor, shelves, products on shelves) is drawn once per video and patched only
where a slot's top item changes; per frame only shoppers (and what they hold) are drawn, each into a
small RGBA canvas that is motion-blurred and alpha-composited. An ``owner`` map (uint8 [H, W]: 0 =
static store, 1.. = drawn objects, 255 = ceiling occluder) records what is on top at every pixel;
visibility of boxes and keypoints is read from it.

Images are BGR uint8 [H, W, 3]. Boxes are [x, y, w, h] integer pixels (COCO), x to the right, y down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from walkout_sim.config import CameraConfig
from walkout_sim.layout import Layout, Sku
from walkout_sim.simulate import FrameState, PersonState

CANVAS_HALF = 42  # shoulder 9.5 + reach 20 + half a product 8 + blur: 40 px from the centre
OCCLUDER = 255
SUPERSAMPLE = 4
SHIFT = 3  # fractional bits for sub-pixel cv2 drawing
# Objects less visible than the first value are dropped; between the two they are COCO crowd
# (iscrowd=1, "ignore") regions, above the second they are normal annotations.
PERSON_VISIBILITY = (0.05, 0.25)
PRODUCT_VISIBILITY = (0.1, 0.5)


@dataclass
class Sprite:
    """A product's top-down look: BGR image [h, w, 3] uint8 and boolean mask [h, w]."""

    image: np.ndarray
    mask: np.ndarray


def make_sprite(sku: Sku) -> Sprite:
    """Draw an SKU at 4x and downsample (anti-aliased edges at 10-16 px)."""
    w, h = sku.size
    big_w, big_h = w * SUPERSAMPLE, h * SUPERSAMPLE
    mask = np.zeros((big_h, big_w), np.uint8)
    if sku.shape == "rect":
        mask[:] = 255
    elif sku.shape in ("circle", "ellipse"):
        cv2.ellipse(mask, (big_w // 2, big_h // 2), (big_w // 2 - 1, big_h // 2 - 1), 0, 0, 360, 255, -1)
    else:
        if sku.shape == "triangle":
            points = [(big_w / 2, 0), (big_w - 1, big_h - 1), (0, big_h - 1)]
        elif sku.shape == "diamond":
            points = [(big_w / 2, 0), (big_w - 1, big_h / 2), (big_w / 2, big_h - 1), (0, big_h / 2)]
        else:  # hexagon
            points = [
                (big_w / 2 + (big_w / 2 - 1) * math.cos(a), big_h / 2 + (big_h / 2 - 1) * math.sin(a))
                for a in np.linspace(0, 2 * math.pi, 7)[:-1]
            ]
        cv2.fillPoly(mask, [np.round(np.array(points)).astype(np.int32)], 255)
    image = np.zeros((big_h, big_w, 3), np.uint8)
    image[:] = sku.colour
    pattern = sku.pattern_colour
    stroke = SUPERSAMPLE + 1
    if sku.pattern == "band":
        image[big_h * 2 // 5 : big_h * 3 // 5 + 1] = pattern
    elif sku.pattern == "stripes":
        for x in range(-big_h, big_w, 4 * SUPERSAMPLE):
            cv2.line(image, (x, big_h), (x + big_h, 0), pattern, stroke)
    elif sku.pattern == "dots":
        for y in range(2 * SUPERSAMPLE, big_h, 4 * SUPERSAMPLE):
            for x in range(2 * SUPERSAMPLE, big_w, 4 * SUPERSAMPLE):
                cv2.circle(image, (x, y), SUPERSAMPLE, pattern, -1)
    elif sku.pattern == "cross":
        cv2.line(image, (0, 0), (big_w, big_h), pattern, stroke)
        cv2.line(image, (big_w, 0), (0, big_h), pattern, stroke)
    elif sku.pattern == "ring":
        cv2.ellipse(image, (big_w // 2, big_h // 2), (big_w // 3, big_h // 3), 0, 0, 360, pattern, stroke)
    elif sku.pattern == "cap":
        image[: big_h // 4] = pattern
    elif sku.pattern == "checker":
        cell = 3 * SUPERSAMPLE
        for y in range(0, big_h, cell):
            for x in range(0, big_w, cell):
                if (x // cell + y // cell) % 2:
                    image[y : y + cell, x : x + cell] = pattern
    # A darker rim: products read as objects on the shelf, not as paint.
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    rim = tuple(int(c * 0.45) for c in sku.colour)
    cv2.drawContours(image, contours, -1, rim, SUPERSAMPLE)
    small_mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
    small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return Sprite(image=small, mask=small_mask >= 128)


def _blur_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised line kernel of ``length`` pixels at ``angle`` radians (linear motion blur)."""
    size = math.ceil(length) | 1
    size = max(size, 3)
    kernel = np.zeros((size * 4, size * 4), np.float32)
    centre = size * 2
    dx, dy = math.cos(angle) * length * 2, math.sin(angle) * length * 2
    cv2.line(
        kernel,
        (round(centre - dx), round(centre - dy)),
        (round(centre + dx), round(centre + dy)),
        1.0,
        2,
        cv2.LINE_AA,
    )
    kernel = cv2.resize(kernel, (size, size), interpolation=cv2.INTER_AREA)
    return kernel / kernel.sum()


class Renderer:
    """Renders one video: owns the static store image, lighting field and noise bank of that video."""

    def __init__(self, layout: Layout, camera: CameraConfig, rng: np.random.Generator) -> None:
        self.layout = layout
        self.camera = camera
        self.rng = rng
        self.width, self.height = layout.floor.width, layout.floor.height
        self.sprites = {sku.id: make_sprite(sku) for sku in layout.catalog}
        self.category = {sku.id: index + 2 for index, sku in enumerate(layout.catalog)}
        self.base = self._draw_store_without_products()
        self.static = self.base.copy()
        self.tops: list[str | None] = [None] * len(layout.slots)
        # Per slot: the visible product's box as x1 y1 x2 y2 (int [S, 4]) and its unoccluded GT entry.
        self.shelf_rects = np.zeros((len(layout.slots), 4), np.int32)
        self.shelf_entries: list[dict | None] = [None] * len(layout.slots)
        for index, slot in enumerate(layout.slots):
            self.set_slot(index, slot.sku)
        self.occluder_mask = np.zeros((self.height, self.width), bool)
        self.occluder_image = np.zeros((self.height, self.width, 3), np.uint8)
        for occluder in layout.occluders:
            self._draw_occluder(occluder.rect, occluder.colour)
        self.occluder_boxes = [o.rect for o in layout.occluders]
        self.occluder_windows = [
            (max(x, 0), max(y, 0), min(x + w, self.width), min(y + h, self.height))
            for x, y, w, h in self.occluder_boxes
        ]
        self._init_lighting()
        self._kernels: dict[tuple[float, int], np.ndarray] = {}

    # ---- static store ---------------------------------------------------------------------------

    def _draw_store_without_products(self) -> np.ndarray:
        floor = self.layout.floor
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[:] = floor.colour
        texture = self.rng.normal(0, 3.0, (self.height, self.width, 1)).astype(np.float32)
        grout = tuple(int(c * 0.88) for c in floor.colour)
        for x in range(0, self.width, floor.tile):
            cv2.line(image, (x, 0), (x, self.height), grout, 1)
        for y in range(0, self.height, floor.tile):
            cv2.line(image, (0, y), (self.width, y), grout, 1)
        image = np.clip(image.astype(np.float32) + texture, 0, 255).astype(np.uint8)
        for zone in (self.layout.entrance, self.layout.exit):
            x, y, w, h = zone.rect
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), zone.colour, -1)
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), tuple(int(c * 0.7) for c in zone.colour), 1)
        for shelf in self.layout.shelves:
            x, y, w, h = shelf.rect
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), shelf.colour, -1)
            cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), tuple(int(c * 0.6) for c in shelf.colour), 1)
        for slot in self.layout.slots:
            x, y, w, h = slot.rect
            shelf = next(s for s in self.layout.shelves if s.id == slot.shelf)
            surface = tuple(min(255, int(c * 1.25)) for c in shelf.colour)
            cv2.rectangle(image, (x + 1, y + 1), (x + w - 2, y + h - 2), surface, -1)
        return image

    def _draw_occluder(self, rect: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
        x, y, w, h = rect
        patch = np.zeros((h, w, 3), np.uint8)
        patch[:] = colour
        cv2.rectangle(patch, (0, 0), (w - 1, h - 1), tuple(int(c * 0.5) for c in colour), 1)
        for row in range(3, h - 2, 4):
            cv2.line(patch, (3, row), (w - 4, row), (230, 230, 230), 1)
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, self.width), min(y + h, self.height)
        self.occluder_image[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
        self.occluder_mask[y0:y1, x0:x1] = True

    def product_rect(self, slot_index: int, sku: str) -> tuple[int, int, int, int]:
        """Where an SKU's sprite sits in a slot: [x, y, w, h], centred."""
        x, y, w, h = self.layout.slots[slot_index].rect
        sw, sh = self.layout.catalog[self.category[sku] - 2].size
        return (x + (w - sw) // 2, y + (h - sh) // 2, sw, sh)

    def set_slot(self, slot_index: int, sku: str | None) -> None:
        """Show ``sku`` (or nothing) on top of a slot in the static image."""
        x, y, w, h = self.layout.slots[slot_index].rect
        self.static[y : y + h, x : x + w] = self.base[y : y + h, x : x + w]
        self.tops[slot_index] = sku
        if sku is None:
            self.shelf_rects[slot_index] = (0, 0, 0, 0)
            self.shelf_entries[slot_index] = None
        else:
            px, py, pw, ph = self.product_rect(slot_index, sku)
            self.shelf_rects[slot_index] = (px, py, px + pw, py + ph)
            self.shelf_entries[slot_index] = self._entry(sku, (px, py, pw, ph), 1.0) | {
                "slot": self.layout.slots[slot_index].id
            }
            sprite = self.sprites[sku]
            region = self.static[py : py + ph, px : px + pw]
            region[sprite.mask] = sprite.image[sprite.mask]

    # ---- lighting and noise ---------------------------------------------------------------------

    def _init_lighting(self) -> None:
        camera, rng = self.camera, self.rng
        gain = rng.uniform(*camera.brightness)
        tint = 1 + rng.uniform(-camera.tint, camera.tint, 3)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        xs = (xs - self.width / 2) / (self.width / 2)
        ys = (ys - self.height / 2) / (self.height / 2)
        angle = rng.uniform(0, 2 * math.pi)
        ramp = xs * math.cos(angle) + ys * math.sin(angle)
        lamp = np.array(rng.uniform(-0.6, 0.6, 2), np.float32)
        falloff = (xs - lamp[0]) ** 2 + (ys - lamp[1]) ** 2
        spatial = 1 + camera.gradient * (0.5 * ramp - 0.5 * (falloff - falloff.mean()))
        self.light = (spatial[..., None] * (gain * tint)[None, None, :]).astype(np.float32)
        self.drift_period = rng.uniform(*camera.drift_period_s) * camera.fps
        self.drift_phase = rng.uniform(0, 2 * math.pi)
        pad = 16
        self.noise_bank = (
            [
                rng.normal(0, camera.noise_sigma, (self.height + pad, self.width + pad, 3)).astype(np.float32)
                for _ in range(6)
            ]
            if camera.noise_sigma > 0
            else []
        )

    def _finish(self, frame: np.ndarray, index: int) -> np.ndarray:
        """Lighting (with slow drift) and sensor noise; returns the final uint8 image."""
        drift = 1 + self.camera.drift_amplitude * math.sin(
            2 * math.pi * index / self.drift_period + self.drift_phase
        )
        out = cv2.multiply(frame, self.light, scale=drift, dtype=cv2.CV_32F)
        if self.noise_bank:
            noise = self.noise_bank[int(self.rng.integers(len(self.noise_bank)))]
            dy, dx = self.rng.integers(0, 16, 2)
            cv2.add(out, noise[dy : dy + self.height, dx : dx + self.width], dst=out)
        # Negative values to 0 first: convertScaleAbs would mirror them; it rounds and saturates at 255.
        cv2.threshold(out, 0, 0, cv2.THRESH_TOZERO, dst=out)
        return cv2.convertScaleAbs(out)

    # ---- shoppers -------------------------------------------------------------------------------

    def _kernel(self, velocity: tuple[float, float]) -> np.ndarray | None:
        length = math.hypot(*velocity) * self.camera.motion_blur
        if length < 1.0:
            return None
        key = (round(length * 2) / 2, round(math.degrees(math.atan2(velocity[1], velocity[0])) / 15) % 24)
        if key not in self._kernels:
            self._kernels[key] = _blur_kernel(key[0], math.radians(key[1] * 15))
        return self._kernels[key]

    def _draw_person(self, person: PersonState, origin: tuple[int, int]) -> tuple[np.ndarray, list]:
        """RGBA canvas [2*CANVAS_HALF]^2 (premultiplied colour) and held-product rects in image coords."""
        size = 2 * CANVAS_HALF
        canvas = np.zeros((size, size, 4), np.uint8)
        ox, oy = origin
        scale = 1 << SHIFT
        # Fixed-point canvas coordinates of all keypoints at once (cv2 drawing with `shift` bits).
        fixed = np.round((person.keypoints - (ox, oy)) * scale).astype(np.int64).tolist()
        points = [tuple(p) for p in fixed]

        def fixed_point(p: np.ndarray) -> tuple[int, int]:
            """Canvas coordinates of an image point, with SHIFT fractional bits."""
            return (round((p[0] - ox) * scale), round((p[1] - oy) * scale))

        look = person.appearance
        shirt = (*look.shirt, 255)
        sleeve = (*(int(c * 0.8) for c in look.shirt), 255)
        skin = (*look.skin, 255)
        keypoints = person.keypoints
        centre = np.array(person.centre)
        for shoulder, elbow in ((1, 3), (2, 4)):
            cv2.line(canvas, points[shoulder], points[elbow], sleeve, 5, cv2.LINE_AA, SHIFT)
        angle = math.degrees(person.heading) + 90
        cv2.ellipse(
            canvas, fixed_point(centre), (11 * scale, 6 * scale), angle, 0, 360, shirt, -1, cv2.LINE_AA, SHIFT
        )
        for elbow, wrist in ((3, 5), (4, 6)):
            cv2.line(canvas, points[elbow], points[wrist], skin, 3, cv2.LINE_AA, SHIFT)
            cv2.circle(canvas, points[wrist], int(2.2 * scale), skin, -1, cv2.LINE_AA, SHIFT)
        held_rects = []
        for hand, sku in person.held:
            sprite = self.sprites[sku]
            h, w = sprite.mask.shape
            wrist = keypoints[5 + hand]
            x, y = round(wrist[0] - w / 2), round(wrist[1] - h / 2)
            cx, cy = x - ox, y - oy
            if cx >= 0 and cy >= 0 and cx + w <= size and cy + h <= size:
                region = canvas[cy : cy + h, cx : cx + w]
                region[sprite.mask, :3] = sprite.image[sprite.mask]
                region[sprite.mask, 3] = 255
                held_rects.append((sku, (x, y, w, h)))
        head_colour = look.cap if look.cap is not None else look.hair
        cv2.circle(canvas, points[0], int(4.6 * scale), (*head_colour, 255), -1, cv2.LINE_AA, SHIFT)
        if look.cap is not None:
            brim = keypoints[0] + 3.5 * np.array([math.cos(person.heading), math.sin(person.heading)])
            cv2.circle(
                canvas,
                fixed_point(brim),
                int(2.2 * scale),
                (*(int(c * 0.7) for c in look.cap), 255),
                -1,
                cv2.LINE_AA,
                SHIFT,
            )
        # The canvas is premultiplied RGBA (anti-aliasing blends colour and alpha against 0 alike), so
        # blurring all four channels together is a correct motion blur of a semi-transparent layer.
        kernel = self._kernel(person.velocity)
        if kernel is not None:
            canvas = cv2.filter2D(canvas, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        return canvas, held_rects

    # ---- one frame ------------------------------------------------------------------------------

    def render(self, state: FrameState) -> tuple[np.ndarray, dict]:
        """The frame image and its ground truth ``{"persons": [...], "products": [...]}`` (see module doc)."""
        for slot_index, sku in state.slot_changes:
            self.set_slot(slot_index, sku)
        frame = self.static.copy()
        owner = np.zeros((self.height, self.width), np.uint8)
        drawn = []  # (person, owner id, full mask area, canvas box, held [(sku, rect, owner id)])
        next_owner = 1
        for person in state.persons:
            ox, oy = round(person.centre[0]) - CANVAS_HALF, round(person.centre[1]) - CANVAS_HALF
            canvas, held_rects = self._draw_person(person, (ox, oy))
            # Work only inside the drawn part of the canvas (a person covers ~1/9 of it).
            bx, by, bw, bh = cv2.boundingRect(canvas[..., 3])
            canvas = canvas[by : by + bh, bx : bx + bw]
            ox, oy = ox + bx, oy + by
            solid = canvas[..., 3] >= 128
            area = int(np.count_nonzero(solid))
            x0, y0 = max(ox, 0), max(oy, 0)
            x1, y1 = min(ox + bw, self.width), min(oy + bh, self.height)
            person_owner = next_owner
            next_owner += 1
            held = []
            if x1 > x0 and y1 > y0:
                crop = canvas[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
                roi = frame[y0:y1, x0:x1]
                # Premultiplied "over": roi * (255 - alpha) / 255 + colour (cv2 rounds and saturates).
                inverse = 255 - crop[..., 3]
                kept = cv2.multiply(roi, cv2.merge((inverse, inverse, inverse)), scale=1 / 255)
                cv2.add(kept, crop[..., :3], dst=roi)
                owner[y0:y1, x0:x1][solid[y0 - oy : y1 - oy, x0 - ox : x1 - ox]] = person_owner
            for sku, (hx, hy, hw, hh) in held_rects:
                product_owner = next_owner
                next_owner += 1
                mask = self.sprites[sku].mask
                cx0, cy0, cx1, cy1 = (
                    max(hx, 0),
                    max(hy, 0),
                    min(hx + hw, self.width),
                    min(hy + hh, self.height),
                )
                if cx1 > cx0 and cy1 > cy0:
                    owner[cy0:cy1, cx0:cx1][mask[cy0 - hy : cy1 - hy, cx0 - hx : cx1 - hx]] = product_owner
                held.append((sku, (hx, hy, hw, hh), product_owner))
            sx, sy, sw, sh = cv2.boundingRect(solid.view(np.uint8))
            box = (ox + sx, oy + sy, ox + sx + sw, oy + sy + sh)
            drawn.append((person, person_owner, area, box, held))
        for x0, y0, x1, y1 in self.occluder_windows:
            mask = self.occluder_mask[y0:y1, x0:x1]
            np.copyto(frame[y0:y1, x0:x1], self.occluder_image[y0:y1, x0:x1], where=mask[..., None])
            owner[y0:y1, x0:x1][mask] = OCCLUDER
        image = self._finish(frame, state.index)
        return image, self._truth(owner, drawn)

    def _truth(self, owner: np.ndarray, drawn: list) -> dict:
        persons, products = [], []
        for person, person_owner, area, box, held in drawn:
            bx0, by0 = max(box[0], 0), max(box[1], 0)
            bx1, by1 = min(box[2], self.width), min(box[3], self.height)
            if area == 0 or bx1 <= bx0 or by1 <= by0:
                continue
            own = {person_owner, *(h[2] for h in held)}
            visible = int((owner[by0:by1, bx0:bx1] == person_owner).sum())
            visibility = visible / area
            if visibility < PERSON_VISIBILITY[0]:
                continue
            keypoints, labelled = self._keypoints(person.keypoints, owner, own)
            persons.append(
                {
                    "track_id": person.track_id,
                    "bbox": [bx0, by0, bx1 - bx0, by1 - by0],
                    "area": int((owner[by0:by1, bx0:bx1] == person_owner).sum()) or 1,
                    "visibility": round(visibility, 3),
                    "keypoints": keypoints,
                    "num_keypoints": labelled,
                    "iscrowd": int(visibility < PERSON_VISIBILITY[1]),
                }
            )
            for sku, (hx, hy, hw, hh), product_owner in held:
                mask_area = int(self.sprites[sku].mask.sum())
                entry = self._product_entry(owner, sku, (hx, hy, hw, hh), product_owner, mask_area)
                if entry is not None:
                    entry["held_by"] = person.track_id
                    products.append(entry)
        boxes = np.array(
            [d[3] for d in drawn] + [(x, y, x + w, y + h) for x, y, w, h in self.occluder_boxes],
            dtype=np.int32,
        ).reshape(-1, 4)
        # Which shelf products might be hidden: their rectangle overlaps a person or an occluder.
        rects = self.shelf_rects
        covered = np.zeros(len(rects), bool)
        if len(boxes):
            covered = np.any(
                (boxes[None, :, 0] < rects[:, None, 2])
                & (boxes[None, :, 2] > rects[:, None, 0])
                & (boxes[None, :, 1] < rects[:, None, 3])
                & (boxes[None, :, 3] > rects[:, None, 1]),
                axis=1,
            ).tolist()
        for slot_index, sku in enumerate(self.tops):
            if sku is None:
                continue
            if covered[slot_index]:
                entry = self._product_entry(
                    owner, sku, self.product_rect(slot_index, sku), 0, int(self.sprites[sku].mask.sum())
                )
                if entry is not None:
                    entry["slot"] = self.layout.slots[slot_index].id
            else:
                entry = dict(self.shelf_entries[slot_index])
            if entry is not None:
                products.append(entry)
        return {"persons": persons, "products": products}

    def _keypoints(self, points: np.ndarray, owner: np.ndarray, own: set[int]) -> tuple[list, int]:
        """COCO keypoints [x1, y1, v1, ...] and the labelled count for float points [K, 2].

        v = 0 outside the image (x = y = 0), 1 under someone/something else, 2 visible.
        """
        keypoints: list = []
        labelled = 0
        for x, y in points.tolist():  # 7 points: plain Python beats numpy's per-call overhead here
            column, row = math.floor(x), math.floor(y)
            if 0 <= column < self.width and 0 <= row < self.height:
                top = owner.item(row, column)
                keypoints += [round(x, 2), round(y, 2), 1 if top and top not in own else 2]
                labelled += 1
            else:
                keypoints += [0.0, 0.0, 0]
        return keypoints, labelled

    def _product_entry(self, owner: np.ndarray, sku: str, rect: tuple, product_owner: int, mask_area: int):
        x, y, w, h = rect
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return None
        mask = self.sprites[sku].mask[y0 - y : y1 - y, x0 - x : x1 - x]
        visible = int(((owner[y0:y1, x0:x1] == product_owner) & mask).sum())
        visibility = visible / max(mask_area, 1)
        if visibility < PRODUCT_VISIBILITY[0]:
            return None
        return self._entry(sku, (x0, y0, x1 - x0, y1 - y0), visibility)

    def _entry(self, sku: str, rect: tuple, visibility: float) -> dict:
        return {
            "category_id": self.category[sku],
            "sku": sku,
            "bbox": [int(v) for v in rect],
            "area": int(rect[2] * rect[3]),
            "visibility": round(visibility, 3),
            "iscrowd": int(visibility < PRODUCT_VISIBILITY[1]),
        }
