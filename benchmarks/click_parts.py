"""What the parts of a click cost in process, without Faust, a broker or the model: the figures a
change to the click path is first judged by (a whole-worker probe on the 2-core machine moves by
±15 % from one minute to the next; these move by a few %).

A synthetic catalogue of 2,000 items (random unit facets in the encoder's layout), 200 users and
H clicks each on a Zipf(0.8) popularity, folded as the worker folds them; then, best of 5 runs:
- the engagement fold, one ``observe`` at a time and ``observe_many`` in chunks of 250 (a fetch);
- a ranking lesson: ``user_view`` and ``candidates_many`` for 16 users at a time (a micro-batch's);
- applying 250 clicks (``apply_user_batch``), writing the changed states, their profile records.
Each part also prints a hash of what it produced, so a change that should leave the outputs alone
can be checked to.
Run from a checkout: `.venv/bin/python benchmarks/click_parts.py 100` (H = 100; about a minute).
"""

from __future__ import annotations

import copy
import hashlib
import pickle
import sys
import time
from typing import Callable

import numpy as np

from index import ItemIndex
from index.config import IndexConfig
from schemas import ClickEvent, dump_json
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.engagement import Engagements
from streams.state.profiles import to_profile
from streams.state.ranker import OnlineRanker
from streams.state.recommend import Recommender, topic_lookup, user_view
from streams.state.updates import UserInput, apply_event, apply_user_batch

LAYOUT = {"sentiment": 3, "topic": 384, "style": 4}  # the bundled encoder's
ITEMS, USERS, T0 = 2000, 200, 1.7e9


def best_of(runs: int, fn: Callable[[], object]) -> float:
    fn()  # warm: first calls load compiled code
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def digest(value: object) -> str:
    return hashlib.md5(pickle.dumps(value)).hexdigest()[:12]


def main(history: int) -> None:
    settings, rng = Settings(), np.random.default_rng(0)
    facets = {f: rng.standard_normal((ITEMS, d)).astype(np.float32) for f, d in LAYOUT.items()}
    for rows in facets.values():
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index = ItemIndex(LAYOUT, IndexConfig(device="cpu", ann_threshold=0))
    ids = [f"item-{i}" for i in range(ITEMS)]
    index.upsert(ids, facets)
    joined = np.concatenate([facets[f] for f in LAYOUT], axis=1).astype(np.float64)
    popularity = 1 / np.arange(1, ITEMS + 1) ** 0.8
    picks = rng.choice(ITEMS, USERS * history, p=popularity / popularity.sum())

    users = [f"user-{u}" for u in range(USERS)]
    states = {u: InterestState() for u in users}
    clicks = []  # (user, event id, item, ts, weight, previous): the engagements the worker publishes
    for n, item in enumerate(picks):
        user, state = users[n % USERS], states[users[n % USERS]]
        event = ClickEvent(user_id=user, event_id=f"e{n}", item_id=ids[item], ts=T0 + n * 0.01)
        previous = tuple(state.seen_items.latest(settings.recommend.engagement.window))
        apply_event(state, event, joined[item], settings, ("clicks", 0, n), LAYOUT)
        clicks.append((user, event.event_id, event.item_id, event.ts, 1.0, previous))
    print(f"{len(clicks)} clicks of {USERS} users on {ITEMS} items; "
          f"{np.mean([len(s.seen_items) for s in states.values()]):.0f} items per user")

    def fold(chunk: int) -> Engagements:
        eng = Engagements(settings.recommend.engagement, topic_lookup(index))
        if chunk == 1:
            for c in clicks:
                eng.observe(*c)
        else:
            for start in range(0, len(clicks), chunk):
                eng.observe_many(clicks[start : start + chunk])
        return eng

    for chunk in (1, 250) if hasattr(Engagements, "observe_many") else (1,):  # (older commits: one at a time)
        eng = fold(chunk)
        b = eng.behaviour
        state = (b.W[: b.n].tobytes(), b.C[: b.n].tobytes(), eng.popularity()[1].tobytes(),
                 [eng.links_of(i) for i in ids[:100]])
        print(f"fold, {'one at a time' if chunk == 1 else f'chunks of {chunk}'}: "
              f"{best_of(5, lambda chunk=chunk: fold(chunk)) / len(clicks) * 1e6:.1f} us an engagement  [{digest(state)}]")

    rec = Recommender(fold(1), OnlineRanker(settings.recommend.ranker), index, settings.recommend.candidates)
    batches = [[users[int(u)] for u in rng.choice(USERS, 16, replace=False)] for _ in range(30)]

    def lessons() -> list:
        out = []
        for batch in batches:
            views = [user_view(states[u], LAYOUT) for u in batch]
            out += rec.candidates_many(views, [[ids[5]]] * len(views))
        return out

    made = [(tuple(c.ids), c.features.tobytes(), tuple(c.sources)) for c in lessons()]
    print(f"ranking lesson (view and candidates): {best_of(5, lessons) / (16 * len(batches)) * 1e3:.3f} ms  [{digest(made)}]")

    batch = []
    for n in range(250):
        item = int(rng.choice(ITEMS, p=popularity / popularity.sum()))
        event = ClickEvent(user_id=users[int(rng.integers(USERS))], event_id=f"x{n}", item_id=ids[item], ts=T0 + 1e4 + n)
        batch.append(UserInput(event, ("clicks", 1, n), joined[item]))
    touched = {i.record.user_id for i in batch}
    fresh = [{u: copy.deepcopy(states[u]) for u in touched} for _ in range(8)]  # one per call of apply()
    half_life = settings.decay.half_life_s

    def apply() -> dict:
        return apply_user_batch(batch, fresh.pop(), settings, LAYOUT).states

    def write() -> list[bytes]:
        return [s.to_bytes() for s in applied.values()]

    def publish() -> list[bytes]:
        return [dump_json(to_profile(u, s, LAYOUT, {}, half_life).to_dict()) for u, s in applied.items()]

    applied = apply()
    per_user = {name: best_of(5, fn) / len(applied) * 1e6 for name, fn in (("write", write), ("publish", publish))}
    print(f"apply 250 clicks of {len(touched)} users: {best_of(5, apply) / 250 * 1e6:.1f} us a click; states written "
          f"{per_user['write']:.1f} us a user; profile records {per_user['publish']:.1f} us a user  [{digest((write(), publish()))}]")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
