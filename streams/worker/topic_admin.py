"""Creating and checking the app's topics with the aiokafka admin client.

User events are co-partitioned by user_id and each table's changelog must have as many partitions
as its source topic, so every topic the app reads must share one partition count.
"""

from __future__ import annotations

import logging
from typing import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, stop_never, wait_exponential

from streams.errors import TopicLayoutError

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int, *, check: Iterable[str] = (), compacted: Iterable[str] = (),
    wait_s: float = 60.0,
) -> int:
    """Create missing topics with ``partitions`` partitions and return the count they all share.
    Those of ``names`` also in ``compacted`` are created with ``cleanup.policy=compact`` (a log
    that keeps each key's last record, like a table's changelog).

    Topics in ``check`` (e.g. table changelogs, which Faust creates itself with compaction) are
    only compared when they exist, never created here.

    Retries with backoff while the broker is unreachable (up to ``wait_s``; 0 = until it answers,
    logging each failed try). Existing topics win
    over the setting: their count is returned (and logged) if it differs; topics that disagree
    among themselves raise :class:`TopicLayoutError`.
    """
    names = list(dict.fromkeys(names))
    compact = set(compacted)
    checked = [n for n in dict.fromkeys(check) if n not in names]
    async for attempt in AsyncRetrying(
        stop=stop_after_delay(wait_s) if wait_s > 0 else stop_never,
        wait=wait_exponential(multiplier=0.2, max=5),
        retry=retry_if_exception_type((KafkaConnectionError, OSError)),
        before_sleep=lambda state: log.warning("broker %s unreachable (%s); retrying", bootstrap, state.outcome.exception()),
        reraise=True,
    ):
        with attempt:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            await admin.start()
    try:
        counts = await _partition_counts(admin, names + checked)
        missing = [n for n in names if n not in counts]
        if missing:
            existing = set(counts.values())
            # New topics follow the existing ones, so the layout stays uniform.
            want = existing.pop() if len(existing) == 1 else partitions
            try:
                await admin.create_topics([
                    NewTopic(n, num_partitions=want, replication_factor=1,
                             topic_configs={"cleanup.policy": "compact"} if n in compact else None)
                    for n in missing])
            except TopicAlreadyExistsError:
                pass  # another worker or producer created it first
            counts = await _partition_counts(admin, names + checked)
    finally:
        await admin.close()
    distinct = sorted(set(counts.values()))
    if len(distinct) > 1:
        detail = ", ".join(f"{n}={c}" for n, c in sorted(counts.items()))
        raise TopicLayoutError(
            f"topics must all have the same number of partitions (events are co-partitioned by key "
            f"and each table's changelog mirrors its source), but found {detail}. Recreate or "
            f"repartition the odd ones, or use a new app id whose changelogs do not exist yet."
        )
    found = distinct[0] if distinct else partitions
    if found != partitions:
        log.warning("topics exist with %d partitions; using that instead of the setting (%d)", found, partitions)
    return found


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    existing = set(await admin.list_topics())
    wanted = [n for n in names if n in existing]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    counts = {}
    for topic in described:
        if topic.get("error_code", 0) not in (0, None):
            raise KafkaError(f"describing topic {topic.get('topic')!r} failed with error code {topic['error_code']}")
        counts[topic["topic"]] = len(topic["partitions"])
    return counts
