"""Prequential next-item evaluation: replay the whole stream in time order and, before each click
or review is applied, score whether its item is in that user's top-k; then apply it.

It runs the worker's own state code in this process (the same ``apply_event``, ``Engagements``,
``OnlineRanker``, ``Recommender`` and FAISS ``ItemIndex``), without the broker, so every one of
the ~100,000 MovieLens events can be scored at the moment it happens; the worker's own API is
measured on the broker-backed leave-last-out replay in ``evaluate.py``. The ranker learns in steps
of a micro-batch, as in the worker.

Methods, all scored on the same events, all excluding items the user already engaged with:
- hybrid: the worker's recommender (facet, co-engagement and popularity candidates, learned ranker),
  its ranker learning from every event;
- hybrid, learning as the worker: the same candidates, ranked by a second ranker that learns only
  from what the worker learns from (one event in ``learn_every``, chosen by event id, at most
  ``learn_per_batch`` per micro-batch of ``batch_max`` events, one step per micro-batch);
- facet Z: nearest items to the user's Z (what the worker served before the hybrid);
- co-engagement: items engaged with after the user's recent items (item-to-item), topped up with
  decayed popularity when it has fewer than k;
- popularity as of the moment: all-time counts so far, and decayed (short and long half-life).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from encoders import FacetEncoder
from index import ItemIndex
from schemas import ClickEvent, join_facets
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.engagement import Engagements
from streams.state.ranker import FEATURES, Example, OnlineRanker, chosen_as_lesson, evenly_spread
from streams.state.recommend import Recommender, topic_lookup, user_view
from streams.state.updates import apply_event
from streams.tools.eval_metrics import hit_and_ndcg, top_k_masked

# The hybrid's ranker learns from every event here, one step per LEARN_STEP lessons; the worker
# learns from one event in learn_every (by event id), a step per micro-batch: the second hybrid.
LEARN_STEP = 64
HYBRID, AS_WORKER = "hybrid", "hybrid, learning as the worker"
HISTORY_BUCKETS = ((0, 4), (5, 19), (20, None))  # earlier events of the user at that moment


@dataclass(frozen=True)
class Interaction:
    user_id: str
    item_id: str
    ts: float


def bucket_of(history: int) -> str:
    for lo, hi in HISTORY_BUCKETS:
        if hi is None or history <= hi:
            return f"{lo}-{hi}" if hi is not None else f"{lo}+"
    raise AssertionError("unreachable")


@dataclass
class Scores:
    """Per method, one (hit, nDCG) per scored event; with each event's bucket and position."""

    k: int
    hits: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    ndcg: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    buckets: list[str] = dataclasses.field(default_factory=list)
    last_of_user: list[bool] = dataclasses.field(default_factory=list)

    def add(self, method: str, ranked: Sequence[str], target: str) -> None:
        h, n = hit_and_ndcg(ranked, target, self.k)
        self.hits.setdefault(method, []).append(h)
        self.ndcg.setdefault(method, []).append(n)

    def summary(self, windows: int) -> dict[str, Any]:
        buckets = np.array(self.buckets)
        last = np.array(self.last_of_user, dtype=bool)
        out: dict[str, Any] = {"events": len(self.buckets), "methods": {}}
        out["bucket_events"] = {b: int((buckets == b).sum()) for b in dict.fromkeys(self.buckets)}
        edges = np.linspace(0, len(self.buckets), windows + 1).astype(int)
        for method in self.hits:
            h, n = np.array(self.hits[method]), np.array(self.ndcg[method])
            out["methods"][method] = {
                "hr": float(h.mean()), "ndcg": float(n.mean()),
                "by_history": {b: float(h[buckets == b].mean()) for b in out["bucket_events"]},
                "by_window": [float(h[a:b].mean()) for a, b in zip(edges[:-1], edges[1:]) if b > a],
                "last_event": {"hr": float(h[last].mean()), "ndcg": float(n[last].mean())} if last.any() else None,
            }
        return out


