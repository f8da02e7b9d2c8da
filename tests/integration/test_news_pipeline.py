"""News alerting end to end: the shipped news stream through a real worker and the real broker.

TSLA's coverage turns negative at a known time among steady, mixed news about five other
companies (scripts/make_news_data.py). Exactly one shift alert must fire, for TSLA, soon after the
turn; none for anything else; a worker restart mid-stream must not send it again; watchers (by
watchlist or by their own searches) get it on user-alerts; bad news are dead-lettered.
"""

from __future__ import annotations

import time
import uuid

import orjson

from encoders.entities import EntityTable
from streams.tools.demo import NEWS_USERS, bundled_data_dir
from streams.tools.process import WorkerProcess, get_json
from streams.tools.replay import read_jsonl
from tests.helpers.kafka import produce, produce_raw, read_topic
from tests.helpers.news import valid_news

TURN_TS = 1767441600.0  # scripts/make_news_data.py
TOKEN = "news-test-token"


def test_one_alert_for_the_turning_entity_none_for_noise_and_none_again_after_restart(broker, tmp_path):
    news = list(read_jsonl(bundled_data_dir() / "news.jsonl"))
    good = valid_news(news)
    table = EntityTable.from_csv()
    mentions_of = {n.event_id: table.find(n.document, n.tickers) for n in good}
    # Split soon after the alert (2.7 h past the turn on this data), inside its cooldown: the
    # restarted worker then sees TSLA news that cross the shift rule again and must stay quiet.
    split = next(i for i, n in enumerate(news) if isinstance(n["ts"], float) and n["ts"] > TURN_TS + 4 * 3600)
    first, rest = news[:split], news[split:]
    expected_first = sum(len(mentions_of.get(n["event_id"], [])) for n in first)
    app_id = f"news-{uuid.uuid4().hex[:6]}"
    env = {**broker.worker_env, "INTEREST_STREAM_ADMIN_TOKEN": TOKEN}
    worker = WorkerProcess(broker.url, tmp_path, app_id, env)
    try:
        worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker")
        produce(broker.url, [{**u, "ts": TURN_TS - 86400} for u in NEWS_USERS])
        worker.wait_processed(len(NEWS_USERS))
        produce(broker.url, first)
        health = worker.wait_until(lambda h: h["mentions"] >= expected_first, 180, "the first part's mentions")
        assert health["dead_lettered"] == 3 and health["news_without_entity"] >= 1

        status, body = get_json(f"{worker.base}/alerts")
        assert status == 200
        [alert] = body["alerts"]
        assert (alert["entity"], alert["rule"]) == ("TSLA", "shift") and alert["score"] < alert["baseline"]
        assert alert["ts"] > TURN_TS
        after_turn = [n for n in good if "TSLA" in mentions_of[n.event_id] and TURN_TS <= n.ts <= alert["ts"]]
        assert 1 <= len(after_turn) <= 15, f"fired only after {len(after_turn)} TSLA news past the turn"
        assert alert["news"][-1]["event_id"] == after_turn[-1].event_id  # the news that tipped it
        assert all(n["headline"] for n in alert["news"])
        assert get_json(f"{worker.base}/alerts?entity=AAPL")[1]["alerts"] == []
        assert get_json(f"{worker.base}/alerts?entity=TSLA&since={alert['ts'] + 1}")[1]["alerts"] == []
        assert get_json(f"{worker.base}/alerts?entity=not+a+ticker")[0] == 400
        status, tsla = get_json(f"{worker.base}/entities/TSLA")
        assert status == 200 and tsla["window"]["count"] >= 1 and tsla["watchers"] == 2

        worker.stop()
        worker = WorkerProcess(broker.url, tmp_path, app_id, env)
        worker.wait_until(lambda h: h["status"] == "ok", 180, "the restarted worker")
        assert get_json(f"{worker.base}/entities/TSLA")[1] == tsla  # windows, baseline, watchers restored
        produce(broker.url, rest)
        expected_rest = sum(len(mentions_of.get(n["event_id"], [])) for n in rest)
        worker.wait_until(lambda h: h["mentions"] + h["mentions_redelivered_skipped"] >= expected_rest, 180, "the rest")

        alerts = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "alerts")]
        assert [(a["entity"], a["rule"]) for a in alerts] == [("TSLA", "shift")], alerts
        assert [a["alert_id"] for a in get_json(f"{worker.base}/alerts")[1]["alerts"]] == [alerts[0]["alert_id"]]
        user_alerts = {orjson.loads(r.value)["user_id"]: orjson.loads(r.value) for r in read_topic(broker.bootstrap, "user-alerts")}
        assert set(user_alerts) == {"trader-1", "reader-1"}
        assert user_alerts["trader-1"]["reason"] == "watchlist" and user_alerts["reader-1"]["reason"] == "interest"
        profile = get_json(f"{worker.base}/users/reader-1/profile")[1]
        assert list(profile["summary"]["entities"]["reads_about"]) == ["TSLA"]
        assert get_json(f"{worker.base}/users/trader-1/profile")[1]["summary"]["entities"]["follows"] == ["TSLA", "AAPL"]
        letters = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "dead-letters")]
        assert sorted(d["topic"] for d in letters) == ["news"] * 3 and all(d["reason"] for d in letters)
    finally:
        worker.stop()


