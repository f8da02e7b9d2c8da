"""End to end with real parts: Tansu broker over TCP, `interest-stream worker` subprocesses with the
real model, events produced with aiokafka, results read over HTTP and from the topics.

The steps run in order inside one module (they share a worker's state); each test checks one thing.
"""

from __future__ import annotations

import base64
import itertools
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.tools.process import WorkerProcess, get_json
from streams.worker.placement import partition_for
from tests.helpers.kafka import produce, read_topic, topic_config
from tests.helpers.texts import DIED, LASTED

NOW = time.time() - 30 * 86400  # every phase stays in the past (future stamps are refused)
DAY = 86400.0
_ids = itertools.count()
TOKEN = "test-admin-token"

CATALOGUE = {
    "running": ["Trail running shoes", "Road racing flats", "GPS running watch", "Running hydration vest", "Marathon energy gels"],
    "audio": ["Noise cancelling headphones", "Wireless earbuds", "Bookshelf speakers", "Vinyl turntable", "Studio monitor headphones"],
    "cooking": ["Cast iron skillet", "Chef's knife", "Dutch oven", "Espresso machine", "Pasta maker"],
}


def ev(kind: str, **fields) -> dict:
    return {"type": kind, "event_id": f"t{next(_ids)}", **fields}


def items() -> list[dict]:
    out = []
    for cat, titles in CATALOGUE.items():
        for i, title in enumerate(titles):
            out.append(ev("item", item_id=f"{cat}-{i}", title=title, text=f"{title} for {cat} fans.", category=cat, ts=NOW))
    return out


def taste(user: str, cat: str, start: float, searches: list[str], clicks: list[int], review: str, rating: int) -> list[dict]:
    out = [ev("search", user_id=user, query=q, ts=start + i * 3600) for i, q in enumerate(searches)]
    out += [ev("click", user_id=user, item_id=f"{cat}-{i}", ts=start + (5 + j) * 3600) for j, i in enumerate(clicks)]
    out.append(ev("review", user_id=user, item_id=f"{cat}-{clicks[0]}", text=review, rating=rating, ts=start + 10 * 3600))
    return out


PHASE1 = (
    taste("runner", "running", NOW, ["trail running shoes", "marathon training", "running watch"], [0, 2],
          "Superb grip on muddy trails, I love them!", 5)
    + taste("listener", "audio", NOW, ["noise cancelling headphones", "hifi speakers", "wireless earbuds"], [0, 1],
            "Terrible sound, they broke after a week.", 1)
)
BAD = [
    ev("review", user_id="runner", item_id="running-0", text="x", rating=9, ts=NOW),
    ev("search", user_id="runner", ts=NOW),
    ev("click", user_id="runner", item_id="no-such-item", ts=NOW),
]
# Two weeks later the runner has turned to audio gear (half-life one week: old interests fade).
PHASE2 = taste(
    "runner", "audio", NOW + 14 * DAY,
    ["best wireless earbuds", "studio headphones", "bookshelf speakers for vinyl", "headphones for music", "turntable"],
    [2, 3, 4], "Wonderful speakers, rich and warm sound.", 5,
)


# Topics are created with 3 partitions by the first produce; the worker's default is 4, and it
# must adopt the existing layout (its changelogs too) rather than fight it.

class Run:
    """What the steps share: the broker, one app id (consumer group + tables), the current worker."""

    app_id = f"it-{uuid.uuid4().hex[:8]}"
    worker: WorkerProcess | None = None


@pytest.fixture(scope="module")
def run(broker, tmp_path_factory):
    workdir = Path(tmp_path_factory.mktemp("worker"))
    Run.workdir = workdir
    produce(broker.url, items() + [ev("item", item_id="bad", title="", ts=NOW)])
    Run.worker = WorkerProcess(broker.url, workdir, Run.app_id, {**broker.worker_env, "INTEREST_STREAM_ADMIN_TOKEN": TOKEN,
                                                                 "INTEREST_STREAM_DRIFT_WINDOW": "8",
                                                                 "INTEREST_STREAM_LOG_FORMAT": "json",
                                                                 "INTEREST_STREAM_LOG_EVERY_BATCHES": "1",
                                                                 "INTEREST_STREAM_FAUST_METRICS": "1"})
    Run.worker.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] == 15, 180, "catalogue indexed")
    produce(broker.url, PHASE1 + BAD)
    Run.worker.wait_processed(len(PHASE1) + len(BAD))
    yield Run
    if Run.worker:
        Run.worker.stop()


