"""RecentIds (streams/state/recent_ids.py) against the list it replaced: remove the id if present,
append it, keep the last ``limit``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.recent_ids import SEP, RecentIds

# Short ids from a small alphabet, so that ids repeat and are prefixes and suffixes of each other;
# no control characters (records refuse them).
id_text = st.text(alphabet=st.sampled_from("ab é日 "), min_size=1, max_size=3)
adds = st.lists(st.tuples(id_text, st.one_of(st.none(), st.integers(1, 6))), max_size=40)


def list_model(ops: list[tuple[str, int | None]]) -> list[str]:
    """What InterestState.remember_item did with a list before RecentIds."""
    items: list[str] = []
    for item, limit in ops:
        if item in items:
            items.remove(item)
        items.append(item)
        if limit is not None:
            del items[:-limit]
    return items


@settings(max_examples=300, deadline=None)
@given(adds, st.lists(id_text, max_size=5))
def test_adds_keep_the_most_recent_distinct_ids_as_the_list_did(ops, probes):
    ids = RecentIds()
    for item, limit in ops:
        ids.add(item, limit)
    want = list_model(ops)
    assert list(ids) == want and len(ids) == len(want)
    for n in (None, 0, 1, 2, len(want), len(want) + 1):
        assert ids.latest(n) == (want[::-1] if n is None else want[::-1][:n])
    for item in [i for i, _ in ops] + probes:
        assert (item in ids) == (item in want)
    assert RecentIds.from_text(ids.text) == ids == RecentIds(want)  # as stored, and from a stored list
    assert len(RecentIds.from_text(ids.text)) == len(want)


def test_a_stored_list_keeps_each_ids_last_place_and_drops_ids_with_the_separator():
    # Lists stored before this type: an id could repeat in a hand-made state, and contain the
    # separator before records refused control characters.
    ids = RecentIds(["a", "b", f"x{SEP}y", "a", "c"])
    assert list(ids) == ["b", "a", "c"]
    assert f"x{SEP}y" not in ids and "x" not in ids and "y" not in ids
    ids.add("d", 3)
    assert list(ids) == ["a", "c", "d"]


def test_an_empty_list_and_what_add_refuses():
    ids = RecentIds()
    assert list(ids) == [] and ids.latest() == [] and len(ids) == 0 and "a" not in ids and ids.text == ""
    assert RecentIds.from_text(SEP) == ids  # no ids however the text says it
    for bad_id, limit in ((f"x{SEP}y", 5), ("", 5), ("a", 0)):
        with pytest.raises(ValueError):
            ids.add(bad_id, limit)
    assert len(ids) == 0 and ids.text == ""
