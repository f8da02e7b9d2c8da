"""Dead-letter reasons as a few metric labels (streams/worker/metrics.py), from the reasons the
code really gives."""

from __future__ import annotations

import pytest

from schemas import ClickEvent, InvalidEvent, SearchEvent, decode_event
from streams.settings import Settings
from streams.state.updates import UserInput, apply_user_batch, check_event_time
from streams.worker.metrics import StageClock, WorkerMetrics, reason_class


def reason_of(raw: bytes, kind: str) -> str:
    with pytest.raises(InvalidEvent) as err:
        decode_event(raw, kind)
    return err.value.reason


def test_each_kind_of_refusal_gets_its_label():
    assert reason_class(reason_of(b"{not json", "search")) == "malformed"
    assert reason_class(reason_of(b"[1, 2]", "search")) == "malformed"
    # Whatever the stored bytes' own error says (streams/worker/users.py words it so).
    assert reason_class("the stored state of user 'u1' cannot be read (not a stored user state (9 bytes): "
                        "JSONDecodeError('not valid json'))") == "state_unreadable"
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


def test_a_micro_batch_s_stages_are_observed_and_a_slow_batch_is_logged_with_them(caplog):
    metrics, now = WorkerMetrics(), [10.0]
    clock = StageClock(metrics.stage_seconds, slow_s=1.0, clock=lambda: now[0])
    for stage, seconds in (("decode", 0.01), ("encode", 1.2), ("profiles", 0.03), ("encode", 0.1)):
        now[0] += seconds
        clock.lap(stage)
    with caplog.at_level("WARNING", logger="streams.worker.metrics"):
        total = clock.done(records=40)
    assert abs(total - 1.34) < 1e-9
    assert abs(clock.stages["encode"] - 1.3) < 1e-9  # a stage lapped twice adds up
    sample = metrics.registry.get_sample_value
    assert sample("interest_stream_batch_stage_seconds_count", {"stage": "encode"}) == 1
    assert abs(sample("interest_stream_batch_stage_seconds_sum", {"stage": "encode"}) - 1.3) < 1e-9
    assert abs(sample("interest_stream_batch_stage_seconds_sum", {"stage": "decode"}) - 0.01) < 1e-9
    [message] = [r.getMessage() for r in caplog.records]
    assert "1340 ms for 40 records" in message and "encode 1300" in message and "decode 10" in message


def test_a_batch_under_the_threshold_or_with_it_off_is_not_logged(caplog):
    for slow_s, seconds in ((1.0, 0.9), (0.0, 5.0)):
        times = iter([0.0, seconds, seconds])
        clock = StageClock(WorkerMetrics().stage_seconds, slow_s=slow_s, clock=lambda t=times: next(t))
        clock.lap("encode")
        with caplog.at_level("WARNING", logger="streams.worker.metrics"):
            clock.done(records=1)
    assert caplog.records == []
