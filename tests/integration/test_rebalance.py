"""Two workers share the stream; one is killed with SIGKILL. The survivor must take over its
partitions, restore their state from the changelogs and finish the stream: every user's state
equals the offline computation (counts exactly, vectors within 1e-5). While both run, either
worker's API answers for any user (requests are routed to the partition's owner), and each
worker's item index holds the whole catalogue."""

from __future__ import annotations

import random
import time
import uuid

from streams.tools.process import WorkerProcess
from tests.helpers.kafka import produce
from tests.helpers.offline import all_profiles, assert_equal_to_offline, make_stream, offline_states, settled_profiles

EVENTS = 20_000


def test_killed_workers_partitions_move_to_the_survivor_with_their_state(broker, tmp_path, encoder):
    rng = random.Random(5)
    items, queries, events = make_stream(rng, EVENTS)
    app_id = f"rebal-{uuid.uuid4().hex[:6]}"
    env = {**broker.worker_env, "INTEREST_STREAM_BATCH_WAIT_MS": "20"}
    produce(broker.url, items)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = WorkerProcess(broker.url, tmp_path / "a", app_id, env)
    b = WorkerProcess(broker.url, tmp_path / "b", app_id, env)
    try:
        for w in (a, b):
            w.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] == len(items), 240,
                         "both workers with the whole catalogue")
        produce(broker.url, events[:2000])
        users = sorted({e["user_id"] for e in events[:2000]})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pa, pb = all_profiles(a.base, users), all_profiles(b.base, users)
            if sum(sum(p["event_counts"].values()) for p in pa.values()) >= 2000:
                break
            time.sleep(1)
        assert pa == pb and len(pa) == len(users), "both APIs answer for every user (routed to the owner)"
        applied = {name: w.health()["events_applied"] for name, w in (("a", a), ("b", b))}
        assert all(n > 0 for n in applied.values()), f"one worker got no partitions: {applied}"

        produce(broker.url, events[2000:])
        time.sleep(rng.uniform(2, 4))
        b.kill()
        expected = offline_states(encoder, items, queries, events)
        profiles = settled_profiles(a, sorted(expected), EVENTS)
        health = a.health()
        print(f"rebalance: {EVENTS} events, survivor applied {health['events_applied']}, "
              f"skipped {health['redelivered_skipped']} redelivered")
        assert_equal_to_offline(profiles, expected, encoder.layout)
    finally:
        a.stop()
        b.stop()
