"""Wire codecs: orjson for records, and the vector codec for vectors inside JSON documents (base64
of little-endian float64: compact in JSON and exact). The users table's binary state keeps its
sums as raw float64 instead (streams/state/decay.py: InterestState.to_bytes)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson

from schemas.errors import InvalidEvent
from schemas.records import EVENT_TYPES, AnyEvent


def dump_json(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def load_json(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def json_array(obj: Any) -> np.ndarray:
    """A JSON document as a byte array: how strings and metadata go into a file of arrays
    (numpy's .npz, read without pickles: no Python objects)."""
    return np.frombuffer(dump_json(obj), dtype=np.uint8)


def string_list(array: np.ndarray) -> list[str]:
    """The list of strings ``json_array`` stored; ValueError if the array holds anything else."""
    values = from_json_array(array)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("expected a JSON list of strings")
    return values


def from_json_array(array: np.ndarray) -> Any:
    return load_json(np.asarray(array, dtype=np.uint8).tobytes())


def decode_event(raw: bytes | None, kind: str) -> AnyEvent:
    """Bytes from a topic -> a valid record of ``kind``, or :class:`InvalidEvent`."""
    if kind not in EVENT_TYPES:
        raise InvalidEvent(f"unknown event type {kind!r}; expected one of {sorted(EVENT_TYPES)}")
    if not raw:
        raise InvalidEvent("empty message value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson also rejects invalid UTF-8 and NaN literals here.
        raise InvalidEvent(f"not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEvent(f"expected a JSON object, got {type(data).__name__}")
    declared = data.get("type")
    if declared is not None and declared != kind:
        raise InvalidEvent(f"a '{declared}' event on the topic for '{kind}' events")
    return EVENT_TYPES[kind].from_dict(data)


def pack_vector(vec: np.ndarray) -> str:
    """Any-shaped array -> text (shape is not stored: the reader reshapes)."""
    return base64.b64encode(np.ascontiguousarray(vec, dtype="<f8").tobytes()).decode("ascii")


def unpack_vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").copy()
