"""The item index as arrays (index/item_index.py ``to_arrays``/``from_arrays``/``take_contents``):
the catalogue a snapshot brings back searches, scores, explains and counts categories as the index
it was taken from, after any upserts and deletes; the IVF index comes back without training;
arrays that do not fit the layout are refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import IndexConfig, ItemIndex
from tests.unit.test_index import LAYOUT, WEIGHTS, brute_force, make_index, unit_rows

ops = st.lists(st.tuples(st.sampled_from(["upsert", "delete"]), st.lists(st.integers(0, 15), min_size=1, max_size=6),
                         st.sampled_from(["", "books", "games"])), max_size=12)


@settings(max_examples=60, deadline=None)
@given(ops, st.integers(0, 2**31))
def test_a_catalogue_taken_back_from_arrays_answers_as_the_index_it_came_from(operations, seed):
    rng = np.random.default_rng(seed)
    index, live = make_index(), {}
    for op, ids, category in operations:
        names = [f"i{i}" for i in ids]
        if op == "upsert":
            rows = unit_rows(rng, len(names))
            index.upsert(names, rows, [{"title": n.upper(), "category": category} if category else {} for n in names])
            live.update({n: ({f: v[k] for f, v in rows.items()}, category) for k, n in enumerate(names)})
        else:
            index.delete(names)
            for n in names:
                live.pop(n, None)
    into = make_index()
    into.upsert(["stale"], unit_rows(rng, 1))  # replaced whole, not merged
    into.take_contents(ItemIndex.from_arrays(LAYOUT, into.config, index.to_arrays()))
    assert len(into) == len(live) and sorted(into.item_ids()) == sorted(live)
    query = {f: v[0] for f, v in unit_rows(rng, 1).items()}
    if live:
        got = into.nearest([query], 5)[0]
        want = brute_force({n: facets for n, (facets, _) in live.items()}, query)[:5]
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    for n, (_, category) in live.items():
        assert into.meta(n) == ({"title": n.upper(), "category": category} if category else {})
        np.testing.assert_array_equal(into.vectors(n)["topic"], index.vectors(n)["topic"])
    assert into.known(["stale"]) == [False]
    want_shares = dict(index.category_shares(query["topic"], top=5))
    got_shares = dict(into.category_shares(query["topic"], top=5))
    assert got_shares.keys() == want_shares.keys()
    assert all(got_shares[c] == pytest.approx(want_shares[c], abs=1e-9) for c in got_shares)
    into.upsert(["after"], unit_rows(rng, 1))  # and goes on changing as any index
    into.delete(list(live)[:1])
    assert len(into) == len(live) + 1 - min(1, len(live))


def test_the_ivf_index_comes_back_with_the_catalogue_without_training():
    """Its centroids and each item's list: the same searches at once, changes made to it after its
    build included; an index configured without IVF search takes the catalogue alone."""
    config = IndexConfig(device="cpu", facet_weights=WEIGHTS, ann_threshold=1000, ann_nprobe=4, ann_lists=16)
    rng = np.random.default_rng(3)
    big = ItemIndex(LAYOUT, config)
    big.upsert([f"i{i}" for i in range(1200)], unit_rows(rng, 1200))
    assert big.wait_for_ann(60)
    big.delete([f"i{i}" for i in range(0, 1200, 7)])
    big.upsert(["new1", "new2", "i3"], unit_rows(rng, 3))  # after the build: added to its lists
    into = ItemIndex(LAYOUT, config)
    into.take_contents(ItemIndex.from_arrays(LAYOUT, config, big.to_arrays()))
    assert into.ann.search == "ivf" and into.ann.builds == 0 and into.ann.built_items == 1200 and into.ann.lists == 16
    queries = [{f: v[n] for f, v in unit_rows(rng, 5).items()} for n in range(5)]
    # nprobe 4 of 16 lists: the same approximate answers, so the same lists and centroids
    assert into.nearest(queries, 10) == big.nearest(queries, 10)
    into.upsert(["later"], unit_rows(rng, 1))
    assert "later" in {i for i, _ in into.nearest([dict(zip(LAYOUT, [into.vectors("later")[f] for f in LAYOUT]))], 3)[0]}
    exact = ItemIndex(LAYOUT, IndexConfig(device="cpu", facet_weights=WEIGHTS, ann_threshold=0))
    exact.take_contents(ItemIndex.from_arrays(LAYOUT, exact.config, big.to_arrays()))
    assert exact.ann.search == "exact" and len(exact) == len(big)


def test_arrays_of_another_layout_are_refused():
    index = make_index()
    index.upsert(["a", "b"], unit_rows(np.random.default_rng(0), 2))
    arrays = index.to_arrays()
    wider = {**LAYOUT, "topic": 9}
    with pytest.raises(ValueError, match="vectors"):
        ItemIndex.from_arrays(wider, IndexConfig(device="cpu", facet_weights=WEIGHTS), arrays)
    with pytest.raises(ValueError, match="layout"):
        make_index().take_contents(ItemIndex(wider, IndexConfig(device="cpu", facet_weights=WEIGHTS)))
    assert make_index().fingerprint() != ItemIndex(LAYOUT, IndexConfig(device="cpu", facet_weights={
        **WEIGHTS, "topic": 0.5})).fingerprint()  # stored vectors are facet-weighted


def test_a_build_of_the_catalogue_before_a_swap_is_not_swapped_in_after_it():
    config = IndexConfig(device="cpu", facet_weights=WEIGHTS, ann_threshold=1000, ann_nprobe=4, ann_lists=16)
    rng = np.random.default_rng(5)
    index = ItemIndex(LAYOUT, config)
    index.upsert([f"old{i}" for i in range(1200)], unit_rows(rng, 1200))  # starts a build in its thread
    small = make_index()
    small.upsert(["a", "b", "c"], unit_rows(rng, 3))
    index.take_contents(ItemIndex.from_arrays(LAYOUT, config, small.to_arrays()))  # before the build ends
    assert not index.wait_for_ann(60)  # the old catalogue's IVF index was discarded, not swapped in
    assert index.ann.search == "exact" and not index.ann.building and sorted(index.item_ids()) == ["a", "b", "c"]
    query = {f: v[0] for f, v in unit_rows(rng, 1).items()}
    assert {i for i, _ in index.nearest([query], 3)[0]} == {"a", "b", "c"}
