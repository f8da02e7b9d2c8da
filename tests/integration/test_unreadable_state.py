"""A user state the worker cannot read back (bytes written by hand, or by a bug, to the users
changelog) must not stop its partition: through a real worker and the real broker, that user's
events are dead-lettered with the reason while everyone else's are applied; the API says why it
cannot answer for that user; and a forget deletes the state, after which the user starts afresh.
Before 2026-12-07 the user agent crashed on that micro-batch and applied nothing more (the old code
under this test: no event applied for 300 s).
"""

from __future__ import annotations

import time
import uuid

import orjson

from streams.tools.process import WorkerProcess, get_json
from streams.worker.placement import partition_for
from tests.helpers.kafka import produce, produce_raw, read_topic

NOW = time.time() - 3600
PARTITIONS = 3  # produce() creates the input topics with 3; the changelog follows them


def click(user: str, n: int, item: str = "tent") -> dict:
    return {"type": "click", "event_id": f"{user}-c{n}", "user_id": user, "item_id": item, "ts": NOW + n}


def test_an_unreadable_state_sends_its_users_events_to_dead_letters_until_forgotten(broker, tmp_path):
    app_id = f"unreadable-{uuid.uuid4().hex[:6]}"
    items = [{"type": "item", "event_id": f"i-{i}", "item_id": i, "title": i, "text": f"A {i} for the outdoors.",
              "category": "outdoor", "ts": NOW} for i in ("tent", "stove")]
    produce(broker.url, items + [click("u1", 1), click("u2", 1)])
    worker = WorkerProcess(broker.url, tmp_path, app_id, broker.worker_env)
    try:
        worker.wait_until(lambda h: h["events_applied"] == 2, 180, "the first clicks")
        worker.stop()
        # A value for u1 that is no state, as a restarted worker restores it from the changelog.
        produce_raw(broker.bootstrap, [(f"{app_id}-users-changelog", orjson.dumps("u1"), b"\x00 not a state",
                                        partition_for("u1", PARTITIONS))])
        (tmp_path / "fresh").mkdir()
        worker = WorkerProcess(broker.url, tmp_path / "fresh", app_id, broker.worker_env)  # restores from the changelog
        worker.wait_until(lambda h: h["status"] == "ok", 180, "the restarted worker")
        status, body = get_json(f"{worker.base}/users/u1/profile")
        assert status == 500 and "cannot be read" in body["error"], body

        produce(broker.url, [click("u1", 2), click("u2", 2, "stove")])
        health = worker.wait_processed(2)
        assert health["events_applied"] == 1 and health["user_events_dead_lettered"] == 1
        assert health["user_states_unreadable"] >= 1
        assert get_json(f"{worker.base}/users/u2/profile")[1]["event_counts"] == {"click": 2}
        [letter] = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "dead-letters")]
        assert letter["topic"] == "clicks" and "stored state of user 'u1' cannot be read" in letter["reason"], letter

        # A forget deletes the state (its watcher removes cannot be read from it); then u1 starts afresh.
        produce(broker.url, [{"type": "forget", "event_id": "u1-f", "user_id": "u1", "ts": NOW + 3}])
        worker.wait_until(lambda h: h["users_forgotten"] == 1, 60, "the forget")
        assert get_json(f"{worker.base}/users/u1/profile")[0] == 404
        produce(broker.url, [click("u1", 4)])
        worker.wait_until(lambda h: h["events_applied"] == 2, 60, "u1's new click")
        assert get_json(f"{worker.base}/users/u1/profile")[1]["event_counts"] == {"click": 1}
    finally:
        worker.stop()
