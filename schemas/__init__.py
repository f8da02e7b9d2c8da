"""Records (inbound and published), validation, codecs, the topic table and the facet layout.
Imports nothing else of interest-stream."""

from schemas.codec import decode_event, dump_json, load_json, pack_vector, unpack_vector
from schemas.errors import InterestStreamError, InvalidEvent
from schemas.facets import FACET_NAMES, SENTIMENT_LABELS, join_facets, l2_normalise, split_facets, unit_facets
from schemas.outputs import Alert, DeadLetter, Engagement, RankerStep, UserProfile
from schemas.records import (
    EVENT_TYPES,
    MAX_ID_LEN,
    MAX_TICKERS,
    ClickEvent,
    ForgetEvent,
    InterestEvent,
    ItemEvent,
    NewsEvent,
    ReviewEvent,
    SearchEvent,
    UserRecord,
    WatchlistEvent,
    id_problem,
    ticker,
)

__all__ = [
    "EVENT_TYPES",
    "FACET_NAMES",
    "MAX_ID_LEN",
    "MAX_TICKERS",
    "SENTIMENT_LABELS",
    "Alert",
    "ClickEvent",
    "DeadLetter",
    "ForgetEvent",
    "InterestEvent",
    "InterestStreamError",
    "InvalidEvent",
    "ItemEvent",
    "NewsEvent",
    "ReviewEvent",
    "SearchEvent",
    "Engagement",
    "RankerStep",
    "UserProfile",
    "UserRecord",
    "WatchlistEvent",
    "id_problem",
    "decode_event",
    "dump_json",
    "join_facets",
    "l2_normalise",
    "load_json",
    "pack_vector",
    "split_facets",
    "ticker",
    "unit_facets",
    "unpack_vector",
]
