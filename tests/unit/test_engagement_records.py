"""A micro-batch's engagements as records of the engagements topic (streams/worker/users.py)."""

from __future__ import annotations

from schemas import Engagement, RankerStep, dump_json
from schemas.records import MAX_ID_LEN
from streams.settings import Settings
from streams.state.ranker import FEATURES
from streams.worker.users import ENGAGEMENTS_PER_RECORD, engagement_records


def longest(n: int) -> dict:
    """An engagement with every id at the longest a record may carry."""
    def id_(kind: str) -> str:
        return f"{kind}{n}-".ljust(MAX_ID_LEN, "x")
    window = Settings().recommend.engagement.window
    return Engagement(id_("u"), id_("e"), id_("i"), 1.7e9 + n, 1.0, [id_(f"p{k}") for k in range(window)]).to_dict()


def test_a_batch_of_engagements_is_split_in_order_with_the_step_on_the_last_record():
    batch = [longest(n) for n in range(2 * ENGAGEMENTS_PER_RECORD + 88)]
    step = RankerStep("s1", list(FEATURES), [0.1] * len(FEATURES))
    records = engagement_records(batch, step)
    assert [len(r["engagements"]) for r in records] == [ENGAGEMENTS_PER_RECORD, ENGAGEMENTS_PER_RECORD, 88]
    assert [e for r in records for e in r["engagements"]] == batch
    assert [("ranker_step" in r) for r in records] == [False, False, True]
    assert records[-1]["ranker_step"] == step.to_dict()
    # Under Kafka's default message.max.bytes (1 MiB) even with every id at its longest.
    assert max(len(dump_json(r)) for r in records) < 1_000_000


def test_no_engagements_no_record_and_a_batch_under_the_limit_is_one_record():
    assert engagement_records([], None) == []
    one = engagement_records([longest(0)], None)
    assert one == [{"engagements": [longest(0)]}]
