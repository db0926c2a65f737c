"""The default store: catalog size, confusable pairs, long tail on shelves, geometry."""

from __future__ import annotations

from collections import Counter

import numpy as np

from walkout_sim.layout import load_layout
from walkout_sim.navigation import Navigator, stand_point
from walkout_sim.render import make_sprite

CUES = ("shape", "colour", "size", "pattern")


def test_catalog_has_twelve_distinct_products():
    layout = load_layout()
    assert len(layout.catalog) >= 12
    looks = {(*(getattr(sku, cue) for cue in CUES), sku.pattern_colour) for sku in layout.catalog}
    assert len(looks) == len(layout.catalog)


def test_at_least_two_confusable_pairs_differ_in_one_cue():
    layout = load_layout()
    pairs = []
    for i, a in enumerate(layout.catalog):
        for b in layout.catalog[i + 1 :]:
            differing = [cue for cue in CUES if getattr(a, cue) != getattr(b, cue)]
            if len(differing) == 1 and a.pattern_colour == b.pattern_colour:
                pairs.append((a.id, b.id, differing[0]))
    assert len(pairs) >= 2
    assert len({cue for _, _, cue in pairs}) >= 2  # confusable along different cues


def test_sprites_of_a_confusable_pair_really_look_different():
    layout = load_layout()
    by_id = {sku.id: sku for sku in layout.catalog}
    cola, zero = make_sprite(by_id["cola"]), make_sprite(by_id["cola_zero"])
    difference = np.abs(cola.image.astype(int) - zero.image.astype(int)).sum(axis=2)
    assert (difference > 150).sum() >= 10  # the white band: a clearly visible cue, not a subtle one


def test_rarest_skus_are_under_three_percent_of_picks():
    layout = load_layout()
    popularity = np.array(sorted(sku.popularity for sku in layout.catalog))
    shares = popularity / popularity.sum()
    assert (shares[:3] < 0.03).all()


def test_popular_skus_get_more_facings():
    layout = load_layout()
    facings = Counter(slot.sku for slot in layout.slots)
    ranked = sorted(layout.catalog, key=lambda sku: -sku.popularity)
    assert facings[ranked[0].id] >= 4 * facings[ranked[-1].id]
    assert all(facings[sku.id] >= 2 for sku in layout.catalog)


def test_products_are_small():
    layout = load_layout()
    assert all(8 <= max(sku.size) <= 20 for sku in layout.catalog)


def test_every_slot_can_be_reached_from_the_entrance():
    layout = load_layout()
    navigator = Navigator(layout)
    entrance = (5.0, 218.0)
    for slot in layout.slots:
        point, _ = stand_point(layout, slot)
        assert not navigator.blocked(point), slot.id
        path = navigator.path(entrance, point)
        previous = entrance
        for waypoint in path:
            assert navigator.visible(previous, waypoint), slot.id
            previous = waypoint
