"""News-sentiment alerting, wired into the worker's Faust app.

    news ──► news-events agent: decode (bad -> dead-letters) -> micro-batch -> encoder (sentiment
             facet, same batching as user events) -> finance correction -> entities
         ──► news-mentions (one record per entity, keyed by entity, timestamped with the news time)
                 ┐  one agent, both co-partitioned by entity
    entity-watchers (user agent: follows + interest subscriptions) ┘
         ──► entity-events agent: windowed table (hopping) + baseline/rules (streams/alert_rules.py)
         ──► alerts (keyed by entity), user-alerts (keyed by user), the `alerts` table (GET /alerts)
    alerts ──► webhook agent (optional): POST with retries and backoff; never holds up the above.

Re-keying through news-mentions is what Faust's group_by does: every table write for an entity
happens in that entity's partition, so state survives recovery and rebalancing.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Sequence

import faust
from faust.types import EventT
from faust.windows import HoppingWindow

from encoders.entities import EntityTable
from encoders.finance import FinanceSentiment
from schemas import NewsEvent, dump_json, load_json
from streams.alert_rules import EntityState, Mention, WindowStats, add_to_window, observe

if TYPE_CHECKING:
    from streams.app import InterestStreamApp

log = logging.getLogger(__name__)

NEWS_TOPIC = "news"
MENTIONS_TOPIC = "news-mentions"
WATCHERS_TOPIC = "entity-watchers"
ALERTS_TOPIC = "alerts"
USER_ALERTS_TOPIC = "user-alerts"
NEWS_TOPICS = (NEWS_TOPIC, MENTIONS_TOPIC, WATCHERS_TOPIC, ALERTS_TOPIC, USER_ALERTS_TOPIC)
NEWS_TABLES = ("entity-state", "entity-windows", "watchers", "alerts")
ALERTS_KEPT = 100  # per entity, for GET /alerts


class NewsPipeline:
    def __init__(self, isa: InterestStreamApp) -> None:
        self.isa = isa
        self.cfg = cfg = isa.settings.alerts
        self.entity_table = EntityTable.from_csv(cfg.tickers_file or None)
        self.sentiment = FinanceSentiment(cfg.finance_weight)
        app = isa.app
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self.news_topic = app.topic(NEWS_TOPIC, **raw)
        self.entity_inputs = app.topic(MENTIONS_TOPIC, WATCHERS_TOPIC, **raw)
        self.mentions_topic = app.topic(MENTIONS_TOPIC, **raw)
        self.watchers_topic = app.topic(WATCHERS_TOPIC, **raw)
        self.alerts_topic = app.topic(ALERTS_TOPIC, **raw)
        self.user_alerts_topic = app.topic(USER_ALERTS_TOPIC, **raw)
        schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
        self.entity_state = app.Table("entity-state", schema=schema)
        self.window = HoppingWindow(cfg.window_s, cfg.step_s, expires=cfg.expires_s)
        # Event time: mentions are produced with the news item's ts as their timestamp.
        self.windows = (
            app.Table("entity-windows", schema=schema, default=list)
            .hopping(cfg.window_s, cfg.step_s, expires=cfg.expires_s)
            .relative_to_stream()
        )
        self.watchers = app.Table("watchers", schema=schema)  # entity -> {user_id: "watchlist"|"interest"}
        self.alerts = app.Table("alerts", schema=schema)  # entity -> recent alerts, oldest first
        for name in ("news_received", "news_without_entity", "mentions", "mentions_redelivered_skipped",
                     "alerts_fired", "user_alerts_sent", "webhook_delivered", "webhook_failed"):
            isa.stats[name] = 0
        self._register_agents()

    def _register_agents(self) -> None:
        isa, wait_s = self.isa, self.isa.settings.batch_wait_ms / 1000.0

        @isa.app.agent(self.news_topic, name="news-events")
        async def news_events(stream: faust.StreamT) -> None:
            async for batch in stream.take_events(isa.settings.batch_max, within=wait_s):
                await isa.in_order(batch, self.handle_news_batch)

        @isa.app.agent(self.entity_inputs, name="entity-events")
        async def entity_events(stream: faust.StreamT) -> None:
            async for batch in stream.take_events(isa.settings.batch_max, within=wait_s):
                await isa.in_order(batch, self.handle_entity_batch)

        if self.cfg.webhook_url:
            from streams.webhook import Webhook

            webhook = Webhook(self.cfg.webhook_url, self.cfg.webhook_attempts)

            @isa.app.agent(self.alerts_topic, name="alert-webhook")
            async def alert_webhook(stream: faust.StreamT) -> None:
                # One alert at a time, acknowledged only once delivered or given up on: a webhook
                # that is down holds up this agent alone, never the news or user agents.
                async for event in stream.events():
                    await isa.in_order([event], post)

            async def post(events: Sequence[EventT]) -> None:
                for event in events:
                    try:
                        await webhook.post(event.value)
                        isa.stats["webhook_delivered"] += 1
                    except Exception as exc:  # noqa: BLE001 - every failure ends as a dead letter
                        isa.stats["webhook_failed"] += 1
                        await isa.dead_letter(event, f"webhook {self.cfg.webhook_url} failed after "
                                                     f"{self.cfg.webhook_attempts} tries: {exc}")

    # -- news -> mentions ------------------------------------------------------------------------
    async def handle_news_batch(self, batch: Sequence[EventT]) -> None:
        isa = self.isa
        news: list[NewsEvent] = []
        now = time.time()
        for event in batch:
            record = await isa._decode_or_dead_letter(event, "news")
            if record is None:
                continue
            if record.ts - now > isa.settings.max_future_s:
                await isa.dead_letter(event, f"ts is {record.ts - now:.0f} s in the future (more than max_future_s)")
                continue
            news.append(record)
        isa.stats["news_received"] += len(news)
        vectors = await isa.encode([n.document for n in news])
        if not news:
            return
        scores = self.sentiment([n.document for n in news], vectors.facets["sentiment"])
        for record, sentiment in zip(news, scores):
            entities = self.entity_table.find(record.document, record.tickers)
            if not entities:
                isa.stats["news_without_entity"] += 1
            for entity in entities:
                mention = Mention(record.event_id, entity, record.headline, sentiment.score, sentiment.label,
                                  sentiment.confidence, record.ts, record.source)
                await isa.send(self.mentions_topic, entity.encode(), dump_json(mention.to_dict()),
                               timestamp=record.ts)

    # -- mentions + watchers -> windows, rules, alerts -------------------------------------------
    async def handle_entity_batch(self, batch: Sequence[EventT]) -> None:
        from streams.app import event_context

        for event in batch:
            try:
                data = load_json(event.value)
            except Exception as exc:  # noqa: BLE001 - internal topic, but never crash on bytes
                await self.isa.dead_letter(event, f"unreadable {event.message.topic} record: {exc}")
                continue
            with event_context(event):
                if event.message.topic == WATCHERS_TOPIC:
                    self._apply_watcher(data)
                else:
                    alerts = self._apply_mention(Mention.from_dict(data))
            if event.message.topic != WATCHERS_TOPIC:
                for alert in alerts:
                    await self._publish(event, alert)
        for table in (self.entity_state, self.windows.table, self.watchers, self.alerts):
            await table.delivered()

    def _apply_watcher(self, data: dict[str, Any]) -> None:
        entity, user_id = data["entity"], data["user_id"]
        users = dict(self.watchers.get(entity) or {})
        if data["op"] == "add":
            # A followed entity stays followed whatever the interest rule says later.
            if users.get(user_id) != "watchlist":
                users[user_id] = data.get("source", "watchlist")
        elif users.get(user_id) == data.get("source", "watchlist"):
            users.pop(user_id)
        self.watchers[entity] = users

    def _apply_mention(self, mention: Mention) -> list:
        stored = self.entity_state.get(mention.entity)
        state = EntityState.from_dict(stored) if stored else EntityState()
        if state.seen(mention.event_id):  # redelivered or re-sent news: counted once
            self.isa.stats["mentions_redelivered_skipped"] += 1
            return []
        self.isa.stats["mentions"] += 1
        windows = self.windows[mention.entity]
        windows.apply(add_to_window, mention.score)
        trailing = self.window.delta(mention.ts, self.cfg.window_s - self.cfg.step_s)
        stats = WindowStats.from_table(trailing, windows.delta(self.cfg.window_s - self.cfg.step_s))
        alerts = observe(state, mention, stats, self.cfg, time.time())
        self.entity_state[mention.entity] = state.to_dict()
        if alerts:
            kept = list(self.alerts.get(mention.entity) or []) + [a.to_dict() for a in alerts]
            self.alerts[mention.entity] = kept[-ALERTS_KEPT:]
        return alerts

    async def _publish(self, event: EventT, alert) -> None:
        body = alert.to_dict()
        self.isa.stats["alerts_fired"] += 1
        log.info("ALERT %s %s: %s", alert.entity, alert.rule, alert.detail)
        await self.isa.send(self.alerts_topic, alert.entity.encode(), dump_json(body))
        for user_id, reason in (self.watchers.get(alert.entity) or {}).items():
            await self.isa.send(self.user_alerts_topic, user_id.encode(),
                                dump_json({"user_id": user_id, "reason": reason, "alert": body}))
            self.isa.stats["user_alerts_sent"] += 1

    # -- reads for the API -----------------------------------------------------------------------
    def recent_alerts(self, entity: str | None, since: float) -> list[dict[str, Any]]:
        entities = [entity] if entity else list(self.alerts.keys())
        out = [a for e in entities for a in (self.alerts.get(e) or []) if a["ts"] >= since]
        return sorted(out, key=lambda a: (a["ts"], a["alert_id"]))

    def entity_summary(self, entity: str) -> dict[str, Any] | None:
        stored = self.entity_state.get(entity)
        if not stored:
            return None
        state = EntityState.from_dict(stored)
        newest = max((n["ts"] for n in state.recent), default=0.0)
        trailing = self.window.delta(newest, self.cfg.window_s - self.cfg.step_s)
        value = self.windows.table.get((entity, trailing))
        return {
            "entity": entity,
            "name": self.entity_table.name_of(entity),
            "window": WindowStats.from_table(trailing, value).to_dict(),
            "baseline": {"mean": state.base_mean, "std": state.base_std, "count": state.base_count},
            "watchers": len(self.watchers.get(entity) or {}),
            "recent": state.recent[-10:],
        }


def watcher_record(user_id: str, entity: str, op: str, source: str) -> tuple[bytes, bytes]:
    """(key, value) for the entity-watchers topic."""
    return entity.encode(), dump_json({"user_id": user_id, "entity": entity, "op": op, "source": source})


__all__ = ["NEWS_TABLES", "NEWS_TOPICS", "NewsPipeline", "watcher_record"]
