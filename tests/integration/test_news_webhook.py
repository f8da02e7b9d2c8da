"""Alert webhook against a real local HTTP server: retries with backoff, each alert once, and a
webhook that stays down holds up nothing but its own deliveries."""

from __future__ import annotations

import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from encoders.entities import EntityTable
from streams.tools.broker import free_port
from streams.tools.demo import bundled_data_dir
from streams.tools.process import WorkerProcess, get_json
from streams.tools.replay import read_jsonl
from tests.helpers.kafka import produce, read_topic
from tests.helpers.news import valid_news


class FlakyHook(BaseHTTPRequestHandler):
    """Answers 503 to the first ``fail_first`` POSTs, then 200; keeps every body it accepted."""

    fail_first = 2
    calls: list[int] = []
    accepted: list[dict] = []
    keys: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 503 if len(FlakyHook.calls) < FlakyHook.fail_first else 200
        FlakyHook.calls.append(status)
        if status == 200:
            FlakyHook.accepted.append(orjson.loads(body))
            FlakyHook.keys.append(self.headers.get("Idempotency-Key", ""))
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def expected_mentions(news) -> int:
    table = EntityTable.from_csv()
    return sum(len(table.find(n.document, n.tickers)) for n in valid_news(news))


def test_webhook_gets_each_alert_once_despite_failures_and_a_dead_one_blocks_nothing(broker, tmp_path):
    news = list(read_jsonl(bundled_data_dir() / "news.jsonl"))
    mentions = expected_mentions(news)
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # A lower threshold than the default makes several alerts (shift + threshold rules).
    env = {**broker.worker_env, "INTEREST_STREAM_ALERT_THRESHOLD": "0.3",
           "INTEREST_STREAM_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/hook"}
    worker = WorkerProcess(broker.url, tmp_path, f"hook-{uuid.uuid4().hex[:6]}", env)
    try:
        worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker")
        produce(broker.url, news)
        health = worker.wait_until(lambda h: h["mentions"] >= mentions, 180, "the news")
        fired = get_json(f"{worker.base}/alerts")[1]["alerts"]
        assert len(fired) >= 2 and health["alerts_fired"] == len(fired)
        worker.wait_until(lambda h: h["webhook_delivered"] >= len(fired), 60, "the webhook deliveries")
    finally:
        worker.stop()
        server.shutdown()
    assert FlakyHook.calls[:2] == [503, 503]
    assert sorted(a["alert_id"] for a in FlakyHook.accepted) == sorted(a["alert_id"] for a in fired)
    assert FlakyHook.keys == [a["alert_id"] for a in FlakyHook.accepted]

    # Now a webhook nobody listens on: news keep flowing, alerts still fire and reach the API and
    # the alerts topic; each failed delivery ends on dead-letters with the reason.
    down = {**env, "INTEREST_STREAM_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook",
            "INTEREST_STREAM_ALERT_WEBHOOK_ATTEMPTS": "2"}
    worker = WorkerProcess(broker.url, tmp_path, f"down-{uuid.uuid4().hex[:6]}", down)
    try:
        worker.wait_until(lambda h: h["status"] == "ok", 180, "the second worker")
        worker.wait_until(lambda h: h["mentions"] >= mentions, 180, "the news, with the webhook down")
        health = worker.wait_until(lambda h: h["webhook_failed"] >= 1, 60, "a failed delivery")
        assert health["alerts_fired"] == len(fired) and health["webhook_delivered"] == 0
    finally:
        worker.stop()
    letters = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "dead-letters")]
    assert any(d["topic"] == "alerts" and "webhook" in d["reason"] for d in letters)
