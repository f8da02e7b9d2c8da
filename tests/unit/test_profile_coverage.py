"""How the bench decides which sent events a profile record covers (streams.tools.bench.ProfileCoverage):
each event is timed to the first record whose state includes it, whatever order the worker applied
events of different kinds in; and how it reads the micro-batches' stages from /metrics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.tools.bench import ProfileCoverage, stage_ms_per_batch


def record(user: str, counts: dict[str, int], last: str) -> dict:
    return {"user_id": user, "event_counts": counts, "last_event_id": last}


def test_a_search_applied_with_an_earlier_review_is_covered_by_that_record():
    # Sent: review r1, then search s1, from two topics. One micro-batch applies both, r1 last, so
    # its record names r1; it covers both (matching on last_event_id covered r1 only and timed s1
    # to the user's next record).
    cov = ProfileCoverage({"u1": {"search": 4}})
    cov.sent("u1", "review", "r1")
    cov.sent("u1", "search", "s1")
    assert sorted(cov.newly_covered(record("u1", {"search": 5, "review": 1}, last="r1"))) == ["r1", "s1"]
    assert cov.newly_covered(record("u1", {"search": 5, "review": 1}, last="r1")) == []  # once only


def test_a_record_covers_only_the_events_its_counts_have_grown_by():
    cov = ProfileCoverage({})
    for event_id in ("s1", "s2", "s3"):
        cov.sent("u1", "search", event_id)
    cov.sent("u1", "review", "r1")
    cov.sent("u2", "search", "x1")
    assert cov.newly_covered(record("u1", {"search": 2}, last="s2")) == ["s1", "s2"]
    assert cov.newly_covered(record("u1", {"search": 2, "review": 1}, last="r1")) == ["r1"]
    assert cov.newly_covered(record("u2", {"search": 1}, last="x1")) == ["x1"]
    assert cov.newly_covered(record("u1", {"search": 3, "review": 1}, last="s3")) == ["s3"]


def test_counts_from_before_the_first_send_cover_nothing():
    cov = ProfileCoverage({"u1": {"search": 7, "click": 30}})
    cov.sent("u1", "search", "s1")
    assert cov.newly_covered(record("u1", {"search": 7, "click": 31}, last="c9")) == []
    assert cov.newly_covered(record("u1", {"search": 8, "click": 31}, last="s1")) == ["s1"]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), sends=st.lists(st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["search", "review"])),
                                      min_size=1, max_size=40))
def test_every_event_is_covered_once_by_the_first_record_that_includes_it(data, sends):
    # The worker: each (user, kind) in send order, kinds of one user interleaved in any order, in
    # micro-batches of any size; after each batch one record per user it touched, with the counts.
    before = {"u1": {"search": 3}, "u2": {}, "u3": {"review": 1}}
    ids = [f"e{i}" for i in range(len(sends))]
    queues: dict[tuple[str, str], list[str]] = {}
    for event_id, key in zip(ids, sends):
        queues.setdefault(key, []).append(event_id)
    applied_order = []
    heads = {key: 0 for key in queues}
    while any(heads[k] < len(q) for k, q in queues.items()):
        key = data.draw(st.sampled_from(sorted(k for k, q in queues.items() if heads[k] < len(q))))
        applied_order.append((key, queues[key][heads[key]]))
        heads[key] += 1
    cuts = sorted(data.draw(st.sets(st.integers(1, len(applied_order)), max_size=10)) | {len(applied_order)})
    cov = ProfileCoverage(before)
    for event_id, (user, kind) in zip(ids, sends):
        cov.sent(user, kind, event_id)
    counts = {u: dict(c) for u, c in before.items()}
    covered_at: dict[str, int] = {}
    applied_in: dict[str, int] = {}
    start = 0
    for batch_no, end in enumerate(cuts):
        touched: dict[str, str] = {}
        for (user, kind), event_id in applied_order[start:end]:
            counts[user][kind] = counts[user].get(kind, 0) + 1
            applied_in[event_id] = batch_no
            touched[user] = event_id
        for user, last in touched.items():
            for event_id in cov.newly_covered(record(user, dict(counts[user]), last)):
                assert event_id not in covered_at
                covered_at[event_id] = batch_no
        start = end
    assert covered_at == applied_in


def test_a_count_grown_past_what_was_sent_is_a_wrong_baseline():
    cov = ProfileCoverage({"u1": {"search": 2}})
    cov.sent("u1", "search", "s1")
    with pytest.raises(ValueError, match="wrong baseline"):
        cov.newly_covered(record("u1", {"search": 4}, last="s1"))


def test_stages_per_micro_batch_from_two_reads_of_the_metrics_page():
    def page(decode_count: float, encode_sum: float, learn_sum: float) -> str:
        return "\n".join([
            "# TYPE interest_stream_batch_stage_seconds histogram",
            f'interest_stream_batch_stage_seconds_count{{stage="decode"}} {decode_count}',
            'interest_stream_batch_stage_seconds_sum{stage="decode"} 0.5',
            f'interest_stream_batch_stage_seconds_sum{{stage="encode"}} {encode_sum}',
            f'interest_stream_batch_stage_seconds_sum{{stage="learn_sentiment"}} {learn_sum}',
            'interest_stream_encode_seconds_sum 99.0'])
    stages = stage_ms_per_batch(page(10, 2.0, 0.0), page(30, 3.0, 0.2))
    assert stages == {"decode": 0.0, "encode": 50.0, "learn_sentiment": 10.0}  # ms per batch, over 20 batches
    assert stage_ms_per_batch(page(10, 2.0, 0.0), page(10, 2.0, 0.0)) == {}  # no batch in between
