"""The group-less follower of a whole topic (streams/worker/follower.py) against the real bundled
broker: resumed at offsets a snapshot took, it applies only the records after them; offsets past
the topic's end (a topic deleted and made again since) are refused, and it reads from the
beginning, and so are offsets whose last applied record is another one now (a topic made again
and grown past them); after a Kafka error it reads on from where its state was left, each record
applied once."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.worker.follower import LogFollower
from tests.helpers.kafka import produce_raw

pytestmark = pytest.mark.integration


class Recording(LogFollower):
    def __init__(self, bootstrap: str, topic: str, resume: dict[int, int] | None, marks=None) -> None:
        super().__init__(bootstrap, topic, self.fold)
        self.resume, self.resume_marks = resume, dict(marks or {})
        self.applied: list[tuple[int, int]] = []
        self.refused: list[str] = []

    def fold(self, records) -> None:
        self.applied += [(r.partition, r.offset) for r in records]

    def resume_refused(self, why: str) -> None:
        self.refused.append(why)
        super().resume_refused(why)

    def restarting(self) -> None:
        self.applied.clear()  # what it held is dropped before the read from the beginning


async def follow_until_caught_up(follower: LogFollower) -> None:
    task = asyncio.create_task(follower.run())
    try:
        for _ in range(300):
            if follower.caught_up_at is not None:
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the follower never caught up")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(scope="module")
def topic(broker) -> str:
    # Five records in each of two partitions (offsets 0-4).
    produce_raw(broker.bootstrap, [("followed", None, b"r%d" % n, n % 2) for n in range(10)], partitions=2)
    return "followed"


@pytest.fixture(scope="module")
def remade(broker) -> str:
    """What ``topic`` would be once deleted, made again and grown past its old offsets: other
    records at the same offsets, and more of them."""
    produce_raw(broker.bootstrap, [("followed-remade", None, b"new%d" % n, n % 2) for n in range(14)], partitions=2)
    return "followed-remade"


def test_resumed_at_a_snapshots_offsets_it_applies_only_the_records_after_them(broker, topic):
    follower = Recording(broker.bootstrap, topic, {0: 3, 1: 5})
    asyncio.run(follow_until_caught_up(follower))
    assert sorted(follower.applied) == [(0, 3), (0, 4)] and follower.refused == []
    assert follower.positions == {0: 5, 1: 5}


def test_offsets_past_the_end_are_refused_and_the_topic_read_from_the_beginning(broker, topic):
    follower = Recording(broker.bootstrap, topic, {0: 3, 1: 9})
    asyncio.run(follow_until_caught_up(follower))
    assert len(follower.refused) == 1 and "1@9" in follower.refused[0]
    assert sorted(follower.applied) == [(p, o) for p in (0, 1) for o in range(5)]


def test_resumed_where_the_last_applied_records_are_still_there_it_reads_only_what_follows(broker, topic):
    first = Recording(broker.bootstrap, topic, None)
    asyncio.run(follow_until_caught_up(first))
    assert first.marks.keys() == {0, 1} and {o for o, _ in first.marks.values()} == {4}
    again = Recording(broker.bootstrap, topic, dict(first.positions), first.marks)
    asyncio.run(follow_until_caught_up(again))
    assert again.refused == [] and again.applied == []


def test_a_topic_made_again_and_grown_past_the_offsets_is_read_from_its_beginning(broker, topic, remade):
    first = Recording(broker.bootstrap, topic, None)
    asyncio.run(follow_until_caught_up(first))
    # The same offsets exist in the topic made again (14 records: 7 a partition), its records differ.
    after = Recording(broker.bootstrap, remade, dict(first.positions), first.marks)
    asyncio.run(follow_until_caught_up(after))
    assert len(after.refused) == 1 and "0@4" in after.refused[0] and "1@4" in after.refused[0]
    assert sorted(after.applied) == [(p, o) for p in (0, 1) for o in range(7)]  # all of it, once
    assert {p: o for p, (o, _) in after.marks.items()} == {0: 6, 1: 6}  # marks of the topic it read now


class FailingOnce(Recording):
    """A fault injected (named so: a consumer that gives up mid-read cannot be made on demand): the
    first hook after an applied batch raises a KafkaError, as a broker call there would."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap, topic, None)  # type: ignore[arg-type]  # no snapshot: from the beginning
        self.failed = False

    async def _after_apply(self) -> None:
        if not self.failed:
            self.failed = True
            raise KafkaConnectionError("injected")
        await super()._after_apply()


def test_after_a_kafka_error_it_reads_on_from_its_state_and_applies_each_record_once(broker, topic):
    follower = FailingOnce(broker.bootstrap, topic)
    asyncio.run(follow_until_caught_up(follower))
    assert follower.failed and follower.refused == []
    assert sorted(follower.applied) == [(p, o) for p in (0, 1) for o in range(5)]  # none twice, none lost


class FailingCheckOnce(Recording):
    """A fault injected (named so): the first read-back of the marked records raises a KafkaError,
    as a broker call there would."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.failed = False

    async def _marks_differ(self, *args):
        if not self.failed:
            self.failed = True
            raise KafkaConnectionError("injected")
        return await super()._marks_differ(*args)


def test_an_error_while_the_resume_is_checked_keeps_the_resume_for_the_next_try(broker, topic):
    first = Recording(broker.bootstrap, topic, None)
    asyncio.run(follow_until_caught_up(first))
    again = FailingCheckOnce(broker.bootstrap, topic, dict(first.positions), first.marks)
    asyncio.run(follow_until_caught_up(again))
    assert again.failed and again.refused == [] and again.applied == []  # resumed, not read again from the start
