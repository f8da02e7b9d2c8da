"""The ranker's steps through the engagements log (streams/worker/engagement.py): a worker proposes
a step from its lessons without applying it; every worker applies every step it reads, in the
log's order, so all rank with the same weights, and a rebuild from the log gives them again."""

from __future__ import annotations

import numpy as np
from aiokafka import ConsumerRecord

from index import ItemIndex
from schemas import RankerStep, dump_json, load_json
from streams.state.engagement import Engagements
from streams.state.ranker import FEATURES, Example, OnlineRanker, RankerConfig
from streams.state.recommend import Recommender
from streams.worker.engagement import EngagementFollower

LAYOUT = {"sentiment": 2, "topic": 4, "style": 2}
CONFIG = RankerConfig(min_holdout=2, holdout_every=3)


def lessons(rng: np.random.Generator, n: int, user: str) -> list[Example]:
    return [Example(f"{user}{i % 3}", rng.normal(size=(6, len(FEATURES))), int(rng.integers(6))) for i in range(n)]


def follower() -> EngagementFollower:
    rec = Recommender(Engagements(), OnlineRanker(CONFIG), ItemIndex(LAYOUT))
    return EngagementFollower("127.0.0.1:9", "engagements", rec)


def record(offset: int, step: RankerStep | None, features: list[str] | None = None) -> ConsumerRecord:
    value: dict = {"engagements": [{"user_id": "u", "event_id": f"e{offset}", "item_id": "i", "ts": float(offset),
                                    "weight": 2.0, "previous": []}]}
    if step is not None:
        value["ranker_step"] = {**step.to_dict(), **({"features": features} if features else {})}
    return ConsumerRecord("engagements", 0, offset, 0, 0, None, dump_json(value), None, 0, 0, [])


def test_a_proposed_step_is_what_learn_applies_and_changes_nothing_by_itself():
    rng = np.random.default_rng(0)
    batches = [lessons(rng, 12, "u") for _ in range(6)]
    proposer, learner = OnlineRanker(CONFIG), OnlineRanker(CONFIG)
    for batch in batches:
        before, version = proposer.w.copy(), proposer.version
        step = proposer.propose(batch)
        assert np.array_equal(proposer.w, before) and proposer.version == version
        kept = learner.learn(batch)
        assert kept == (step is not None)
        if step is not None:
            assert np.array_equal(learner.w, before + step)
            proposer.apply(step)
    assert proposer.version == learner.version > 0 and np.array_equal(proposer.w, learner.w)


def test_every_worker_applies_every_workers_steps_in_the_logs_order_once():
    rng = np.random.default_rng(1)
    proposers = [OnlineRanker(CONFIG), OnlineRanker(CONFIG)]  # two workers' own lessons
    log = []
    for n in range(8):
        step = proposers[n % 2].propose(lessons(rng, 12, f"w{n % 2}-"))
        log.append(record(n, RankerStep(f"s{n}", list(FEATURES), step.tolist()) if step is not None else None))
    steps = [r for r in log if b"ranker_step" in r.value]
    assert len(steps) >= 2
    log += [record(100, RankerStep("s1", list(FEATURES), [9.0] * len(FEATURES))),  # a copy of s1: dropped
            record(101, RankerStep("old", ["x"], [1.0]), features=["x"])]  # another version's features
    a, b = follower(), follower()
    a._fold(log)
    for r in log:  # another worker reads the same log in other fetches
        b._fold([r])
    expected = OnlineRanker(CONFIG).w
    for r in steps:
        expected = expected + np.asarray(load_json(r.value)["ranker_step"]["step"])
    for f in (a, b):
        assert f.recommender.ranker.version == len(steps) == f.steps and f.steps_skipped == 2
        assert np.array_equal(f.recommender.ranker.w, expected)
    a.restarting()  # read again from the beginning: rebuilt, not stepped twice
    a._fold(log)
    assert np.array_equal(a.recommender.ranker.w, expected) and a.recommender.ranker.version == len(steps)

