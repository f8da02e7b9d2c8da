"""Validation of inbound records and the wire codecs."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    ClickEvent,
    InvalidEvent,
    ItemEvent,
    ReviewEvent,
    SearchEvent,
    decode_event,
    pack_vector,
    unpack_vector,
)

GOOD = {
    "search": {"event_id": "e1", "user_id": "u1", "query": "trail shoes", "ts": 1700000000},
    "click": {"event_id": "e2", "user_id": "u1", "item_id": "i1", "ts": 1700000000.5, "dwell_s": 12},
    "review": {"event_id": "e3", "user_id": "u1", "item_id": "i1", "text": "Great!", "rating": 5, "ts": "2026-01-01T00:00:00Z"},
    "item": {"event_id": "e4", "item_id": "i1", "title": "Shoe", "text": "A shoe.", "category": "running", "ts": 0},
}


def enc(d: dict) -> bytes:
    return orjson.dumps(d)


def test_valid_records_decode_to_their_types():
    assert isinstance(decode_event(enc(GOOD["search"]), "search"), SearchEvent)
    click = decode_event(enc(GOOD["click"]), "click")
    assert isinstance(click, ClickEvent) and click.dwell_s == 12.0 and click.ts == 1700000000.5
    review = decode_event(enc(GOOD["review"]), "review")
    assert isinstance(review, ReviewEvent) and review.ts == 1767225600.0 and review.rating == 5
    item = decode_event(enc(GOOD["item"]), "item")
    assert isinstance(item, ItemEvent) and item.op == "upsert" and item.document == "Shoe. A shoe."


def test_ids_stored_in_users_lists_refuse_control_characters_and_removals_do_not():
    # Event ids and clicked or upserted items enter users' stored id lists, joined by a control
    # character; a forget or an item delete may name what was stored before that rule.
    bad = "a\tb"
    for kind, field in (("click", "item_id"), ("review", "item_id"), ("item", "item_id"), ("search", "event_id")):
        with pytest.raises(InvalidEvent, match=f"'{field}' contains the control character"):
            decode_event(enc({**GOOD[kind], field: bad}), kind)
    assert decode_event(enc({"event_id": "f1", "user_id": bad, "ts": 5}), "forget").user_id == bad
    assert decode_event(enc({"event_id": "d", "item_id": bad, "op": "delete", "ts": 5}), "item").item_id == bad
    assert decode_event(enc({**GOOD["search"], "user_id": bad}), "search").user_id == bad


def test_item_delete_needs_no_title():
    item = decode_event(enc({"event_id": "d", "item_id": "i1", "op": "delete", "ts": 5}), "item")
    assert item.op == "delete"


@pytest.mark.parametrize(
    "kind, change, reason",
    [
        ("search", {"query": None}, "missing required field 'query'"),
        ("search", {"query": "   "}, "'query' must not be empty"),
        ("search", {"user_id": 3.5}, "'user_id' must be a string id"),
        ("click", {"item_id": "a\x1fb"}, "'item_id' contains the control character '\\x1f' at 1"),
        ("search", {"event_id": "e\n1"}, "'event_id' contains the control character '\\n' at 1"),
        ("search", {"ts": "yesterday"}, "not an ISO-8601 time"),
        ("search", {"ts": "2026-01-01T00:00:00"}, "needs a timezone"),
        ("search", {"ts": -1}, "epoch seconds >= 0"),
        ("search", {"ts": True}, "must be a number"),
        ("click", {"dwell_s": -3}, "'dwell_s' must be >= 0"),
        ("review", {"rating": 6}, "whole number from 1 to 5"),
        ("review", {"rating": 4.5}, "whole number from 1 to 5"),
        ("review", {"rating": "5"}, "'rating' must be a number"),
        ("item", {"op": "merge"}, "'op' must be one of upsert, delete"),
        ("item", {"title": ""}, "'title' must not be empty"),
    ],
)
def test_invalid_fields_give_a_reason(kind, change, reason):
    record = {**GOOD[kind], **change}
    if change.get("query", 0) is None:
        del record["query"]
    with pytest.raises(InvalidEvent) as err:
        decode_event(enc(record), kind)
    assert reason in err.value.reason


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty message value"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"query": NaN}', "not valid JSON"),
        (b'{"query": "\xff\xfe"}', "not valid JSON"),
        (orjson.dumps({**GOOD["click"], "type": "click"}), "a 'click' event on the topic for 'search' events"),
    ],
)
def test_malformed_bytes_give_a_reason(raw, reason):
    with pytest.raises(InvalidEvent) as err:
        decode_event(raw, "search")
    assert reason in err.value.reason


def test_unknown_event_type_is_refused():
    with pytest.raises(InvalidEvent, match="unknown event type"):
        decode_event(enc(GOOD["search"]), "purchase")


def test_long_text_is_cut_not_refused():
    review = decode_event(enc({**GOOD["review"], "text": "a" * 50_000}), "review")
    assert len(review.text) == 20_000


@given(st.binary(max_size=200), st.sampled_from(["search", "click", "review", "item"]))
def test_arbitrary_bytes_either_decode_or_raise_invalid_event(raw, kind):
    try:
        decode_event(raw, kind)
    except InvalidEvent as exc:
        assert exc.reason
    # Any other exception type fails the test.


json_values = (
    st.none() | st.booleans() | st.integers(-10, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["upsert", "delete", "2026-01-01T00:00:00Z"])
    | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=2)
)


# Generation of nested JSON is slow on a loaded 2-core machine; the health check is about speed only.
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["search", "click", "review", "item", "news", "watchlist"]), st.dictionaries(
    st.sampled_from(["event_id", "user_id", "item_id", "query", "text", "rating", "ts", "op", "title", "dwell_s",
                     "headline", "body", "source", "tickers", "entity"]),
    json_values,
))
def test_arbitrary_json_objects_either_decode_or_raise_invalid_event(kind, obj):
    try:
        record = decode_event(orjson.dumps(obj), kind)
    except InvalidEvent:
        return
    assert math.isfinite(record.ts) and record.event_id


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), max_size=50))
def test_vector_codec_is_exact(values):
    vec = np.array(values, dtype=np.float64)
    np.testing.assert_array_equal(unpack_vector(pack_vector(vec)), vec)
