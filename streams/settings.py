"""The one settings object: typed, read from INTEREST_STREAM_* environment variables, then
overridden by CLI flags. Built once at the edge and passed down; nothing else reads the environment.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from encoders import ENCODER_DTYPES, EncoderConfig
from index import IndexConfig
from streams.errors import SettingsError
from streams.state.engagement import EngagementConfig
from streams.state.ranker import RankerConfig
from streams.state.recommend import RecommendConfig

ENV_PREFIX = "INTEREST_STREAM_"


@dataclass(frozen=True)
class DecayConfig:
    half_life_s: float = 7 * 24 * 3600.0  # an event's weight halves every half_life_s of event time
    event_weights: dict[str, float] = field(
        default_factory=lambda: {"search": 1.0, "click": 2.0, "review": 3.0}
    )


@dataclass(frozen=True)
class AlertConfig:
    """News-sentiment alerting (streams/state/alert_rules.py documents each rule)."""

    window_s: float = 6 * 3600.0  # hopping window size (event time) ...
    step_s: float = 3600.0  # ... and hop; the rules read the trailing window (the full one ending now)
    expires_s: float = 7 * 24 * 3600.0  # windows older than this are dropped from the windowed table
    shift_k: float = 4.0  # shift: |window mean - baseline| > k standard errors of the window mean
    min_count: int = 4  # news in the window before a sentiment rule may fire
    min_baseline: int = 20  # news in the entity's baseline before the shift or volume rule may fire
    baseline_alpha: float = 0.05  # weight of each news item leaving the window in the EW baseline
    sigma_floor: float = 0.15  # smallest per-news standard deviation the shift rule assumes
    threshold: float = 0.75  # threshold: window mean <= -threshold or >= threshold (0 disables)
    volume_ratio: float = 4.0  # volume: window count >= ratio x the baseline's count per window (0 disables)
    volume_min: int = 12  # ... and at least this many news
    cooldown_s: float = 12 * 3600.0  # event time during which the same entity+rule does not fire again
    finance_weight: float = 0.6  # weight of the finance phrase lexicon where a phrase matched
    tickers_file: str = ""  # ticker,name,aliases CSV; empty = the shipped table
    interest_min_weight: float = 3.0  # decayed weight of a user's events naming an entity to subscribe them
    webhook_url: str = ""  # POST each alert here (empty disables)
    webhook_attempts: int = 6  # tries per alert (exponential backoff) before it is dead-lettered


@dataclass(frozen=True)
class RecommendSettings:
    """Recommendations: what is learned from engagements, the ranker's learning, the candidates."""

    enabled: bool = True  # False: the API serves facet Z only and nothing is learned from engagements
    engagement: EngagementConfig = field(default_factory=EngagementConfig)
    ranker: RankerConfig = field(default_factory=RankerConfig)
    candidates: RecommendConfig = field(default_factory=RecommendConfig)
    # Where the ranking lessons are built: "process" (a learner process beside the worker, on
    # another core: streams/worker/learner.py) or "inline" (on the worker's event loop; no second
    # copy of the catalogue and engagements in memory).
    lessons: str = "process"
    learner_restart_s: float = 5.0  # after the learner process ends, lessons in line until a new one starts
    # How often the worker writes what it has folded from the engagements log to its data_dir
    # (streams/worker/snapshot.py), so a restart reads the log from there, not from its beginning
    # (0 = never, and none is taken over: every start reads the whole log).
    snapshot_every_s: float = 300.0