def prequential(
    settings: Settings,
    encoder: FacetEncoder,
    items: dict[str, str],
    interactions: Sequence[Interaction],
    k: int = 10,
    windows: int = 10,
    progress: Callable[[Sequence], Any] | None = None,
) -> dict[str, Any]:
    """``items``: item id -> the text the worker encodes; ``interactions`` in time order."""
    settings = dataclasses.replace(settings, seen_items_max=10**9)  # exclude every earlier item
    ids = list(items)
    vectors = encoder.encode([items[i] for i in ids])
    index = ItemIndex(encoder.layout, settings.index)
    index.upsert(ids, vectors.facets)
    layout = encoder.layout
    engagements = Engagements(settings.recommend.engagement, topic_lookup(index))
    ranker = OnlineRanker(settings.recommend.ranker)
    cand_cfg = settings.recommend.candidates
    recommender = Recommender(engagements, ranker, index, cand_cfg)
    # Same candidates, its own ranker: learning from the worker's lessons only.
    as_worker = Recommender(engagements, OnlineRanker(settings.recommend.ranker), index, cand_cfg)
    batch_lessons: list[Example] = []
    row_of = {item: n for n, item in enumerate(ids)}
    counts = np.zeros(len(ids))
    last_pos = {it.user_id: n for n, it in enumerate(interactions)}
    states: dict[str, InterestState] = {}
    seen_rows: dict[str, np.ndarray] = {}  # per user, the items engaged with (for all-time popularity)
    scores = Scores(k)
    pending = []
    weight = settings.decay.event_weights["click"]
    started = time.monotonic()
    learn_s = 0.0
    for n, it in enumerate(progress(interactions) if progress else interactions):
        state = states.setdefault(it.user_id, InterestState())
        view = user_view(state, layout)
        seen = seen_rows.setdefault(it.user_id, np.zeros(len(ids), dtype=bool))
        cands = recommender.candidates(view, also=[it.item_id])
        scores.add(HYBRID, [s.item_id for s in recommender.rank(cands, k)], it.item_id)
        scores.add(AS_WORKER, [s.item_id for s in as_worker.rank(cands, k)], it.item_id)
        # The facet source's own order is facet Z (its candidates are the index's nearest items).
        facet_col = FEATURES.index("facet")
        by_facet = sorted((n for n, src in enumerate(cands.sources) if "facet" in src),
                          key=lambda n: -cands.features[n, facet_col])
        scores.add("facet Z", [cands.ids[n] for n in by_facet[:k]], it.item_id)  # no Z yet: a miss
        co_top = []
        for i in np.argsort(-cands.co_recent, kind="stable"):
            if cands.co_recent[i] <= 0 or len(co_top) == k:
                break
            item = engagements.ids_of([cands.co_rows[i]])[0]
            if item not in view.exclude:
                co_top.append(item)
        skip = engagements.rows_of(view.exclude)
        fill = [i for i in engagements.most_popular(2 * k, 0, exclude_rows=skip) if i not in co_top]
        scores.add("co-engagement", co_top + fill[: k - len(co_top)], it.item_id)
        scores.add("popularity, all-time", top_k_masked(counts, seen, ids, k) if counts.any() else [], it.item_id)
        for which, half_life in enumerate(engagements.config.pop_half_lives_s):
            scores.add(f"popularity, {half_life / 86400:g}-day half-life",
                       engagements.most_popular(k, which, exclude_rows=skip), it.item_id)
        scores.buckets.append(bucket_of(view.history))
        scores.last_of_user.append(last_pos[it.user_id] == n)

        example = recommender.example(it.user_id, cands, it.item_id)
        event = ClickEvent(f"{it.user_id}-{n}", it.user_id, it.item_id, it.ts)
        if example is not None:
            pending.append(example)
            if chosen_as_lesson(it.user_id, event.event_id, cand_cfg.learn_every):
                batch_lessons.append(example)
        if (n + 1) % settings.batch_max == 0:  # a micro-batch's end, for the worker-like ranker
            learn_as_worker(as_worker.ranker, batch_lessons, cand_cfg.learn_per_batch)
            batch_lessons = []
        if len(pending) >= LEARN_STEP:
            t = time.monotonic()
            ranker.learn(pending)
            learn_s += time.monotonic() - t
            pending = []
        apply_event(state, event, join_facets(index.vectors(it.item_id), layout), settings)
        engagements.observe(it.user_id, event.event_id, it.item_id, it.ts, weight, view.recent)
        counts[row_of[it.item_id]] += 1
        seen[row_of[it.item_id]] = True
    if pending:
        ranker.learn(pending)
    learn_as_worker(as_worker.ranker, batch_lessons, cand_cfg.learn_per_batch)
    wall = time.monotonic() - started
    out = scores.summary(windows)
    out.update({"k": k, "wall_s": wall, "events_per_s": len(interactions) / wall, "ranker_learn_s": learn_s,
                "ranker": ranker.status(), "ranker_as_worker": as_worker.ranker.status(),
                "engagements": engagements.status()})
    return out


def learn_as_worker(ranker: OnlineRanker, lessons: list[Example], per_batch: int) -> None:
    """One micro-batch's step, as the worker takes it (``UserHandler._lesson_positions``: at most
    ``per_batch`` lessons, evenly spread, when a batch has more)."""
    if lessons := evenly_spread(lessons, per_batch):
        ranker.learn(lessons)


def run_prequential(settings: Settings, encoder: FacetEncoder, items: dict[str, str],
                    interactions: Sequence[Interaction], k: int) -> dict[str, Any]:
    def bar(xs: Sequence) -> Any:
        return tqdm(xs, desc="prequential", unit="event", file=sys.stdout, mininterval=5.0)

    return prequential(settings, encoder, items, interactions, k, progress=bar)
