"""One colour per method across the panels of a figure (evaluated methods get the strong colours)."""

from __future__ import annotations

from typing import Collection, Sequence


def method_colours(labels: Sequence[str], own: Collection[str] = ()) -> dict[str, tuple]:
    """Label -> RGBA: tab10 for the methods in `own` (all of them when `own` is empty and there are at most
    ten), the rest cycled through the unused tab10 hues, their pale tab20 partners, then tab20b; a hue an own
    method has is never reused, not even pale."""
    from matplotlib import colormaps

    labels = list(dict.fromkeys(labels))
    strong = list(colormaps["tab10"].colors)
    if not own and len(labels) <= len(strong):
        own = labels
    mine = [label for label in labels if label in set(own)]
    colour = {label: strong[i % len(strong)] for i, label in enumerate(mine)}
    taken = set(colour.values())
    pairs = colormaps["tab20"].colors  # (tab10 hue, its pale partner) pairs
    free = [k for k in range(len(pairs) // 2) if pairs[2 * k] not in taken]
    pool = [pairs[2 * k] for k in free] + [pairs[2 * k + 1] for k in free] + list(colormaps["tab20b"].colors)
    others = [label for label in labels if label not in colour]
    colour.update({label: pool[i % len(pool)] for i, label in enumerate(others)})
    return colour