@dataclass(frozen=True)
class Settings:
    broker: str = "kafka://127.0.0.1:9092"
    app_id: str = "interest-stream"
    web_host: str = "127.0.0.1"
    # The URL other workers use to reach this one's API (requests about a user are forwarded to
    # the worker owning the user's partition); empty = http://web_host:web_port.
    canonical_url: str = ""
    standby_replicas: int = 1  # standby copies of each table partition (faster failover of user state)
    web_port: int = 6066
    data_dir: str = "./.interest-stream"  # Faust's local state folder
    # Faust table store. "rocksdb://" keeps state on local disk (data_dir) and replays only the
    # changelog tail at start; "memory://" rebuilds every table from its whole changelog.
    store: str = "rocksdb://"
    partitions: int = 4  # partitions for the topics this app creates (existing topics keep theirs)
    # Consumer-group session timeout. Lower means faster failover; some brokers (the bundled Tansu)
    # also hold a fresh group's first join for about half of it.
    session_timeout_s: float = 10.0
    # How long the broker may hold a fetch that finds no data: bounds how late an idle worker sees
    # a new record on brokers that answer only at the deadline (the bundled Tansu answers at about
    # half of it; Apache Kafka answers as soon as data arrives). Lower costs more idle fetch requests.
    fetch_max_wait_ms: int = 100
    # Largest record batch the worker's producer builds. A user's state is 6-15 KB, so aiokafka's
    # default of 16 KB held one or two per batch, and a micro-batch's ~150 state writes went out in
    # tens of requests (one batch per partition per request): 5-10x the wait for their acks and
    # more broker CPU (benchmarks/RESULTS.md, 2026-12-07). 1 sends one record per batch. Keep it
    # under the broker's message.max.bytes (Kafka's default is 1 MiB).
    producer_max_batch_bytes: int = 262144
    # Micro-batch: at most batch_max events, of which at most batch_max_texts searches and reviews
    # (item and news batches: batch_max_texts records, all texts); a batch starts when the agent is
    # free and batch_wait_ms have passed since the last one started (streams/faust_ext/batching.py).
    # Under load batches grow with what came during the last one: a user's clicks in one batch cost
    # one state write and one profile record (1,024 against 256: 1.3-1.5x the bench's clicks/s,
    # 1.6-2.2x with long histories, +5 % where every click is another user's; benchmarks/RESULTS.md),
    # while the texts' cap keeps a batch's encoding as long as before. When idle an event waits at
    # most batch_wait_ms.
    batch_max: int = 1024
    batch_max_texts: int = 256
    batch_wait_ms: int = 50
    # Waiting for the broker at start: retry with backoff this long (0 = until it answers), so a
    # worker started before its broker comes up instead of crash-looping.
    broker_wait_s: float = 0.0
    # At a start, user events wait until the catalogue is current (the items topic and changelog
    # as they were then: streams/worker/catalogue.py); after this long they go on anyway (0 = wait
    # for it however long it takes).
    catalogue_wait_s: float = 600.0
    # A micro-batch with a click on an item the index does not have waits this long for the
    # catalogue to catch up (the item may still be being encoded) before dead-lettering the click
    # (0 = at once).
    unknown_item_wait_s: float = 10.0
    # How often the worker writes its index of the catalogue to its data_dir (and once more as it
    # stops; streams/worker/catalogue.py), so a restart reads the item vectors log from there, not
    # from its beginning (0 = never, and none is taken over). The log is compacted: what a restart
    # reads without one grows with the catalogue, not with time (122 s at 10^6 items, 2026-12-07).
    catalogue_snapshot_s: float = 3600.0
    # Where the worker writes those snapshots and takes them over from (empty: its data_dir). A
    # folder the workers of an app share (a network volume) lets a new worker on a fresh disk start
    # from the latest any of them wrote: each follows the whole logs, so any one's snapshot will do,
    # and a start checks it against the logs (streams/worker/follower.py).
    snapshot_dir: str = ""
    health_probe_s: float = 2.0  # how often the worker checks the broker answers (/healthz "degraded")
    topic_clusters: int = 12  # topics discovered by streaming k-means (named by their words)
    drift_window: int = 500  # events per drift window (reference = the first, current = the last)
    max_k: int = 100  # largest k the recommendations API accepts
    # Users whose decoded state the user agent keeps between micro-batches, used while the table
    # still holds the bytes it wrote (streams/state/state_cache.py; 0 = decode every read). Up to
    # about 40 KB each with full histories (the state 24 KB, its bytes 14 KB).
    state_cache_users: int = 4096
    # Allocations between the garbage collector's young passes once the worker is ready (0 =
    # Python's 700): at 700 collection took 2-5 % of a click's CPU (streams/worker/heap.py).
    gc_young_threshold: int = 20_000
    seen_items_max: int = 500  # per user, the most recent clicked/reviewed items to exclude
    max_future_s: float = 3600.0  # events stamped further ahead of the worker's clock are refused
    # numpy's BLAS threads (0 = numpy's default, one per core): our numpy work is small matrices,
    # and more threads only fight FAISS's and torch's for the cores (streams/threads.py).
    numpy_threads: int = 1
    # FAISS's OpenMP threads for searches on the event loop (0 = FAISS's default, one per core).
    # One query at a time gains nothing from more and waits for them to be scheduled; the IVF
    # training in its background thread keeps the default (streams/threads.py).
    faiss_threads: int = 1
    # Faust's own Prometheus sensors (faust_* on /metrics). They run several labelled metric
    # updates per record read, sent and table write: about 8 % of the worker's CPU per click
    # (py-spy, 2026-11-30). Ours (interest_stream_*) cover throughput, lag, latency and errors.
    faust_metrics: bool = False
    log_level: str = "info"
    log_format: str = "text"  # text | json: the worker's progress line (one per log_every_batches batches)
    log_every_batches: int = 100
    # A user micro-batch that takes longer is logged with its stages (a stall shows where it went;
    # every batch's stages are on /metrics as interest_stream_batch_stage_seconds). 0 = never.
    slow_batch_ms: int = 1000
    eval_data_dir: str = ".eval-data"  # dataset package files for `interest-stream eval` (scripts/setup fetches them)
    # Bearer token for admin endpoints (DELETE /users/{id}, POST /users/{id}/watchlist); empty disables them.
    admin_token: str = ""
    # Bearer token for reading users (GET /users/{id}/...: profiles are personal data); empty: open.
    read_token: str = ""
    decay: DecayConfig = field(default_factory=DecayConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    recommend: RecommendSettings = field(default_factory=RecommendSettings)

    @property
    def bootstrap(self) -> str:
        """HOST:PORT for Kafka clients (the broker URL without its scheme)."""
        return bootstrap_of(self.broker)

    @property
    def snapshot_folder(self) -> str:
        """Where the followers' snapshots are: ``snapshot_dir``, else the data dir."""
        return self.snapshot_dir or self.data_dir

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        values: dict[str, Any] = {}
        for name, (path, parse) in ENV_FIELDS.items():
            raw = environ.get(ENV_PREFIX + name)
            if raw is None or raw == "":
                continue
            try:
                values[path] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{ENV_PREFIX}{name}={raw!r}: {exc}") from exc
        return cls().with_overrides(**values)

    def with_overrides(self, **values: Any) -> Settings:
        """Override by dotted path, e.g. with_overrides(broker=..., **{"encoder.model": ...}).

        ``None`` values are skipped, so unset CLI flags leave the environment's value alone.
        """
        result = self
        for path, value in values.items():
            if value is None:
                continue
            result = _replace_path(result, path.split("."), value)
        result.validate()
        return result

    def validate(self) -> None:
        if not self.broker.startswith(("kafka://", "aiokafka://")):
            raise SettingsError(f"broker {self.broker!r} must look like kafka://HOST:PORT")
        if not 1 <= self.fetch_max_wait_ms <= 60_000:
            raise SettingsError(f"fetch_max_wait_ms must be from 1 to 60000, got {self.fetch_max_wait_ms}")
        if self.log_format not in ("text", "json") or self.log_every_batches < 1:
            raise SettingsError("log_format must be text or json, and log_every_batches >= 1")
        if self.slow_batch_ms < 0:
            raise SettingsError(f"slow_batch_ms must be >= 0 (0 = never log), got {self.slow_batch_ms}")
        if self.unknown_item_wait_s < 0:
            raise SettingsError(f"unknown_item_wait_s must be >= 0 (0 = dead-letter at once), got {self.unknown_item_wait_s}")
        if self.seen_items_max < 1:
            raise SettingsError(f"seen_items_max must be >= 1, got {self.seen_items_max}")
        if self.state_cache_users < 0:
            raise SettingsError(f"state_cache_users must be >= 0 (0 = keep none), got {self.state_cache_users}")
        if self.gc_young_threshold < 0:
            raise SettingsError(f"gc_young_threshold must be >= 0 (0 = Python's default), got {self.gc_young_threshold}")
        if self.numpy_threads < 0:
            raise SettingsError(f"numpy_threads must be >= 0 (0 = numpy's default), got {self.numpy_threads}")
        if self.faiss_threads < 0:
            raise SettingsError(f"faiss_threads must be >= 0 (0 = FAISS's default), got {self.faiss_threads}")
        if self.catalogue_snapshot_s < 0:
            raise SettingsError(f"catalogue_snapshot_s must be >= 0 (0 = never), got {self.catalogue_snapshot_s}")
        if self.recommend.snapshot_every_s < 0:
            raise SettingsError(f"engagements snapshot_every_s must be >= 0 (0 = never), got {self.recommend.snapshot_every_s}")
        if self.encoder.dtype not in ENCODER_DTYPES:
            raise SettingsError(f"encoder dtype must be one of {', '.join(ENCODER_DTYPES)}, got {self.encoder.dtype!r}")
        if self.encoder.pass_overhead_tokens < 0:
            raise SettingsError(f"encoder pass_overhead_tokens must be >= 0 (0 = passes of batch_size), "
                                f"got {self.encoder.pass_overhead_tokens}")
        if self.encoder.threads < 0:
            raise SettingsError(f"encoder threads must be >= 0 (0 = torch's default), got {self.encoder.threads}")
        if self.batch_max < 1 or self.batch_max_texts < 1 or self.batch_wait_ms < 0:
            raise SettingsError("batch_max and batch_max_texts must be >= 1 and batch_wait_ms >= 0")
        if self.decay.half_life_s <= 0:
            raise SettingsError("half_life_s must be > 0")
        for kind, w in self.decay.event_weights.items():
            if w <= 0:
                raise SettingsError(f"event weight for {kind!r} must be > 0, got {w}")
        a = self.alerts
        if a.window_s <= 0 or a.step_s <= 0 or a.window_s % a.step_s:
            raise SettingsError("alert window_s and step_s must be > 0, window_s a multiple of step_s")
        if a.min_count < 1 or a.shift_k <= 0 or a.cooldown_s < 0 or a.webhook_attempts < 1:
            raise SettingsError("alert min_count >= 1, shift_k > 0, cooldown_s >= 0, webhook_attempts >= 1")
        r = self.recommend
        if any(h <= 0 for h in r.engagement.pop_half_lives_s) or not r.engagement.pop_half_lives_s:
            raise SettingsError("popularity half-lives must be > 0 (at least one)")
        if r.candidates.per_source < 1 or r.ranker.lr < 0 or r.candidates.learn_per_batch < 0 or r.candidates.learn_every < 1:
            raise SettingsError("recommend per_source >= 1, ranker lr >= 0, learn_per_batch >= 0, learn_every >= 1")
        if r.learner_restart_s < 0:
            raise SettingsError(f"ranker learner_restart_s must be >= 0, got {r.learner_restart_s}")
        if r.lessons not in ("process", "inline"):
            raise SettingsError(f"ranker lessons must be 'process' or 'inline', got {r.lessons!r}")
        b = r.engagement.behaviour
        if b.dim < 1 or b.lr < 0 or b.negatives < 0:
            raise SettingsError(f"behaviour dim >= 1, lr >= 0, negatives >= 0; got {b.dim}, {b.lr}, {b.negatives}")
        i = self.index
        if any(w <= 0 for w in i.facet_weights.values()):
            raise SettingsError(f"facet weights must be > 0 (stored item vectors are scaled by them), got {i.facet_weights}")
        if i.ann_threshold < 0 or i.ann_nprobe < 1 or i.ann_lists < 0 or i.ann_regrow <= 1:
            raise SettingsError("index ann_threshold >= 0 (0 = never), ann_nprobe >= 1, ann_lists >= 0, ann_regrow > 1")
        missing = {"search", "click", "review"} - set(self.decay.event_weights)
        if missing:
            raise SettingsError(f"event_weights lacks {sorted(missing)}")


def bootstrap_of(broker_url: str) -> str:
    """kafka://HOST:PORT -> HOST:PORT"""
    return broker_url.split("://", 1)[-1]


def _replace_path(obj: Any, path: list[str], value: Any) -> Any:
    head, *rest = path
    if not any(f.name == head for f in dataclasses.fields(obj)):
        raise SettingsError(f"unknown setting {head!r}")
    if rest:
        value = _replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: value})


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ValueError("expected true or false")
    return value in ("1", "true", "yes", "on")


