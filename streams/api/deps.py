"""What the HTTP views need from the worker, and nothing more (built by streams/worker/app.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import faust

from streams.state.drift import DriftMonitor
from streams.worker.context import WorkerContext
from streams.worker.news import NewsHandler
from streams.worker.users import UserHandler


@dataclass(frozen=True)
class ApiDeps:
    ctx: WorkerContext
    users: UserHandler  # state_of(user_id)
    news: NewsHandler  # recent_alerts, entity_summary
    drift: DriftMonitor
    health: Callable[[], dict[str, Any]]
    route_topic: faust.TopicT  # a user topic: requests about a user go to its partition's owner
