"""Records of the entity agent's internal topics (news mentions, entity watchers): what the worker
writes reads back the same; anything else is refused with the fields it got wrong, and the agent
dead-letters it (streams/worker/news.py) instead of stopping on it at every start."""

from __future__ import annotations

import pytest

from schemas import dump_json
from schemas.topics import MENTIONS, WATCHERS
from streams.state.alert_rules import Mention
from streams.state.updates import WatcherChange
from streams.worker.news import entity_record
from streams.worker.users import watcher_record

MENTION = Mention("n1", "TSLA", "Tesla falls", -0.62, "negative", 0.91, 1_767_441_600.0, "wire")


def test_what_the_worker_writes_reads_back_the_same():
    assert entity_record(MENTIONS.name, dump_json(MENTION.to_dict())) == MENTION
    for change in (WatcherChange("u1", "TSLA", "add", "watchlist"), WatcherChange("u1", "TSLA", "remove", "interest")):
        key, value = watcher_record(change)
        assert key == b"TSLA" and entity_record(WATCHERS.name, value) == change
    # Integers are numbers too, and a mention without a source has none.
    no_source = {**MENTION.to_dict(), "ts": 1_767_441_600}
    del no_source["source"]
    assert entity_record(MENTIONS.name, dump_json(no_source)) == Mention(**{**MENTION.to_dict(), "source": ""})


@pytest.mark.parametrize("change, bad", [
    ({"score": "low"}, "score"),
    ({"score": None, "ts": "soon"}, "score, ts"),
    ({"confidence": True}, "confidence"),
    ({"entity": ""}, "entity"),
    ({"headline": 5}, "headline"),
    ({"event_id": None}, "event_id"),
])
def test_a_mention_with_fields_missing_or_invalid_is_refused_naming_them(change, bad):
    with pytest.raises(ValueError, match=f"invalid: {bad}$"):
        entity_record(MENTIONS.name, dump_json({**MENTION.to_dict(), **change}))


@pytest.mark.parametrize("data, bad", [
    ({"user_id": "u1", "entity": "TSLA", "op": "follow"}, "op"),
    ({"user_id": "", "entity": "TSLA", "op": "add"}, "user_id"),
    ({"user_id": "u1", "op": "add", "source": "rumour"}, "entity, source"),
])
def test_a_watcher_change_with_fields_missing_or_invalid_is_refused_naming_them(data, bad):
    with pytest.raises(ValueError, match=f"invalid: {bad}$"):
        entity_record(WATCHERS.name, dump_json(data))


@pytest.mark.parametrize("raw", [None, b"", b"{not json", b"[1, 2]", b'"TSLA"'])
def test_bytes_that_are_no_record_are_refused(raw):  # (JSON has no NaN or infinity: orjson refuses them)
    for topic in (MENTIONS.name, WATCHERS.name):
        with pytest.raises(ValueError, match="not JSON|JSON object"):
            entity_record(topic, raw)
