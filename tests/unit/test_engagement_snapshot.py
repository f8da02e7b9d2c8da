"""Snapshots of the folded engagements (streams/state/engagement.py ``to_arrays``/``from_arrays``,
streams/worker/snapshot.py): a state written to a file, read back and folded on from there is the
state of folding everything, bit for bit; a file that is not a usable snapshot is refused."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import json_array
from streams.state.behaviour import BehaviourConfig
from streams.state.engagement import EngagementConfig, Engagements
from streams.state.ranker import OnlineRanker
from streams.worker.engagement import snapshot_file
from streams.worker.snapshot import SnapshotFile

ITEMS = [f"i{j}" for j in range(14)]
CONFIG = EngagementConfig(pop_half_lives_s=(3600.0, 86400.0), row_max=3, dedup=25,  # small: pruning, forgetting
                          behaviour=BehaviourConfig(dim=6, negatives=3))


def content(item_ids):
    """Topic vectors for most items (the behaviour facet starts there), none for i13."""
    rows = np.array([[float(int(i[1:]) % 5) - 2.0, 1.0, float(int(i[1:]) % 3)] for i in item_ids])
    rows[[i == "i13" for i in item_ids]] = 0.0
    return rows.reshape(len(item_ids), 3)


def stream(seed: int, n: int) -> list[tuple]:
    """Engagements of four users, some event ids sent twice (dropped the second time), event times
    with gaps of up to years (popularity is rebased)."""
    rng = np.random.default_rng(seed)
    out, history, ts = [], {}, 1000.0
    for _ in range(n):
        user, item = f"u{int(rng.integers(4))}", ITEMS[int(rng.integers(len(ITEMS)))]
        earlier = history.setdefault(user, [])
        ts += float(rng.choice([1.0, 3600.0, 3e7]))
        out.append((user, f"e{int(rng.integers(n))}", item, ts, float(rng.uniform(0.5, 2.0)), earlier[::-1][:5]))
        earlier.append(item)
    return out


def assert_same(a: Engagements, b: Engagements) -> None:
    assert a.status() == b.status()
    assert a.ids_of(range(len(a))) == b.ids_of(range(len(b)))
    np.testing.assert_array_equal(a.popularity()[1], b.popularity()[1])
    for item in ITEMS:
        assert a.links_of(item) == b.links_of(item)
    # Co-engagement scores divide by each row's total of every link ever added (pruned ones too).
    for n in range(len(ITEMS) - 2):
        got, want = b.co_engaged_many(ITEMS[n : n + 3], [(3, 0.5)]), a.co_engaged_many(ITEMS[n : n + 3], [(3, 0.5)])
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert list(a._seen) == list(b._seen)  # the same ids remembered, in the order they are forgotten
    assert a.behaviour._rng.bit_generator.state == b.behaviour._rng.bit_generator.state
    assert a.behaviour.steps == b.behaviour.steps
    np.testing.assert_array_equal(a.behaviour.W[: a.behaviour.n], b.behaviour.W[: b.behaviour.n])
    np.testing.assert_array_equal(a.behaviour.C[: a.behaviour.n], b.behaviour.C[: b.behaviour.n])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(0, 90), cut=st.floats(0.0, 1.0))
def test_folding_on_from_a_snapshot_file_equals_folding_everything(tmp_path, seed, n, cut):
    """Popularity, links (pruned rows too), the remembered ids (a copy sent after the cut is still
    dropped) and the behaviour facet, whose negatives come from the sampler's restored state."""
    events = stream(seed, n)
    k = int(cut * n)
    whole = Engagements(CONFIG, content)
    whole.observe_many(events)
    before = Engagements(CONFIG, content)
    before.observe_many(events[:k])
    files = SnapshotFile(tmp_path / f"s{seed}-{n}-{k}.npz", "fp")
    files.write(before.to_arrays(), {"positions": {"0": k}})
    meta, arrays = files.read()
    assert meta["positions"] == {"0": k}
    after = Engagements.from_arrays(CONFIG, content, arrays)
    assert_same(before, after)
    after.observe_many(events[k:])
    assert_same(whole, after)


def test_a_state_never_folded_into_and_one_without_the_behaviour_facet_round_trip(tmp_path):
    empty = Engagements.from_arrays(CONFIG, content, Engagements(CONFIG, content).to_arrays())
    assert len(empty) == 0 and empty.popularity()[0] == []
    plain = EngagementConfig(behaviour=BehaviourConfig(enabled=False))
    folded = Engagements(plain)
    folded.observe_many(stream(3, 30))
    back = Engagements.from_arrays(plain, None, folded.to_arrays())
    assert back.behaviour is None and back.status() == folded.status()
    assert back.links_of("i3") == folded.links_of("i3")


