"""Ranking lessons on a core of their own: the learner process (issue #14).

A user micro-batch chooses a few of its clicks and reviews as ranking lessons (one in
``learn_every``: streams/worker/users.py). A lesson is the candidates the user would have been shown
just before that click, built from the user's state then, the catalogue and everyone's engagements:
about a millisecond each, which took a quarter of a click's time on the worker's one event-loop
thread (benchmarks/RESULTS.md). The learner process builds them instead, on another core.

It follows the item vectors log and the engagements log from the beginning, as every worker does
(streams/worker/catalogue.py, engagement.py), so it holds the same catalogue, engagements and ranker
weights. The worker sends it each micro-batch's lessons with the users' views (``recommend.Lesson``:
recent items, Z, history, taken just before each event was applied) through a pipe. The learner
answers each micro-batch with the step its ranker's held-back guard kept, or none; the worker
publishes a kept step on the engagements log, where every worker (and every learner) applies it.
These are the steps the worker would have proposed in line, up to how far each had read the
engagements log when the lesson was built.

- A lesson whose own engagement the learner has folded already (its micro-batch's engagements
  record overtook it) is skipped and counted ``late``: its item would be scored with the very click
  it is meant to predict.
- Lessons are handed over only once the process has caught up with both logs (built in line until
  then); past ``MAX_PENDING`` micro-batches waiting in the pipe's queue a new batch's lessons are
  dropped, and past ``MAX_PENDING_LESSONS`` lessons in the process the oldest are; both are counted.
- A step it keeps is applied to its own ranker at once, so the next micro-batch's step starts from
  it even when several wait; a worker applies it when it reads it from the log.
- If the process dies, the worker builds its lessons in line again and starts a new process after
  ``RANKER_LEARNER_RESTART_S``. The process exits when the worker does (its end of the pipe closes).
- It holds a second copy of the catalogue's vectors and of the engagements;
  ``INTEREST_STREAM_RANKER_LESSONS=inline`` keeps the lessons in the worker's process.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import signal
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Awaitable, Callable, Sequence

from index import ItemIndex
from schemas import RankerStep
from schemas.topics import ENGAGEMENTS
from streams.settings import Settings
from streams.state.engagement import Engagements
from streams.state.ranker import FEATURES, OnlineRanker
from streams.state.recommend import Lesson, Recommender, topic_lookup
from streams.threads import limit_threads
from streams.worker.catalogue import CatalogueFollower, catalogue_snapshot, index_vector_rows
from streams.worker.engagement import EngagementFollower, snapshot_file

log = logging.getLogger(__name__)

MAX_PENDING = 64  # micro-batches of lessons waiting to be sent to the process
# Lessons waiting in the process: about a second or two of its work. Counted in lessons, not
# micro-batches, whose size follows the load: a backlog of 64 batches of clicks kept the learner's
# core busy for seconds after a burst, into the encoder's time (benchmarks/RESULTS.md, 2026-12-07).
MAX_PENDING_LESSONS = 1024
STATUS_EVERY_S = 1.0  # the process's status to the worker when it changed (with each answer too)
COUNTS = ("answered", "late", "dropped", "accepted", "rejected", "examples")  # summed over the processes


@dataclass(frozen=True)
class LearnerSpec:
    """What the learner process is started with (pickled to it)."""

    settings: Settings
    layout: dict[str, int]  # the encoder's facets: the index's vectors are read with it
    vectors_topic: str  # the item vectors log


def learner_main(conn: Connection, spec: LearnerSpec) -> None:
    """The learner process's entry point (started by ``LearnerClient`` with multiprocessing's spawn)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s learner %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the process group: the worker stops it
    limit_threads(spec.settings)  # FAISS on one thread, as on the worker's event loop
    asyncio.run(Learner(conn, spec).run())


