"""The hybrid recommender through a real worker (Tansu broker, the real model, FAISS): what other
users did next and what is popular reach a user whose own facets point elsewhere; every item says
where it came from and why it ranks; the learned ranker and the engagements survive a restart, taken
over from the worker's snapshot (written now and then, and as it stops) and the topic's tail after
it, or from the whole topic when the snapshot is unreadable.

The steps run in order inside one module (they share a worker).
"""

from __future__ import annotations

import itertools
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.tools.process import WorkerProcess, get_json
from tests.helpers.kafka import produce, read_topic

NOW = time.time() - 10 * 86400  # in the past: future stamps are refused
_ids = itertools.count()

CATALOGUE = {
    "books": ["Mystery novel", "Poetry collection", "History of Rome", "Science fiction saga"],
    "garden": ["Pruning shears", "Tomato seeds", "Watering can", "Compost bin"],
    "games": ["Chess set", "Party card game", "Strategy board game", "Jigsaw puzzle"],
}
FANS, GAMERS = 24, 30  # fans read the mystery novel, then buy tomato seeds; gamers buy the chess set


def ev(kind: str, **fields) -> dict:
    return {"type": kind, "event_id": f"r{next(_ids)}", **fields}


def catalogue() -> list[dict]:
    return [ev("item", item_id=f"{cat}-{i}", title=t, text=f"{t} for {cat} lovers.", category=cat, ts=NOW)
            for cat, titles in CATALOGUE.items() for i, t in enumerate(titles)]


def waves() -> list[list[dict]]:
    """Six waves of behaviour, so the ranker learns over several micro-batches."""
    out: list[list[dict]] = [[] for _ in range(6)]
    for n in range(FANS):
        t = NOW + n * 600
        out[n % 6] += [ev("click", user_id=f"fan{n}", item_id="books-0", ts=t),
                       ev("click", user_id=f"fan{n}", item_id="garden-1", ts=t + 60)]
    for n in range(GAMERS):
        out[n % 6].append(ev("click", user_id=f"gamer{n}", item_id="games-0", ts=NOW + n * 600 + 30))
    return out


class Run:
    app_id = f"rec-{uuid.uuid4().hex[:8]}"
    worker: WorkerProcess | None = None
    workdir: Path
    env: dict[str, str]
    clicks = 0


def start(run, broker) -> WorkerProcess:
    run.worker = WorkerProcess(broker.url, run.workdir, run.app_id, run.env)
    run.worker.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] == 12, 180, "catalogue indexed")
    return run.worker


@pytest.fixture(scope="module")
def run(broker, tmp_path_factory):
    Run.workdir = Path(tmp_path_factory.mktemp("worker"))
    # Learning starts after a few held-back lessons, so a short test sees kept updates.
    Run.env = {**broker.worker_env, "INTEREST_STREAM_RANKER_MIN_HOLDOUT": "4",
               "INTEREST_STREAM_RANKER_LEARN_PER_BATCH": "256", "INTEREST_STREAM_RANKER_LEARN_EVERY": "1",
               "INTEREST_STREAM_ENGAGEMENTS_SNAPSHOT_S": "1"}  # snapshots between the waves
    produce(broker.url, catalogue())
    start(Run, broker)
    done = 0
    for wave in waves():
        produce(broker.url, wave)
        done += len(wave)
        Run.worker.wait_processed(done)
    produce(broker.url, [ev("click", user_id="newbie", item_id="books-0", ts=NOW + 86400)])
    Run.worker.wait_processed(done + 1)
    Run.clicks = done + 1
    Run.worker.wait_until(lambda h: h["recommender"]["engagements"]["engagements"] == Run.clicks, 60,
                          "every engagement folded in")
    Run.worker.wait_learned()  # the learner process answers after the events are applied
    yield Run
    if Run.worker:
        Run.worker.stop()


def recs(run, user: str, ranking: str = "hybrid", k: int = 5) -> list[dict]:
    status, body = get_json(f"{run.worker.base}/users/{user}/recommendations?k={k}&ranking={ranking}")
    assert status == 200, body
    return body["items"]


def test_what_others_did_next_reaches_a_user_the_facets_alone_would_not_show_it_to(run):
    facet_only = [i["item_id"] for i in recs(run, "newbie", "facet", k=3)]
    assert "garden-1" not in facet_only  # a book reader's Z points at books
    hybrid = {i["item_id"]: i for i in recs(run, "newbie")}
    assert "books-0" not in hybrid  # already engaged with
    seeds = hybrid["garden-1"]
    assert "co-engagement" in seeds["sources"]
    assert seeds["score_parts"]["co_recent"] > 0
    assert list(hybrid)[0] == "garden-1", hybrid.keys()  # 24 of 24 readers did that next
    chess = hybrid["games-0"]
    assert "popular" in chess["sources"] and chess["score_parts"]["pop_long"] > 0
    for item in hybrid.values():  # every item is explained
        assert item["sources"] and item["ranked_by"] in item["score_parts"]
        assert item["score"] == pytest.approx(sum(item["score_parts"].values()), abs=1e-4)
        assert set(item["facet_scores"]) == {"sentiment", "topic", "style"}


