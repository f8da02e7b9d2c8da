"""Generate the bundled news stream streams/tools/demo_data/news.jsonl (deterministic; re-run to regenerate).

Six companies get steady, mixed coverage (positive, neutral and negative headlines) for four days.
At TURN_TS Tesla's coverage turns negative and triples in volume; nothing else changes. A few
malformed records (dead-lettered) and headlines naming no known company are mixed in. The alerting
test expects exactly one shift alert, for TSLA, soon after TURN_TS, and none for the others.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson

OUT = Path(__file__).resolve().parent.parent / "streams" / "tools" / "demo_data" / "news.jsonl"
HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAYS = 4
TURN_TS = T0 + 2.5 * 24 * HOUR
TURNING = "TSLA"
COMPANIES = {"AAPL": "Apple", "MSFT": "Microsoft", "JPM": "JPMorgan", "NVDA": "Nvidia", "XOM": "Exxon Mobil",
             "TSLA": "Tesla"}

POSITIVE = [
    "{n} beats analyst estimates as revenue climbs", "{n} raises full-year guidance on strong demand",
    "Analysts upgrade {n} to buy", "{n} shares rally after a strong quarter",
    "{n} announces a $5 billion share buyback", "{n} wins major government contract",
    "{n} posts record quarterly revenue", "{n} stock jumps on upbeat outlook",
]
NEGATIVE = [
    "{n} misses estimates as sales slow", "{n} cuts guidance on weak demand", "Analyst downgrades {n} to sell",
    "{n} shares tumble after disappointing results", "Regulators open probe into {n}",
    "{n} announces layoffs amid slowdown", "{n} recalls vehicles over safety defect", "{n} faces lawsuit from investors",
]
NEUTRAL = [
    "{n} to present at industry conference next week", "{n} schedules quarterly earnings call",
    "{n} names new chief financial officer", "{n} opens new office in Austin",
    "{n} annual shareholder meeting set for May", "What to watch in {n} earnings this week",
    "{n} updates its board committee charters", "{n} files routine quarterly report",
]
BODIES = {"pos": "Investors welcomed the news.", "neu": "The company gave no further details.",
          "neg": "Investors reacted with concern."}
SOURCES = ["demo-wire"]  # one feed: replay keys news by source, so the feed stays in order


def headline(rng: random.Random, ticker: str, mood: str) -> tuple[str, list[str]]:
    """A headline naming the company by name, by cashtag, or only in the tickers field."""
    template = rng.choice({"pos": POSITIVE, "neg": NEGATIVE, "neu": NEUTRAL}[mood])
    style = rng.random()
    if style < 0.6:
        return template.format(n=COMPANIES[ticker]), []
    if style < 0.8:
        return template.format(n=f"${ticker}"), []
    return template.format(n="the company"), [ticker]


def main() -> None:
    rng = random.Random(11)
    rows: list[dict] = []
    n = 0
    for ticker in COMPANIES:
        t = T0
        while True:
            turned = ticker == TURNING and t >= TURN_TS
            t += rng.expovariate((3.0 if turned else 1.0) / HOUR)  # about one an hour, three after a turn
            if t >= T0 + DAYS * 24 * HOUR:
                break
            turned = ticker == TURNING and t >= TURN_TS
            if turned:
                mood = "neg" if rng.random() < 0.95 else "neu"
            else:
                mood = rng.choices(["pos", "neu", "neg"], weights=[0.35, 0.4, 0.25])[0]
            text, tickers = headline(rng, ticker, mood)
            n += 1
            row = {"type": "news", "event_id": f"news-{n:05d}", "headline": text, "body": BODIES[mood],
                   "source": rng.choice(SOURCES), "ts": round(t, 1)}
            if tickers:
                row["tickers"] = tickers
            rows.append(row)
    for _ in range(10):  # market-wide news that names no company in the table
        n += 1
        rows.append({"type": "news", "event_id": f"news-{n:05d}", "headline": "Stocks drift ahead of the jobs report",
                     "body": "", "source": "wire", "ts": T0 + rng.uniform(0, DAYS * 24 * HOUR)})
    rows.append({"type": "news", "event_id": "bad-news-1", "headline": "", "ts": T0 + HOUR})  # empty headline
    rows.append({"type": "news", "event_id": "bad-news-2", "headline": "Nvidia soars", "ts": "yesterday"})
    rows.append({"type": "news", "event_id": "bad-news-3", "headline": "Apple rises", "ts": T0, "tickers": "AAPL"})
    rows.sort(key=lambda r: r["ts"] if isinstance(r["ts"], float) else T0)
    with open(OUT, "wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
    print(f"wrote {len(rows)} news records to {OUT}; {TURNING} turns negative at {TURN_TS:.0f}")


if __name__ == "__main__":
    main()