def recs(run, user: str, k: int = 5, ranking: str = "facet") -> list[dict]:
    """Facet Z's ranking: these steps are about the facets (the hybrid: test_recommendations.py)."""
    status, body = get_json(f"{run.worker.base}/users/{user}/recommendations?k={k}&ranking={ranking}")
    assert status == 200, body
    return body["items"]


def test_profiles_follow_each_users_taste(run):
    runner, listener = recs(run, "runner"), recs(run, "listener")
    assert {i["category"] for i in runner[:3]} == {"running"}
    assert {i["category"] for i in listener[:3]} == {"audio"}
    # Already clicked or reviewed items are never recommended back.
    assert not {"running-0", "running-2"} & {i["item_id"] for i in recs(run, "runner", 15)}
    for item in runner:
        assert set(item["facet_scores"]) == {"sentiment", "topic", "style"}


def test_profile_api_reads_like_a_person_would_expect(run):
    status, runner = get_json(f"{run.worker.base}/users/runner/profile")
    assert status == 200
    assert runner["event_counts"] == {"search": 3, "click": 2, "review": 1}
    assert list(runner["summary"]["topic"]["categories"])[0] == "running"
    _, listener = get_json(f"{run.worker.base}/users/listener/profile")
    # Both reviews weigh the same; the runner loved, the listener hated.
    assert runner["summary"]["sentiment"]["score"] > listener["summary"]["sentiment"]["score"]
    for facet, vec in runner["z"].items():
        assert sum(x * x for x in vec) == pytest.approx(1.0, abs=1e-4), facet


def test_api_errors(run):
    base = run.worker.base
    status, body = get_json(f"{base}/users/nobody/profile")
    assert status == 404 and "unknown user" in body["error"]
    assert get_json(f"{base}/users/nobody/recommendations")[0] == 404
    for bad_k in ("0", "abc", "1000"):
        status, body = get_json(f"{base}/users/runner/recommendations?k={bad_k}")
        assert status == 400 and "k must" in body["error"]
    status, body = get_json(f"{base}/users/runner/recommendations?ranking=newest")
    assert status == 400 and "ranking must be one of hybrid, facet" in body["error"]


def test_bad_records_are_dead_lettered_with_reason_and_raw_bytes(run, broker):
    letters = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "dead-letters")]
    reasons = sorted(letter["reason"] for letter in letters)
    assert len(letters) == 4, reasons
    assert any("rating" in r for r in reasons)
    assert any("missing required field 'query'" in r for r in reasons)
    assert any("unknown item_id 'no-such-item'" in r for r in reasons)
    assert any("'title' must not be empty" in r for r in reasons)
    raw = next(letter for letter in letters if "rating" in letter["reason"])
    assert orjson.loads(base64.b64decode(raw["raw_b64"]))["rating"] == 9
    assert run.worker.health()["events_applied"] == len(PHASE1)  # the worker kept going


