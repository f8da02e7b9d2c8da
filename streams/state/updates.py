"""Applying decoded user events to user state: one event (``apply_event``) and one micro-batch
(``apply_user_batch``). Pure: no Faust, no I/O; the handler reads states, calls this once, writes
states and sends what it returns.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from schemas import ClickEvent, ForgetEvent, InvalidEvent, ReviewEvent, UserRecord, WatchlistEvent
from schemas.facets import Layout
from schemas.records import InterestEvent
from streams.settings import Settings
from streams.state.decay import InterestState
from streams.state.profiles import facet_movement

RECENT_EVENT_IDS = 100  # per user: how far back a re-sent event id is recognised
RECENT_MOVERS = 20  # per user: recent events kept with how much they moved each facet
RECENT_UNSUBSCRIBED = 50  # per user: dropped interest subscriptions sent again after a crash


class Outcome(enum.Enum):
    APPLIED = "applied"
    REDELIVERED = "redelivered"  # same message again (offset already applied): at-least-once delivery
    DUPLICATE = "duplicate"  # same event_id in a new message (a producer re-sent it)


def check_event_time(event: InterestEvent | WatchlistEvent, settings: Settings, now: float | None = None) -> None:
    """Refuse events stamped too far in the future: one such event would anchor the user's decay
    at that time and outweigh every real event until then. Old events need no rule: their
    weight decays by itself."""
    ahead = event.ts - (time.time() if now is None else now)
    if ahead > settings.max_future_s:
        raise InvalidEvent(
            f"ts is {ahead:.0f} s in the future (more than max_future_s={settings.max_future_s:.0f}); "
            "check the producer's clock or the unit (seconds, not milliseconds)"
        )


def apply_event(
    state: InterestState,
    event: InterestEvent,
    z: np.ndarray,
    settings: Settings,
    source: tuple[str, int, int] | None = None,
    layout: Layout | None = None,
) -> Outcome:
    """Fold one valid user event with its facet vector (concatenated) into the user's state.

    ``source`` is the event's (topic, partition, offset). Offsets only grow within a partition and
    records are applied in offset order (streams/state/offset_guard.py), so an event at or below
    the highest offset already folded in from that partition is a redelivery; an event id among
    the user's recent ones is a duplicate. Neither is applied.
    """
    seen = admit(state, event.event_id, source)
    if seen is not None:
        return seen
    before = state.mean() if layout is not None and not state.empty else None
    state.add(z, settings.decay.event_weights[event.kind], event.ts, settings.decay.half_life_s)
    if layout is not None:
        state.movers.append({"event_id": event.event_id, "kind": event.kind, "ts": event.ts,
                             "moved": facet_movement(before, state.mean(), layout)})
        del state.movers[:-RECENT_MOVERS]
    state.counts[event.kind] = state.counts.get(event.kind, 0) + 1
    if isinstance(event, (ClickEvent, ReviewEvent)):
        state.remember_item(event.item_id, settings.seen_items_max)
    state.updated_at = max(state.updated_at, event.ts)
    state.last_event_id = event.event_id
    return Outcome.APPLIED


def admit(state: InterestState, event_id: str, source: tuple[str, int, int] | None) -> Outcome | None:
    """REDELIVERED or DUPLICATE for a record the user's state has already taken in, else None
    (and the record is noted as taken in).

    Offsets only grow within a partition and records are applied in offset order
    (streams/state/offset_guard.py), so a record at or below the highest offset already taken in
    from its partition is a redelivery; an event id among the user's recent ones is a duplicate."""
    if source is not None:
        key = f"{source[0]}:{source[1]}"
        if state.offsets.get(key, -1) >= source[2]:
            return Outcome.REDELIVERED
        state.offsets[key] = source[2]
    if event_id in state.recent_event_ids:
        return Outcome.DUPLICATE
    state.recent_event_ids.add(event_id, RECENT_EVENT_IDS)
    return None


def apply_watchlist(state: InterestState, event: WatchlistEvent) -> bool:
    """Follow or unfollow an entity; True if the state changed. Not idempotent across a sequence
    (a redelivered "add" after a later "remove" would follow again): ``admit`` it first."""
    following = event.entity in state.follows
    if event.op == "add" and not following:
        state.follows.append(event.entity)
        return True
    if event.op == "remove" and following:
        state.follows.remove(event.entity)
        return True
    return False


