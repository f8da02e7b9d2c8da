"""A bounded list of the most recent distinct ids (a user's seen items, recent event ids), held as
one string.

Why one string: a user's state kept up to 500 seen item ids and 100 event ids as Python lists,
hundreds of small objects scattered over the heap that every click touched again (a membership
scan, a removal, the JSON dump of the state) after they had gone cold in the CPU's cache. Users
with 280 clicks cost 40 % more worker CPU per click than users with 40 (benchmarks/RESULTS.md,
2026-12-07, fourth session), half of it there. In one string the same operations are scans and
copies of a few kB of contiguous memory, and the state's writer stores it as it is.

Ids are joined by ``SEP`` (the ASCII unit separator), with one before the first and one after the
last, so ``SEP + id + SEP`` finds an id exactly. The ids kept here cannot contain it: records
refuse control characters in event ids and in the item ids of clicks, reviews and item upserts
(schemas/records.py), and ``add`` refuses it.
"""

from __future__ import annotations

from typing import Iterable, Iterator

SEP = "\x1f"


class RecentIds:
    """Distinct ids, oldest first; adding one already there moves it to the end."""

    __slots__ = ("_text", "_count")

    def __init__(self, ids: Iterable[str] = ()) -> None:
        """From ids oldest first (a repeated one keeps its last place); empty ids and ids containing
        ``SEP`` (possible only in states stored before records refused control characters in
        them) are dropped."""
        last: dict[str, None] = {}  # insertion-ordered: a repeated id moves to the end
        for i in ids:
            if i and SEP not in i:
                last.pop(i, None)
                last[i] = None
        self._text = f"{SEP}{SEP.join(last)}{SEP}" if last else ""
        self._count = len(last)

    @classmethod
    def from_text(cls, text: str) -> RecentIds:
        """From ``text`` as written by ``text`` (the stored state's field)."""
        out = cls()
        count = text.count(SEP) - 1
        if count > 0:
            out._text, out._count = text, count
        return out

    @property
    def text(self) -> str:
        return self._text

    def add(self, item: str, limit: int | None) -> None:
        """Make ``item`` the most recent, keeping at most ``limit`` (>= 1; None: no bound) ids."""
        if SEP in item or not item:
            raise ValueError(f"an id must be non-empty and without {SEP!r}: {item!r}")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {limit}")
        needle = f"{SEP}{item}{SEP}"
        text = self._text
        at = text.find(needle)
        if at >= 0:  # drop its earlier place, keeping the separator after it
            text = text[:at] + text[at + len(needle) - 1 :]
            self._count -= 1
        self._text = f"{text or SEP}{item}{SEP}"
        self._count += 1
        if limit is not None and self._count > limit:
            cut = 0
            for _ in range(self._count - limit):
                cut = self._text.index(SEP, cut + 1)
            self._text = self._text[cut:]
            self._count = limit

    def latest(self, n: int | None = None) -> list[str]:
        """The ``n`` most recent ids (None: all), most recent first."""
        if not self._count:
            return []
        if n is None or n >= self._count:
            return self._text[1:-1].split(SEP)[::-1]
        if n <= 0:
            return []
        return self._text[:-1].rsplit(SEP, n)[:0:-1]

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and f"{SEP}{item}{SEP}" in self._text

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        """Oldest first."""
        return iter(self._text[1:-1].split(SEP) if self._count else ())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecentIds):
            return self._text == other._text
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"RecentIds({list(self)!r})"
