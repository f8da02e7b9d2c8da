"""Dead-letter reasons as a few metric labels (streams/worker/metrics.py), from the reasons the
code really gives."""

from __future__ import annotations

import pytest

from schemas import ClickEvent, InvalidEvent, SearchEvent, decode_event
from streams.settings import Settings
from streams.state.updates import UserInput, apply_user_batch, check_event_time
from streams.worker.metrics import reason_class


def reason_of(raw: bytes, kind: str) -> str:
    with pytest.raises(InvalidEvent) as err:
        decode_event(raw, kind)
    return err.value.reason


def test_each_kind_of_refusal_gets_its_label():
    assert reason_class(reason_of(b"{not json", "search")) == "malformed"
    assert reason_class(reason_of(b"[1, 2]", "search")) == "malformed"
    assert reason_class(reason_of(b"", "search")) == "malformed"
    assert reason_class(reason_of(b'{"type": "click", "event_id": "e"}', "search")) == "wrong_topic"
    assert reason_class(reason_of(b'{"event_id": "e", "user_id": "u", "ts": 1}', "search")) == "invalid_field"
    assert reason_class(reason_of(b'{"event_id": "e", "user_id": "u", "item_id": "i", "text": "x", "rating": 9, '
                                  b'"ts": 1}', "review")) == "invalid_field"
    with pytest.raises(InvalidEvent) as err:
        check_event_time(SearchEvent("e", "u", "q", 2e9), Settings(), now=1e9)
    assert reason_class(err.value.reason) == "future_ts"
    result = apply_user_batch([UserInput(ClickEvent("e", "u", "gone", 1.0), ("clicks", 0, 0), None)], {}, Settings(),
                              {"a": 1})
    assert [reason_class(r) for _, r in result.rejected] == ["unknown_item"]
