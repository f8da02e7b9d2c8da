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


class WorkerProcess:
    """A `interest-stream worker` subprocess with its API on a free loopback port."""

    def __init__(self, broker_url: str, workdir: Path, app_id: str, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{app_id}.log"
        env = {**os.environ, **(extra_env or {})}
        cmd = [sys.executable, "-m", "streams", "worker", "--broker", broker_url, "--app-id", app_id,
               "--web-port", str(self.port), "--data-dir", str(workdir / app_id)]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = get_json(f"{self.base}/healthz", timeout=2)
        except (OSError, ValueError):
            return None
        return body if status == 200 else None

    def wait_until(self, ready: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise WorkerFailed(f"worker exited with code {self.proc.returncode} while waiting for {what}; see {self.log_path}")
            health = self.health()
            if health is not None and ready(health):
                return health
            time.sleep(0.2)
        raise WorkerFailed(f"timed out after {timeout_s:.0f}s waiting for {what}; see {self.log_path}")

    def wait_processed(self, total: int, timeout_s: float = 300.0) -> dict[str, Any]:
        """Every user event ends as exactly one of: applied, dead-lettered, skipped (redelivered
        message or duplicate event id)."""
        return self.wait_until(
            lambda h: h["events_applied"] + h["user_events_dead_lettered"] + h["redelivered_skipped"]
            + h["duplicate_skipped"] + h["users_forgotten"] + h["watchlist_events"] >= total, timeout_s, f"{total} events processed"
        )

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