def parse_floats(raw: str) -> tuple[float, ...]:
    """'86400,2592000' -> (86400.0, 2592000.0)"""
    return tuple(float(x) for x in raw.split(",") if x.strip())


def parse_weights(raw: str) -> dict[str, float]:
    """'search=1,click=2.5' -> {'search': 1.0, 'click': 2.5}"""
    out: dict[str, float] = {}
    for part in raw.split(","):
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ValueError("expected name=number pairs separated by commas")
        out[key.strip()] = float(val)
    return out


ENV_FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "BROKER": ("broker", str),
    "APP_ID": ("app_id", str),
    "WEB_HOST": ("web_host", str),
    "CANONICAL_URL": ("canonical_url", str),
    "STANDBY_REPLICAS": ("standby_replicas", int),
    "WEB_PORT": ("web_port", int),
    "DATA_DIR": ("data_dir", str),
    "STORE": ("store", str),
    "PARTITIONS": ("partitions", int),
    "SESSION_TIMEOUT_S": ("session_timeout_s", float),
    "FETCH_MAX_WAIT_MS": ("fetch_max_wait_ms", int),
    "PRODUCER_MAX_BATCH_BYTES": ("producer_max_batch_bytes", int),
    "NUMPY_THREADS": ("numpy_threads", int),
    "FAISS_THREADS": ("faiss_threads", int),
    "FAUST_METRICS": ("faust_metrics", parse_bool),
    "BATCH_MAX": ("batch_max", int),
    "BATCH_MAX_TEXTS": ("batch_max_texts", int),
    "BATCH_WAIT_MS": ("batch_wait_ms", int),
    "BROKER_WAIT_S": ("broker_wait_s", float),
    "CATALOGUE_WAIT_S": ("catalogue_wait_s", float),
    "UNKNOWN_ITEM_WAIT_S": ("unknown_item_wait_s", float),
    "HEALTH_PROBE_S": ("health_probe_s", float),
    "DRIFT_WINDOW": ("drift_window", int),
    "TOPIC_CLUSTERS": ("topic_clusters", int),
    "MAX_K": ("max_k", int),
    "SEEN_ITEMS_MAX": ("seen_items_max", int),
    "GC_YOUNG_THRESHOLD": ("gc_young_threshold", int),
    "STATE_CACHE_USERS": ("state_cache_users", int),
    "MAX_FUTURE_S": ("max_future_s", float),
    "LOG_LEVEL": ("log_level", str),
    "LOG_FORMAT": ("log_format", str),
    "LOG_EVERY_BATCHES": ("log_every_batches", int),
    "SLOW_BATCH_MS": ("slow_batch_ms", int),
    "EVAL_DATA_DIR": ("eval_data_dir", str),
    "ADMIN_TOKEN": ("admin_token", str),
    "READ_TOKEN": ("read_token", str),
    "HALF_LIFE_S": ("decay.half_life_s", float),
    "EVENT_WEIGHTS": ("decay.event_weights", parse_weights),
    "MODEL": ("encoder.model", str),
    "DEVICE": ("encoder.device", str),
    "ENCODER_DTYPE": ("encoder.dtype", str),
    "MAX_LENGTH": ("encoder.max_length", int),
    "ENCODER_BATCH_SIZE": ("encoder.batch_size", int),
    "ENCODER_PASS_OVERHEAD_TOKENS": ("encoder.pass_overhead_tokens", int),
    "ENCODER_CACHE_SIZE": ("encoder.cache_size", int),
    "ENCODER_SENTIMENT_LAYER": ("encoder.sentiment_layer", int),
    "ENCODER_THREADS": ("encoder.threads", int),
    "INDEX_FACTORY": ("index.factory", str),
    "INDEX_DEVICE": ("index.device", str),
    "INDEX_ANN_THRESHOLD": ("index.ann_threshold", int),
    "INDEX_ANN_NPROBE": ("index.ann_nprobe", int),
    "INDEX_ANN_LISTS": ("index.ann_lists", int),
    "INDEX_ANN_REGROW": ("index.ann_regrow", float),
    "FACET_WEIGHTS": ("index.facet_weights", parse_weights),
    "ALERT_WINDOW_S": ("alerts.window_s", float),
    "ALERT_STEP_S": ("alerts.step_s", float),
    "ALERT_EXPIRES_S": ("alerts.expires_s", float),
    "ALERT_SHIFT_K": ("alerts.shift_k", float),
    "ALERT_MIN_COUNT": ("alerts.min_count", int),
    "ALERT_MIN_BASELINE": ("alerts.min_baseline", int),
    "ALERT_BASELINE_ALPHA": ("alerts.baseline_alpha", float),
    "ALERT_SIGMA_FLOOR": ("alerts.sigma_floor", float),
    "ALERT_THRESHOLD": ("alerts.threshold", float),
    "ALERT_VOLUME_RATIO": ("alerts.volume_ratio", float),
    "ALERT_VOLUME_MIN": ("alerts.volume_min", int),
    "ALERT_COOLDOWN_S": ("alerts.cooldown_s", float),
    "FINANCE_WEIGHT": ("alerts.finance_weight", float),
    "TICKERS_FILE": ("alerts.tickers_file", str),
    "INTEREST_MIN_WEIGHT": ("alerts.interest_min_weight", float),
    "ALERT_WEBHOOK_URL": ("alerts.webhook_url", str),
    "ALERT_WEBHOOK_ATTEMPTS": ("alerts.webhook_attempts", int),
    "RECOMMEND_HYBRID": ("recommend.enabled", parse_bool),
    "POPULARITY_HALF_LIVES_S": ("recommend.engagement.pop_half_lives_s", parse_floats),
    "RANKER_LR": ("recommend.ranker.lr", float),
    "RANKER_MIN_HOLDOUT": ("recommend.ranker.min_holdout", int),
    "CANDIDATES_PER_SOURCE": ("recommend.candidates.per_source", int),
    "RANKER_LEARN_PER_BATCH": ("recommend.candidates.learn_per_batch", int),
    "RANKER_LEARN_EVERY": ("recommend.candidates.learn_every", int),
    "RANKER_LESSONS": ("recommend.lessons", str),
    "RANKER_LEARNER_RESTART_S": ("recommend.learner_restart_s", float),
    "ENGAGEMENTS_SNAPSHOT_S": ("recommend.snapshot_every_s", float),
    "CATALOGUE_SNAPSHOT_S": ("catalogue_snapshot_s", float),
    "SNAPSHOT_DIR": ("snapshot_dir", str),
    "BEHAVIOUR": ("recommend.engagement.behaviour.enabled", parse_bool),
    "BEHAVIOUR_DIM": ("recommend.engagement.behaviour.dim", int),
    "BEHAVIOUR_LR": ("recommend.engagement.behaviour.lr", float),
    "BEHAVIOUR_NEGATIVES": ("recommend.engagement.behaviour.negatives", int),
}
