"""News-sentiment alerting: the news and entity handlers.

    news ──► news-events agent: decode (bad -> dead-letters) -> micro-batch -> encoder (sentiment
             facet, same batching as user events) -> finance correction -> entities
         ──► news-mentions (one record per entity, keyed by entity, timestamped with the news time)
                 ┐  one agent, both co-partitioned by entity
    entity-watchers (user handler: follows + interest subscriptions) ┘
         ──► entity-events agent: windowed table (hopping) + baseline/rules (streams/state/alert_rules.py)
         ──► alerts (keyed by entity), user-alerts (keyed by user), the `alerts` table (GET /alerts)

Re-keying through news-mentions is what Faust's group_by does: every table write for an entity
happens in that entity's partition, so state survives recovery and rebalancing. The tables and
agents are made by ``streams/worker/app.py``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Sequence

from faust.types import EventT
from faust.windows import HoppingWindow

from encoders.entities import EntityTable
from encoders.finance import FinanceSentiment
from schemas import Alert, NewsEvent, dump_json, load_json
from schemas.topics import ALERTS, MENTIONS, USER_ALERTS, WATCHERS
from streams.faust_ext import DeliveredTable, event_context
from streams.state.alert_rules import EntityState, Mention, WindowStats, add_to_window, observe
from streams.state.updates import WatcherChange
from streams.worker.context import WorkerContext

log = logging.getLogger(__name__)

ALERTS_KEPT = 100  # per entity, for GET /alerts


@dataclass
class NewsTables:
    entity_state: DeliveredTable  # entity -> EntityState (baseline, cooldowns, recent news)
    windows: Any  # hopping windowed table: (entity, window) -> [count, sum, sum of squares]
    watchers: DeliveredTable  # entity -> {user_id: "watchlist" | "interest"}
    alerts: DeliveredTable  # entity -> recent alerts, oldest first

    def all(self) -> tuple[DeliveredTable, ...]:
        return (self.entity_state, self.windows.table, self.watchers, self.alerts)


def entity_record(topic: str, value: bytes | None) -> Mention | WatcherChange:
    """A record of the entity agent's topics (mentions, watcher changes); ValueError with the reason."""
    try:
        data = load_json(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    return WatcherChange.from_dict(data) if topic == WATCHERS.name else Mention.from_dict(data)


class NewsHandler:
    def __init__(self, ctx: WorkerContext, tables: NewsTables, entities: EntityTable) -> None:
        self.ctx = ctx
        self.cfg = cfg = ctx.settings.alerts
        self.tables = tables
        self.entities = entities
        self.sentiment = FinanceSentiment(cfg.finance_weight)
        self.window = HoppingWindow(cfg.window_s, cfg.step_s, expires=cfg.expires_s)

    # -- news -> mentions ------------------------------------------------------------------------
    async def handle_news(self, batch: Sequence[EventT]) -> None:
        ctx = self.ctx
        news: list[NewsEvent] = []
        now = time.time()
        for event in batch:
            record = await ctx.decode(event)
            if record is None:
                continue
            if record.ts - now > ctx.settings.max_future_s:
                await ctx.dead_letter(event, f"ts is {record.ts - now:.0f} s in the future (more than max_future_s)")
                continue
            news.append(record)
        ctx.stats.news_received += len(news)
        vectors = await ctx.encode([n.document for n in news])
        if not news:
            return
        scores = self.sentiment([n.document for n in news], vectors.facets["sentiment"])
        for record, sentiment in zip(news, scores):
            entities = self.entities.find(record.document, record.tickers)
            if not entities:
                ctx.stats.news_without_entity += 1
            for entity in entities:
                mention = Mention(record.event_id, entity, record.headline, sentiment.score, sentiment.label,
                                  sentiment.confidence, record.ts, record.source)
                await ctx.outbox.send(MENTIONS.name, entity.encode(), dump_json(mention.to_dict()), timestamp=record.ts)

    # -- mentions + watchers -> windows, rules, alerts -------------------------------------------
    async def handle_entities(self, batch: Sequence[EventT]) -> None:
        for event in batch:
            try:
                record = entity_record(event.message.topic, event.value)
            except ValueError as exc:  # internal topics, but never stop on their bytes
                await self.ctx.dead_letter(event, f"unreadable {event.message.topic} record: {exc}")
                continue
            if isinstance(record, WatcherChange):
                with event_context(event):
                    self._apply_watcher(record)
                continue
            with event_context(event):
                alerts = self._apply_mention(record)
            for alert in alerts:
                await self._publish(alert)
        for table in self.tables.all():
            await table.delivered()

    def _apply_watcher(self, change: WatcherChange) -> None:
        users = dict(self.tables.watchers.get(change.entity) or {})
        if change.op == "add":
            # A followed entity stays followed whatever the interest rule says later.
            if users.get(change.user_id) != "watchlist":
                users[change.user_id] = change.source
        elif users.get(change.user_id) == change.source:
            users.pop(change.user_id)
        self.tables.watchers[change.entity] = users

    def _apply_mention(self, mention: Mention) -> list[Alert]:
        t = self.tables
        stored = t.entity_state.get(mention.entity)
        state = EntityState.from_dict(stored) if stored else EntityState()
        if state.seen(mention.event_id):  # redelivered or re-sent news: counted once
            self.ctx.stats.mentions_redelivered_skipped += 1
            return []
        self.ctx.stats.mentions += 1
        windows = t.windows[mention.entity]
        windows.apply(add_to_window, mention.score)
        trailing = self.window.delta(mention.ts, self.cfg.window_s - self.cfg.step_s)
        stats = WindowStats.from_table(trailing, windows.delta(self.cfg.window_s - self.cfg.step_s))
        alerts = observe(state, mention, stats, self.cfg, time.time())
        t.entity_state[mention.entity] = state.to_dict()
        if alerts:
            kept = list(t.alerts.get(mention.entity) or []) + [a.to_dict() for a in alerts]
            t.alerts[mention.entity] = kept[-ALERTS_KEPT:]
        return alerts

    async def _publish(self, alert: Alert) -> None:
        body = alert.to_dict()
        self.ctx.stats.alerts_fired += 1
        self.ctx.metrics.alerts.labels(alert.rule).inc()
        log.info("ALERT %s %s: %s", alert.entity, alert.rule, alert.detail)
        await self.ctx.outbox.send(ALERTS.name, alert.entity.encode(), dump_json(body))
        for user_id, reason in (self.tables.watchers.get(alert.entity) or {}).items():
            await self.ctx.outbox.send(USER_ALERTS.name, user_id.encode(),
                                       dump_json({"user_id": user_id, "reason": reason, "alert": body}))
            self.ctx.stats.user_alerts_sent += 1

    # -- reads for the API -----------------------------------------------------------------------
    def recent_alerts(self, entity: str | None, since: float) -> list[dict[str, Any]]:
        table = self.tables.alerts
        entities = [entity] if entity else list(table.keys())
        out = [a for e in entities for a in (table.get(e) or []) if a["ts"] >= since]
        return sorted(out, key=lambda a: (a["ts"], a["alert_id"]))

    def entity_summary(self, entity: str) -> dict[str, Any] | None:
        t = self.tables
        stored = t.entity_state.get(entity)
        if not stored:
            return None
        state = EntityState.from_dict(stored)
        newest = max((n["ts"] for n in state.recent), default=0.0)
        trailing = self.window.delta(newest, self.cfg.window_s - self.cfg.step_s)
        value = t.windows.table.get((entity, trailing))
        return {
            "entity": entity,
            "name": self.entities.name_of(entity),
            "window": WindowStats.from_table(trailing, value).to_dict(),
            "baseline": {"mean": state.base_mean, "std": state.base_std, "count": state.base_count},
            "watchers": len(t.watchers.get(entity) or {}),
            "recent": state.recent[-10:],
        }