def test_metrics_are_prometheus_text_and_agree_with_healthz(run):
    """GET /metrics, parsed with prometheus_client's own parser."""
    with urllib.request.urlopen(f"{run.worker.base}/metrics", timeout=10) as resp:
        families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
    health = run.worker.health()

    def value(name: str, **labels) -> float:  # a sample name, e.g. a counter's ..._total
        return sum(s.value for f in families.values() for s in f.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("interest_stream_events_applied_total") == health["events_applied"] == len(PHASE1)
    assert value("interest_stream_dead_letters_total") == health["dead_lettered"] == 4
    assert value("interest_stream_dead_letters_total", topic="clicks", reason="unknown_item") == 1
    assert value("interest_stream_dead_letters_total", topic="items", reason="invalid_field") == 1
    assert value("interest_stream_event_to_profile_seconds_count") == len(PHASE1)  # one per applied event
    # Each user micro-batch handled waited once for its state writes (a batch the offset guard
    # emptied is not handled).
    waits = value("interest_stream_changelog_wait_seconds_count")
    assert 1 <= waits <= value("interest_stream_batch_records_count", agent="user-events")
    assert value("interest_stream_items_indexed") == 15 and value("interest_stream_ready") == 1
    # Ready, so the start-up heap is out of full garbage collections, whose passes are counted.
    assert value("interest_stream_gc_frozen_objects") > 100_000  # torch, transformers, Faust
    assert value("python_gc_collections_total", generation="2") >= 1  # at least the one before freezing
    # The catalogue was read and indexed from its item vectors log at start: its rebuild time is known.
    [rebuild] = [s for s in families["interest_stream_rebuild_seconds"].samples if s.labels["state"] == "catalogue"]
    assert rebuild.value > 0 and abs(rebuild.value - health["index_rebuild_s"]) < 1e-3
    lag = [s for s in families["interest_stream_consumer_lag"].samples]
    assert lag and all(s.value >= 0 for s in lag) and {s.labels["topic"] for s in lag} >= {"searches", "clicks"}
    # Every input record is applied by now (PHASE1 and BAD): nothing behind, on either page.
    assert sum(s.value for s in lag) == 0 and health["input_lag"] == {"records": 0, "partitions": len(lag), "unknown": 0}
    assert any(name.startswith("faust_") for name in families), "Faust's own sensors are served when asked for"


def test_healthz_counts_the_users_here_off_the_event_loop(run):
    """runner and listener (the bad records made no state); counted when asked, again once the
    last count is 5 s old, so what /healthz answers is never much older than that."""
    health = run.worker.wait_until(lambda h: h["users"] == 2, 60, "the users counted")
    assert 0 <= health["users_counted_s_ago"] < 10
    for _ in range(3):
        time.sleep(2.5)
        assert 0 <= run.worker.health()["users_counted_s_ago"] < 10


def test_progress_is_logged_as_one_json_line_per_batch_not_per_event(run):
    lines = [orjson.loads(line[line.index("{"):]) for line in run.worker.log_path.read_text().splitlines()
             if '"event":"progress"' in line]
    health = run.worker.health()
    assert 0 < len(lines) < health["events_applied"] + health["dead_lettered"] + health["items_applied"]
    assert sum(line.get("events_applied", 0) for line in lines) == health["events_applied"]
    assert sum(line.get("dead_lettered", 0) for line in lines) == health["dead_lettered"]


def test_every_update_is_published_to_profiles(run, broker):
    # One record per user per micro-batch, the last one carrying every event applied.
    published = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "profiles")]
    users = {e["user_id"] for e in PHASE1}
    assert {p["user_id"] for p in published} == users
    assert len(users) <= len(published) <= len(PHASE1)
    for user in users:
        last = [p for p in published if p["user_id"] == user][-1]
        assert last["event_counts"] == {"search": 3, "click": 2, "review": 1}
        assert last["updated_at"] == max(e["ts"] for e in PHASE1 if e["user_id"] == user)


def test_changelog_records_stay_in_the_source_partition(run, broker):
    source = {r.key.decode(): r.partition for r in read_topic(broker.bootstrap, "searches")}
    changelog = read_topic(broker.bootstrap, f"{run.app_id}-users-changelog")
    assert changelog
    for record in changelog:
        user = orjson.loads(record.key)  # Faust writes table keys as JSON strings
        assert record.partition == source[user], user


