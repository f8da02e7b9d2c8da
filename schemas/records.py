"""Typed event records and their validation.

Every inbound record is built with ``from_dict``, which either returns a fully valid, normalised
record or raises :class:`InvalidEvent` with a reason. Unknown extra fields are ignored so producers
can add fields without breaking older workers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Mapping

from schemas.errors import InvalidEvent

MAX_ID_LEN = 256
MAX_TEXT_CHARS = 20_000
# Ids that enter a user's stored id lists (event ids; the items of clicks, reviews and catalogue
# upserts) may not contain control characters: the lists are joined by one
# (streams/state/recent_ids.py). Ids that only name something to remove or a user keep the older
# rule, so whatever was stored before the rule can still be deleted and forgotten.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _require(data: Mapping[str, Any], name: str) -> Any:
    if name not in data or data[name] is None:
        raise InvalidEvent(f"missing required field '{name}'")
    return data[name]


def id_problem(value: str, *, stored_in_lists: bool = False) -> str | None:
    """Why ``value`` cannot be an id (records and the HTTP API's paths refuse the same ones), or
    None. ``stored_in_lists``: the id enters users' stored id lists (see ``_CONTROL``)."""
    if not value:
        return "must not be empty"
    if len(value) > MAX_ID_LEN:
        return f"is longer than {MAX_ID_LEN} characters"
    if stored_in_lists and (bad := _CONTROL.search(value)):
        return f"contains the control character {bad.group()!r} at {bad.start()}"
    return None


def _id(data: Mapping[str, Any], name: str, *, stored_in_lists: bool = False) -> str:
    value = _require(data, name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidEvent(f"field '{name}' must be a string id, got {type(value).__name__}")
    value = str(value).strip()
    if (problem := id_problem(value, stored_in_lists=stored_in_lists)) is not None:
        raise InvalidEvent(f"field '{name}' {problem}")
    return value


def _text(data: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    if not required and data.get(name) is None:
        return ""
    value = _require(data, name)
    if not isinstance(value, str):
        raise InvalidEvent(f"field '{name}' must be a string, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise InvalidEvent(f"field '{name}' must not be empty")
    # Longer texts are cut here; the encoder truncates to the model's token limit anyway.
    return value[:MAX_TEXT_CHARS]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"field '{name}' must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidEvent(f"field '{name}' must be finite, got {value!r}")
    return float(value)


def _timestamp(data: Mapping[str, Any], name: str = "ts") -> float:
    """Epoch seconds (number) or an ISO-8601 string with a timezone."""
    value = _require(data, name)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidEvent(f"field '{name}' is not an ISO-8601 time: {value!r}") from exc
        if parsed.tzinfo is None:
            raise InvalidEvent(f"field '{name}' needs a timezone (e.g. a trailing 'Z'): {value!r}")
        return parsed.timestamp()
    ts = _number(value, name)
    if ts < 0:
        raise InvalidEvent(f"field '{name}' must be epoch seconds >= 0, got {ts}")
    return ts


@dataclass(frozen=True)
class SearchEvent:
    kind: ClassVar[str] = "search"
    event_id: str
    user_id: str
    query: str
    ts: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchEvent:
        return cls(_id(data, "event_id", stored_in_lists=True), _id(data, "user_id"), _text(data, "query"), _timestamp(data))


@dataclass(frozen=True)
class ClickEvent:
    kind: ClassVar[str] = "click"
    event_id: str
    user_id: str
    item_id: str
    ts: float
    dwell_s: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClickEvent:
        dwell = data.get("dwell_s")
        if dwell is not None:
            dwell = _number(dwell, "dwell_s")
            if dwell < 0:
                raise InvalidEvent(f"field 'dwell_s' must be >= 0, got {dwell}")
        return cls(_id(data, "event_id", stored_in_lists=True), _id(data, "user_id"), _id(data, "item_id", stored_in_lists=True),
                   _timestamp(data), dwell)


@dataclass(frozen=True)
class ReviewEvent:
    kind: ClassVar[str] = "review"
    event_id: str
    user_id: str
    item_id: str
    text: str
    rating: int
    ts: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewEvent:
        rating = _number(_require(data, "rating"), "rating")
        if rating != int(rating) or not 1 <= rating <= 5:
            raise InvalidEvent(f"field 'rating' must be a whole number from 1 to 5, got {rating:g}")
        return cls(
            _id(data, "event_id", stored_in_lists=True),
            _id(data, "user_id"),
            _id(data, "item_id", stored_in_lists=True),
            _text(data, "text"),
            int(rating),
            _timestamp(data),
        )


@dataclass(frozen=True)
class ItemEvent:
    kind: ClassVar[str] = "item"
    OPS: ClassVar[tuple[str, ...]] = ("upsert", "delete")
    event_id: str
    item_id: str
    op: str
    ts: float
    title: str = ""
    text: str = ""
    category: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemEvent:
        op = data.get("op", "upsert")
        if op not in cls.OPS:
            raise InvalidEvent(f"field 'op' must be one of {', '.join(cls.OPS)}, got {op!r}")
        upsert = op == "upsert"
        title = _text(data, "title", required=upsert)
        return cls(
            _id(data, "event_id"),
            _id(data, "item_id", stored_in_lists=upsert),  # a delete may name an item stored before the rule
            op,
            _timestamp(data),
            title,
            _text(data, "text", required=False),
            _text(data, "category", required=False),
        )

    @property
    def document(self) -> str:
        """The text that represents the item to the encoder."""
        return f"{self.title}. {self.text}".strip() if self.text else self.title


@dataclass(frozen=True)
class ForgetEvent:
    """Erase a user's profile (tombstone in the changelog). Later events start a new profile."""

    kind: ClassVar[str] = "forget"
    event_id: str
    user_id: str
    ts: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ForgetEvent:
        return cls(_id(data, "event_id"), _id(data, "user_id"), _timestamp(data))


_TICKER = re.compile(r"^[A-Z][A-Z0-9]{0,5}([.-][A-Z0-9]{1,2})?$")
MAX_TICKERS = 50


def ticker(value: Any, name: str = "ticker") -> str:
    """A ticker symbol, upper-cased, with an optional leading '$' removed ('$aapl' -> 'AAPL')."""
    if not isinstance(value, str):
        raise InvalidEvent(f"field '{name}' must be a string ticker, got {type(value).__name__}")
    symbol = value.strip().lstrip("$").upper()
    if not _TICKER.match(symbol):
        raise InvalidEvent(f"field '{name}' is not a ticker symbol (like AAPL or BRK.B): {value!r}")
    return symbol


@dataclass(frozen=True)
class NewsEvent:
    """A news item. Entities come from ``tickers`` plus what the worker finds in the text."""

    kind: ClassVar[str] = "news"
    event_id: str
    headline: str
    ts: float
    body: str = ""
    source: str = ""
    tickers: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NewsEvent:
        raw = data.get("tickers") or []
        if not isinstance(raw, list):
            raise InvalidEvent(f"field 'tickers' must be a list of symbols, got {type(raw).__name__}")
        if len(raw) > MAX_TICKERS:
            raise InvalidEvent(f"field 'tickers' has {len(raw)} symbols; at most {MAX_TICKERS}")
        tickers = tuple(dict.fromkeys(ticker(t, "tickers") for t in raw))
        source = data.get("source") or ""
        if not isinstance(source, str):
            raise InvalidEvent(f"field 'source' must be a string, got {type(source).__name__}")
        return cls(
            _id(data, "event_id"),
            _text(data, "headline"),
            _timestamp(data),
            _text(data, "body", required=False),
            source.strip()[:MAX_ID_LEN],
            tickers,
        )

    @property
    def document(self) -> str:
        """What the encoder reads: the headline carries most of the sentiment, the body the rest."""
        return f"{self.headline}. {self.body}" if self.body else self.headline


@dataclass(frozen=True)
class WatchlistEvent:
    """A user follows (``add``) or stops following (``remove``) an entity. Keyed by user id, like
    the user's other events, so it is applied in order with them."""

    kind: ClassVar[str] = "watchlist"
    OPS: ClassVar[tuple[str, ...]] = ("add", "remove")
    event_id: str
    user_id: str
    entity: str
    op: str
    ts: float
    source: str = "watchlist"  # or "interest": added because the user's own events mention it

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WatchlistEvent:
        op = data.get("op", "add")
        if op not in cls.OPS:
            raise InvalidEvent(f"field 'op' must be one of {', '.join(cls.OPS)}, got {op!r}")
        source = data.get("source", "watchlist")
        if source not in ("watchlist", "interest"):
            raise InvalidEvent(f"field 'source' must be 'watchlist' or 'interest', got {source!r}")
        return cls(_id(data, "event_id", stored_in_lists=True), _id(data, "user_id"), ticker(_require(data, "entity"), "entity"), op,
                   _timestamp(data), source)


InterestEvent = SearchEvent | ClickEvent | ReviewEvent  # events that move a user's Z
UserRecord = InterestEvent | ForgetEvent | WatchlistEvent  # everything on the user topics
AnyEvent = SearchEvent | ClickEvent | ReviewEvent | ItemEvent | ForgetEvent | NewsEvent | WatchlistEvent
EVENT_TYPES: dict[str, type[AnyEvent]] = {
    t.kind: t for t in (SearchEvent, ClickEvent, ReviewEvent, ItemEvent, ForgetEvent, NewsEvent, WatchlistEvent)
}
