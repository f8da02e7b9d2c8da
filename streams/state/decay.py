"""Decay-weighted average of a user's facet vectors in O(1) state.

    Z(t) = sum_i w_i e^{-(t - t_i)/tau} z_i / sum_i w_i e^{-(t - t_i)/tau}

The common factor e^{-t/tau} cancels, so Z does not depend on the query time t and the state is
just (num, den) anchored at a reference time t_ref = the newest event time seen:
    num = sum_i w_i e^{-(t_ref - t_i)/tau} z_i,   den = sum_i w_i e^{-(t_ref - t_i)/tau}.
A newer event moves the anchor (rescaling num and den, all factors <= 1, so nothing overflows); an
older, out-of-order event is simply added with its smaller factor. Sums commute, so the result is
independent of arrival order. tau = half_life / ln 2.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from schemas import pack_vector, unpack_vector
from streams.state.recent_ids import RecentIds

# The users table's value: this prefix, the length of a JSON header (every other field), the
# header, ``num`` as raw little-endian float64, then the seen items' and the recent event ids'
# texts (streams/state/recent_ids.py) as UTF-8, their byte sizes in the header. A state read and
# written per user per micro-batch as base64 in a JSON document cost a third more bytes and two
# codec passes (#14). NUL first: no JSON document (the format before them, still read) starts
# with it; "IS1" (the ids as JSON lists in the header) is still read too.
STATE_MAGIC = b"\x00IS2"
_STATE_MAGIC_IS1 = b"\x00IS1"
_HEADER_LEN = struct.Struct("<I")


@dataclass
class InterestState:
    num: np.ndarray | None = None  # float64, facets concatenated in the encoder's layout order
    den: float = 0.0
    t_ref: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    seen_items: RecentIds = field(default_factory=RecentIds)  # most recent last
    updated_at: float = 0.0
    last_event_id: str = ""
    # Highest offset applied per source "topic:partition": a redelivered event (after a crash
    # between the table write and the offset commit) is recognised and not applied twice.
    offsets: dict[str, int] = field(default_factory=dict)
    recent_event_ids: RecentIds = field(default_factory=RecentIds)  # to drop a re-sent event (new offset)
    # Entities (tickers) the user's events name, as decayed weights anchored at entities_t_ref
    # (same decay as Z), the ones they follow, and the ones an interest subscription was sent for.
    entities: dict[str, float] = field(default_factory=dict)
    entities_t_ref: float = 0.0
    follows: list[str] = field(default_factory=list)
    subscribed: list[str] = field(default_factory=list)
    # Interest subscriptions dropped, most recent last (a few): sent again as removes when a
    # crash may have lost them (streams/state/updates.py).
    unsubscribed: list[str] = field(default_factory=list)
    # The user's last few applied events and how far each moved each facet of Z (1 - cosine
    # between the facet before and after it), for explanations.
    movers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.num is None

    def add(self, z: np.ndarray, weight: float, ts: float, half_life_s: float) -> None:
        """Fold one event's vector z (weight w, event time ts) into the average."""
        z = np.asarray(z, dtype=np.float64)
        lam = math.log(2.0) / half_life_s
        if self.num is None:
            self.num, self.den, self.t_ref = weight * z, float(weight), float(ts)
            return
        if ts > self.t_ref:
            factor = math.exp(-lam * (ts - self.t_ref))
            self.num = self.num * factor
            self.den *= factor
            self.t_ref = float(ts)
            self.num += weight * z
            self.den += weight
        else:
            factor = math.exp(-lam * (self.t_ref - ts))
            self.num += (weight * factor) * z
            self.den += weight * factor

    def mean(self) -> np.ndarray:
        if self.num is None:
            raise ValueError("no events applied yet")
        if self.den <= 0.0:
            return np.zeros_like(self.num)
        return self.num / self.den

    def mass(self, at: float, half_life_s: float) -> float:
        """Total decayed weight at time ``at`` (>= t_ref): how much recent evidence there is."""
        lam = math.log(2.0) / half_life_s
        return self.den * math.exp(-lam * max(0.0, at - self.t_ref))

    def note_entities(self, entities: list[str], weight: float, ts: float, half_life_s: float,
                      limit: int = 50) -> None:
        """Add ``weight`` (decayed from ``ts``) to each entity an event names; keep the top ``limit``."""
        if not entities:
            return
        lam = math.log(2.0) / half_life_s
        if not self.entities or ts > self.entities_t_ref:
            factor = math.exp(-lam * (ts - self.entities_t_ref)) if self.entities else 1.0
            self.entities = {e: w * factor for e, w in self.entities.items()}
            self.entities_t_ref = float(ts)
            add = weight
        else:
            add = weight * math.exp(-lam * (self.entities_t_ref - ts))
        for entity in entities:
            self.entities[entity] = self.entities.get(entity, 0.0) + add
        if len(self.entities) > limit:
            self.entities = dict(sorted(self.entities.items(), key=lambda kv: -kv[1])[:limit])

    def entity_weights(self, at: float, half_life_s: float) -> dict[str, float]:
        """Decayed weight per entity at time ``at`` (>= the newest event), largest first."""
        factor = math.exp(-math.log(2.0) / half_life_s * max(0.0, at - self.entities_t_ref))
        return {e: w * factor for e, w in sorted(self.entities.items(), key=lambda kv: -kv[1])}

    def remember_item(self, item_id: str, limit: int) -> None:
        self.seen_items.add(item_id, limit)

    def to_dict(self) -> dict[str, Any]:
        return {"num": pack_vector(self.num) if self.num is not None else None, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        """Every field but ``num``, as JSON values."""
        return {**self._header(), "seen_items": list(self.seen_items), "recent_event_ids": list(self.recent_event_ids)}

    def _header(self) -> dict[str, Any]:
        """Every field but ``num`` and the two id lists, as JSON values."""
        return {
            "den": self.den,
            "t_ref": self.t_ref,
            "counts": self.counts,
            "updated_at": self.updated_at,
            "last_event_id": self.last_event_id,
            "offsets": self.offsets,
            "entities": self.entities,
            "entities_t_ref": self.entities_t_ref,
            "follows": self.follows,
            "subscribed": self.subscribed,
            "unsubscribed": self.unsubscribed,
            "movers": self.movers,
        }

    def to_bytes(self) -> bytes:
        seen, recent = self.seen_items.text.encode(), self.recent_event_ids.text.encode()
        header = {**self._header(), "num_size": None if self.num is None else self.num.size, "seen_size": len(seen)}
        head = orjson.dumps(header)
        body = b"" if self.num is None else np.ascontiguousarray(self.num, dtype="<f8").tobytes()
        return b"".join((STATE_MAGIC, _HEADER_LEN.pack(len(head)), head, body, seen, recent))

    @classmethod
    def from_bytes(cls, raw: bytes) -> InterestState:
        """A state from ``to_bytes``, or from either format the users table held before it;
        ValueError, with the reason, for bytes that are none of them."""
        try:
            return cls._from_bytes(raw)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, struct.error) as exc:
            raise ValueError(f"not a stored user state ({len(raw)} bytes): {exc!r:.200}") from None

    @classmethod
    def _from_bytes(cls, raw: bytes) -> InterestState:
        magic = raw[: len(STATE_MAGIC)]
        if magic not in (STATE_MAGIC, _STATE_MAGIC_IS1):
            return cls.from_dict(orjson.loads(raw))
        at = len(STATE_MAGIC) + _HEADER_LEN.size
        (size,) = _HEADER_LEN.unpack_from(raw, len(STATE_MAGIC))
        header = orjson.loads(raw[at : at + size])
        header["num"] = None
        state = cls.from_dict(header)  # IS1: the id lists are in the header
        at += size
        if header["num_size"] is not None:
            state.num = np.frombuffer(raw, dtype="<f8", count=header["num_size"], offset=at).copy()
            at += 8 * header["num_size"]
        if magic == STATE_MAGIC:
            seen_end = at + header["seen_size"]
            if seen_end > len(raw):  # a slice would come back short without a word
                raise ValueError(f"a stored user state is cut short: {len(raw)} bytes, its header needs {seen_end}+")
            state.seen_items = RecentIds.from_text(raw[at:seen_end].decode())
            state.recent_event_ids = RecentIds.from_text(raw[seen_end:].decode())
        return state

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InterestState:
        return cls(
            num=unpack_vector(data["num"]) if data.get("num") else None,
            den=float(data["den"]),
            t_ref=float(data["t_ref"]),
            counts=dict(data.get("counts", {})),
            seen_items=RecentIds(data.get("seen_items", ())),
            updated_at=float(data.get("updated_at", 0.0)),
            last_event_id=str(data.get("last_event_id", "")),
            offsets={k: int(v) for k, v in data.get("offsets", {}).items()},
            recent_event_ids=RecentIds(data.get("recent_event_ids", ())),
            entities={k: float(v) for k, v in data.get("entities", {}).items()},
            entities_t_ref=float(data.get("entities_t_ref", 0.0)),
            follows=list(data.get("follows", [])),
            subscribed=list(data.get("subscribed", [])),
            unsubscribed=list(data.get("unsubscribed", [])),
            movers=list(data.get("movers", [])),
        )
