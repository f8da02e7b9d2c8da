"""The ranking lessons in the learner process, through a real worker (Tansu broker, the real
model, FAISS): the process answers every lesson and its kept steps reach the ranker through the
engagements log; killed with SIGKILL, its lessons are built in line until a new process starts;
and it does not outlive its worker.

The steps run in order inside one module (they share a worker).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
import uuid
from pathlib import Path

import orjson
import pytest

from schemas import unpack_vector
from schemas.topics import item_vectors_topic
from streams.tools.process import WorkerProcess
from streams.worker.items import vectors_log_key, vectors_log_value
from tests.helpers.kafka import produce, produce_raw, read_topic
from tests.helpers.processes import alive

NOW = time.time() - 10 * 86400  # in the past: future stamps are refused
CATEGORIES = ("books", "garden", "games")
RESTART_S = 20  # the window in which a killed learner's lessons are built by the worker
_ids = itertools.count()


def ev(kind: str, **fields) -> dict:
    return {"type": kind, "event_id": f"l{next(_ids)}", **fields}


def clicks(wave: int, users: int = 30) -> list[dict]:
    """Each user clicks an item of one category, then the next item of it."""
    out = []
    for n in range(users):
        cat, t = CATEGORIES[n % 3], NOW + wave * 3600 + n * 10
        out += [ev("click", user_id=f"u{n}", item_id=f"{cat}-{wave % 4}", ts=t),
                ev("click", user_id=f"u{n}", item_id=f"{cat}-{(wave + 1) % 4}", ts=t + 5)]
    return out


class Run:
    worker: WorkerProcess
    broker_url: str
    app_id: str
    clicks = 0


def lessons(h: dict) -> dict:
    return h["recommender"]["lessons"]


@pytest.fixture(scope="module")
def run(broker, tmp_path_factory):
    env = {**broker.worker_env, "INTEREST_STREAM_RANKER_MIN_HOLDOUT": "4", "INTEREST_STREAM_RANKER_LEARN_EVERY": "1",
           "INTEREST_STREAM_RANKER_LEARN_PER_BATCH": "256",  # every click a lesson
           "INTEREST_STREAM_RANKER_LEARNER_RESTART_S": str(RESTART_S)}
    produce(broker.url, [ev("item", item_id=f"{cat}-{i}", title=f"{cat} {i}", text=f"A {cat} thing, number {i}.",
                            category=cat, ts=NOW) for cat in CATEGORIES for i in range(4)])
    Run.broker_url, Run.app_id = broker.url, f"learner-{uuid.uuid4().hex[:8]}"
    Run.worker = WorkerProcess(broker.url, Path(tmp_path_factory.mktemp("worker")), Run.app_id, env)
    Run.worker.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] == 12, 180, "catalogue indexed")
    # Lessons are handed over only once the process has read both logs (in line until then).
    Run.worker.wait_until(lambda h: lessons(h)["caught_up"], 180, "the learner process caught up")
    yield Run
    Run.worker.stop()


def send_and_learn(run, events: list[dict]) -> dict:
    produce(run.broker_url, events)
    run.clicks += len(events)
    run.worker.wait_processed(run.clicks)
    return run.worker.wait_learned()


def accounted(h: dict) -> int:
    """Lessons that became examples, were answered without one (late), or were lost."""
    return h["recommender"]["ranker"]["examples"] + lessons(h)["late"] + lessons(h)["dropped"]


def test_the_learner_process_answers_every_lesson_and_its_steps_reach_the_ranker(run, broker):
    for wave in range(4):
        sent_at = time.time()
        health = send_and_learn(run, clicks(wave))
        # The micro-batch that applied the last of them, by the worker's clock (the bench times to it).
        assert sent_at < health["last_applied_at"] < time.time()
    rec, got = health["recommender"], lessons(health)
    assert got["where"] == "process" and got["caught_up"] and got["processes_started"] == 1, got
    assert got["handed"] == got["answered"] == run.clicks and got["dropped"] == got["unanswered"] == 0, got
    assert accounted(health) == run.clicks
    assert rec["ranker"]["accepted"] >= 1 and rec["ranker_steps_applied"] == rec["ranker"]["version"] == rec["ranker"]["accepted"]
    # Its steps are records of their own on the engagements log (the worker's records carry the clicks).
    records = [orjson.loads(r.value) for r in read_topic(broker.bootstrap, "engagements")]
    steps = [r for r in records if "ranker_step" in r]
    assert len(steps) == rec["ranker"]["accepted"] and all(r["engagements"] == [] for r in steps)
    assert sum(len(r["engagements"]) for r in records) == run.clicks


def test_records_of_the_item_vectors_log_that_cannot_be_indexed_are_skipped_by_the_worker_and_its_learner(run, broker):
    """Only workers write that log, but one unreadable record used to stop every worker at every
    start (the log is read from the beginning), and the learner process with it."""
    topic = item_vectors_topic(run.app_id)
    before = run.worker.health()
    value = orjson.loads(read_topic(broker.bootstrap, topic)[0].value)
    vector = unpack_vector(value["vector"])
    bad = [(vectors_log_key("books-8"), b"{not json"),
           (vectors_log_key("books-9"), vectors_log_value(vector[:-1], "books 9", "books", NOW))]  # another encoder's
    good = (vectors_log_key("books-9"), vectors_log_value(vector, "books 9", "books", NOW))  # after them: indexed
    produce_raw(broker.bootstrap, [(topic, key, value) for key, value in (*bad, good)])  # one key, one partition
    health = run.worker.wait_until(lambda h: h["items_indexed"] == 13 and lessons(h)["items_indexed"] == 13, 60,
                                   "the good record indexed by the worker and its learner")
    assert health["status"] == "ok" and health["catalogue_records_malformed"] == 2
    assert lessons(health)["catalogue_records_malformed"] == 2
    assert lessons(health)["processes_started"] == lessons(before)["processes_started"]  # it kept going too
    assert health["uptime_s"] > before["uptime_s"]  # the same worker


def test_a_killed_learner_leaves_its_lessons_to_the_worker_until_a_new_one_starts(run):
    before = run.worker.health()
    pid = lessons(before)["process_pid"]
    os.kill(pid, signal.SIGKILL)
    gone = run.worker.wait_until(lambda h: lessons(h)["where"] == "inline", 10, "the worker to see the learner gone")
    assert lessons(gone)["last_exit_code"] == -signal.SIGKILL and lessons(gone)["dropped"] == 0  # none was waiting
    health = send_and_learn(run, clicks(4))  # within RESTART_S: built in line
    assert lessons(health)["where"] == "inline" and lessons(health)["handed"] == lessons(before)["handed"]
    examples = health["recommender"]["ranker"]["examples"]
    assert examples == before["recommender"]["ranker"]["examples"] + len(clicks(4))  # every one a lesson, in line
    after = run.worker.wait_until(lambda h: lessons(h)["where"] == "process" and lessons(h)["caught_up"],
                                  RESTART_S + 60, "a new learner process, caught up")
    got = lessons(after)
    assert got["processes_started"] == 2 and got["process_pid"] != pid
    health = send_and_learn(run, clicks(5))
    assert lessons(health)["handed"] == lessons(before)["handed"] + len(clicks(5))  # handed over again
    assert lessons(health)["answered"] == lessons(health)["handed"] and lessons(health)["dropped"] == 0
    assert accounted(health) == run.clicks
    assert health["events_applied"] == run.clicks


def test_the_learner_does_not_outlive_its_worker(run):
    pid = lessons(run.worker.health())["process_pid"]
    assert alive(pid)
    run.worker.kill()  # SIGKILL: no shutdown code runs in the worker
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(pid)
