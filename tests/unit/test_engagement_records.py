"""A micro-batch's engagements as records of the engagements topic (streams/worker/users.py)."""

from __future__ import annotations

import pytest

from schemas import Engagement, RankerStep, load_json
from schemas.records import MAX_ID_LEN
from streams.settings import Settings
from streams.state.ranker import FEATURES
from streams.worker.users import ENGAGEMENT_RECORD_BYTES, ENGAGEMENTS_PER_RECORD, engagement_records

STEP = RankerStep("s1", list(FEATURES), [0.1] * len(FEATURES))


def longest(n: int, pad: str = "x") -> dict:
    """An engagement with every id at the longest a record may carry, padded with ``pad``."""
    def id_(kind: str) -> str:
        return f"{kind}{n}-".ljust(MAX_ID_LEN, pad)
    window = Settings().recommend.engagement.window
    return Engagement(id_("u"), id_("e"), id_("i"), 1.7e9 + n, 1.0, [id_(f"p{k}") for k in range(window)]).to_dict()


def test_a_batch_of_engagements_is_split_in_order_with_the_step_on_the_last_record():
    batch = [longest(n) for n in range(2 * ENGAGEMENTS_PER_RECORD + 88)]
    records = [load_json(r) for r in engagement_records(batch, STEP)]
    assert [len(r["engagements"]) for r in records] == [ENGAGEMENTS_PER_RECORD, ENGAGEMENTS_PER_RECORD, 88]
    assert [e for r in records for e in r["engagements"]] == batch
    assert [("ranker_step" in r) for r in records] == [False, False, True]
    assert records[-1]["ranker_step"] == STEP.to_dict()


@pytest.mark.parametrize("pad", ['"', "é", "中", "\x01"])
def test_ids_that_json_writes_longer_than_their_characters_still_fit_a_record(pad):
    """Ids are capped in characters: an escaped quote is 2 bytes, é 2, 中 3, a control character 6.
    256 such engagements are 1.1-1.6 MB, past what Faust's producer (1,000,000 bytes) and the broker
    take: the split is by bytes too."""
    batch = [longest(n, pad) for n in range(1024)]
    raw = engagement_records(batch, STEP)
    assert all(len(r) <= ENGAGEMENT_RECORD_BYTES + 4096 for r in raw)  # the step and the brackets beside
    assert max(len(r) for r in raw) < 1_000_000
    records = [load_json(r) for r in raw]
    assert len(records) > 1024 // ENGAGEMENTS_PER_RECORD  # more records than the count alone makes
    assert [e for r in records for e in r["engagements"]] == batch
    assert [("ranker_step" in r) for r in records] == [False] * (len(records) - 1) + [True]


def test_no_engagements_no_record_and_a_batch_under_the_limit_is_one_record():
    assert engagement_records([], None) == []
    one = engagement_records([longest(0)], None)
    assert [load_json(r) for r in one] == [{"engagements": [longest(0)]}]
