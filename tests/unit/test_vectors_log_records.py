"""Reading the item vectors log (streams/worker/catalogue.py): a record the follower cannot index
is skipped and counted, and the records around it still reach the index. Only workers write the
log, so such a record is a bug or another encoder's, but before 2026-12-07 one of them stopped every
worker (and its learner process) at every start: the follower reads the log from the beginning."""

from __future__ import annotations

import numpy as np
import pytest
from aiokafka import ConsumerRecord

from index import ItemIndex
from streams.worker.catalogue import CatalogueFollower, index_vector_rows, vector_row
from streams.worker.items import vectors_log_key, vectors_log_value
from tests.unit.test_recommend import LAYOUT

DIMS = sum(LAYOUT.values())


def record(offset: int, key: bytes | None, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord("vectors", 0, offset, 0, 0, key, value, None, 0, 0, [])


def good(offset: int, item_id: str, seed: int, dims: int = DIMS) -> ConsumerRecord:
    vector = np.random.default_rng(seed).normal(size=dims)
    return record(offset, vectors_log_key(item_id), vectors_log_value(vector, f"title {item_id}", "books", 1.0))


def test_a_good_record_reads_back_its_vector_and_a_tombstone_reads_as_none():
    item_id, value = vector_row(good(0, "a", 1), DIMS)
    assert item_id == "a" and value is not None and value["title"] == "title a"
    assert np.array_equal(value["vector"], np.random.default_rng(1).normal(size=DIMS))
    assert vector_row(record(1, vectors_log_key("a"), None), DIMS) == ("a", None)
    assert vector_row(record(2, vectors_log_key("a"), b""), DIMS) == ("a", None)


@pytest.mark.parametrize("key, value, reason", [
    (b'"a"', b"{not json", "unreadable"),
    (b'"a"', b'{"title": "no vector"}', "unreadable"),
    (b'"a"', b'{"vector": 5}', "unreadable"),
    (b'"a"', b'{"vector": "not base64!"}', "unreadable"),
    (b'"a"', b'{"vector": "AAAA"}', "unreadable"),  # 3 bytes: not a whole float64
    (b"not json", None, "unreadable"),
    (b"7", None, "not an item id"),
    (None, b"{}", "not an item id"),
])
def test_a_record_that_cannot_be_read_says_why(key, value, reason):
    with pytest.raises(ValueError, match=reason):
        vector_row(record(0, key, value), DIMS)


def test_a_vector_of_another_length_or_not_finite_is_refused():
    with pytest.raises(ValueError, match=f"expected {DIMS}"):
        vector_row(good(0, "a", 1, dims=DIMS + 1), DIMS)
    nan = np.full(DIMS, np.nan)
    with pytest.raises(ValueError, match="finite: False"):
        vector_row(record(0, vectors_log_key("a"), vectors_log_value(nan, "t", "c", 1.0)), DIMS)


def test_the_follower_skips_and_counts_what_it_cannot_read_and_indexes_the_rest():
    index = ItemIndex(LAYOUT)
    follower = CatalogueFollower("127.0.0.1:1", "vectors", lambda rows: index_vector_rows(index, LAYOUT, rows), DIMS)
    follower._latest([good(0, "a", 1), good(1, "b", 2), record(2, b'"c"', b"{not json"), good(3, "d", 3, dims=DIMS - 1)])
    assert follower.malformed == 2 and sorted(index.item_ids()) == ["a", "b"]
    # A bad later version of an item leaves its last good one; a tombstone after it still deletes.
    follower._latest([record(4, b'"a"', b'{"vector": 1}'), record(5, vectors_log_key("b"), None), good(6, "e", 4)])
    assert follower.malformed == 3 and sorted(index.item_ids()) == ["a", "e"]
    alone = ItemIndex(LAYOUT)
    index_vector_rows(alone, LAYOUT, [vector_row(good(0, "a", 1), DIMS)])
    assert np.array_equal(index.joined_vectors(["a"])[0], alone.joined_vectors(["a"])[0])
