"""Recommendations from several sources, ranked by one learned ranker. Pure: the item index is
passed in (it is in memory; nothing here does I/O).

Sources of candidates (each gives up to ``per_source`` items the user has not engaged with):
- ``facet``: nearest items to the user's Z in the FAISS index (the text facets: a new item or a
  new user has a place at once);
- ``co-engagement``: items engaged with after (or before) the user's recent items, by anyone;
- ``popular``: the most engaged-with items, decayed in event time (short and long half-life).
Every candidate gets every feature (streams/state/ranker.py), whichever source brought it, and
the ranker orders them. Only items in the catalogue (the index) are recommended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Iterable, Mapping, Protocol, Sequence

import numpy as np

from index import PackedQuery, Query
from schemas.facets import Layout
from streams.state.behaviour import ContentLookup
from streams.state.decay import InterestState
from streams.state.engagement import Engagements
from streams.state.profiles import user_z
from streams.state.ranker import BASE_FEATURES, Example, OnlineRanker, with_depth

SOURCES = ("facet", "co-engagement", "popular")
_BIT = {name: 1 << n for n, name in enumerate(SOURCES)}
_SOURCES_OF_BITS = [tuple(s for s in SOURCES if bits & _BIT[s]) for bits in range(1 << len(SOURCES))]


@dataclass(frozen=True)
class RecommendConfig:
    per_source: int = 100  # candidates taken from each source
    recent_depth: int = 5  # co_recent: the user's last few items ...
    recent_decay: float = 0.7  # ... weighted step_decay^j by recency
    long_depth: int = 20  # co_long: a longer, slowly decayed memory
    long_decay: float = 0.9
    # The worker's ranker learns from one click/review in learn_every (chosen by event id:
    # ranker.chosen_as_lesson), at most learn_per_batch per micro-batch (bounds a batch's cost:
    # each lesson builds the user's candidates, a millisecond or two). 128: twice the lessons a full
    # micro-batch of clicks (batch_max 1,024) holds on average, so the cap only cuts bursts.
    learn_every: int = 16
    learn_per_batch: int = 128


class FacetIndex(Protocol):
    """What the recommender needs of the item index (index.ItemIndex)."""

    version: int  # moves whenever the catalogue changes

    def prepare(self, query: Query) -> PackedQuery: ...
    def nearest(self, queries: Sequence[Query], k: int,
                exclude: Sequence[Iterable[str]] | None = None) -> list[list[tuple[str, float]]]: ...
    def score_items(self, query: Query, item_ids: Sequence[str]) -> np.ndarray: ...
    def known(self, item_ids: Sequence[str]) -> list[bool]: ...
    def facet_rows(self, item_ids: Sequence[str], facet: str) -> tuple[list[str], np.ndarray]: ...


class TopicLookup:
    """Item ids -> their topic vectors in the index (zeros for an item not in it): where the
    behaviour facet's vectors start from. ``version`` is the index's: the vectors stay the same
    until it moves."""

    def __init__(self, index: FacetIndex) -> None:
        self.index = index

    @property
    def version(self) -> int:
        return self.index.version

    def __deepcopy__(self, memo: dict) -> TopicLookup:
        return self  # a view of the shared index, not state of its own (a frozen copy reads the same catalogue)

    def __call__(self, item_ids: Sequence[str]) -> np.ndarray:
        kept, rows = self.index.facet_rows(item_ids, "topic")
        at = {item: n for n, item in enumerate(kept)}
        out = np.zeros((len(item_ids), rows.shape[1]))
        for n, item in enumerate(item_ids):
            if item in at:
                out[n] = rows[at[item]]
        return out


def topic_lookup(index: FacetIndex) -> ContentLookup:
    return TopicLookup(index)


@dataclass(frozen=True)
class UserView:
    """What the recommender reads of a user's state."""

    recent: Sequence[str]  # items engaged with, most recent first
    z: Mapping[str, np.ndarray] | None  # unit facet vectors; None before any search/click/review
    history: int  # events so far (searches, clicks, reviews)
    exclude: frozenset[str] = frozenset()  # never recommended (already engaged with)


