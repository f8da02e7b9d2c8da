"""The one table of topics and tables: every topic and table name is spelled here and nowhere else.

Inbound topics carry one event type each and are keyed by one field of the record: the worker's
state for that key lives in the partition the key hashes to, so topics with the same key field
are co-partitioned (one partition count for all, checked at start).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["input", "internal", "output"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    role: Role  # input: producers write it; internal: the worker writes and reads it; output: only written
    kind: str | None = None  # the event type its records hold (inbound topics only)
    key_field: str | None = None  # the record field its records are keyed by
    key_default: str | None = None  # the key when that field is empty


SEARCHES = TopicSpec("searches", "input", "search", "user_id")
CLICKS = TopicSpec("clicks", "input", "click", "user_id")
REVIEWS = TopicSpec("reviews", "input", "review", "user_id")
FORGET = TopicSpec("forget", "input", "forget", "user_id")
WATCHLISTS = TopicSpec("watchlists", "input", "watchlist", "user_id")
ITEMS = TopicSpec("items", "input", "item", "item_id")
# Keyed by source, so one feed's news stay in order; news without a source share one key.
NEWS = TopicSpec("news", "input", "news", "source", key_default="news")
# User records that arrived in another partition than the one their user id hashes to (another
# client's partitioner, another key) are forwarded here, to that partition, before they touch state.
USERS_REPARTITION = TopicSpec("users-repartition", "internal", key_field="user_id")
MENTIONS = TopicSpec("news-mentions", "internal", key_field="entity")  # one record per entity a news item names
WATCHERS = TopicSpec("entity-watchers", "internal", key_field="entity")  # follows and interest subscriptions
# The applied clicks and reviews of a micro-batch, each with the user's items before it, as a few
# records (unkeyed): every worker folds the whole topic into its item-side behaviour (popularity,
# co-engagement; streams/worker/engagement.py).
ENGAGEMENTS = TopicSpec("engagements", "internal")
PROFILES = TopicSpec("profiles", "output", key_field="user_id")
DEAD_LETTERS = TopicSpec("dead-letters", "output")  # keyed as the refused record was
ALERTS = TopicSpec("alerts", "output", key_field="entity")  # also read by the optional webhook agent
USER_ALERTS = TopicSpec("user-alerts", "output", key_field="user_id")

TOPICS: tuple[TopicSpec, ...] = (SEARCHES, CLICKS, REVIEWS, FORGET, WATCHLISTS, ITEMS, NEWS, USERS_REPARTITION, MENTIONS,
                                 WATCHERS, ENGAGEMENTS, PROFILES, DEAD_LETTERS, ALERTS, USER_ALERTS)
# Read by one agent, co-partitioned by user id, so a forget or a watchlist change is ordered with
# the user's own events.
USER_TOPICS: tuple[TopicSpec, ...] = (SEARCHES, CLICKS, REVIEWS, FORGET, WATCHLISTS)
TOPIC_OF_KIND: dict[str, TopicSpec] = {t.kind: t for t in TOPICS if t.kind}
KIND_OF_TOPIC: dict[str, str] = {t.name: t.kind for t in TOPICS if t.kind}

# Faust tables (changelogged as "<app id>-<table>-changelog").
USERS_TABLE = "users"  # user id -> InterestState
HEADS_TABLE = "heads"  # learned heads and discovered topics, newest version wins
ENTITY_STATE_TABLE = "entity-state"  # entity -> baseline, cooldowns, recent news
ENTITY_WINDOWS_TABLE = "entity-windows"  # (entity, window) -> count, sum, sum of squares
WATCHERS_TABLE = "watchers"  # entity -> {user id: "watchlist" | "interest"}
ALERTS_TABLE = "alerts"  # entity -> recent alerts
TABLES: tuple[str, ...] = (USERS_TABLE, HEADS_TABLE, ENTITY_STATE_TABLE, ENTITY_WINDOWS_TABLE, WATCHERS_TABLE,
                           ALERTS_TABLE)


# Headers of a forwarded record: where it was first read (its place in the input log, which the
# user's state remembers to drop a record forwarded twice).
SOURCE_TOPIC_HEADER, SOURCE_PARTITION_HEADER, SOURCE_OFFSET_HEADER = "src-topic", "src-partition", "src-offset"


def changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{table}-changelog"


def item_vectors_topic(app_id: str) -> str:
    """The catalogue's stored facet vectors: one compacted record per item id (JSON key), its last
    version, or a tombstone once deleted. Written by the item agent, read from the beginning by every
    worker to build its FAISS index. Not a Faust table: no worker reads it back by key, so restoring
    it into a local store at start only cost time and disk (about 4.5 minutes for a new worker at
    10^6 items). Named as that table's changelog was, so a catalogue written before is read as it is."""
    return f"{app_id}-items-changelog"


def route(kind: str, record: dict) -> tuple[str, str | None]:
    """(topic, key) for a JSON record of event type ``kind``; key None when it has no key field.
    Raises KeyError for an unknown kind."""
    spec = TOPIC_OF_KIND[kind]
    key = record.get(spec.key_field) if spec.key_field else None
    return spec.name, str(key) if key not in (None, "") else spec.key_default