class Learner:
    """The process's side: followers of both logs, and the lessons from the pipe, on one event loop."""

    def __init__(self, conn: Connection, spec: LearnerSpec) -> None:
        s, r = spec.settings, spec.settings.recommend
        self.conn = conn
        self.index = ItemIndex(spec.layout, s.index)
        self.recommender = Recommender(Engagements(r.engagement, topic_lookup(self.index)), OnlineRanker(r.ranker),
                                       self.index, r.candidates)
        self._catalogue_current = asyncio.Event()
        self.catalogue = CatalogueFollower(s.bootstrap, spec.vectors_topic,
                                           lambda rows: index_vector_rows(self.index, spec.layout, rows), sum(spec.layout.values()),
                                           s.fetch_max_wait_ms, on_caught_up=self._catalogue_current.set, index=self.index,
                                           snapshots=catalogue_snapshot(s.snapshot_folder, s.app_id, self.index)
                                           if s.catalogue_snapshot_s else None)
        # Folded once the catalogue is indexed: the behaviour facet starts an item's vectors there.
        # It takes over the worker's snapshot of the engagements (never writes one).
        self.engagements = EngagementFollower(s.bootstrap, ENGAGEMENTS.name, self.recommender, s.fetch_max_wait_ms,
                                              on_caught_up=self._answer, after=self._catalogue_current.wait,
                                              snapshots=snapshot_file(s.snapshot_folder, s.app_id, r.engagement, spec.layout)
                                              if r.snapshot_every_s else None)
        self.pending: deque[list[Lesson]] = deque()
        self.answered = self.late = self.dropped = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        loop.add_reader(self.conn.fileno(), self._readable)
        tasks = [asyncio.create_task(t) for t in (self.catalogue.run(), self.engagements.run(), self._report())]
        try:
            await asyncio.wait([self._closed, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if not self._closed.done():  # a follower failed: a new process starts from scratch
                for task in tasks:
                    if task.done() and not task.cancelled():
                        log.error("learner stops: %r", task.exception())
                raise SystemExit(1)
        finally:
            loop.remove_reader(self.conn.fileno())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _report(self) -> None:
        """The status to the worker now and then (it gets one with each answer too), so /healthz
        shows the process catching up before any lesson comes."""
        last = None
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            status = self.status()
            if status != last:
                self._send(("status", None, status))
                last = status

    def _send(self, message: tuple[str, Any, dict[str, Any]]) -> None:
        try:
            self.conn.send(message)
        except OSError:  # the worker is gone
            if not self._closed.done():
                self._closed.set_result(None)

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                kind, lessons = self.conn.recv()
                if kind == "lessons":
                    self.pending.append(lessons)
        except (EOFError, OSError):  # the worker is gone
            if not self._closed.done():
                self._closed.set_result(None)
            return
        waiting = sum(map(len, self.pending))
        while waiting > MAX_PENDING_LESSONS and len(self.pending) > 1:  # the newest batch stays, however large
            dropped = len(self.pending.popleft())
            self.dropped += dropped
            waiting -= dropped
        self._answer()

    def _answer(self) -> None:
        """Answer the waiting micro-batches, once the engagements log is caught up."""
        if self.engagements.caught_up_at is None:
            return
        while self.pending and not self._closed.done():
            lessons = self.pending.popleft()
            try:
                step = self.learn(lessons)
            except Exception:  # a bug: these lessons are lost, the next ones are still answered
                log.exception("%d ranking lessons dropped", len(lessons))
                self.dropped += len(lessons)
                step = None
            self._send(("answer", None if step is None else step.to_dict(), self.status()))

    def learn(self, lessons: Sequence[Lesson]) -> RankerStep | None:
        """One micro-batch's lessons -> the step the held-back guard kept, if any. The step is
        applied here at once, so the next micro-batch's step starts from it even when several
        wait (its copy read back from the log is skipped by its id); every worker applies it when
        it reads it from the log."""
        rec = self.recommender
        fresh = [x for x in lessons if not rec.engagements.folded(x.user_id, x.event_id)]
        examples = [e for e in rec.examples(fresh) if e is not None]
        proposed = rec.ranker.propose(examples) if examples else None
        self.late += len(lessons) - len(fresh)
        self.answered += len(lessons)
        if proposed is None:
            return None
        step = RankerStep(uuid.uuid4().hex, list(FEATURES), proposed.tolist())
        self.engagements.applied_here(step)
        return step

    def status(self) -> dict[str, Any]:
        ranker = self.recommender.ranker.status()
        return {"answered": self.answered, "late": self.late, "dropped": self.dropped,
                "pending": sum(map(len, self.pending)), "caught_up": self.engagements.caught_up_at is not None,
                "items_indexed": len(self.index), "catalogue_records_malformed": self.catalogue.malformed,
                "index": self.index.ann.to_dict(), "engagements_snapshot": dict(self.engagements.snapshot),
                "catalogue_snapshot": dict(self.catalogue.snapshot),
                **{k: ranker[k] for k in ("accepted", "rejected", "examples", "held_back")}}


class LearnerClient:
    """The worker's side: keeps a learner process running, sends it lessons, publishes its steps."""

    def __init__(self, spec: LearnerSpec, publish: Callable[[RankerStep], Awaitable[None]] | None = None,
                 after: Callable[[], Awaitable[object]] | None = None) -> None:
        """``publish``: sends a kept step to the engagements log (set by streams/worker/app.py);
        ``after``: awaited before the first process starts (the worker's catalogue current: no
        user event, so no lesson, comes before, and the process's own start, reading the
        catalogue and the engagements, would take the cores from the worker's)."""
        self.spec = spec
        self.publish = publish
        self.after = after
        self.process: multiprocessing.process.BaseProcess | None = None
        self.alive = False  # False: the user handler builds its lessons in line
        self.started = 0
        self.exit_code: int | None = None
        self.handed = 0  # lessons handed over while a process ran; each is answered or dropped
        self.dropped = 0  # here: the pipe's queue was full, or the process ended before answering them
        self._current: dict[str, Any] = {}  # the running process's last status
        self._before = dict.fromkeys(COUNTS, 0)  # the counts of the processes that ended
        self._queue: queue.Queue[list[Lesson] | None] = queue.Queue(MAX_PENDING)
        self._conn: Connection | None = None
        self._publishing: set[asyncio.Future] = set()

    def submit(self, lessons: Sequence[Lesson]) -> bool:
        """Hand a micro-batch's lessons to the learner; False if none runs, or it is still reading
        the logs at its start (build them in line). Never blocks the event loop: a thread writes
        to the pipe."""
        if not (self.alive and self._current.get("caught_up")):
            return False
        self.handed += len(lessons)
        try:
            self._queue.put_nowait(list(lessons))
        except queue.Full:
            self.dropped += len(lessons)
        return True

    async def run(self) -> None:
        """Keep a learner process running until cancelled (a task of the worker's app)."""
        loop, restart_s = asyncio.get_running_loop(), self.spec.settings.recommend.learner_restart_s
        try:
            if self.after is not None:
                await self.after()
            while True:
                ended = loop.create_future()
                try:
                    self._start(loop, ended)
                except Exception:
                    log.exception("the learner process did not start: ranking lessons in line, trying again in %g s",
                                  restart_s)
                    await asyncio.sleep(restart_s)
                    continue
                await ended
                self._close_pipe()
                assert self.process is not None
                await loop.run_in_executor(None, self.process.join, 5.0)
                if self.process.is_alive():  # its pipe failed but it runs: not two of them
                    self.process.kill()
                    await loop.run_in_executor(None, self.process.join, 5.0)
                self.exit_code = self.process.exitcode
                self.dropped += self._unanswered()  # lost with the process
                for k in COUNTS:
                    self._before[k] += self._current.get(k, 0)
                self._current = {}
                log.warning("learner process ended (exit code %s): ranking lessons in line until a new one "
                            "starts in %g s", self.exit_code, restart_s)
                await asyncio.sleep(restart_s)
        finally:
            self._stop()

    def _start(self, loop: asyncio.AbstractEventLoop, ended: asyncio.Future) -> None:
        # spawn, not fork: the worker has threads (torch, RocksDB, the encoder's pool) that a fork would copy mid-step.
        mp = multiprocessing.get_context("spawn")
        mine, theirs = mp.Pipe()
        self.process = mp.Process(target=learner_main, args=(theirs, self.spec), name="interest-stream-learner", daemon=True)
        self.process.start()
        theirs.close()  # only the process holds its end: the worker sees EOF when it dies
        self._conn, self._queue = mine, queue.Queue(MAX_PENDING)
        threading.Thread(target=self._send_loop, args=(mine, self._queue), name="learner-send", daemon=True).start()
        threading.Thread(target=self._read_loop, args=(mine, loop, ended), name="learner-read", daemon=True).start()
        self.alive = True
        self.started += 1
        log.info("learner process %s started", self.process.pid)

    @staticmethod
    def _send_loop(conn: Connection, lessons: queue.Queue[list[Lesson] | None]) -> None:
        while (batch := lessons.get()) is not None:
            try:
                conn.send(("lessons", batch))
            except (OSError, ValueError):  # the process is gone: the reader sees it too
                return
            except Exception:  # a bug (a lesson that does not pickle): these are never answered
                log.exception("ranking lessons not sent to the learner process")

    def _read_loop(self, conn: Connection, loop: asyncio.AbstractEventLoop, ended: asyncio.Future) -> None:
        try:
            while True:
                answer = conn.recv()
                loop.call_soon_threadsafe(self._answered, answer)
        except (EOFError, OSError):
            pass
        except Exception:  # a bug, or the loop closed: the process is treated as ended
            log.exception("learner process answer not read")
        finally:
            try:
                loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(None))
            except RuntimeError:  # the loop is closed: the worker is stopping
                pass

    def _answered(self, answer: tuple[str, dict[str, Any] | None, dict[str, Any]]) -> None:
        _, step, self._current = answer
        if step is not None and self.publish is not None:
            task = asyncio.ensure_future(self.publish(RankerStep.from_dict(step)))
            self._publishing.add(task)
            task.add_done_callback(self._published)

    def _published(self, task: asyncio.Future) -> None:
        self._publishing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("a ranker step from the learner was not published: %r", task.exception())

    def _close_pipe(self) -> None:
        self.alive = False
        try:
            self._queue.put_nowait(None)  # the sender thread ends
        except queue.Full:
            pass  # it ends on the closed pipe instead
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _stop(self) -> None:
        self._close_pipe()
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
            if self.process.is_alive():
                self.process.kill()

    def _unanswered(self) -> int:
        """Handed over and neither answered nor dropped (so far: in the pipe, or waiting there)."""
        answered = self._before["answered"] + self._current.get("answered", 0)
        dropped = self.dropped + self._before["dropped"] + self._current.get("dropped", 0)
        return self.handed - answered - dropped

    def proposer_status(self) -> dict[str, int]:
        """The ranker's lessons and kept or refused steps as proposed by the learner processes."""
        counts = {k: self._before[k] + self._current.get(k, 0) for k in ("accepted", "rejected", "examples")}
        return {**counts, "held_back": self._current.get("held_back", 0)}

    def status(self) -> dict[str, Any]:
        c = self._current
        return {
            "where": "process" if self.alive else "inline",
            "process_pid": self.process.pid if self.alive and self.process is not None else None,
            "processes_started": self.started,
            "last_exit_code": self.exit_code,
            "caught_up": bool(c.get("caught_up")),  # with both logs, at its start
            "items_indexed": c.get("items_indexed", 0),
            "catalogue_records_malformed": c.get("catalogue_records_malformed", 0),  # skipped, as in the worker
            "index": c.get("index"),  # its own copy: exact or IVF search, its last build
            "engagements_snapshot": c.get("engagements_snapshot"),  # the worker's, taken over at its start
            "catalogue_snapshot": c.get("catalogue_snapshot"),
            "handed": self.handed,  # = answered + dropped + unanswered
            "answered": self._before["answered"] + c.get("answered", 0),
            # answered without a lesson: their own engagement was already folded in the learner
            "late": self._before["late"] + c.get("late", 0),
            "dropped": self.dropped + self._before["dropped"] + c.get("dropped", 0),
            "unanswered": self._unanswered(),
        }