def user_view(state: InterestState, layout: Layout) -> UserView:
    recent = state.seen_items.latest()
    return UserView(recent=recent, z=None if state.empty else user_z(state, layout),
                    history=sum(state.counts.values()), exclude=frozenset(recent))


@dataclass(frozen=True)
class Lesson:
    """A click or review chosen as a ranking lesson, with the user's view just before it."""

    user_id: str
    event_id: str
    item_id: str  # engaged with
    view: UserView


@dataclass(frozen=True)
class Scored:
    item_id: str
    score: float
    sources: tuple[str, ...]
    features: np.ndarray  # (FEATURES,)


@dataclass
class Candidates:
    ids: list[str] = field(default_factory=list)
    sources: list[tuple[str, ...]] = field(default_factory=list)  # the sources that brought each
    features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n, FEATURES)
    # Every item linked to the user's recent items (Engagements rows), and its co-engagement with the last few.
    co_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    co_recent: np.ndarray = field(default_factory=lambda: np.zeros(0))


class Recommender:
    def __init__(self, engagements: Engagements, ranker: OnlineRanker, index: FacetIndex,
                 config: RecommendConfig | None = None) -> None:
        self.engagements = engagements
        self.ranker = ranker
        self.index = index
        self.config = config or RecommendConfig()

    def candidates(self, user: UserView, also: Sequence[str] = ()) -> Candidates:
        """The union of every source's candidates (and ``also``), with their features."""
        return self.candidates_many([user], [also])[0]

    def candidates_many(self, users: Sequence[UserView], also: Sequence[Sequence[str]] | None = None) -> list[Candidates]:
        """``candidates`` for several users (a micro-batch's ranking lessons): the same answers,
        with the facet index searched and read once and the popular lists ordered once."""
        cfg, eng = self.config, self.engagements
        n = cfg.per_source
        also = also if also is not None else [()] * len(users)
        with_z = [p for p, u in enumerate(users) if u.z is not None]
        queries = {p: self.index.prepare(users[p].z) for p in with_z}  # searched, then scored with
        hits = self.index.nearest([queries[p] for p in with_z], n, exclude=[users[p].exclude for p in with_z])
        facets: list[dict[str, float]] = [{} for _ in users]
        for p, found in zip(with_z, hits):
            facets[p] = dict(found)
        skips = [eng.rows_of(u.exclude) for u in users]
        popular = [eng.most_popular_many(n, which, skips) for which in range(len(eng.config.pop_half_lives_s))]
        out = []
        for p, user in enumerate(users):
            out.append(self._candidates(user, also[p], facets[p], [lists[p] for lists in popular]))
        missing = {p: [i for i in c.ids if i not in facets[p]] for p, c in enumerate(out) if p in queries}
        missing = {p: m for p, m in missing.items() if m}
        if missing:
            scored = self.index.score_items_many([queries[p] for p in missing], list(missing.values()))
            for p, ids, scores in zip(missing, missing.values(), scored):
                facets[p].update(zip(ids, scores.tolist()))
        col = BASE_FEATURES.index("facet")
        for p, c in enumerate(out):
            if c.ids:
                c.features[:, col] = np.fromiter(map(facets[p].get, c.ids, repeat(0.0)), dtype=np.float64, count=len(c.ids))
                c.features = with_depth(c.features, users[p].history)
        return out

    def _candidates(self, user: UserView, also: Sequence[str], facet: Mapping[str, float],
                    popular: Sequence[Sequence[str]]) -> Candidates:
        """One user's candidates from the facet hits and popular lists already found, with their
        base features; the caller fills in the facet feature and adds the depth features."""
        cfg, eng = self.config, self.engagements
        n = cfg.per_source
        found: dict[str, int] = {}  # item -> bit set of the sources that brought it
        excluded = user.exclude

        def take(items: Iterable[str], bit: int) -> None:
            get = found.get
            for item in items:
                if item not in excluded:
                    found[item] = get(item, 0) | bit

        take(facet, _BIT["facet"])
        linked, co = eng.co_engaged_many(
            user.recent, [(cfg.recent_depth, cfg.recent_decay), (1, 1.0), (cfg.long_depth, cfg.long_decay)])
        if len(linked):
            strength = co[0] + co[2]
            take_n = min(2 * n, len(linked))  # over-fetch: some are excluded or left the catalogue
            top = np.argpartition(-strength, take_n - 1)[:take_n]
            take(eng.ids_of(linked[top[np.lexsort((top, -strength[top]))]]), _BIT["co-engagement"])
        for items in popular:
            take(items, _BIT["popular"])
        for item in also:
            found.setdefault(item, 0)
        ids = [i for i, k in zip(found, self.index.known(list(found))) if k]
        if not ids:
            return Candidates(co_rows=linked, co_recent=co[0])
        rows = eng.rows_of(ids)
        pop = eng.popularity_of(ids, rows=rows)
        base = np.zeros((len(ids), len(BASE_FEATURES)))
        col = {name: n for n, name in enumerate(BASE_FEATURES)}
        if len(linked):  # each candidate's place among the linked rows (sorted), if it is there
            at = np.minimum(np.searchsorted(linked, rows), len(linked) - 1)
            has = (rows >= 0) & (linked[at] == rows)
            for name, m, scale in (("co_recent", 0, 50.0), ("co_last", 1, 50.0), ("co_long", 2, 20.0)):
                base[has, col[name]] = np.log1p(scale * co[m, at[has]])
        base[:, col["pop_now"]] = np.log1p(pop[0])
        base[:, col["pop_long"]] = np.log1p(pop[-1])
        base[:, col["engaged"]] = pop[-1] > 0
        if eng.behaviour is not None and user.recent:
            recent = eng.rows_of(user.recent[: cfg.recent_depth])
            weights = cfg.recent_decay ** np.arange(len(recent))
            u = eng.behaviour.user_vector(recent[recent >= 0], weights[recent >= 0])
            if u is not None:
                base[:, col["behaviour"]] = eng.behaviour.scores(u, rows, [ids[k] for k in np.flatnonzero(rows < 0).tolist()])
        sources = [_SOURCES_OF_BITS[b] for b in map(found.__getitem__, ids)]
        return Candidates(ids, sources, base, linked, co[0])

    def rank(self, cands: Candidates, k: int) -> list[Scored]:
        """The top ``k`` candidates that some source brought (not the ones only added by ``also``)."""
        rows = [n for n, s in enumerate(cands.sources) if s]
        if not rows:
            return []
        scores = self.ranker.score(cands.features[rows])
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [Scored(cands.ids[rows[i]], float(scores[i]), cands.sources[rows[i]],
                       cands.features[rows[i]]) for i in order]

    def recommend(self, user: UserView, k: int) -> list[Scored]:
        return self.rank(self.candidates(user), k)

    def examples(self, lessons: Sequence[Lesson]) -> list[Example | None]:
        """Each lesson as a ranking example: the candidates the user would have been shown just
        before it (its item added if no source brought it), and which was engaged with; None where
        the item is not in the catalogue. One ``candidates_many`` for all of them (in the worker's
        event loop, or in the learner process: streams/worker/learner.py)."""
        if not lessons:
            return []
        cands = self.candidates_many([x.view for x in lessons], [[x.item_id] for x in lessons])
        return [self.example(x.user_id, c, x.item_id) for x, c in zip(lessons, cands)]

    def example(self, user_id: str, cands: Candidates, item_id: str) -> Example | None:
        """The engagement with ``item_id`` as a ranking lesson, from candidates computed with
        ``also=[item_id]`` on the user's state before it. None when the item is not in the catalogue."""
        if item_id not in cands.ids:
            return None
        return Example(user_id, cands.features, cands.ids.index(item_id))
