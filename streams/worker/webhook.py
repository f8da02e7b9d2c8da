"""Alert webhook: POST each alert as JSON, retrying with exponential backoff (tenacity)."""

from __future__ import annotations

from typing import Sequence

import aiohttp
import orjson
from faust.types import EventT
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from streams.errors import WebhookError
from streams.worker.context import WorkerContext


class Webhook:
    def __init__(self, url: str, attempts: int, timeout_s: float = 5.0, max_wait_s: float = 10.0) -> None:
        self.url = url
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_wait_s = max_wait_s
        self._session: aiohttp.ClientSession | None = None

    async def post(self, body: bytes) -> None:
        """Deliver one alert; raises the last error once ``attempts`` tries have failed. The body's
        alert_id is repeated as the Idempotency-Key header so receivers can drop a re-delivery
        (after a worker crash an alert can be posted again)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        key = _alert_id(body)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.2, max=self.max_wait_s),
            retry=retry_if_exception_type((aiohttp.ClientError, TimeoutError, WebhookError)),
            reraise=True,
        ):
            with attempt:
                async with self._session.post(
                    self.url, data=body, headers={"Content-Type": "application/json", "Idempotency-Key": key}
                ) as resp:
                    if resp.status >= 300:
                        raise WebhookError(f"HTTP {resp.status} from {self.url}")


class AlertForwarder:
    """The webhook agent's handler: one alert at a time, acknowledged only once delivered or given
    up on (then dead-lettered), so a webhook that is down holds up this agent alone."""

    def __init__(self, ctx: WorkerContext, webhook: Webhook) -> None:
        self.ctx = ctx
        self.webhook = webhook

    async def handle(self, events: Sequence[EventT]) -> None:
        for event in events:
            try:
                await self.webhook.post(event.value)
                self.ctx.stats.webhook_delivered += 1
            except Exception as exc:  # noqa: BLE001 - every failure ends as a dead letter
                self.ctx.stats.webhook_failed += 1
                await self.ctx.dead_letter(
                    event, f"webhook {self.webhook.url} failed after {self.webhook.attempts} tries: {exc}")


def _alert_id(body: bytes) -> str:
    try:
        return str(orjson.loads(body).get("alert_id", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return ""