def test_watchlist_api_needs_the_token_and_bounds_its_input(broker, tmp_path):
    worker = WorkerProcess(broker.url, tmp_path, f"wl-{uuid.uuid4().hex[:6]}",
                           {**broker.worker_env, "INTEREST_STREAM_ADMIN_TOKEN": TOKEN})
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    try:
        worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker")
        url = f"{worker.base}/users/pm-7/watchlist"
        assert post(url, {"add": ["XOM"]}, {})[0] == 401
        assert post(url, {"add": ["not a ticker"]}, auth)[0] == 400
        assert post(url, {}, auth)[0] == 400
        status, body = post(url, {"add": ["$xom", "NVDA"], "remove": ["NVDA"]}, auth)
        assert status == 202 and [q["entity"] for q in body["queued"]] == ["XOM", "NVDA", "NVDA"]
        worker.wait_until(lambda h: h["watchlist_events"] >= 3, 60, "the watchlist events")
        # Once in CI (2026-11-29) NVDA was still followed here. The likely cause, since fixed:
        # watchlist requests had no redelivery check, so an "add" read again after a rebalance
        # re-followed after the "remove" (tests/unit/test_user_batch.py). The read is kept
        # patient; a wrong final state fails it, with what the offset guard saw.
        deadline = time.monotonic() + 30
        while True:
            profile = get_json(f"{worker.base}/users/pm-7/profile")[1]
            if profile["summary"]["entities"]["follows"] == ["XOM"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert profile["summary"]["entities"]["follows"] == ["XOM"] and profile["event_counts"] == {}, \
            (profile["summary"]["entities"], worker.health())
        # No Z yet: the hybrid serves the cold start (nothing here: no catalogue), facet Z cannot.
        assert get_json(f"{worker.base}/users/pm-7/recommendations") == (200, {"user_id": "pm-7", "k": 10, "items": []})
        assert get_json(f"{worker.base}/users/pm-7/recommendations?ranking=facet")[0] == 404
        # Forgotten, the user stops watching what they followed (the entity side keeps watchers
        # by entity: it hears of it only through a remove on entity-watchers).
        assert get_json(f"{worker.base}/users/pm-7", method="DELETE", headers=auth)[0] == 202
        worker.wait_until(lambda h: h["users_forgotten"] >= 1, 60, "the forget")
        changes = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "entity-watchers")]
        last = {c["entity"]: c["op"] for c in changes if c["user_id"] == "pm-7"}
        assert last == {"XOM": "remove", "NVDA": "remove"}, changes

        # Records of the entity agent's internal topics that it cannot read are dead-lettered, and
        # the good ones after them applied (a mention without its fields used to stop the agent).
        before = worker.health()
        mention = {"event_id": "m-1", "entity": "XOM", "headline": "Exxon steady", "score": 0.1, "label": "neutral",
                   "confidence": 0.8, "ts": time.time() - 60, "source": "test"}
        produce_raw(broker.bootstrap, [
            ("news-mentions", b"XOM", orjson.dumps({"entity": "XOM", "score": 0.3})),
            ("entity-watchers", b"XOM", orjson.dumps({"user_id": "pm-8", "entity": "XOM", "op": "follow"})),
            ("news-mentions", b"XOM", b"{not json"),
            ("news-mentions", b"XOM", orjson.dumps(mention)),
            ("entity-watchers", b"XOM", orjson.dumps({"user_id": "pm-9", "entity": "XOM", "op": "add", "source": "watchlist"})),
        ])
        health = worker.wait_until(lambda h: h["mentions"] > before["mentions"] and h["dead_lettered"] >= before["dead_lettered"] + 3,
                                   60, "the good mention after the bad records")
        assert health["dead_lettered"] == before["dead_lettered"] + 3 and health["mentions"] == before["mentions"] + 1
        letters = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "dead-letters")]
        letters = [d for d in letters if d["topic"] in ("news-mentions", "entity-watchers")]  # the module's first test has news ones
        assert sorted(d["topic"] for d in letters) == ["entity-watchers", "news-mentions", "news-mentions"], letters
        assert all(d["reason"].startswith("unreadable") for d in letters)
        assert "missing or invalid: event_id, headline, label, confidence, ts" in " ".join(d["reason"] for d in letters)
        status, xom = get_json(f"{worker.base}/entities/XOM")
        assert status == 200 and xom["watchers"] == 1 and xom["window"]["count"] == 1, xom
    finally:
        worker.stop()


def post(url: str, body: dict, headers: dict) -> tuple[int, object]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=orjson.dumps(body), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read() or b"null")
