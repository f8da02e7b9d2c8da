"""Running a worker as a subprocess and talking to its API: used by the demo, tests and bench."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import orjson

from streams.errors import WorkerFailed
from streams.tools.broker import free_port


def get_json(url: str, timeout: float = 5.0, method: str = "GET", headers: dict[str, str] | None = None,
             data: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, orjson.loads(body or b"null")
        except orjson.JSONDecodeError:  # e.g. a plain-text 503 from a proxy or the router
            return err.code, {"error": body.decode("utf-8", "replace")}


class Patience:
    """A wait that gives up once what it watches has not moved for ``timeout_s``, or after
    ``limit`` times that in all: whatever is still moving on a slow machine is waited for, a stuck
    one is not (CI machines differ: one ran Python three times slower than another, and fixed
    deadlines that pass elsewhere failed there)."""

    def __init__(self, timeout_s: float, limit: float = 4.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s, self.limit, self.clock = timeout_s, limit, clock
        self.start = self.last_move = clock()
        self._last: Any = object()

    def waiting(self, seen: Any) -> bool:
        """Note what is seen now; False once it is time to give up."""
        now = self.clock()
        if seen != self._last:
            self._last, self.last_move = seen, now
        return now < min(self.last_move + self.timeout_s, self.start + self.limit * self.timeout_s)

    def __str__(self) -> str:
        now = self.clock()
        return f"after {now - self.start:.0f}s, the last {now - self.last_move:.0f}s without progress"


def progress_of(health: dict[str, Any] | None) -> tuple[Any, ...]:
    """What moves while a worker works: its status and every counter on /healthz (items indexed,
    records read, events applied, batches, ...), not its clocks."""
    if health is None:
        return ()
    return (health.get("status"), *sorted((k, v) for k, v in health.items() if type(v) is int))


def processed(health: dict[str, Any]) -> int:
    """User events processed so far: each ends as exactly one of applied, dead-lettered, skipped
    (a redelivered message or a duplicate event id), a forget, or a watchlist change."""
    return (health["events_applied"] + health["user_events_dead_lettered"] + health["redelivered_skipped"]
            + health["duplicate_skipped"] + health["users_forgotten"] + health["watchlist_events"])


class WorkerProcess:
    """A `interest-stream worker` subprocess with its API on a free loopback port."""

    def __init__(self, broker_url: str, workdir: Path, app_id: str, extra_env: dict[str, str] | None = None,
                 own_group: bool = False) -> None:
        """``own_group``: in a process group of its own with its children, as a command started from a
        shell is, so ``interrupt`` reaches them all as a Ctrl-C would."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{app_id}.log"
        env = {**os.environ, **(extra_env or {})}
        cmd = [sys.executable, "-m", "streams", "worker", "--broker", broker_url, "--app-id", app_id,
               "--web-port", str(self.port), "--data-dir", str(workdir / app_id)]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=own_group)

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = get_json(f"{self.base}/healthz", timeout=2)
        except (OSError, ValueError):
            return None
        return body if status == 200 else None

    def wait_until(self, ready: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> dict[str, Any]:
        """The first health for which ``ready`` holds; given up on once the worker has shown no
        progress for ``timeout_s`` (``Patience``, ``progress_of``)."""
        patience = Patience(timeout_s)
        while True:
            if self.proc.poll() is not None:
                raise WorkerFailed(f"worker exited with code {self.proc.returncode} while waiting for {what}; see {self.log_path}")
            health = self.health()
            if health is not None and ready(health):
                return health
            if not patience.waiting(progress_of(health)):
                raise WorkerFailed(f"gave up waiting for {what} {patience}; see {self.log_path}")
            time.sleep(0.2)

    def wait_processed(self, count: int, timeout_s: float = 300.0, since: dict[str, Any] | None = None) -> dict[str, Any]:
        """Until ``count`` user events are processed (``processed``), counted from ``since`` (an
        earlier health) when given: a restarted worker also skips redeliveries, so a target summed
        from some of the outcomes alone could be met before the events sent meanwhile are seen."""
        total = count + (processed(since) if since is not None else 0)
        return self.wait_until(lambda h: processed(h) >= total, timeout_s, f"{total} events processed")

    def wait_inputs_applied(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Until every input record the worker's last fetches saw is applied (``input_lag`` on
        /healthz): after a restart, records read again since the last commit included."""
        return self.wait_until(lambda h: h["input_lag"]["records"] == 0, timeout_s, "the inputs applied")

    def wait_learned(self, timeout_s: float = 120.0) -> dict[str, Any]:
        """Until every ranking lesson handed to the learner process is answered (or dropped) and
        every ranker step this worker's lessons kept is applied from the engagements log: the
        learner answers after the events are applied (streams/worker/learner.py)."""
        def learned(h: dict[str, Any]) -> bool:
            rec = h.get("recommender")
            if not rec:
                return True
            lessons = rec.get("lessons", {})
            return lessons.get("unanswered", 0) == 0 and rec["ranker_steps_applied"] >= rec["ranker"]["accepted"]

        return self.wait_until(learned, timeout_s, "the ranking lessons answered and their steps applied")

    def wait_settled(self, counter: str, quiet_s: float = 3.0, timeout_s: float = 120.0) -> dict[str, Any]:
        """Wait until ``counter`` on /healthz has not moved for ``quiet_s`` (for derived work, like
        news mentions, whose total is not known in advance)."""
        deadline, last, since = time.monotonic() + timeout_s, None, time.monotonic()
        while time.monotonic() < deadline:
            health = self.health() or {}
            if health.get(counter) != last:
                last, since = health.get(counter), time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return health
            time.sleep(0.3)
        raise WorkerFailed(f"{counter} kept changing for {timeout_s:.0f}s; see {self.log_path}")

    def interrupt(self) -> None:
        """SIGINT to the worker's process group (started with ``own_group``): a Ctrl-C."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def kill(self) -> int:
        """SIGKILL: no shutdown, no final offset commit, no leaving the consumer group."""
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