def test_drift_rises_when_the_topic_mix_switches_and_profiles_explain_themselves(run, broker):
    _, before = get_json(f"{run.worker.base}/drift")
    assert before["window"] == 8 and before["facets"]["topic"]["psi"] is not None
    cooks = [ev("search", user_id=f"cook{i}", query=q, ts=NOW + DAY)
             for i, q in enumerate(["cast iron skillet", "dutch oven recipes", "chef's knife sharpening",
                                    "espresso machine", "fresh pasta maker", "cast iron care"] * 2)]
    start = run.worker.health()
    produce(broker.url, cooks)
    run.worker.wait_processed(len(cooks), since=start)
    _, after = get_json(f"{run.worker.base}/drift")
    topic = after["facets"]["topic"]
    assert topic["psi"] > max(1.0, 2 * before["facets"]["topic"]["psi"]), (before, topic)
    assert max(topic["current"], key=topic["current"].get) == "cooking", topic
    assert "cooking" not in topic["reference"]
    # Explanations: the runner's profile names the events that moved each facet most.
    _, runner = get_json(f"{run.worker.base}/users/runner/profile")
    discovered = runner["summary"]["topic"]["discovered"]  # topics found by streaming k-means
    assert 1 <= len(discovered) <= 3 and 0 < sum(discovered.values()) <= 1 + 1e-6, discovered
    moved = runner["summary"]["moved_by"]
    assert set(moved) == {"sentiment", "topic", "style"} and all(1 <= len(v) <= 3 for v in moved.values())
    assert moved["topic"][0]["moved"] == 1.0  # the first event made the facet
    top = recs(run, "runner")[0]
    assert top["matched_by"] == "topic" and set(top["contributions"]) == {"sentiment", "topic", "style"}


def test_sentiment_head_learns_from_review_ratings(run, broker):
    complaints, praise = DIED[:3], LASTED[:2]  # texts the lexicon cannot read: only the ratings teach them
    reviews = [ev("review", user_id=f"rater{k % 7}", item_id=f"cooking-{k % 5}", text=t.format(k), rating=r, ts=NOW + DAY)
               for k in range(2, 14) for t, r in [(c, 1) for c in complaints] + [(p, 5) for p in praise]]
    start = run.worker.health()
    produce(broker.url, reviews)
    health = run.worker.wait_processed(len(reviews), since=start)
    head = health["sentiment_head"]
    seen = start["sentiment_head"]["labelled_seen"] + len(reviews)  # PHASE1's reviews count too
    assert head["labelled_seen"] == seen and head["held_back"] == seen // 5
    assert head["version"] >= 1, head
    Run.head_version = head["version"]


def test_an_item_deleted_from_the_catalogue_leaves_the_index_and_its_log(run, broker):
    """Upserted, then deleted: the index drops it, and the item vectors log (which every worker,
    and the restart below, rebuilds its index from) ends the item with a tombstone, every version
    in the one partition its id hashes to."""
    item = ev("item", item_id="ephemeral-0", title="Ephemeral trail shoe", text="A trail shoe for running.",
              category="running", ts=NOW)
    produce(broker.url, [item])
    run.worker.wait_until(lambda h: h["items_indexed"] == 16, 120, "the new item indexed")
    produce(broker.url, [ev("item", item_id="ephemeral-0", op="delete", ts=NOW + 1)])
    run.worker.wait_until(lambda h: h["items_indexed"] == 15, 120, "the item deleted")
    assert "ephemeral-0" not in {i["item_id"] for i in recs(run, "runner", k=15)}
    versions = [r for r in read_topic(broker.bootstrap, f"{run.app_id}-items-changelog")
                if orjson.loads(r.key) == "ephemeral-0"]
    assert len(versions) == 2 and versions[0].value and versions[1].value is None, versions
    assert {r.partition for r in versions} == {partition_for("ephemeral-0", 3)}  # 3: the layout the worker adopted
    # Created by the worker as a compacted log: the broker keeps each item's last version.
    assert topic_config(broker.bootstrap, f"{run.app_id}-items-changelog").get("cleanup.policy") == "compact"


