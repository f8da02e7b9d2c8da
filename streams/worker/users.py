"""User events -> user state: decode, encode the micro-batch's texts once, read the users' states,
apply the batch (``streams/state/updates.py``, one pure call), write the states, send the outputs.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Sequence

import numpy as np
from faust.types import EventT

from encoders.entities import EntityTable
from schemas import ClickEvent, Engagement, ForgetEvent, InvalidEvent, RankerStep, ReviewEvent, UserRecord, dump_json, join_facets
from schemas.topics import ENGAGEMENTS, KIND_OF_TOPIC, PROFILES, USERS_REPARTITION, WATCHERS
from streams.faust_ext import DeliveredTable, event_context
from streams.state.decay import InterestState
from streams.state.drift import DriftMonitor
from streams.state.ranker import Example, chosen_as_lesson, evenly_spread
from streams.state.recommend import Lesson, UserView, user_view
from streams.state.state_cache import DecodedStates
from streams.state.updates import UserInput, WatcherChange, apply_user_batch, check_event_time
from streams.worker.catalogue import CatalogueGate
from streams.worker.context import WorkerContext
from streams.worker.heads import LearnedHeads
from streams.worker.learner import LearnerClient
from streams.worker.metrics import StageClock
from streams.worker.placement import forward_headers, partition_for, source_of
from streams.worker.readings import drift_labels, profiles_of

log = logging.getLogger(__name__)


def text_of(record: UserRecord) -> str | None:
    """The text a search or review is encoded from (clicks reuse the item's stored vector)."""
    if record.kind == "search":
        return record.query
    if record.kind == "review":
        return record.text
    return None


TEXT_KINDS = frozenset({"search", "review"})
# A record of the engagements topic holds at most this many engagements and this many bytes of
# them: Faust's producer refuses a record over 1,000,000 bytes (producer_max_request_size) and the
# broker one over 1 MiB by default. Ids are capped in characters, not bytes: one engagement of
# 256-character ids is 2.2 KB in ASCII and up to 13 KB with characters JSON writes as \u escapes.
ENGAGEMENTS_PER_RECORD = 256
ENGAGEMENT_RECORD_BYTES = 900_000


def carries_text(event: EventT) -> bool:
    """Whether a user event is a search or a review, by the topic it was first read from: a micro-
    batch holds fewer of those (``Settings.batch_max_texts``) than of clicks, which cost no encoding."""
    return KIND_OF_TOPIC.get(source_of(event)[0]) in TEXT_KINDS


def engagement_records(engagements: list[dict], step: RankerStep | None) -> list[bytes]:
    """A micro-batch's engagements (``Engagement.to_dict``) as ``engagements`` records (JSON), in
    order, each of at most ``ENGAGEMENTS_PER_RECORD`` and ``ENGAGEMENT_RECORD_BYTES`` of them; the
    ranker step learned from them goes with the last, so a reader applies it after all of them.
    Each engagement is serialised once, and the records joined from those bytes."""
    groups: list[list[bytes]] = []
    size = 0
    for engagement in engagements:
        raw = dump_json(engagement)
        if not groups or len(groups[-1]) >= ENGAGEMENTS_PER_RECORD or size + len(raw) > ENGAGEMENT_RECORD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(raw)
        size += len(raw) + 1
    records = [b'{"engagements":[' + b",".join(group) + b"]" for group in groups]
    if records and step is not None:
        records[-1] += b',"ranker_step":' + dump_json(step.to_dict())
    return [record + b"}" for record in records]


def watcher_record(change: WatcherChange) -> tuple[bytes, bytes]:
    """(key, value) for the entity-watchers topic: keyed by entity, where the alerting state lives."""
    return change.entity.encode(), dump_json(change.to_dict())


class UserHandler:
    def __init__(self, ctx: WorkerContext, table: DeliveredTable, heads: LearnedHeads, entities: EntityTable,
                 drift: DriftMonitor, catalogue: CatalogueGate | None = None, learner: LearnerClient | None = None) -> None:
        """``catalogue``: waits, when asked, until the catalogue is current as of now; ``learner``:
        builds the ranking lessons in a process of its own (in line when None or not running)."""
        self.ctx = ctx
        self.learner = learner
        self.table = table
        self.heads = heads
        self.entities = entities
        self.drift = drift
        self.catalogue = catalogue
        self.states = DecodedStates(ctx.settings.state_cache_users)  # only the agent's reads, not the API's

    def user_ids(self, limit: int) -> list[str]:
        return list(itertools.islice(self.table.keys(), limit))

    def state_of(self, user_id: str) -> InterestState | None:
        """The user's stored state (None: none); ValueError if it cannot be read (see
        ``_set_aside_unreadable``)."""
        stored = self.table.get(user_id)
        return InterestState.from_bytes(stored) if stored else None

    async def handle(self, batch: Sequence[EventT]) -> None:
        clock = StageClock(self.ctx.metrics.stage_seconds, self.ctx.settings.slow_batch_ms / 1000.0)
        try:
            await self._handle(batch, clock)
            # Every agent's sends so far, not only this batch's (app.in_order waits for them too).
            await self.ctx.outbox.confirmed()
            clock.lap("outputs_acknowledged")
        except BaseException:
            # Its states may be updated in place and not written: none of the kept ones is trusted.
            self.states.clear()
            raise
        finally:
            clock.done(len(batch))  # a batch that failed after a long wait shows where it waited too

    async def _handle(self, batch: Sequence[EventT], clock: StageClock) -> None:
        ctx, stats = self.ctx, self.ctx.stats
        stats.batches += 1
        decoded = await self._decode(batch)
        clock.lap("decode")
        await self._await_unindexed_items(decoded)
        clock.lap("catalogue_wait")
        stored = self._read_states(decoded)
        decoded = await self._set_aside_unreadable(decoded, stored)
        clock.lap("read_states")
        texts = [t for _, r in decoded if (t := text_of(r)) is not None]
        vectors = await ctx.encode(texts)  # one call for the whole micro-batch (passes planned by length)
        clock.lap("encode")
        if texts:
            ctx.topics.observe(vectors.facets["topic"], texts)
        inputs, text_row = self._inputs(decoded, vectors)
        clock.lap("topics_inputs")
        # Ranking lessons read each user's state just before the chosen event is applied (a
        # lesson from the state before the whole batch taught the ranker from stale contexts:
        # MovieLens users rate in bursts). The views are taken here, on the event loop; the
        # lessons are built from them in the learner process (streams/worker/learner.py), or here
        # while none runs, where learn_every and learn_per_batch bound the time.
        chosen = self._lesson_positions(inputs) if ctx.recommender else set()
        views: dict[int, UserView] = {}

        def lesson_before(pos: int, state: InterestState) -> None:
            if pos in chosen:
                views[pos] = user_view(state, ctx.layout)

        result = apply_user_batch(inputs, stored, ctx.settings, ctx.layout, lesson_before if chosen else None)
        # Before any await: the catalogue and the engagements the candidates read are as they
        # were while the batch was applied.
        clock.lap("apply")
        lessons = self._lessons(inputs, views, result.applied)
        clock.lap("ranking_lessons")

        for pos, reason in result.rejected:
            await ctx.dead_letter(decoded[pos][0], reason)
        for change in result.watcher_changes:
            key, value = watcher_record(change)
            await ctx.outbox.send(WATCHERS.name, key, value)
        if result.tally.forgotten:
            # A forget's removes come from the state its tombstone deletes: read again after a
            # crash, it finds no state to send them from, so they are acknowledged before it.
            await ctx.outbox.confirmed()
        clock.lap("dead_letters_watchers")
        # Offsets are acknowledged only after the whole batch, so a crash re-delivers it entirely.
        written: dict[str, tuple[bytes, InterestState] | None] = {}
        for user_id, state in result.states.items():
            with event_context(decoded[result.last_input[user_id]][0]):
                if state is None:
                    self.table.pop(user_id, None)  # a tombstone in the changelog
                    written[user_id] = None
                    continue
                raw = state.to_bytes()
                self.table[user_id] = raw
                written[user_id] = (raw, state)
        self.states.settle(stored, written)
        clock.lap("write_states")
        # Only users with a Z (not those with only watchlist changes so far) get a profile record.
        profiles = profiles_of(ctx, {u: s for u, s in result.states.items() if s is not None and not s.empty})
        for user_id, profile in profiles.items():
            await ctx.outbox.send(PROFILES.name, user_id.encode(), dump_json(profile.to_dict()))
        clock.lap("profiles")
        self._observe_latency(decoded, result.applied)
        if result.applied:
            rows = np.stack([inputs[pos].z for pos in result.applied])
            for labels in drift_labels(ctx, rows):
                self.drift.observe(labels)
        clock.lap("drift")
        rated = [(decoded[pos][0], decoded[pos][1].text, text_row[pos], decoded[pos][1].rating)
                 for pos in result.applied if isinstance(decoded[pos][1], ReviewEvent)]
        if rated:
            await self.heads.learn_sentiment(rated, vectors)
            clock.lap("learn_sentiment")
        step = None
        if ctx.recommender is not None and result.applied:
            step = await self.heads.propose_ranking([lessons[p] for p in result.applied if p in lessons])
            clock.lap("learn_ranking")
        if ctx.recommender is not None and result.previous_items:  # redelivered ones too: see apply_user_batch
            # A step comes only with applied clicks or reviews, so always with this record.
            await self._publish_engagements(decoded, result.previous_items, step)
        if decoded:
            await self.heads.save_topics(decoded[-1][0])
        clock.lap("engagements_topics")
        with ctx.metrics.changelog_wait_seconds.time():
            await self.table.delivered()  # before in_order lets this batch's offsets be committed
        clock.lap("states_acknowledged")
        # Counted once the batch is done (learning included), so a reader of /healthz who sees
        # its events applied sees all of their effects too.
        tally = result.tally
        stats.events_applied += tally.applied
        if tally.applied:
            stats.last_applied_at = time.time()
        stats.redelivered_skipped += tally.redelivered
        stats.duplicate_skipped += tally.duplicate
        stats.users_forgotten += tally.forgotten
        stats.watchlist_events += tally.watchlist
        stats.states_reused, stats.states_decoded = self.states.reused, self.states.decoded

    def _read_states(self, decoded: list[tuple[EventT, UserRecord]]) -> dict[str, InterestState | None | str]:
        """Each user's stored state (None: none yet), or why it cannot be read (a str)."""
        stored: dict[str, InterestState | None | str] = {}
        for event, record in decoded:
            if record.user_id not in stored:
                # In the event's context: Faust's RocksDB store reads a key from the partition of the
                # *current event*, and outside it that is whichever event the micro-batch last buffered.
                with event_context(event):
                    try:
                        stored[record.user_id] = self.states.read(record.user_id, self.table.get(record.user_id))
                    except ValueError as exc:  # InterestState.from_bytes: bytes that are no state
                        stored[record.user_id] = str(exc)
        return stored

    async def _set_aside_unreadable(self, decoded: list[tuple[EventT, UserRecord]],
                                    stored: dict[str, InterestState | None | str]) -> list[tuple[EventT, UserRecord]]:
        """A user whose stored state cannot be read (a bug, or bytes written by hand to the users
        changelog) would stop its partition at every try: its events are dead-lettered instead, to
        be sent again once the state is mended, and the state is left as it is. A forget in the
        batch deletes it (its watcher removes cannot be read from it) and its events are applied
        to a new state."""
        unreadable = {u: why for u, why in stored.items() if isinstance(why, str)}
        if not unreadable:
            return decoded
        forgotten = {r.user_id for _, r in decoded if isinstance(r, ForgetEvent) and r.user_id in unreadable}
        kept = []
        for event, record in decoded:
            if record.user_id in unreadable and record.user_id not in forgotten:
                await self.ctx.dead_letter(event, f"the stored state of user {record.user_id!r} cannot be read "
                                                  f"({unreadable[record.user_id]}); sent again once it is mended, or forgotten")
                continue
            kept.append((event, record))
        for user_id in unreadable:
            stored[user_id] = None  # only forgotten ones are still in the batch
        self.ctx.stats.user_states_unreadable += len(unreadable)
        log.warning("user states that cannot be read: %s", ", ".join(f"{u}: {w}" for u, w in unreadable.items()))
        return kept

    async def _await_unindexed_items(self, decoded: list[tuple[EventT, UserRecord]]) -> None:
        """A click on an item the index does not have may have overtaken its item record (still
        being encoded, by this worker or another): wait once for the catalogue to catch up, then
        the clicks whose items are still unknown are dead-lettered as ``unknown_item``."""
        wait, catalogue = self.ctx.settings.unknown_item_wait_s, self.catalogue
        if catalogue is None or not wait:
            return
        clicks = [(e, r) for e, r in decoded if isinstance(r, ClickEvent)]
        unknown = [e for (e, _), known in zip(clicks, self.ctx.index.known([r.item_id for _, r in clicks])) if not known]
        # Clicks produced before the last completed catch-up began cannot be waiting for their
        # items (a backlog of clicks on deleted items does not wait once per micro-batch).
        if any(not catalogue.covers(e.message.timestamp) for e in unknown):
            await catalogue.catch_up(wait)

    def _lesson_positions(self, inputs: list[UserInput]) -> set[int]:
        """The batch's clicks and reviews chosen as ranking lessons: one in ``learn_every``, by
        event id; at most ``learn_per_batch`` (evenly spread) when a batch has more."""
        cfg = self.ctx.settings.recommend.candidates
        engaged = [pos for pos, i in enumerate(inputs)
                   if isinstance(i.record, (ClickEvent, ReviewEvent)) and i.z is not None
                   and chosen_as_lesson(i.record.user_id, i.record.event_id, cfg.learn_every)]
        return set(evenly_spread(engaged, cfg.learn_per_batch))

    def _lessons(self, inputs: list[UserInput], views: dict[int, UserView], applied: list[int]) -> dict[int, Example]:
        """The applied chosen clicks and reviews (``views``: the user's state just before each) as
        ranking lessons: handed to the learner process when one runs (none returned: its steps are
        published as they come, ``publish_step``), else built here, per position (none where the
        item left the catalogue). One call for the whole batch's lessons."""
        rec = self.ctx.recommender
        if rec is None or not views:
            return {}
        chosen = [p for p in applied if p in views]
        lessons = []
        for pos in chosen:
            r = inputs[pos].record
            assert isinstance(r, (ClickEvent, ReviewEvent))
            lessons.append(Lesson(r.user_id, r.event_id, r.item_id, views[pos]))
        if lessons and self.learner is not None and self.learner.submit(lessons):
            return {}
        found = dict(zip(chosen, rec.examples(lessons)))
        return {pos: lesson for pos, lesson in found.items() if lesson is not None}

    async def publish_step(self, step: RankerStep) -> None:
        """A ranker step the learner process kept, on the engagements log on its own (every worker
        applies it there). Not among the sends a micro-batch waits for: it belongs to none."""
        await self.ctx.outbox.publish(ENGAGEMENTS.name, None, dump_json({"engagements": [], "ranker_step": step.to_dict()}),
                                      partition=0)

    async def _publish_engagements(self, decoded: list[tuple[EventT, UserRecord]],
                                   previous_items: dict[int, tuple[str, ...]], step: RankerStep | None) -> None:
        """The batch's applied clicks and reviews as ``engagements`` records (``engagement_records``),
        the last with the ranker step learned from them if one was kept (every worker folds them in;
        a few records per batch, not one per event: a send costs more than folding one in)."""
        weights = self.ctx.settings.decay.event_weights
        batch = []
        for pos, previous in previous_items.items():
            r = decoded[pos][1]
            assert isinstance(r, (ClickEvent, ReviewEvent))
            batch.append(Engagement(r.user_id, r.event_id, r.item_id, r.ts, weights[r.kind], list(previous)).to_dict())
        for record in engagement_records(batch, step):
            # One partition for all: every worker, and every restart, folds the records in the same
            # order, which the behaviour facet's SGD steps depend on (sums would not care).
            await self.ctx.outbox.send(ENGAGEMENTS.name, None, record, partition=0)

    def _observe_latency(self, decoded: list[tuple[EventT, UserRecord]], applied: list[int]) -> None:
        """Event -> profile latency of the applied events: from the record's arrival at the broker
        (its timestamp) and from its own event time."""
        now, metrics = time.time(), self.ctx.metrics
        for pos in applied:
            event, record = decoded[pos]
            if event.message.timestamp:
                metrics.event_to_profile.observe(max(0.0, now - event.message.timestamp))
            metrics.event_time_to_profile.observe(max(0.0, now - record.ts))

    async def _decode(self, batch: Sequence[EventT]) -> list[tuple[EventT, UserRecord]]:
        """Valid records in their user's partition, in order; the rest dead-lettered (bad input, or
        a ts far in the future) or, when in another partition, forwarded to the user's."""
        decoded, now = [], time.time()
        for event in batch:
            record = await self.ctx.decode(event)
            if record is None:
                continue
            if not isinstance(record, ForgetEvent):
                try:
                    check_event_time(record, self.ctx.settings, now)
                except InvalidEvent as exc:
                    await self.ctx.dead_letter(event, exc.reason)
                    continue
            if await self._forwarded(event, record):
                continue
            decoded.append((event, record))
        return decoded

    async def _forwarded(self, event: EventT, record: UserRecord) -> bool:
        """Send a record that is not in its user's partition to that partition of the repartition
        topic (acknowledged before its offset is committed, like every output)."""
        msg, partitions = event.message, self.ctx.settings.partitions
        target = partition_for(record.user_id, partitions)
        if msg.topic == USERS_REPARTITION.name or msg.partition == target:
            return False
        await self.ctx.outbox.send(USERS_REPARTITION.name, record.user_id.encode(), event.value, partition=target,
                                   headers=forward_headers(event))
        self.ctx.stats.misplaced_forwarded += 1
        return True

    def _inputs(self, decoded, vectors) -> tuple[list[UserInput], dict[int, int]]:
        """Each record with its facet vector (encoded text, or the clicked item's stored vector) and
        the entities its text names; and, per position, its row among the encoded texts."""
        inputs, text_row, row = [], {}, 0
        layout = self.ctx.layout
        clicks = [pos for pos, (_, r) in enumerate(decoded) if isinstance(r, ClickEvent)]
        clicked = dict(zip(clicks, self.ctx.index.joined_vectors([decoded[p][1].item_id for p in clicks])))
        for pos, (event, record) in enumerate(decoded):
            z, entities = None, ()
            text = text_of(record)
            if text is not None:
                z, text_row[pos] = join_facets(vectors.row(row), layout), row
                entities = tuple(self.entities.find(text))
                row += 1
            elif isinstance(record, ClickEvent):
                z = clicked[pos]  # None: an unknown item, rejected by apply_user_batch, dead-lettered above
            inputs.append(UserInput(record, source_of(event), z, entities))
        return inputs, text_row
