"""The worker's long-lived heap, taken out of the garbage collector's full passes.

A full (generation-2) collection walks every object the collector tracks: about 550,000 once
torch, transformers and Faust are loaded, 290–320 ms on this machine's cores (measured
2026-12-02), during which the event loop answers nothing — neither events nor API requests. Those
objects live as long as the process, so once the worker is ready they are frozen (``gc.freeze``):
full passes then walk only what came after (user state, caches), and a frozen object is never
freed, which costs nothing for objects that live until exit anyway.

From then on the youngest generation is also collected after more allocations than Python's
default 700: a click allocates hundreds of short-lived objects, so with 700 the collector ran
about 100 young and 10 middle passes a second, and every tenth middle pass a full one over the
users' states; 9-21 µs of collection per click, 2-5 % of the worker's CPU (``gc.callbacks``,
2026-12-07). With 20,000, 2-3 µs; a young pass then walks at most that many objects.
"""

from __future__ import annotations

import gc


def freeze_heap(young_threshold: int = 0) -> int:
    """Collect what start-up left as garbage, then freeze the rest, and collect the youngest
    generation after ``young_threshold`` allocations (0: leave Python's threshold); returns the
    objects frozen so far (``gc.get_freeze_count``)."""
    gc.collect()
    gc.freeze()
    if young_threshold:
        gc.set_threshold(young_threshold, *gc.get_threshold()[1:])
    return gc.get_freeze_count()
