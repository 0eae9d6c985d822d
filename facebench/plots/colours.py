"""One colour per method across the panels of a figure (evaluated methods get the strong colours)."""

from __future__ import annotations

from typing import Collection, Sequence


def method_colours(labels: Sequence[str], own: Collection[str] = ()) -> dict[str, tuple]:
    """Label -> RGBA: tab10 for the methods in `own` (all of them when `own` is empty and there are at most
    ten), the rest cycled through tab20 / tab20b without reusing those."""
    from matplotlib import colormaps

    labels = list(dict.fromkeys(labels))
    strong = list(colormaps["tab10"].colors)
    if not own and len(labels) <= len(strong):
        own = labels
    mine = [label for label in labels if label in set(own)]
    colour = {label: strong[i % len(strong)] for i, label in enumerate(mine)}
    taken = set(colour.values())
    pool = [c for name in ("tab20", "tab20b") for c in colormaps[name].colors if c not in taken] or strong
    others = [label for label in labels if label not in colour]
    colour.update({label: pool[i % len(pool)] for i, label in enumerate(others)})
    return colour
