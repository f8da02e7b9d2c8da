"""Event records, validation and wire codecs. Imports nothing else of interest-stream."""

from schemas.codec import decode_event, dump_json, load_json, pack_vector, unpack_vector
from schemas.errors import InvalidEvent
from schemas.records import (
    EVENT_TYPES,
    ClickEvent,
    DeadLetter,
    ForgetEvent,
    ItemEvent,
    ReviewEvent,
    SearchEvent,
    UserProfile,
)

__all__ = [
    "EVENT_TYPES",
    "ClickEvent",
    "DeadLetter",
    "ForgetEvent",
    "InvalidEvent",
    "ItemEvent",
    "ReviewEvent",
    "SearchEvent",
    "UserProfile",
    "decode_event",
    "dump_json",
    "load_json",
    "pack_vector",
    "unpack_vector",
]