def test_restart_restores_state_and_catches_up_in_micro_batches(run, broker):
    before = get_json(f"{run.worker.base}/users/runner/profile")[1]
    assert run.worker.stop() == 0
    produce(broker.url, PHASE2)  # arrives while no worker runs
    # At most 2 searches and reviews a micro-batch (the default is 256; clicks are not counted).
    run.worker = WorkerProcess(broker.url, run.workdir, run.app_id, {**broker.worker_env, "INTEREST_STREAM_ADMIN_TOKEN": TOKEN,
                                                                     "INTEREST_STREAM_BATCH_MAX_TEXTS": "2"})
    health = run.worker.wait_processed(len(PHASE2))
    # Tables came back from their changelogs, the item index from the item vectors log without
    # re-encoding the catalogue (the item deleted above stays deleted).
    assert health["items_indexed"] == 15
    texts = sum(1 for e in PHASE2 if e["type"] != "click")
    assert health["texts_encoded"] == texts
    # The backlog was encoded in micro-batches, not one forward pass per event, of at most 2 texts.
    assert -(-texts // 2) <= health["encode_calls"] < texts
    after = get_json(f"{run.worker.base}/users/runner/profile")[1]
    assert after["event_counts"] == {"search": 3 + 5, "click": 2 + 3, "review": 2}  # nothing applied twice
    assert health["sentiment_head"]["version"] == run.head_version  # the learned head came back
    with urllib.request.urlopen(f"{run.worker.base}/metrics", timeout=10) as resp:
        names = {f.name for f in text_string_to_metric_families(resp.read().decode())}
    assert "interest_stream_events_applied" in names and not any(n.startswith("faust_") for n in names), \
        "Faust's per-record sensors are off by default (INTEREST_STREAM_FAUST_METRICS)"
    assert before["summary"]["topic"]["categories"].get("audio", 0) < after["summary"]["topic"]["categories"]["audio"]
    top = recs(run, "runner")
    assert top[0]["category"] == "audio"
    assert not {"audio-2", "audio-3", "audio-4"} & {i["item_id"] for i in top}


def test_kill_9_right_after_processing_applies_nothing_twice(run, broker):
    """SIGKILL before Faust's periodic offset commit: the restarted worker gets the batch again
    and must recognise it (per-partition offsets kept in each user's state)."""
    more = taste("listener", "audio", NOW + 2 * DAY, ["studio monitors", "vinyl records"], [3, 4], "Fine speakers.", 4)
    _, before = get_json(f"{run.worker.base}/users/listener/profile")
    start = run.worker.health()
    produce(broker.url, more)
    run.worker.wait_processed(len(more), since=start)
    run.worker.kill()
    run.worker = WorkerProcess(broker.url, run.workdir, run.app_id, {**broker.worker_env, "INTEREST_STREAM_ADMIN_TOKEN": TOKEN})
    run.worker.wait_until(lambda h: h["status"] == "ok", 180, "the restarted worker")
    expected = {k: before["event_counts"][k] + sum(1 for e in more if e["type"] == k) for k in ("search", "click", "review")}
    run.worker.wait_inputs_applied()  # what was read again (not committed before the kill) included
    _, profile = get_json(f"{run.worker.base}/users/listener/profile")
    assert profile["event_counts"] == expected
    print("redeliveries skipped after kill -9:", run.worker.health()["redelivered_skipped"])


def test_forget_a_user_needs_the_token_and_survives_a_restart(run, broker):
    base = run.worker.base
    assert get_json(f"{base}/users/runner", method="DELETE")[0] == 401
    assert get_json(f"{base}/users/runner", method="DELETE", headers={"Authorization": "Bearer nope"})[0] == 401
    status, body = get_json(f"{base}/users/runner", method="DELETE", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 202 and body["status"] == "forgetting"
    run.worker.wait_until(lambda h: h["users_forgotten"] >= 1, 30, "the forget to be applied")
    assert get_json(f"{base}/users/runner/profile")[0] == 404
    assert get_json(f"{base}/users/runner/recommendations")[0] == 404
    assert get_json(f"{base}/users/listener/profile")[0] == 200  # only that user
    assert get_json(f"{base}/users/{'x' * 300}/profile")[0] == 400
    assert run.worker.stop() == 0
    run.worker = WorkerProcess(broker.url, run.workdir, run.app_id, {**broker.worker_env, "INTEREST_STREAM_ADMIN_TOKEN": TOKEN})
    run.worker.wait_until(lambda h: h["status"] == "ok", 180, "the restarted worker")
    assert get_json(f"{run.worker.base}/users/runner/profile")[0] == 404  # the tombstone held
    assert get_json(f"{run.worker.base}/users/listener/profile")[0] == 200
