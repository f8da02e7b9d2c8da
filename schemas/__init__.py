"""Event records, validation and wire codecs. Imports nothing else of interest-stream."""

from schemas.codec import decode_event, dump_json, load_json, pack_vector, unpack_vector
from schemas.errors import InvalidEvent
from schemas.records import (
    EVENT_TYPES,
    Alert,
    ClickEvent,
    DeadLetter,
    ForgetEvent,
    ItemEvent,
    NewsEvent,
    ReviewEvent,
    SearchEvent,
    UserProfile,
    WatchlistEvent,
    ticker,
)

__all__ = [
    "EVENT_TYPES",
    "Alert",
    "ClickEvent",
    "DeadLetter",
    "ForgetEvent",
    "InvalidEvent",
    "ItemEvent",
    "NewsEvent",
    "ReviewEvent",
    "SearchEvent",
    "UserProfile",
    "WatchlistEvent",
    "decode_event",
    "dump_json",
    "load_json",
    "pack_vector",
    "ticker",
    "unpack_vector",
]
