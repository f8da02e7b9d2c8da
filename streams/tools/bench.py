"""`interest-stream bench`: pipeline figures beside ceilings measured in the same run.

Ceilings: the raw encoder (forward passes only, same batch size, same device), the raw broker
(aiokafka produce/consume of same-sized records), raw FAISS (add, single and batched search).
Pipeline: a real worker subprocess fed through the real broker. Baseline: the same worker with
micro-batches of one event (one forward pass per event). Nothing here asserts; it reports.
"""

from __future__ import annotations

import asyncio
import random
import re
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from schemas.topics import PROFILES, TOPIC_OF_KIND
from streams.settings import Settings
from streams.threads import limit_threads
from streams.tools.bench_catalogue import big_catalogue, big_catalogue_over_http
from streams.tools.broker import EmbeddedBroker
from streams.tools.demo import bundled_data_dir
from streams.tools.process import WorkerProcess, get_json
from streams.tools.replay import read_jsonl, replay

if TYPE_CHECKING:
    from encoders import FacetEncoder


@dataclass(frozen=True)
class BenchConfig:
    users: int = 200
    items: int = 2000
    text_events: int = 1500  # searches + reviews (about 4:1)
    click_events: int = 5000
    # Clicks per user before the clicks figure is taken again, at the end (0 = skip): the first
    # figure is of users with ~click_events / users clicks each, and a click costs more with a long
    # history (benchmarks/RESULTS.md, 2026-12-07).
    long_history: int = 250
    search_repeat: float = 0.3  # share of searches that repeat an earlier query
    words: tuple[int, int] = (6, 20)  # text length range, in words
    naive_events: int = 300
    latency_seconds: float = 8.0
    rec_queries: int = 300
    big_items: int = 1_000_000  # the live index at a big synthetic catalogue, in process (0 = skip)
    big_http_items: int = 1_000_000  # the same catalogue in a worker, recommendations over HTTP (0 = skip)
    seed: int = 7


@dataclass
class Report:
    config: dict[str, Any]
    ceilings: dict[str, float] = field(default_factory=dict)
    pipeline: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