def test_arrays_of_another_shape_are_refused():
    folded = Engagements(CONFIG, content)
    folded.observe_many(stream(1, 20))
    arrays = folded.to_arrays()
    other = EngagementConfig(pop_half_lives_s=(3600.0,), behaviour=CONFIG.behaviour)
    with pytest.raises(ValueError, match="popularity"):
        Engagements.from_arrays(other, content, arrays)
    wider = EngagementConfig(pop_half_lives_s=CONFIG.pop_half_lives_s, behaviour=BehaviourConfig(dim=8))
    with pytest.raises(ValueError, match="behaviour vectors"):
        Engagements.from_arrays(wider, content, arrays)
    with pytest.raises(ValueError, match="link arrays"):
        Engagements.from_arrays(CONFIG, content, {**arrays, "link_vals": arrays["link_vals"][:-1]})


def test_the_ranker_takes_weights_and_version_back():
    ranker = OnlineRanker()
    w = ranker.w + 0.25
    ranker.restore(w, 7)
    assert ranker.version == 7 and np.array_equal(ranker.w, w)
    with pytest.raises(ValueError):
        ranker.restore(np.zeros(3), 1)


def test_a_missing_file_is_no_snapshot_and_a_bad_one_is_refused(tmp_path):
    files = SnapshotFile(tmp_path / "s.npz", "settings A")
    assert files.read() is None
    files.write({"x": np.arange(3)}, {"positions": {}})
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]  # the writer's own file was renamed over it
    meta, arrays = files.read()
    assert meta["fingerprint"] == "settings A" and arrays["x"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="other settings"):
        SnapshotFile(files.path, "settings B").read()
    raw = files.path.read_bytes()
    files.path.write_bytes(raw[: len(raw) // 2])  # cut short: a disk that filled up, a copy gone wrong
    with pytest.raises(ValueError, match="cannot be read"):
        files.read()
    files.path.write_bytes(b"not a snapshot")
    with pytest.raises(ValueError, match="cannot be read"):
        files.read()
    np.savez(files.path, x=np.arange(2))  # numpy's, but no snapshot's meta
    with pytest.raises(ValueError, match="no meta"):
        files.read()


def test_the_fingerprint_follows_the_settings_the_fold_depends_on(tmp_path):
    layout = {"sentiment": 3, "topic": 384, "style": 4}
    a = snapshot_file(str(tmp_path), "app", EngagementConfig(), layout)
    assert a.path.parent == tmp_path and a.path.name.startswith("app-engagements-") and a.path.name.endswith(".snapshot.npz")
    # Settings of their own, a file of their own (workers of two versions sharing a folder).
    assert a.path != snapshot_file(str(tmp_path), "app", EngagementConfig(row_max=50), layout).path
    assert a.path == snapshot_file(str(tmp_path), "app", EngagementConfig(), dict(layout)).path
    assert a.fingerprint == snapshot_file(str(tmp_path), "other", EngagementConfig(), layout).fingerprint
    assert a.fingerprint != snapshot_file(str(tmp_path), "app", EngagementConfig(row_max=50), layout).fingerprint
    assert a.fingerprint != snapshot_file(str(tmp_path), "app", EngagementConfig(behaviour=BehaviourConfig(lr=0.1)),
                                          layout).fingerprint
    # Another encoder: the behaviour facet's vectors started from other topic vectors.
    assert a.fingerprint != snapshot_file(str(tmp_path), "app", EngagementConfig(), {**layout, "topic": 768}).fingerprint


def test_a_write_leaves_one_file_and_sweeps_what_a_killed_writer_left(tmp_path):
    files = SnapshotFile(tmp_path / "s.npz", "fp")
    killed = tmp_path / "s.npz.abc123.tmp"
    killed.write_bytes(b"half a snapshot")  # a worker killed mid-write, two hours ago
    os.utime(killed, (time.time() - 7200, time.time() - 7200))
    # Another worker's write in progress, in a folder the workers share: left alone.
    (tmp_path / "s.npz.def456.tmp").write_bytes(b"being written")
    (tmp_path / "other.npz.x.tmp").write_bytes(b"not ours")
    files.write({"x": np.arange(2)}, {"positions": {}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.npz.x.tmp", "s.npz", "s.npz.def456.tmp"]


def test_arrays_that_point_outside_the_state_are_refused():
    folded = Engagements(CONFIG, content)
    folded.observe_many(stream(2, 40))
    arrays = folded.to_arrays()
    with pytest.raises(ValueError, match="outside"):
        Engagements.from_arrays(CONFIG, content, {**arrays, "link_keys": arrays["link_keys"] + len(folded)})
    with pytest.raises(ValueError, match="pairs"):
        Engagements.from_arrays(CONFIG, content, {**arrays, "seen": json_array(["u1", "e1", "u2"])})
