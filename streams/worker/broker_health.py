"""Is the broker answering? A periodic metadata round trip, reported on /healthz.

The consumer and producer reconnect by themselves (aiokafka retries, Faust rejoins the group), so
the worker needs no restart when the broker comes back; what it needs is to *say* it is not
making progress meanwhile, which neither library exposes. One metadata request per probe, on a
short-lived client, so a half-open connection cannot make the probe lie.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaClient

log = logging.getLogger(__name__)


class BrokerHealth:
    def __init__(self, bootstrap: str, timeout_s: float = 3.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.reachable = True
        self.since = time.time()  # when `reachable` last changed
        self.error = ""
        self.outages = 0

    async def probe(self) -> None:
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout_s * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), self.timeout_s)
            self._set(True, "")
        except Exception as exc:  # noqa: BLE001 - any failure to get metadata means "not answering"
            self._set(False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        finally:
            await client.close()

    def _set(self, reachable: bool, error: str) -> None:
        if reachable != self.reachable:
            self.since = time.time()
            if reachable:
                log.warning("broker %s answers again", self.bootstrap)
            else:
                self.outages += 1
                log.warning("broker %s does not answer: %s; the worker keeps retrying", self.bootstrap, error)
        self.reachable, self.error = reachable, error

    def to_dict(self) -> dict[str, object]:
        return {"reachable": self.reachable, "since": self.since, "error": self.error, "outages": self.outages}