def test_the_ranker_learned_from_the_stream_and_every_worker_folds_every_engagement(run, broker):
    health = run.worker.health()
    rec = health["recommender"]
    assert rec["engagements"]["engagements"] == run.clicks and rec["engagement_records_malformed"] == 0
    assert rec["engagements_caught_up"]
    ranker = rec["ranker"]
    assert ranker["version"] >= 1 and ranker["accepted"] >= 1, ranker
    # One lesson per click (every one chosen; learn_per_batch above every batch): an example, or
    # skipped in the learner process because its own engagement was folded there first.
    assert ranker["examples"] + rec["lessons"]["late"] == run.clicks and rec["lessons"]["dropped"] == 0
    with urllib.request.urlopen(f"{run.worker.base}/metrics", timeout=10) as resp:
        samples = {s.name: s.value for f in text_string_to_metric_families(resp.read().decode()) for s in f.samples}
    assert samples["interest_stream_ranker_version"] == ranker["version"]
    assert samples["interest_stream_engagements_folded_total"] == run.clicks
    # The engagements topic carries every applied click (one record per micro-batch), with the user's earlier items.
    records = [e for r in read_topic(broker.bootstrap, "engagements") for e in orjson.loads(r.value)["engagements"]]
    assert len(records) == run.clicks and rec["engagements_read"] == run.clicks
    fans = [r for r in records if r["user_id"].startswith("fan") and r["item_id"] == "garden-1"]
    assert len(fans) == FANS and all(r["previous"] == ["books-0"] for r in fans)


def restart_and_compare(run, broker, before: dict, ranked: list | None) -> dict:
    """Restart the worker; once it has caught up with the engagements, the same engagements and
    (``ranked`` given) the same ranker and the same recommendations with the same score parts
    (the behaviour facet's SGD steps depend on their order and on the sampler's state: taken over
    from a snapshot, or taken again in the same order from the topic's one partition)."""
    run.worker.stop()
    start(run, broker)
    run.worker.wait_until(lambda h: h["recommender"]["engagements_caught_up"], 60, "engagements read again")
    run.worker.wait_inputs_applied()  # a click not committed before a kill is read again (and skipped)
    after = run.worker.health()["recommender"]
    if ranked is None:  # after a kill: a click read again publishes its engagement again (a copy, dropped)
        assert {**after["engagements"], "duplicates_dropped": 0} == {**before["engagements"], "duplicates_dropped": 0}
    else:
        assert after["engagements"] == before["engagements"]
    if ranked is not None:
        assert after["ranker"]["version"] == before["ranker"]["version"]
        assert after["ranker"]["weights"] == before["ranker"]["weights"]
        assert [(i["item_id"], i["score_parts"]) for i in recs(run, "newbie")] == ranked
    return after


def test_learned_ranker_and_engagements_survive_a_restart_from_the_snapshot_and_the_tail(run, broker):
    before = run.worker.health()["recommender"]
    ranked = [(i["item_id"], i["score_parts"]) for i in recs(run, "newbie")]
    assert all(any(f.startswith("behaviour") for f in parts) for _, parts in ranked[:3])  # the behaviour facet took part
    assert before["engagements_snapshot"]["written"] >= 1 and before["engagements_snapshot"]["loaded"] is None
    run.env = {**run.env, "INTEREST_STREAM_ENGAGEMENTS_SNAPSHOT_S": "3600"}  # from now on, only as it stops
    after = restart_and_compare(run, broker, before, ranked)
    loaded = after["engagements_snapshot"]["loaded"]
    assert loaded is not None and after["engagements_snapshot"]["unusable"] is None
    assert 0 < loaded["engagements"] <= run.clicks
    assert after["engagement_records_read"] < before["engagement_records_read"]  # not the whole topic again
    # The catalogue too: its index as the worker stopped (every 3600 s by default, and at a stop).
    health = run.worker.health()
    assert health["catalogue_snapshot"]["loaded"]["items"] == 12 and health["catalogue_records_read"] == 0
    # The learner process took the worker's snapshot over too.
    lessons = run.worker.wait_until(lambda h: h["recommender"]["lessons"]["caught_up"], 120, "learner caught up")
    assert lessons["recommender"]["lessons"]["engagements_snapshot"]["loaded"] is not None
    assert lessons["recommender"]["lessons"]["catalogue_snapshot"]["loaded"]["items"] == 12


