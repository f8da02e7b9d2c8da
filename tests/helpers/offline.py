"""A synthetic click/search stream and its offline state, computed with the same decay math, to
compare a worker's profiles with after crashes and rebalances (counts exactly, vectors within 1e-5)."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from schemas import ClickEvent, SearchEvent, join_facets
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.profiles import user_z
from streams.state.updates import apply_event
from streams.tools.process import Patience, WorkerProcess, get_json

USERS, ITEMS = 1000, 300
NOW = time.time() - 86400


def make_stream(rng: random.Random, n_events: int):
    """(items, queries, events): ``n_events`` clicks (95 %) and searches, out of time order."""
    items = [{"type": "item", "event_id": f"ci-{i}", "item_id": f"c{i}", "title": f"Product {i} {w}", "ts": NOW}
             for i, w in enumerate(rng.choices(["shoes", "headphones", "pan", "tent", "novel", "game"], k=ITEMS))]
    queries = [f"query {i} {rng.choice(['running', 'audio', 'cooking'])}" for i in range(200)]
    events = []
    for n in range(n_events):
        user = f"cu{rng.randrange(USERS)}"
        ts = NOW + rng.uniform(-20 * 86400, 0)  # out of order on purpose
        if rng.random() < 0.05:
            events.append({"type": "search", "event_id": f"ce{n}", "user_id": user, "query": rng.choice(queries), "ts": ts})
        else:
            events.append({"type": "click", "event_id": f"ce{n}", "user_id": user, "item_id": f"c{rng.randrange(ITEMS)}", "ts": ts})
    return items, queries, events


def offline_states(encoder, items, queries, events) -> dict[str, InterestState]:
    layout = encoder.layout
    item_vecs = encoder.encode([i["title"] for i in items])
    by_item = {it["item_id"]: join_facets(item_vecs.row(k), layout) for k, it in enumerate(items)}
    query_vecs = encoder.encode(queries)
    by_query = {q: join_facets(query_vecs.row(k), layout) for k, q in enumerate(queries)}
    settings, states = Settings(), {}
    for e in events:
        if e["type"] == "click":
            record, z = ClickEvent(e["event_id"], e["user_id"], e["item_id"], e["ts"]), by_item[e["item_id"]]
        else:
            record, z = SearchEvent(e["event_id"], e["user_id"], e["query"], e["ts"]), by_query[e["query"]]
        apply_event(states.setdefault(e["user_id"], InterestState()), record, z, settings)
    return states


def all_profiles(base: str, users: list[str], headers: dict[str, str] | None = None) -> dict[str, dict]:
    with ThreadPoolExecutor(8) as pool:
        answers = pool.map(lambda u: get_json(f"{base}/users/{u}/profile", timeout=10, headers=headers), users)
    return {u: body for u, (status, body) in zip(users, answers) if status == 200}


def settled_profiles(worker: WorkerProcess, users: list[str], total: int, stall_s: float = 180,
                     headers: dict[str, str] | None = None) -> dict[str, dict]:
    """Every user's profile once their event counts add up to ``total``, read again 3 s later
    (anything re-delivered by then must not change a thing). Fails once the count has not grown
    for ``stall_s``: lost updates leave it short for good, a slow machine only takes longer."""
    patience = Patience(stall_s)
    while True:
        profiles = all_profiles(worker.base, users, headers)
        if (count := counted(profiles)) >= total:
            time.sleep(3)
            return all_profiles(worker.base, users, headers)
        if not patience.waiting(count):
            pytest.fail(f"profiles stopped short of {total} events (lost updates) {patience}: {shortfall(worker, users, profiles)}")
        time.sleep(2)


def counted(profiles: dict[str, dict]) -> int:
    return sum(sum(p["event_counts"].values()) for p in profiles.values())


def shortfall(worker: WorkerProcess, users: list[str], profiles: dict[str, dict]) -> str:
    """What a failed wait saw, to tell a lost update from a stalled worker or an unanswered read."""
    health = worker.health() or {}
    keys = ("status", "events_applied", "redelivered_skipped", "duplicate_skipped", "misplaced_forwarded",
            "user_events_dead_lettered", "input_order")
    log = worker.log_path.read_text(errors="replace").splitlines() if worker.log_path.exists() else []
    warnings = [line[:300] for line in log if "WARNING" in line or "ERROR" in line][-15:]
    return (f"{counted(profiles)} counted; no profile for {[u for u in users if u not in profiles][:10]}; "
            f"health {({k: health.get(k) for k in keys})}; log {worker.log_path}, its last warnings: {warnings}")


def assert_equal_to_offline(profiles: dict[str, dict], expected: dict[str, InterestState], layout) -> None:
    """Counts exactly, every facet of Z within 1e-5."""
    for user, want_state in expected.items():
        assert profiles[user]["event_counts"] == want_state.counts, user
        want = user_z(want_state, layout)
        for facet, vec in profiles[user]["z"].items():
            np.testing.assert_allclose(vec, want[facet], atol=1e-5, err_msg=f"{user} {facet}")
