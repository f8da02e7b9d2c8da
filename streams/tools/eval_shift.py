"""Recovery after a planted shift: does the hybrid relearn when behaviour changes, and how fast,
next to the same model frozen just before the change?

The shift: from event ``before`` on, every item of the stream is replaced by its image under one
fixed random permutation of the catalogue. Who engages when, and what follows what, keep their
structure, but on other items: what co-engagement and popularity learned before the shift now
points at the wrong items, and the items' texts no longer match the behaviour around them.

Both models see the same users' histories (their own events, applied as they happen); they differ
only in what is learned from everyone's events:
- learning: the engagements (co-engagement links, decayed popularity, the behaviour facet) and
  the ranker keep learning from every event, as in the worker;
- frozen: a copy of both taken at the shift, never updated after it.
Each event after the shift is scored before it is applied (HR@k, items the user already engaged
with excluded); an event whose item the user already had (the permutation can map onto one) is
not scored: no method could hit it.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from index import ItemIndex
from schemas import ClickEvent, join_facets
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.engagement import Engagements
from streams.state.ranker import OnlineRanker
from streams.state.recommend import Recommender, topic_lookup, user_view
from streams.state.updates import apply_event
from streams.tools.eval_metrics import hit_and_ndcg
from streams.tools.eval_prequential import LEARN_STEP, Interaction

RECOVERED_SHARE = 0.9  # recovered: a window's HR is back to this share of the level before the shift


@dataclass(frozen=True)
class ShiftConfig:
    before: int = 8000  # events before the shift
    after: int = 8000  # events after it
    windows: int = 8  # HR@k over this many equal windows after the shift (and one before it)
    seed: int = 0


def shifted_stream(stream: Sequence[Interaction], items: Sequence[str], before: int, seed: int) -> list[Interaction]:
    """``stream`` with every item from position ``before`` on replaced by its image under one
    seeded random permutation of ``items`` (the events before it unchanged)."""
    images = list(items)
    random.Random(seed).shuffle(images)
    image = dict(zip(items, images))
    return [it if n < before else dataclasses.replace(it, item_id=image[it.item_id]) for n, it in enumerate(stream)]


def planted_shift(
    settings: Settings,
    index: ItemIndex,
    stream: Sequence[Interaction],
    cfg: ShiftConfig,
    k: int = 10,
    progress: Callable[[Sequence], Any] | None = None,
) -> dict[str, Any]:
    """``index``: the catalogue's facet vectors; ``stream``: interactions in time order (at least
    ``cfg.before + cfg.after`` of them are used, fewer if there are fewer)."""
    settings = dataclasses.replace(settings, seen_items_max=10**9)  # exclude every earlier item
    n_total = min(len(stream), cfg.before + cfg.after)
    before = min(cfg.before, n_total // 2)
    window = max(1, (n_total - before) // cfg.windows)
    events = shifted_stream(stream[:n_total], sorted(index.item_ids()), before, cfg.seed)
    layout = index.layout
    engagements = Engagements(settings.recommend.engagement, topic_lookup(index))
    ranker = OnlineRanker(settings.recommend.ranker)
    live = Recommender(engagements, ranker, index, settings.recommend.candidates)
    frozen: Recommender | None = None
    states: dict[str, InterestState] = {}
    hits: dict[str, list[float]] = {"learning": [], "frozen at the shift": []}
    at: list[int] = []  # position after the shift of each scored event
    level: list[float] = []  # the learning model's hits in the last window before the shift
    unscorable = 0
    pending = []
    weight = settings.decay.event_weights["click"]
    for n, it in enumerate(progress(events) if progress else events):
        if n == before:
            frozen = Recommender(copy.deepcopy(engagements), copy.deepcopy(ranker), index, settings.recommend.candidates)
        state = states.setdefault(it.user_id, InterestState())
        view = user_view(state, layout)
        cands = live.candidates(view, also=[it.item_id])
        if it.item_id in view.exclude:
            unscorable += n >= before
        elif frozen is not None:
            at.append(n - before)
            hits["learning"].append(hit_and_ndcg([s.item_id for s in live.rank(cands, k)], it.item_id, k)[0])
            ranked = frozen.recommend(view, k)
            hits["frozen at the shift"].append(hit_and_ndcg([s.item_id for s in ranked], it.item_id, k)[0])
        elif n >= before - window:
            level.append(hit_and_ndcg([s.item_id for s in live.rank(cands, k)], it.item_id, k)[0])
        example = live.example(it.user_id, cands, it.item_id)
        if example is not None:
            pending.append(example)
        if len(pending) >= LEARN_STEP:
            ranker.learn(pending)
            pending = []
        event = ClickEvent(f"{it.user_id}-{n}", it.user_id, it.item_id, it.ts)
        apply_event(state, event, join_facets(index.vectors(it.item_id), layout), settings)
        engagements.observe(it.user_id, event.event_id, it.item_id, it.ts, weight, view.recent)
    return summarise(hits, at, level, window, cfg.windows, before, n_total, unscorable, k)


def summarise(hits: dict[str, list[float]], at: list[int], level: list[float], window: int, windows: int,
              before: int, events: int, unscorable: int, k: int) -> dict[str, Any]:
    """HR per window after the shift (the last one also takes the remainder), the level before it,
    and the first window in which the learning model is back to RECOVERED_SHARE of that level
    (None: not within the run)."""
    pos = np.asarray(at, dtype=np.int64)
    window_of = np.minimum(pos // window, windows - 1)
    by_window = {name: [float(np.mean(h)) if len(h := np.asarray(v)[window_of == w]) else 0.0 for w in range(windows)]
                 for name, v in hits.items()}
    before_level = float(np.mean(level)) if level else 0.0
    recovered = next((w for w, hr in enumerate(by_window["learning"]) if hr >= RECOVERED_SHARE * before_level), None)
    return {
        "k": k, "events": events, "shift_at": before, "window_events": window, "unscored_after_shift": unscorable,
        "hr_before_shift": before_level,
        "hr_after_shift": {name: float(np.mean(v)) if v else 0.0 for name, v in hits.items()},
        "by_window": by_window,
        "recovered_share": RECOVERED_SHARE,
        # Events after the shift until the end of the first window back at that share of the level.
        "recovered_after_events": None if recovered is None else (recovered + 1) * window,
    }
