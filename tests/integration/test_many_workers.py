"""Three workers share the stream, one is killed with kill -9 and a fourth joins late: every
worker's index holds the whole catalogue (the item vectors log is followed by each, whatever the
number of workers), every worker answers for any user, every user's state equals the offline
computation (counts exactly, vectors within 1e-5), and every worker ranks with the same learned
weights: each applies every worker's ranker steps, the killed one's included. The workers share a
snapshot folder: the late one, on a fresh disk, takes over the engagements the others folded and
reads only the log after them, and still ends with the same weights."""

from __future__ import annotations

import random
import time
import uuid

from streams.tools.process import WorkerProcess, get_json
from tests.helpers.kafka import produce
from tests.helpers.offline import ITEMS, assert_equal_to_offline, make_stream, offline_states, settled_profiles

EVENTS = 12_000


def test_every_worker_has_the_whole_catalogue_and_state_survives_a_kill_and_a_late_join(broker, tmp_path, encoder):
    rng = random.Random(23)
    items, queries, events = make_stream(rng, EVENTS)
    app_id = f"many-{uuid.uuid4().hex[:6]}"
    # Lessons from one click in four and a small held-back set: every worker proposes steps here.
    env = {**broker.worker_env, "INTEREST_STREAM_BATCH_WAIT_MS": "20", "INTEREST_STREAM_RANKER_LEARN_EVERY": "4",
           "INTEREST_STREAM_RANKER_MIN_HOLDOUT": "5", "INTEREST_STREAM_SNAPSHOT_DIR": str(tmp_path / "shared"),
           "INTEREST_STREAM_ENGAGEMENTS_SNAPSHOT_S": "1", "INTEREST_STREAM_CATALOGUE_SNAPSHOT_S": "1"}
    produce(broker.url, items)

    def start(name: str) -> WorkerProcess:
        (tmp_path / name).mkdir()
        return WorkerProcess(broker.url, tmp_path / name, app_id, env)

    def whole_catalogue(h: dict) -> bool:
        return h["status"] == "ok" and h["items_indexed"] == ITEMS

    workers = {name: start(name) for name in "abc"}
    try:
        for w in workers.values():
            w.wait_until(whole_catalogue, 300, "three workers, each with the whole catalogue")
        produce(broker.url, events[: EVENTS // 2])
        time.sleep(rng.uniform(1, 3))
        workers["c"].kill()
        produce(broker.url, events[EVENTS // 2 :])
        workers["a"].wait_until(lambda h: h["recommender"]["engagements_snapshot"]["written"] >= 1, 120,
                                "an engagements snapshot in the shared folder")
        workers["d"] = start("d")  # joins late, after the kill
        late = workers["d"].wait_until(lambda h: whole_catalogue(h) and h["recommender"]["engagements_caught_up"], 300,
                                       "the late worker with the whole catalogue and the engagements")
        snapshot = late["recommender"]["engagements_snapshot"]
        assert snapshot["loaded"] is not None and snapshot["unusable"] is None, snapshot
        expected = offline_states(encoder, items, queries, events)
        users = sorted(expected)
        profiles = settled_profiles(workers["d"], users, len(events))  # routed to the owners
        assert_equal_to_offline(profiles, expected, encoder.layout)
        for name in "abd":
            w = workers[name]
            assert w.health()["items_indexed"] == ITEMS, name
            status, body = get_json(f"{w.base}/users/{users[0]}/recommendations?k=5", timeout=10)
            assert status == 200 and len(body["items"]) == 5, (name, status, body)

        def ranker(h: dict) -> dict:
            return h["recommender"]["ranker"]

        # The same steps in the same order: the same version and weights (once each has read the
        # whole engagements log), and more steps than any one worker proposed.
        deadline = time.monotonic() + 60
        while True:
            seen = {name: workers[name].health() for name in "abd"}
            if len({ranker(h)["version"] for h in seen.values()}) == 1 or time.monotonic() > deadline:
                break
            time.sleep(1)
        versions = {name: ranker(h)["version"] for name, h in seen.items()}
        assert len(set(versions.values())) == 1, versions
        assert all(ranker(h)["weights"] == ranker(seen["a"])["weights"] for h in seen.values()), seen
        assert versions["a"] > max(ranker(h)["accepted"] for h in seen.values()) > 0, seen
    finally:
        for w in workers.values():
            w.stop()