def interest_changes(state: InterestState, at: float, min_weight: float, half_life_s: float) -> tuple[list[str], list[str]]:
    """Entities to subscribe the user to because their own events keep naming them (decayed weight
    >= min_weight), and earlier such subscriptions to drop (weight fell below min_weight / 2:
    the gap stops a user at the edge from flapping). Followed entities are not touched.
    Updates ``state.subscribed``; the caller publishes the changes."""
    weights = state.entity_weights(at, half_life_s)
    add = [e for e, w in weights.items() if w >= min_weight and e not in state.subscribed]
    drop = [e for e in state.subscribed if weights.get(e, 0.0) < min_weight / 2]
    state.subscribed = [e for e in state.subscribed if e not in drop] + add
    if add or drop:
        state.unsubscribed = [e for e in state.unsubscribed if e not in add and e not in drop] + drop
        del state.unsubscribed[:-RECENT_UNSUBSCRIBED]
    return add, drop


# -- one micro-batch -------------------------------------------------------------------------------
@dataclass(frozen=True)
class UserInput:
    """One decoded record of a micro-batch, with what the handler looked up for it."""

    record: UserRecord
    source: tuple[str, int, int]  # (topic, partition, offset)
    z: np.ndarray | None = None  # its facet vector (concatenated); None: forget, watchlist, unknown item
    entities: tuple[str, ...] = ()  # entities its text names (searches and reviews)


@dataclass(frozen=True)
class WatcherChange:
    """A user starts or stops watching an entity, for the entity-watchers topic."""

    user_id: str
    entity: str
    op: str  # "add" | "remove"
    source: str  # "watchlist" (the user asked) | "interest" (their own events name it)

    def to_dict(self) -> dict[str, str]:
        return {"user_id": self.user_id, "entity": self.entity, "op": self.op, "source": self.source}

    @classmethod
    def from_dict(cls, data: Any) -> WatcherChange:
        """A record of the entity-watchers topic; ValueError, naming the fields, for anything else."""
        if not isinstance(data, dict):
            raise ValueError("a watcher change must be a JSON object")
        fields = {"user_id": data.get("user_id"), "entity": data.get("entity"), "op": data.get("op"),
                  "source": data.get("source", "watchlist")}
        bad = [k for k in ("user_id", "entity") if not isinstance(fields[k], str) or not fields[k]]
        bad += [] if fields["op"] in ("add", "remove") else ["op"]
        bad += [] if fields["source"] in ("watchlist", "interest") else ["source"]
        if bad:
            raise ValueError(f"watcher change field(s) missing or invalid: {', '.join(bad)}")
        return cls(**fields)


def forget_changes(user_id: str, state: InterestState | None) -> list[WatcherChange]:
    """A forgotten user stops watching everything: their follows and interest subscriptions go
    as removes (before this, the entity side kept alerting a user the worker had forgotten)."""
    if state is None:
        return []
    return ([WatcherChange(user_id, e, "remove", "watchlist") for e in state.follows]
            + [WatcherChange(user_id, e, "remove", "interest") for e in state.subscribed])


@dataclass
class BatchTally:
    applied: int = 0
    redelivered: int = 0
    duplicate: int = 0
    forgotten: int = 0
    watchlist: int = 0  # follow/unfollow requests taken in (applied, or already so; not redeliveries)

    def skipped(self, outcome: Outcome | None) -> bool:
        """Count a redelivered or duplicate record; True if it was one (it is not applied)."""
        if outcome is Outcome.REDELIVERED:
            self.redelivered += 1
        elif outcome is Outcome.DUPLICATE:
            self.duplicate += 1
        else:
            return False
        return True


@dataclass
class UserBatchResult:
    # The new state of every user the batch changed; None means forgotten (delete the key).
    states: dict[str, InterestState | None] = field(default_factory=dict)
    # Per changed user, the position of their last input: the table write goes to its partition.
    last_input: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (position, reason): dead letters
    applied: list[int] = field(default_factory=list)  # positions of the events folded into a Z
    # Per applied click or review, and per redelivered one: the user's items before it, most recent
    # first (the engagements record the batch publishes).
    previous_items: dict[int, tuple[str, ...]] = field(default_factory=dict)
    watcher_changes: list[WatcherChange] = field(default_factory=list)
    tally: BatchTally = field(default_factory=BatchTally)


# rewrite_after_redelivery: a record read again means a crash came between a batch's table write
# and its offset commit. RocksDB takes the write at once and the changelog record only when the
# producer sends it, so the local store can hold a state the changelog never got; the record is then
# skipped as applied and, without a new write, a standby or a rebuild from the changelog would lack
# it until the user's next event. So a user with a redelivered record is written again (unchanged),
# and the watcher changes that batch may have lost are sent again (the entity side is idempotent).


def items_before(seen_items: Iterable[str], item_id: str, n: int) -> tuple[str, ...]:
    """The ``n`` items engaged with just before ``item_id``'s latest engagement, most recent first,
    from a state that already holds it (``seen_items``: oldest first); none if the state no longer
    has the item. Exact unless an item was engaged with again after it (its earlier place is gone
    from the state)."""
    items = list(seen_items)
    if item_id not in items:
        return ()
    at = len(items) - 1 - items[::-1].index(item_id)
    return tuple(items[max(0, at - n) : at][::-1])


