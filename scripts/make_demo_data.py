"""Generate the bundled demo data in streams/tools/demo_data/ (deterministic; re-run to regenerate).

A small catalogue in six categories, and users whose tastes visibly shift: each user has one
category before the shift and another after it, with searches, clicks and reviews in both phases.
Output files: items.jsonl, before.jsonl, after.jsonl (one JSON event per line, with a 'type').
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson

OUT = Path(__file__).resolve().parent.parent / "streams" / "tools" / "demo_data"
DAY = 86400.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

CATALOGUE = {
    "running gear": {
        "things": ["trail running shoes", "road running shoes", "running vest", "GPS running watch",
                   "compression socks", "running shorts", "hydration belt", "reflective running jacket",
                   "marathon energy gels", "foam roller"],
        "detail": ["cushioned for long distances", "light and breathable for race day", "grippy outsole for muddy trails",
                   "tracks pace, heart rate and intervals", "keeps you dry on wet morning runs"],
        "searches": ["best trail running shoes", "marathon training gear", "running watch with gps",
                     "lightweight running jacket", "shoes for half marathon", "running hydration vest"],
    },
    "audio": {
        "things": ["noise cancelling headphones", "wireless earbuds", "bookshelf speakers", "portable bluetooth speaker",
                   "studio monitor headphones", "soundbar", "turntable", "USB microphone", "DAC amplifier",
                   "hi-fi stereo receiver"],
        "detail": ["deep bass and clear highs", "long battery life and low latency", "balanced studio sound",
                   "active noise cancellation for flights", "warm analogue sound for vinyl"],
        "searches": ["best noise cancelling headphones", "wireless earbuds with good bass", "hifi speakers for vinyl",
                     "bluetooth speaker waterproof", "headphones for music production", "soundbar for tv"],
    },
    "cooking": {
        "things": ["cast iron skillet", "chef's knife", "dutch oven", "stand mixer", "espresso machine",
                   "non-stick frying pan", "rice cooker", "knife sharpening stone", "spice grinder", "pasta maker"],
        "detail": ["even heat for searing steak", "sharp carbon steel blade", "bakes crusty sourdough bread",
                   "makes fresh pasta at home", "pulls rich espresso shots"],
        "searches": ["cast iron pan for steak", "best chef knife", "dutch oven sourdough", "home espresso machine",
                     "fresh pasta recipe tools", "kitchen knife sharpening"],
    },
    "camping": {
        "things": ["two-person tent", "down sleeping bag", "camping stove", "trekking poles", "headlamp",
                   "inflatable sleeping pad", "water filter", "hiking backpack", "camp cookware set", "hammock"],
        "detail": ["packs small for backpacking trips", "warm on cold nights in the mountains",
                   "boils water fast at camp", "survives wind and rain", "filters stream water safely"],
        "searches": ["lightweight backpacking tent", "sleeping bag for winter camping", "camping stove for hiking",
                     "best hiking backpack", "water filter for backcountry", "headlamp for camping"],
    },
    "science fiction books": {
        "things": ["space opera novel", "cyberpunk thriller", "time travel novel", "first contact story",
                   "dystopian novel", "hard science fiction anthology", "galactic empire saga", "robot detective novel",
                   "post-apocalyptic novel", "alien invasion epic"],
        "detail": ["starships, empires and interstellar war", "hackers and megacorporations in a neon city",
                   "paradoxes across centuries", "humanity meets an alien intelligence", "a bleak future society"],
        "searches": ["best space opera books", "cyberpunk novels", "science fiction book recommendations",
                     "time travel sci-fi novel", "books like dune", "hard sci-fi authors"],
    },
    "board games": {
        "things": ["strategy board game", "cooperative board game", "party card game", "deck building game",
                   "chess set", "war game with miniatures", "trivia game", "puzzle game", "dice game", "legacy campaign game"],
        "detail": ["tense strategy for game night", "players work together to win", "laughs with a big group",
                   "build your engine turn by turn", "a long campaign across many evenings"],
        "searches": ["best board games for game night", "cooperative board games", "strategy games for two players",
                     "party games for adults", "deck building games", "board game with miniatures"],
    },
}

POSITIVE = ["Absolutely love it, works perfectly and feels great.", "Excellent quality, would buy again!",
            "Fantastic, exactly what I wanted. Highly recommend.", "Great value and really well made."]
NEGATIVE = ["Disappointing, it broke after a week.", "Poor quality and overpriced. Returned it.",
            "Terrible, does not work as described.", "Not good, I regret buying this."]


def main() -> None:
    rng = random.Random(7)
    OUT.mkdir(parents=True, exist_ok=True)
    items: list[dict] = []
    by_category: dict[str, list[str]] = {}
    for cat, spec in CATALOGUE.items():
        for j, thing in enumerate(spec["things"]):
            item_id = f"{cat.split()[0][:4]}-{j:02d}"
            items.append({
                "type": "item", "event_id": f"item-{item_id}", "item_id": item_id, "op": "upsert",
                "title": thing.capitalize(), "text": f"A {thing}, {rng.choice(spec['detail'])}.",
                "category": cat, "ts": T0,
            })
            by_category.setdefault(cat, []).append(item_id)
    cats = list(CATALOGUE)
    before: list[dict] = []
    after: list[dict] = []
    n = 0
    for u in range(36):
        user = f"u{u:03d}"
        first = cats[u % len(cats)]
        second = cats[(u + 1 + u // len(cats)) % len(cats)]
        for cat, start, out in ((first, 0.0, before), (second, 21.0, after)):
            spec = CATALOGUE[cat]
            mood_positive = rng.random() < 0.75
            for _ in range(4):
                n += 1
                out.append({"type": "search", "event_id": f"e{n:05d}", "user_id": user,
                            "query": rng.choice(spec["searches"]), "ts": T0 + (start + rng.uniform(0, 14)) * DAY})
            for item_id in rng.sample(by_category[cat], 4):
                n += 1
                out.append({"type": "click", "event_id": f"e{n:05d}", "user_id": user, "item_id": item_id,
                            "dwell_s": round(rng.uniform(5, 120), 1), "ts": T0 + (start + rng.uniform(0, 14)) * DAY})
            item_id = rng.choice(by_category[cat])
            title = next(i["title"] for i in items if i["item_id"] == item_id)
            rating = rng.choice([4, 5]) if mood_positive else rng.choice([1, 2])
            body = rng.choice(POSITIVE if mood_positive else NEGATIVE)
            n += 1
            out.append({"type": "review", "event_id": f"e{n:05d}", "user_id": user, "item_id": item_id,
                        "text": f"{title}: {body}", "rating": rating, "ts": T0 + (start + rng.uniform(0, 14)) * DAY})
    # A few malformed records, which the worker must dead-letter and survive.
    before.append({"type": "review", "event_id": "bad-1", "user_id": "u000", "item_id": "runn-00", "text": "x", "rating": 9, "ts": T0})
    before.append({"type": "search", "event_id": "bad-2", "user_id": "u001", "ts": T0})
    before.append({"type": "click", "event_id": "bad-3", "user_id": "u002", "item_id": "no-such-item", "ts": T0})
    for name, rows in (("items", items), ("before", before), ("after", after)):
        rows.sort(key=lambda r: r["ts"])
        with open(OUT / f"{name}.jsonl", "wb") as fh:
            for row in rows:
                fh.write(orjson.dumps(row) + b"\n")
    print(f"wrote {len(items)} items, {len(before)} events before and {len(after)} after the shift to {OUT}")


if __name__ == "__main__":
    main()
