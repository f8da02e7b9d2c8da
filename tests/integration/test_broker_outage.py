"""Broker trouble: unreachable when the worker starts, and lost mid-stream. The worker must wait
with backoff instead of exiting, say `degraded` on /healthz while the broker is gone, and carry on
by itself when it is back — no restart by hand, nothing lost, nothing applied twice."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess, get_json
from tests.helpers.kafka import produce
from tests.helpers.tcp_outage import OutageProxy, proxy_port

USERS = [f"ou{i}" for i in range(20)]


def searches(tag: str, per_user: int) -> list[dict]:
    return [{"type": "search", "event_id": f"{tag}-{u}-{k}", "user_id": u, "query": f"trail running shoes {k % 4}",
             "ts": time.time() - 3600} for u in USERS for k in range(per_user)]


def test_worker_waits_for_a_late_broker_and_rides_out_an_outage(tmp_path: Path):
    port = proxy_port()
    with EmbeddedBroker(log_file=tmp_path / "tansu.log", advertised_port=port) as broker:
        proxy = OutageProxy(port, broker.port)  # down until up() is called
        env = {**broker.worker_env, "INTEREST_STREAM_HEALTH_PROBE_S": "1"}
        worker = WorkerProcess(broker.url, tmp_path, f"outage-{uuid.uuid4().hex[:6]}", env)
        try:
            time.sleep(8)
            assert worker.proc.poll() is None, "the worker gave up on a broker that was not there yet"
            proxy.up()
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker, once the broker is reachable")
            first = searches("a", 5)
            produce(broker.url, first)
            worker.wait_processed(len(first))

            proxy.down()
            health = worker.wait_until(lambda h: h["status"] == "degraded", 30, "degraded on /healthz")
            assert health["broker"]["reachable"] is False and health["broker"]["error"]
            time.sleep(10)  # longer than the session timeout: the broker drops the worker from its group
            assert worker.proc.poll() is None
            proxy.up()
            health = worker.wait_until(lambda h: h["status"] == "ok", 120, "ok again after the outage")
            assert health["broker"]["outages"] == 1

            second = searches("b", 5)
            produce(broker.url, second)
            health = worker.wait_processed(len(first) + len(second), 180)
            assert worker.proc.poll() is None
            assert health["events_applied"] == len(first) + len(second)
            for user in USERS:
                status, profile = get_json(f"{worker.base}/users/{user}/profile")
                assert status == 200 and profile["event_counts"] == {"search": 10}, (user, profile)
        finally:
            worker.stop()
            proxy.close()