class StreamMaker:
    """Deterministic synthetic events with a vocabulary taken from the bundled sample data."""

    def __init__(self, cfg: BenchConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        text = " ".join(
            str(e.get(k, "")) for f in ("items", "before") for e in read_jsonl(bundled_data_dir() / f"{f}.jsonl")
            for k in ("title", "text", "query")
        )
        self.vocab = sorted(set(re.findall(r"[a-z]{3,}", text.lower())))
        self.categories = ["running", "audio", "cooking", "camping", "books", "games"]
        self._n = 0
        self._queries: list[str] = []

    def text(self) -> str:
        lo, hi = self.cfg.words
        return " ".join(self.rng.choice(self.vocab) for _ in range(self.rng.randint(lo, hi)))

    def _id(self) -> str:
        self._n += 1
        return f"b{self._n}"

    def items(self, n: int) -> list[dict[str, Any]]:
        return [{"type": "item", "event_id": self._id(), "item_id": f"it{i}", "title": self.text(), "text": self.text(),
                 "category": self.rng.choice(self.categories), "ts": 1.0} for i in range(n)]

    def text_events(self, n: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            user = f"u{self.rng.randrange(self.cfg.users)}"
            ts = time.time()
            if self.rng.random() < 0.2:
                out.append({"type": "review", "event_id": self._id(), "user_id": user, "item_id": f"it{self.rng.randrange(self.cfg.items)}",
                            "text": self.text(), "rating": self.rng.randint(1, 5), "ts": ts})
                continue
            if self._queries and self.rng.random() < self.cfg.search_repeat:
                query = self.rng.choice(self._queries)
            else:
                query = self.text()
                self._queries.append(query)
            out.append({"type": "search", "event_id": self._id(), "user_id": user, "query": query, "ts": ts})
        return out

    def clicks(self, n: int) -> list[dict[str, Any]]:
        return [{"type": "click", "event_id": self._id(), "user_id": f"u{self.rng.randrange(self.cfg.users)}",
                 "item_id": f"it{self.rng.randrange(self.cfg.items)}", "ts": time.time()} for _ in range(n)]


def metrics_text(worker: WorkerProcess) -> str:
    """The worker's /metrics page."""
    with urllib.request.urlopen(f"{worker.base}/metrics", timeout=5) as resp:
        return resp.read().decode()


def histogram_mean(metrics: str, name: str) -> tuple[float, float]:
    """(sum, count) of a Prometheus histogram over all its label sets."""
    total = count = 0.0
    for line in metrics.splitlines():
        if m := re.match(rf"{name}_(sum|count)(?:{{[^}}]*}})? ([0-9.e+-]+)$", line):
            if m.group(1) == "sum":
                total += float(m.group(2))
            else:
                count += float(m.group(2))
    return total, count


def stage_ms_per_batch(before: str, after: str) -> dict[str, float]:
    """Milliseconds per user micro-batch spent in each stage (``StageClock``) between two reads of
    /metrics: a stage not in every batch (learning) is averaged over all of them."""
    def sums(metrics: str) -> dict[str, float]:
        return {m.group(1): float(m.group(2)) for line in metrics.splitlines()
                if (m := re.match(r'interest_stream_batch_stage_seconds_sum{stage="([^"]+)"} ([0-9.e+-]+)$', line))}

    def batches(metrics: str) -> float:
        m = re.search(r'^interest_stream_batch_stage_seconds_count{stage="decode"} ([0-9.e+-]+)$', metrics, re.M)
        return float(m.group(1)) if m else 0.0

    n, early = batches(after) - batches(before), sums(before)
    return {stage: 1000 * (total - early.get(stage, 0.0)) / n for stage, total in sums(after).items()} if n else {}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    arr = np.asarray(values)
    return {f"p{q}": float(np.percentile(arr, q)) for q in (50, 95, 99)}


# -- ceilings -----------------------------------------------------------------------------------
def encoder_ceiling(settings: Settings, texts: list[str]) -> tuple[float, float, FacetEncoder]:
    """(texts/s in forward passes of the worker's size, texts/s one at a time, the encoder measured):
    no heads, no I/O."""
    from dataclasses import replace

    from encoders import FacetEncoder

    size = settings.encoder.batch_size  # the worker's forward-pass size
    enc = FacetEncoder(replace(settings.encoder, cache_size=0))
    enc.embed(texts[:32])  # warm-up
    t = time.perf_counter()
    for i in range(0, len(texts), size):
        enc.embed(texts[i : i + size])
    batched = len(texts) / (time.perf_counter() - t)
    few = texts[: max(50, len(texts) // 5)]
    t = time.perf_counter()
    for text in few:
        enc.embed([text])
    single = len(few) / (time.perf_counter() - t)
    return batched, single, enc


async def broker_ceiling(bootstrap: str, n: int, size: int = 200) -> tuple[float, float]:
    """(records/s produced, records/s consumed) with plain aiokafka."""
    topic = f"bench-raw-{uuid.uuid4().hex[:6]}"
    payload = b"x" * size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    t = time.perf_counter()
    futures = [await producer.send(topic, payload, key=str(i % 200).encode()) for i in range(n)]
    await asyncio.gather(*futures)
    produce = n / (time.perf_counter() - t)
    await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got, t = 0, time.perf_counter()  # no group join: timed from assignment to the last record
        while got < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            got += sum(len(v) for v in batch.values())
        consume = n / (time.perf_counter() - t)
    finally:
        await consumer.stop()
    return produce, consume


async def broker_delivery_latency(bootstrap: str, partitions: int, rate: float, n: int = 45) -> list[float]:
    """ms from send to a plain aiokafka consumer receiving it, over as many partitions as a
    worker reads and with Faust's fetch wait (1.5 s): the floor under the pipeline's
    event -> profile latency on this broker. Some brokers (the bundled Tansu) answer a fetch
    that found no data only after a fixed wait, so this depends on the send rate."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"bench-lat-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, partitions, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=1500)
    await producer.start()
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve the end offsets before the first send
        out = []
        for i in range(n):
            await asyncio.sleep(1.0 / rate)
            t = time.perf_counter()
            await producer.send_and_wait(topic, b"x", partition=i % partitions)
            try:
                await asyncio.wait_for(consumer.getone(), timeout=10)
            except asyncio.TimeoutError:
                continue  # not counted; a lost probe must not hang the bench
            out.append((time.perf_counter() - t) * 1000)
        return out[5:]  # the first fetches include start-up
    finally:
        await producer.stop()
        await consumer.stop()


def faiss_ceiling(dim: int, n: int, queries: int) -> dict[str, float]:
    import faiss

    rng = np.random.default_rng(0)
    xb = rng.normal(size=(n, dim)).astype(np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = xb[rng.integers(0, n, size=queries)]
    index = faiss.index_factory(dim, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
    t = time.perf_counter()
    index.add_with_ids(xb, np.arange(n, dtype=np.int64))
    add = n / (time.perf_counter() - t)
    lat = []
    for q in xq:
        t = time.perf_counter()
        index.search(q[None, :], 10)
        lat.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    index.search(xq, 10)
    batched = queries / (time.perf_counter() - t)
    return {"faiss_add_per_s": add, "faiss_search_p99_ms": percentiles(lat)["p99"], "faiss_batched_search_per_s": batched}


# -- pipeline -----------------------------------------------------------------------------------
def feed(events: list[dict[str, Any]], broker_url: str, label: str, partitions: int) -> None:
    with tqdm(total=len(events), unit="ev", desc=label, file=sys.stderr, leave=False) as bar:
        asyncio.run(replay(events, broker_url, bar.update, partitions))


def throughput(worker: WorkerProcess, events: list[dict[str, Any]], broker_url: str, label: str, partitions: int) -> float:
    """Events/s from the first send until the worker has applied (or dead-lettered) all of them:
    until the micro-batch that applied the last of them, by the worker's clock (``last_applied_at``;
    the same machine's), not until the poll of /healthz that saw it, up to 0.2 s later: a tenth of
    a clicks phase (before 2026-12-07 the figures carried that delay)."""
    start = worker.health()
    done = start["events_applied"] + start["user_events_dead_lettered"] + len(events)
    t = time.time()
    feed(events, broker_url, label, partitions)
    health = worker.wait_processed(done, timeout_s=600)
    all_applied = health["events_applied"] - start["events_applied"] == len(events)
    end = health["last_applied_at"] if all_applied and health.get("last_applied_at") else time.time()
    return len(events) / (end - t)


def event_counts(worker: WorkerProcess, users: Iterable[str]) -> dict[str, dict[str, int]]:
    """Each user's applied events by kind, from the profile API (none yet, 404: {})."""
    out = {}
    for user in users:
        status, body = get_json(f"{worker.base}/users/{user}/profile")
        if status not in (200, 404):  # a guessed baseline would misplace every event after it
            raise RuntimeError(f"reading {user}'s profile for its event counts: HTTP {status} {body}")
        out[user] = dict(body["event_counts"]) if status == 200 else {}
    return out


class ProfileCoverage:
    """Which of the events sent a profile record covers, from its counts of applied events by kind.

    One kind is one topic, keyed by user, so a user's events of one kind are applied in the order
    sent: once a record's count of a kind has grown by n since ``counts_before`` (each user's
    counts before the first send), the user's first n events of that kind sent are in it. Events
    of different kinds can be applied in another order than sent (they come from different
    topics), so a record's ``last_event_id`` alone does not say which events it covers: matching on
    it, as the bench did before 2026-12-07, timed a search applied in the same micro-batch as a
    review sent before it to that user's next profile record, seconds later.

    It assumes every event sent is applied once (none dead-lettered, duplicate or forgotten), as
    the bench's are: a count that grew by more than was sent means a wrong baseline, and raises.
    """

    def __init__(self, counts_before: Mapping[str, Mapping[str, int]]) -> None:
        self.counts_before = counts_before
        self._sent: dict[tuple[str, str], list[str]] = {}  # (user, kind) -> event ids, in send order
        self._covered: dict[tuple[str, str], int] = {}  # (user, kind) -> how many of them are covered

    def sent(self, user: str, kind: str, event_id: str) -> None:
        self._sent.setdefault((user, kind), []).append(event_id)

    def newly_covered(self, profile: Mapping[str, Any]) -> list[str]:
        """The event ids ``profile`` (a profile record) covers that no record before it did."""
        user, out = profile["user_id"], []
        before = self.counts_before.get(user, {})
        for kind, count in profile["event_counts"].items():
            key = (user, kind)
            ids = self._sent.get(key)
            if not ids:
                continue  # a kind not sent here (the clicks of an earlier phase)
            done = self._covered.get(key, 0)
            upto = count - before.get(kind, 0)
            if upto > len(ids):
                raise ValueError(f"{user}'s {kind} count grew by {upto} with {len(ids)} sent: a wrong baseline")
            if upto > done:
                out.extend(ids[done:upto])
                self._covered[key] = upto
        return out


async def paced_latency(
    broker: EmbeddedBroker, make: Callable[[int], list[dict[str, Any]]], rate: float, seconds: float,
    counts_before: Mapping[str, Mapping[str, int]],
) -> tuple[list[float], list[float]]:
    """Send text events at ``rate``/s for ``seconds``; per event, ms from its send to (a) a reader
    of `profiles` receiving the first profile record that covers it (``ProfileCoverage``;
    ``counts_before``: each user's applied events by kind before the first send, from
    ``event_counts``), (b) that record's timestamp, which the worker's producer stamps when the
    worker hands it over. (a) - (b) is the record's way to the reader: on the bundled broker mostly
    the reader's parked fetch (up to half its 100 ms wait), as for the worker's own fetch of the
    event.
    """
    sent_at: dict[str, float] = {}
    sent_wall: dict[str, float] = {}  # the same sends on the clock the record timestamps use
    coverage = ProfileCoverage(counts_before)
    latencies: list[float] = []
    to_record: list[float] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    await consumer.topics()
    tps = [TopicPartition(PROFILES.name, p) for p in consumer.partitions_for_topic(PROFILES.name) or ()]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
    await producer.start()
    total = int(rate * seconds)
    events = make(total)

    last_match = [time.perf_counter()]

    async def receive() -> None:
        while len(latencies) < total:
            batch = await consumer.getmany(timeout_ms=500)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    for event_id in coverage.newly_covered(orjson.loads(r.value)):
                        latencies.append((now - sent_at.pop(event_id)) * 1000)
                        to_record.append(max(0.0, r.timestamp - sent_wall.pop(event_id) * 1000))
                        last_match[0] = now

    receiver = asyncio.create_task(receive())
    t0 = time.perf_counter()
    for i, event in enumerate(events):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        sent_at[event["event_id"]], sent_wall[event["event_id"]] = time.perf_counter(), time.time()
        coverage.sent(event["user_id"], event["type"], event["event_id"])
        topic = TOPIC_OF_KIND[event["type"]].name
        await producer.send(topic, orjson.dumps(event), key=event["user_id"].encode())
    await producer.stop()
    # Done when every event is matched, or nothing new matched for 5 s.
    while not receiver.done() and time.perf_counter() - last_match[0] < 5.0:
        await asyncio.sleep(0.2)
    if receiver.done():
        receiver.result()  # a reader that failed raises here, not a short list of samples
    receiver.cancel()
    await consumer.stop()
    return latencies, to_record


def recommendation_latency(worker: WorkerProcess, users: int, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        get_json(f"{worker.base}/users/u{i % users}/recommendations?k=10")
        out.append((time.perf_counter() - t) * 1000)
    return out


def run_bench(settings: Settings, cfg: BenchConfig, json_out: Path | None = None) -> Report:
    report = Report(config={**asdict(cfg), "batch_max": settings.batch_max,
                            "batch_max_texts": settings.batch_max_texts, "batch_wait_ms": settings.batch_wait_ms,
                            "partitions": settings.partitions, "encoder_batch_size": settings.encoder.batch_size})
    limit_threads(settings)  # the in-process parts (the big catalogue); the worker sets its own
    maker = StreamMaker(cfg)
    workdir = Path(tempfile.mkdtemp(prefix="interest-stream-bench-"))
    parts = settings.partitions
    steps = tqdm(total=9, desc="bench", unit="step", file=sys.stderr)

    texts = [maker.text() for _ in range(cfg.text_events)]
    enc_batched, enc_single, raw = encoder_ceiling(settings, texts)
    layout = raw.layout
    report.config["encoder_dtype"] = str(raw.dtype).removeprefix("torch.")  # as the worker picks it
    report.ceilings.update(encoder_texts_per_s=enc_batched, encoder_single_texts_per_s=enc_single)
    steps.update()
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        produce, consume = asyncio.run(broker_ceiling(broker.bootstrap, max(cfg.click_events, 5000)))
        report.ceilings.update(broker_produce_per_s=produce, broker_consume_per_s=consume)
        steps.update()
        worker = WorkerProcess(broker.url, workdir, "bench-main", broker.worker_env)
        try:
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker to start")
            report.ceilings.update(faiss_ceiling(391, cfg.items, cfg.rec_queries))
            t = time.perf_counter()
            feed(maker.items(cfg.items), broker.url, "catalogue", parts)
            worker.wait_until(lambda h: h["items_indexed"] >= cfg.items, 600, "the catalogue to be indexed")
            report.pipeline["items_per_s"] = cfg.items / (time.perf_counter() - t)
            steps.update()
            text_events = maker.text_events(cfg.text_events)
            before = worker.health()
            report.pipeline["text_events_per_s"] = throughput(worker, text_events, broker.url, "text events", parts)
            after = worker.health()
            hits = after["encoder_cache_hits"] - before["encoder_cache_hits"]
            report.pipeline["text_cache_hit_share"] = hits / len(text_events)
            report.pipeline["texts_per_encode_call"] = (after["texts_encoded"] - before["texts_encoded"]) / max(
                1, after["encode_calls"] - before["encode_calls"])
            steps.update()
            report.pipeline["click_events_per_s"] = throughput(worker, maker.clicks(cfg.click_events), broker.url, "clicks", parts)
            steps.update()
            rate = 0.5 * report.pipeline["text_events_per_s"]
            for label, r, n in (("", rate, 45), ("_slow", 7.0, 15)):
                delivery = asyncio.run(broker_delivery_latency(broker.bootstrap, 4 * parts, r, n))
                report.ceilings.update({f"broker_delivery{label}_{k}_ms": v for k, v in percentiles(delivery).items()})
            before_counts, before_metrics = event_counts(worker, (f"u{i}" for i in range(cfg.users))), metrics_text(worker)
            lat, to_record = asyncio.run(paced_latency(broker, maker.text_events, rate, cfg.latency_seconds, before_counts))
            # Where the micro-batches' time went meanwhile (the encoder, mostly: RESULTS.md).
            report.pipeline.update({f"latency_batch_{k}_ms": v for k, v in
                                    stage_ms_per_batch(before_metrics, metrics_text(worker)).items()})
            report.pipeline.update({f"latency_{k}_ms_at_half_rate": v for k, v in percentiles(lat).items()})
            report.pipeline.update({f"latency_to_record_{k}_ms_at_half_rate": v for k, v in percentiles(to_record).items()})
            report.pipeline["latency_samples"] = len(lat)
            rec = recommendation_latency(worker, cfg.users, cfg.rec_queries)
            report.pipeline.update({f"recommendation_{k}_ms": v for k, v in percentiles(rec).items()})
            if cfg.long_history:  # last: the figures above are of the short histories, as before
                grow = cfg.users * cfg.long_history - cfg.click_events
                if grow > 0:
                    throughput(worker, maker.clicks(grow), broker.url, "clicks, histories growing", parts)
                report.pipeline["clicks_per_user_before_long_history_clicks"] = (cfg.click_events + max(0, grow)) / cfg.users
                report.pipeline["click_events_per_s_long_histories"] = throughput(
                    worker, maker.clicks(cfg.click_events), broker.url, "clicks, long histories", parts)
            steps.update()
        finally:
            worker.stop()
    with EmbeddedBroker(log_file=workdir / "broker-naive.log") as broker:
        naive = WorkerProcess(broker.url, workdir, "bench-naive", {**broker.worker_env, "INTEREST_STREAM_BATCH_MAX": "1",
                                                                     "INTEREST_STREAM_BATCH_MAX_TEXTS": "1",
                                                                     "INTEREST_STREAM_ENCODER_CACHE_SIZE": "0"})
        try:
            naive.wait_until(lambda h: h["status"] == "ok", 180, "the naive worker to start")
            fresh = StreamMaker(BenchConfig(**{**asdict(cfg), "search_repeat": 0.0, "seed": cfg.seed + 1}))
            report.pipeline["naive_text_events_per_s"] = throughput(
                naive, fresh.text_events(cfg.naive_events), broker.url, "naive baseline", parts)
        finally:
            naive.stop()
    steps.update()
    if cfg.big_items:
        big = big_catalogue(layout, settings.index, cfg.big_items)
        report.ceilings.update({f"big_{k}": v for k, v in big.items() if k.startswith("raw_")})
        report.pipeline.update({f"big_{k}": v for k, v in big.items() if not k.startswith("raw_")})
    steps.update()
    if cfg.big_http_items:
        # Ceilings for it: the API's own cost (a profile read on the same worker, below) and the
        # recommendation at cfg.items (above); raw FAISS at this size in the step before.
        threshold = settings.index.ann_threshold  # IVF search as configured; at the catalogue's size if later
        if not threshold or threshold > cfg.big_http_items:
            threshold = cfg.big_http_items
        http = big_catalogue_over_http(layout, parts, cfg.big_http_items, workdir, settings.index.facet_weights,
                                       users=cfg.users, env={"INTEREST_STREAM_INDEX_ANN_THRESHOLD": str(threshold)})
        report.ceilings["big_http_profile_p99_ms"] = http.pop("profile_http_p99_ms")
        report.pipeline.update({f"big_http_{k}": v for k, v in http.items()})
    steps.update()
    steps.close()
    p, c = report.pipeline, report.ceilings
    report.ratios = {
        "text_events_vs_encoder_ceiling": p["text_events_per_s"] / c["encoder_texts_per_s"],
        "text_events_vs_naive_baseline": p["text_events_per_s"] / p["naive_text_events_per_s"],
        "clicks_vs_broker_consume": p["click_events_per_s"] / c["broker_consume_per_s"],
        **({"clicks_long_histories_vs_broker_consume": p["click_events_per_s_long_histories"] / c["broker_consume_per_s"]}
           if cfg.long_history else {}),
        "latency_p50_vs_broker_delivery_p50": p["latency_p50_ms_at_half_rate"] / c["broker_delivery_p50_ms"],
        "naive_vs_encoder_single": p["naive_text_events_per_s"] / c["encoder_single_texts_per_s"],
    }
    if cfg.big_http_items:
        report.ratios["big_http_recommendation_p99_vs_small_catalogue_p99"] = (
            p["big_http_recommendation_http_p99_ms"] / p["recommendation_p99_ms"])
        report.ratios["big_http_recommendation_p99_vs_profile_read_p99"] = (
            p["big_http_recommendation_http_p99_ms"] / c["big_http_profile_p99_ms"])
    if cfg.big_items:
        report.ratios["big_live_nearest_p99_vs_raw_ivf_p99"] = p["big_live_ivf_nearest_p99_ms"] / c["big_raw_ivf_p99_ms"]
        report.ratios["big_live_nearest_p99_vs_raw_exact_p99"] = p["big_live_ivf_nearest_p99_ms"] / c["big_raw_exact_p99_ms"]
    if json_out:
        json_out.write_bytes(report.to_json())
    return report


def format_report(r: Report) -> str:
    c, p, q = r.ceilings, r.pipeline, r.ratios
    lines = [
        "ceilings (same run)",
        f"  encoder, batches of {r.config['encoder_batch_size']:<4}      {c['encoder_texts_per_s']:10.0f} texts/s",
        f"  encoder, one text at a time     {c['encoder_single_texts_per_s']:10.0f} texts/s",
        f"  broker produce / consume        {c['broker_produce_per_s']:10.0f} / {c['broker_consume_per_s']:.0f} records/s",
        f"  broker delivery, {4 * r.config['partitions']} partitions   p50 {c['broker_delivery_p50_ms']:.0f} ms, "
        f"p99 {c['broker_delivery_p99_ms']:.0f} ms at the latency test's rate; "
        f"p50 {c['broker_delivery_slow_p50_ms']:.0f} ms at 7 records/s (send -> plain consumer)",
        f"  faiss add / batched search      {c['faiss_add_per_s']:10.0f} / {c['faiss_batched_search_per_s']:.0f} per s "
        f"(single search p99 {c['faiss_search_p99_ms']:.2f} ms, {r.config['items']} items)",
        "pipeline (worker process, real broker)",
        f"  catalogue items                 {p['items_per_s']:10.0f} items/s",
        f"  search+review events            {p['text_events_per_s']:10.0f} events/s  "
        f"({p['texts_per_encode_call']:.1f} texts per encoder call, {p['text_cache_hit_share']:.0%} served from cache)",
        f"  click events                    {p['click_events_per_s']:10.0f} events/s  "
        f"(users with ~{r.config['click_events'] / r.config['users']:.0f} clicks each)",
        *([f"  click events, long histories    {p['click_events_per_s_long_histories']:10.0f} events/s  "
           f"(users with {p['clicks_per_user_before_long_history_clicks']:.0f} clicks each before them)"]
          if "click_events_per_s_long_histories" in p else []),
        f"  naive baseline (batch of 1)     {p['naive_text_events_per_s']:10.0f} events/s",
        f"  event -> profile latency at half rate: p50 {p['latency_p50_ms_at_half_rate']:.0f} ms, "
        f"p95 {p['latency_p95_ms_at_half_rate']:.0f} ms, p99 {p['latency_p99_ms_at_half_rate']:.0f} ms "
        f"({p['latency_samples']} events)",
        f"    of which to the profile record's timestamp: p50 {p['latency_to_record_p50_ms_at_half_rate']:.0f} ms, "
        f"p99 {p['latency_to_record_p99_ms_at_half_rate']:.0f} ms (the rest is the reader's fetch)",
        "    user micro-batches meanwhile, ms each: " + ", ".join(
            f"{k.removeprefix('latency_batch_').removesuffix('_ms')} {v:.1f}" for k, v in p.items()
            if k.startswith("latency_batch_") and v >= 0.05),
        f"  recommendation over HTTP (k=10): p50 {p['recommendation_p50_ms']:.1f} ms, p95 {p['recommendation_p95_ms']:.1f} ms, "
        f"p99 {p['recommendation_p99_ms']:.1f} ms",
        "ratios",
        f"  text events / encoder ceiling   {q['text_events_vs_encoder_ceiling']:.2f}   (target >= 0.8)",
        f"  text events / naive baseline    {q['text_events_vs_naive_baseline']:.2f}   (target >= 2.5)",
        f"  clicks / broker consume rate    {q['clicks_vs_broker_consume']:.3f}  (target >= 0.5)",
        f"  latency p50 / broker delivery   {q['latency_p50_vs_broker_delivery_p50']:.2f}",
    ]
    if "big_items" in p:
        lines += [
            f"big catalogue: {p['big_items']:.0f} synthetic items in the live index (in process, not over HTTP)",
            f"  raw FAISS exact / IVF search    p99 {c['big_raw_exact_p99_ms']:.1f} / {c['big_raw_ivf_p99_ms']:.2f} ms "
            f"(IVF{p['big_ivf_lists']:.0f}, nprobe {p['big_ivf_nprobe']:.0f}; raw build {c['big_raw_ivf_build_s']:.1f} s)",
            f"  background IVF build            {p['big_ivf_build_s']:.1f} s, {p['big_changes_caught_up']:.0f} change "
            f"batches made during it caught up; exact search meanwhile p99 {p['big_exact_during_build_p99_ms']:.1f} ms",
            f"  live nearest (k=10, 20 excluded) p50 {p['big_live_ivf_nearest_p50_ms']:.2f} ms, "
            f"p99 {p['big_live_ivf_nearest_p99_ms']:.2f} ms, recall@10 {p['big_recall_at_10']:.4f} (target >= 0.95)",
        ]
    if "big_http_items" in p:
        lines += [
            f"big catalogue over HTTP: {p['big_http_items']:.0f} items, a new worker reading the item vectors log",
            f"  start -> catalogue indexed      {p['big_http_start_to_indexed_s']:.0f} s, IVF search from "
            f"{p['big_http_start_to_ivf_s']:.0f} s (IVF{p['big_http_ivf_lists']:.0f} trained at "
            f"{p['big_http_ivf_built_items']:.0f} items); worker {p['big_http_rss_mb']:.0f} MB, its learner process "
            f"{p.get('big_http_learner_rss_mb', 0):.0f} MB, broker "
            f"{p['big_http_broker_rss_mb']:.0f} MB resident",
            f"  recommendation over HTTP (k=10): p50 {p['big_http_recommendation_http_p50_ms']:.1f} ms, "
            f"p95 {p['big_http_recommendation_http_p95_ms']:.1f} ms, p99 {p['big_http_recommendation_http_p99_ms']:.1f} ms "
            f"(target <= 20); profile read on the same worker p99 {c['big_http_profile_p99_ms']:.1f} ms",
            f"  served facet ranking recall@10  {p['big_http_facet_recall_at_10_http']:.4f} against exact search "
            f"(target >= 0.95)",
        ]
    return "\n".join(lines)
