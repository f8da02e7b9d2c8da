"""A worker started on topics that already hold history (a new deployment, a new app id, a restart
after the catalogue moved on): clicks on items that are in the catalogue topic must be applied, not
dead-lettered as unknown because the user agent read them before the item agent and the catalogue
follower had indexed those items."""

from __future__ import annotations

import random
import uuid

from streams.tools.process import WorkerProcess
from tests.helpers.kafka import produce
from tests.helpers.offline import assert_equal_to_offline, make_stream, offline_states, settled_profiles


def test_a_worker_started_on_a_backlog_of_items_and_clicks_applies_every_click(broker, tmp_path, encoder):
    rng = random.Random(5)
    items, queries, events = make_stream(rng, 2_000)
    # The whole history first, no worker running: 300 items to encode and 2,000 events to read at once.
    produce(broker.url, items + events)
    worker = WorkerProcess(broker.url, tmp_path, f"backlog-{uuid.uuid4().hex[:6]}",
                           {**broker.worker_env, "INTEREST_STREAM_BATCH_WAIT_MS": "20"})
    try:
        worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker")
        expected = offline_states(encoder, items, queries, events)
        profiles = settled_profiles(worker, sorted(expected), len(events), timeout_s=300)
        health = worker.health()
        assert health["user_events_dead_lettered"] == 0
        assert health["catalogue_gate"]["items_behind_at_start"] > 0, "no item was waiting when the worker started: nothing was tested"
        assert len(profiles) == len(expected)
        assert_equal_to_offline(profiles, expected, encoder.layout)
    finally:
        worker.stop()
