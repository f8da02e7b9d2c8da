"""The learner process's lessons without a broker (streams/worker/learner.py): the examples are
the ones the worker built in line; one whose own engagement the learner has folded already is
skipped, never learned from; a step it keeps is applied to its own ranker at once."""

from __future__ import annotations

from multiprocessing import Pipe
from multiprocessing.connection import Connection

import numpy as np
from aiokafka import ConsumerRecord

from schemas import dump_json
from streams.settings import RecommendSettings, Settings
from streams.state.ranker import Example, RankerConfig, start_weights
from streams.state.recommend import Lesson, UserView
from streams.worker.learner import MAX_PENDING_LESSONS, Learner, LearnerSpec
from tests.unit.test_recommend import LAYOUT, build, facets


def same(a: Example | None, b: Example | None) -> bool:
    return a is not None and b is not None and a.user_id == b.user_id and a.positive == b.positive \
        and np.array_equal(a.features, b.features)


def lessons() -> list[Lesson]:
    return [Lesson("u1", "e1", "c", UserView(recent=["a"], z=facets(2), history=4, exclude=frozenset({"a"}))),
            Lesson("u2", "e2", "b", UserView(recent=[], z=None, history=0)),
            Lesson("u3", "e3", "gone", UserView(recent=["b"], z=facets(1), history=2, exclude=frozenset({"b"})))]


def test_examples_are_the_candidates_with_the_engaged_item_marked_and_none_for_an_unknown_item():
    rec, _, eng = build({"a": 0, "b": 1, "c": 2, "d": 3})
    eng.observe("p", "e0", "c", 10.0, 1.0, previous=["a"])
    got = rec.examples(lessons())
    for lesson, example in zip(lessons()[:2], got):
        assert same(example, rec.example(lesson.user_id, rec.candidates(lesson.view, also=[lesson.item_id]), lesson.item_id))
    assert got[2] is None  # not in the catalogue


def learner(settings: Settings | None = None, conn: Connection | None = None) -> Learner:
    """``conn``: the process's end of the worker's pipe (default: one nobody writes to)."""
    spec = LearnerSpec(settings or Settings(), dict(LAYOUT), "vectors")  # nothing is read from the broker here
    made = Learner(conn or Pipe()[0], spec)
    items = {"a": 0, "b": 1, "c": 2, "d": 3}
    made.index.upsert(list(items), {f: np.stack([facets(v)[f] for v in items.values()]) for f in LAYOUT})
    return made


def test_a_lesson_whose_engagement_the_learner_folded_already_is_skipped():
    made = learner()
    eng = made.recommender.engagements
    for n in range(10):
        eng.observe(f"p{n}", f"e{n}", "c", 10.0 + n, 1.0, previous=["a"])
    before = made.recommender.ranker.seen
    batch = lessons()[:2]
    eng.observe("u1", "e1", "c", 30.0, 1.0, previous=["a"])  # u1's click overtook its lesson
    assert made.learn(batch) is None  # too few held back yet for a step
    assert made.late == 1 and made.answered == 2
    assert made.recommender.ranker.seen == before + 1  # only u2's lesson reached the ranker
    status = made.status()
    assert status["late"] == 1 and status["answered"] == 2 and status["examples"] == 1


def test_a_kept_step_is_applied_at_once_and_its_copy_from_the_log_is_skipped():
    made = learner(Settings(recommend=RecommendSettings(ranker=RankerConfig(min_holdout=2))))
    ranker, eng = made.recommender.ranker, made.recommender.engagements
    for n in range(40):
        eng.observe(f"p{n}", f"e{n}", "c", 10.0 + n, 1.0, previous=["a"])
    view = UserView(recent=["a"], z=facets(0), history=4, exclude=frozenset({"a"}))
    step = None
    for n in range(100):  # until the guard has held back enough lessons and keeps a step
        step = made.learn([Lesson(f"v{n}", f"f{n}", "c", view)])
        if step is not None:
            break
    assert step is not None
    w = ranker.w.copy()
    assert ranker.version == 1 and np.allclose(w, start_weights() + np.asarray(step.step))
    copy = {"engagements": [], "ranker_step": step.to_dict()}
    made.engagements._fold([ConsumerRecord("engagements", 0, 7, 0, 0, None, dump_json(copy), None, 0, 0, [])])
    assert np.array_equal(ranker.w, w) and made.engagements.steps_skipped == 1  # not applied twice


def test_lessons_waiting_past_the_cap_are_dropped_oldest_first_counted_in_lessons():
    # Micro-batches of lessons whose size follows the load: the backlog is bounded in lessons (the
    # process's time), not in batches. None is answered while the engagements log is being read.
    mine, worker_end = Pipe()
    made = learner(conn=mine)
    view = UserView(recent=["a"], z=facets(0), history=4, exclude=frozenset({"a"}))
    sizes = [100] * 8 + [500, 300, 7]
    for b, size in enumerate(sizes):
        worker_end.send(("lessons", [Lesson(f"u{b}", f"e{b}-{n}", "c", view) for n in range(size)]))
    made._readable()
    waiting = [len(batch) for batch in made.pending]
    assert sum(waiting) <= MAX_PENDING_LESSONS < sum(waiting) + made.dropped
    assert waiting == sizes[len(sizes) - len(waiting):]  # the newest kept, whole batches
    assert made.dropped == sum(sizes) - sum(waiting) and made.answered == 0
    # A batch larger than the cap on its own (learn_per_batch may be set above it) is kept whole.
    worker_end.send(("lessons", [Lesson("big", f"b{n}", "c", view) for n in range(MAX_PENDING_LESSONS + 5)]))
    made._readable()
    assert [len(batch) for batch in made.pending] == [MAX_PENDING_LESSONS + 5]
