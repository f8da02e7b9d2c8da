"""The bundled news stream's valid records (the malformed ones in it are there on purpose)."""

from __future__ import annotations

import orjson

from schemas import decode_event


def valid_news(news):
    out = []
    for n in news:
        try:
            out.append(decode_event(orjson.dumps(n), "news"))
        except Exception:  # noqa: BLE001 - the malformed ones on purpose
            pass
    return out