def apply_user_batch(
    inputs: Sequence[UserInput],
    stored: Mapping[str, InterestState | None],
    settings: Settings,
    layout: Layout,
    before_apply: Callable[[int, InterestState], None] | None = None,
) -> UserBatchResult:
    """Apply a micro-batch's inputs, in order, to the users' states as stored before it
    (``stored``: user id -> state, None for a user without one; the states are updated in place,
    so pass freshly read ones). A click whose item vector is unknown is rejected. Returns one new
    state per changed user: one table write and one profile per user per micro-batch, carrying the
    state after all of that user's events in it. ``before_apply(pos, state)`` is called with the
    user's state just before each search, click or review is offered to it (a redelivered one is
    then skipped: see ``applied``); it must not change the state."""
    out = UserBatchResult()
    working: dict[str, InterestState] = {}
    redelivered: set[str] = set()  # users with a record read again (a crash before the commit)
    half_life = settings.decay.half_life_s

    def state_of(user_id: str) -> InterestState:
        if user_id not in working:
            if user_id in out.states:  # forgotten earlier in this batch: start again
                working[user_id] = InterestState()
            else:
                working[user_id] = stored.get(user_id) or InterestState()
        return working[user_id]

    def changed(pos: int, user_id: str, state: InterestState | None) -> None:
        out.states[user_id] = state
        out.last_input[user_id] = pos

    for pos, item in enumerate(inputs):
        record = item.record
        if isinstance(record, ForgetEvent):
            forgotten = working.pop(record.user_id, None)
            if forgotten is None and record.user_id not in out.states:
                forgotten = stored.get(record.user_id)
            out.watcher_changes += forget_changes(record.user_id, forgotten)
            changed(pos, record.user_id, None)
            out.tally.forgotten += 1
            continue
        if isinstance(record, WatchlistEvent):
            state = state_of(record.user_id)
            outcome = admit(state, record.event_id, item.source)
            if out.tally.skipped(outcome):
                if outcome is Outcome.REDELIVERED:
                    changed(pos, record.user_id, state)  # written again: see rewrite_after_redelivery
                    redelivered.add(record.user_id)
                    # Its watcher change may have been lost with the crash; the entity side applies
                    # changes idempotently, so the one matching the state now is sent again.
                    op = "add" if record.entity in state.follows else "remove"
                    out.watcher_changes.append(WatcherChange(record.user_id, record.entity, op, "watchlist"))
                continue
            out.tally.watchlist += 1
            if apply_watchlist(state, record):
                out.watcher_changes.append(WatcherChange(record.user_id, record.entity, record.op, "watchlist"))
            changed(pos, record.user_id, state)
            continue
        if item.z is None:
            out.rejected.append((pos, f"click on unknown item_id {getattr(record, 'item_id', '')!r}"))
            continue
        state = state_of(record.user_id)
        if before_apply is not None:
            before_apply(pos, state)
        earlier_items = tuple(state.seen_items.latest(settings.recommend.engagement.window))
        outcome = apply_event(state, record, item.z, settings, item.source, layout)
        if out.tally.skipped(outcome):
            if outcome is Outcome.REDELIVERED:
                changed(pos, record.user_id, state)  # written again: see rewrite_after_redelivery
                redelivered.add(record.user_id)
                if isinstance(record, (ClickEvent, ReviewEvent)) and record.event_id in state.recent_event_ids:
                    # Its engagement may have been lost with the crash too: it is sent again (the
                    # fold drops a second copy by user and event id), with the items before it as
                    # the state still tells them. Only if the state applied it: a click below the
                    # applied offset may have been dead-lettered instead (an unknown item then).
                    out.previous_items[pos] = items_before(state.seen_items, record.item_id,
                                                           settings.recommend.engagement.window)
            continue
        changed(pos, record.user_id, state)
        out.applied.append(pos)
        if isinstance(record, (ClickEvent, ReviewEvent)):
            out.previous_items[pos] = earlier_items
        out.tally.applied += 1
        state.note_entities(list(item.entities), settings.decay.event_weights[record.kind], record.ts, half_life)
    for user_id, state in out.states.items():
        if state is not None:
            add, drop = interest_changes(state, state.updated_at, settings.alerts.interest_min_weight, half_life)
            if user_id in redelivered:  # the crash may have lost earlier changes: each is sent as it stands
                add += [e for e in state.subscribed if e not in add]
                drop += [e for e in state.unsubscribed if e not in drop]
            out.watcher_changes += [WatcherChange(user_id, e, "add", "interest") for e in add]
            out.watcher_changes += [WatcherChange(user_id, e, "remove", "interest") for e in drop]
    return out
