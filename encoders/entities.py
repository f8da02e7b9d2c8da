"""Entities (tickers) in text: cashtags and the company names of a ticker table.

The shipped table (encoders/data/tickers.csv: ticker,name,aliases with aliases split by '|')
covers large US listings; a deployment passes its own file with the same columns. Matching is
deliberately simple and predictable: cashtags ($AAPL) always count, names and aliases count when
they appear case-sensitively on word boundaries ("Apple" yes, "apple pie" no). Bare ticker
symbols in running text are not matched: too many are English words (T, F, ALL, NOW).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable

from encoders.errors import EntityTableError

_CASHTAG = re.compile(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9]{0,5}(?:[.-][A-Za-z0-9]{1,2})?)\b")
_SUFFIX = re.compile(r",?\s+(Inc\.?|Corporation|Corp\.?|Company|Co\.?|Holdings|Group|plc|Ltd\.?)$")


def bundled_tickers_path() -> Path:
    return Path(str(resources.files("encoders") / "data" / "tickers.csv"))


@dataclass(frozen=True)
class Entity:
    ticker: str
    name: str


class EntityTable:
    """Ticker table + matcher. ``find(text)`` -> tickers in order of first mention."""

    def __init__(self, entities: Iterable[tuple[str, str, Iterable[str]]]) -> None:
        self.entities: dict[str, Entity] = {}
        names: dict[str, str] = {}
        for ticker, name, aliases in entities:
            ticker = ticker.strip().upper()
            self.entities[ticker] = Entity(ticker, name.strip())
            short = _SUFFIX.sub("", name.strip())
            for alias in (name.strip(), short, *aliases):
                alias = alias.strip()
                if len(alias) >= 2:
                    names[alias] = ticker
        # Longest first, so "Bank of America" wins over a shorter alias inside it.
        ordered = sorted(names, key=len, reverse=True)
        self._names = names
        self._pattern = (
            re.compile(r"(?<![\w&])(" + "|".join(re.escape(n) for n in ordered) + r")(?![\w&])") if ordered else None
        )

    @classmethod
    def from_csv(cls, path: str | Path | None = None) -> EntityTable:
        path = Path(path) if path else bundled_tickers_path()
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames is None or not {"ticker", "name"} <= set(reader.fieldnames):
                    raise EntityTableError(f"{path}: needs a header with columns ticker,name[,aliases]")
                rows = []
                for line, row in enumerate(reader, start=2):
                    if not (row.get("ticker") or "").strip() or not (row.get("name") or "").strip():
                        raise EntityTableError(f"{path}:{line}: ticker and name must not be empty")
                    rows.append((row["ticker"], row["name"], (row.get("aliases") or "").split("|")))
        except OSError as exc:
            raise EntityTableError(f"cannot read the ticker table {path}: {exc}") from exc
        return cls(rows)

    def name_of(self, ticker: str) -> str:
        entity = self.entities.get(ticker)
        return entity.name if entity else ticker

    def find(self, text: str, given: Iterable[str] = ()) -> list[str]:
        found = dict.fromkeys(t.upper() for t in given)
        for match in _CASHTAG.finditer(text):
            found.setdefault(match.group(1).upper())
        if self._pattern is not None:
            for match in self._pattern.finditer(text):
                found.setdefault(self._names[match.group(1)])
        return list(found)