def test_a_worker_that_stops_writes_a_snapshot_of_what_it_folded_since_the_last(run, broker):
    produce(broker.url, [ev("click", user_id="late", item_id="books-0", ts=NOW + 2 * 86400)])
    run.clicks += 1
    run.worker.wait_until(lambda h: h["recommender"]["engagements"]["engagements"] == run.clicks, 60, "the click folded")
    run.worker.wait_learned()
    before = run.worker.health()["recommender"]
    assert before["engagements_snapshot"]["written"] == 0  # none on its own in this run (every 3600 s)
    after = restart_and_compare(run, broker, before, [(i["item_id"], i["score_parts"]) for i in recs(run, "newbie")])
    # Taken as it stopped, with the new click: nothing of the topic was read again.
    assert after["engagements_snapshot"]["loaded"]["engagements"] == run.clicks
    assert after["engagement_records_read"] == 0


def test_after_a_kill_the_snapshot_and_the_tail_after_it_give_every_engagement(run, broker):
    """SIGKILL: no snapshot as it stops. The last one (the stop before) and the record after it."""
    produce(broker.url, [ev("click", user_id="killed", item_id="games-0", ts=NOW + 3 * 86400)])
    run.clicks += 1
    run.worker.wait_until(lambda h: h["recommender"]["engagements"]["engagements"] == run.clicks, 60, "the click folded")
    before = run.worker.health()["recommender"]
    run.worker.kill()
    after = restart_and_compare(run, broker, before, None)  # a lesson may be learned again from a redelivery
    assert after["engagements_snapshot"]["loaded"]["engagements"] == run.clicks - 1
    assert after["engagement_records_read"] >= 1 and after["engagements"]["engagements"] == run.clicks


def test_an_unreadable_snapshot_is_shown_and_the_whole_topic_read_instead(run, broker):
    run.worker.wait_learned()
    before = run.worker.health()["recommender"]
    ranked = [(i["item_id"], i["score_parts"]) for i in recs(run, "newbie")]
    run.worker.stop()
    for what in ("engagements", "catalogue"):
        [path] = (run.workdir / run.app_id).glob(f"{run.app_id}-{what}-*.snapshot.npz")
        path.write_bytes(path.read_bytes()[:1000])  # cut short, as a full disk would leave it
    after = restart_and_compare(run, broker, before, ranked)
    snapshot = after["engagements_snapshot"]
    assert snapshot["loaded"] is None and "cannot be read" in snapshot["unusable"]
    records = read_topic(broker.bootstrap, "engagements")
    assert after["engagement_records_read"] == len(records)  # every record, from the beginning
    health = run.worker.health()
    assert health["catalogue_snapshot"]["loaded"] is None and "cannot be read" in health["catalogue_snapshot"]["unusable"]
    assert health["items_indexed"] == 12 and health["catalogue_records_read"] >= 12


def test_a_click_on_an_item_not_in_the_catalogue_is_still_dead_lettered_and_not_engaged(run, broker):
    before = run.worker.health()
    produce(broker.url, [ev("click", user_id="newbie", item_id="no-such-item", ts=NOW + 2 * 86400)])
    health = run.worker.wait_processed(1, since=before)
    assert health["user_events_dead_lettered"] == before["user_events_dead_lettered"] + 1
    time.sleep(1.0)
    assert run.worker.health()["recommender"]["engagements"]["engagements"] == run.clicks


def test_a_user_with_only_a_watchlist_gets_what_is_popular_not_a_404(run, broker):
    """No search, click or review yet: no Z, so no facet match; the hybrid still serves the cold
    start from decayed popularity (a followed ticker says nothing about the catalogue)."""
    before = run.worker.health()
    produce(broker.url, [ev("watchlist", user_id="watcher", entity="NVDA", op="add", ts=NOW + 86400)])
    run.worker.wait_until(lambda h: h["watchlist_events"] == before["watchlist_events"] + 1, 60, "the watchlist event")
    status, body = get_json(f"{run.worker.base}/users/watcher/recommendations?ranking=facet")
    assert status == 404 and "no search, click or review" in body["error"]
    items = recs(run, "watcher", k=3)
    assert [i["item_id"] for i in items] == ["games-0", "books-0", "garden-1"]  # 30, 25 and 24 clicks
    for item in items:
        assert item["sources"] == ["popular"] and item["facet_scores"] == {} and item["matched_by"] == ""
        assert item["score"] == pytest.approx(sum(item["score_parts"].values()), abs=1e-4)
        assert item["title"]
