"""The learner process's failure paths, at the worker's side of the pipe (``LearnerClient``), with
real processes and the real broker but no worker and no model:

- a process that fails inside (here at its start: a facet layout it cannot build its index from)
  ends with exit code 1; meanwhile the worker is told to build its lessons in line, and a new process is
  started after the restart delay, again and again;
- a process that cannot even be started (no file descriptor left for its pipe: a real EMFILE, from
  a lowered RLIMIT_NOFILE) is tried again, in line meanwhile, and once it starts it catches up
  and answers lessons;
- cancelling the client (the worker stopping) leaves no learner process behind;
- a Ctrl-C to a worker's process group stops the worker and its learner without a traceback (a
  real worker).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import time
import uuid
from typing import Callable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import ENGAGEMENTS
from streams.settings import Settings
from streams.state.recommend import Lesson, UserView
from streams.tools.process import WorkerProcess
from streams.worker.learner import LearnerClient, LearnerSpec
from tests.helpers.processes import alive
from tests.unit.test_recommend import LAYOUT

RESTART_S = 0.3


def spec(broker, vectors_topic: str) -> LearnerSpec:
    s = Settings(broker=broker.url)
    s = dataclasses.replace(s, recommend=dataclasses.replace(s.recommend, learner_restart_s=RESTART_S))
    return LearnerSpec(s, dict(LAYOUT), vectors_topic)


async def create_topics(bootstrap: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(n, num_partitions=1, replication_factor=1) for n in names if n not in existing]
        if new:
            await admin.create_topics(new)
    finally:
        await admin.close()


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def stopped(client: LearnerClient, task: asyncio.Task) -> None:
    """Cancel the client as the worker's app does when it stops; its process must be gone."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert client.process is None or not client.process.is_alive()


def lesson(n: int) -> Lesson:
    return Lesson(f"u{n}", f"e{n}", "not-in-the-catalogue", UserView(recent=[], z=None, history=0))


def test_a_process_that_fails_inside_exits_1_and_is_replaced_while_the_lessons_are_built_in_line(broker):
    topic = f"vectors-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        await create_topics(broker.bootstrap, topic, ENGAGEMENTS.name)
        # A real failure inside each new process: a facet layout it cannot build its index from.
        client = LearnerClient(dataclasses.replace(spec(broker, topic), layout={}))
        task = asyncio.create_task(client.run())
        await until(lambda: client.exit_code is not None, 120, "the first process to end")
        assert client.exit_code == 1 and client.started == 1
        # Until the next one starts, the worker builds its lessons itself.
        assert not client.alive and client.status()["where"] == "inline" and client.status()["process_pid"] is None
        assert client.submit([lesson(1)]) is False and client.handed == 0
        await until(lambda: client.started >= 3, 120, "two more processes")
        assert client.exit_code == 1
        status = client.status()
        assert not status["caught_up"] and status["handed"] == status["dropped"] == status["unanswered"] == 0, status
        await stopped(client, task)

    asyncio.run(run())


def test_a_process_that_cannot_start_is_tried_again_and_then_answers_lessons(broker):
    topic = f"vectors-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        await create_topics(broker.bootstrap, topic, ENGAGEMENTS.name)
        client = LearnerClient(spec(broker, topic))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest_free = os.dup(0)
        os.close(lowest_free)
        # Every new descriptor of this process now fails with EMFILE: the learner's pipe first.
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))
        try:
            task = asyncio.create_task(client.run())
            await asyncio.sleep(3 * RESTART_S)  # a few tries
            assert client.started == 0 and client.process is None and not client.alive
            assert client.status()["where"] == "inline" and client.submit([lesson(0)]) is False
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        await until(lambda: client.alive and client.status()["caught_up"], 120, "a process that caught up")
        assert client.started == 1 and client.exit_code is None
        assert client.submit([lesson(1), lesson(2)]) is True and client.submit([lesson(3)]) is True
        await until(lambda: client.status()["answered"] == 3, 60, "the lessons answered")
        status = client.status()
        assert status["where"] == "process" and status["handed"] == 3, status
        assert status["dropped"] == status["unanswered"] == status["late"] == 0, status
        assert client.proposer_status()["examples"] == 0  # their item is not in the catalogue: no example
        await stopped(client, task)

    asyncio.run(run())


def test_ctrl_c_stops_the_worker_and_its_learner_cleanly(broker, tmp_path):
    """A Ctrl-C reaches the whole process group: the learner ignores it and is stopped by its
    worker, which shuts down as usual; no traceback from either."""
    worker = WorkerProcess(broker.url, tmp_path, f"ctrl-c-{uuid.uuid4().hex[:8]}", broker.worker_env, own_group=True)
    try:
        health = worker.wait_until(lambda h: h["status"] == "ok" and h["recommender"]["lessons"]["caught_up"], 180,
                                   "the worker and its learner process")
        learner = health["recommender"]["lessons"]["process_pid"]
        worker.interrupt()
        assert worker.proc.wait(60) == 0
        deadline = time.monotonic() + 10
        while alive(learner) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(learner)
    finally:
        worker.stop()
    log = worker.log_path.read_text(errors="replace")
    assert "learner process" in log and "Traceback" not in log and "KeyboardInterrupt" not in log
