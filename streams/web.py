"""HTTP API on the worker (Faust web): profile, recommendations, forget, health."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from schemas import InvalidEvent, dump_json, ticker
from schemas.records import MAX_ID_LEN, MAX_TICKERS
from streams.profiles import unit_facets

if TYPE_CHECKING:
    from streams.app import InterestStreamApp


def _error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message, "status": status}, status=status)


def register_views(isa: InterestStreamApp) -> None:
    app = isa.app

    @app.page("/healthz", name="healthz")
    async def healthz(view: View, request: Request) -> Response:
        ready = isa.app.tables.recovery.completed.is_set() and not isa.app.rebalancing
        # degraded: the broker does not answer; the worker keeps retrying and resumes by itself.
        status = "degraded" if not isa.broker_health.reachable else "ok" if ready else "starting"
        return view.json(
            {
                "status": status,
                "broker": isa.broker_health.to_dict(),
                "uptime_s": round(time.time() - isa.started_at, 3),
                "items_indexed": len(isa.index),
                "users": len(isa.users),
                "model": isa.encoder.model_name,
                "device": str(isa.encoder.device),
                "index_on_gpu": isa.index.use_gpu,
                "encoder_forward_passes": isa.encoder.forward_passes,
                "encoder_cache_hits": isa.encoder.cache_hits,
                "sentiment_head": isa.encoder.heads["sentiment"].online.status(),
                # What the offset guard dropped or had read again (streams/offset_guard.py).
                "input_order": asdict(isa.app.consumer.guard.stats),
                **isa.stats,
            }
        )

    # Requests about a user are answered by the worker owning the user's partition (Faust routes
    # them there); 503 while partitions are being reassigned.
    @app.page("/users/{user_id}/profile", name="profile")
    class Profile(View):
        @app.topic_route(isa.route_topic, match_info="user_id")
        async def get(self, request: Request, user_id: str) -> Response:
            if len(user_id) > MAX_ID_LEN:
                return _error(self, 400, f"user id longer than {MAX_ID_LEN} characters")
            state = isa.state_of(user_id)
            if state is None:
                return _error(self, 404, f"unknown user {user_id!r}: no events seen for this user")
            return self.json(isa.profile_of(user_id, state).to_dict())

    @app.page("/users/{user_id}", name="user")
    class User(View):
        async def delete(self, request: Request, user_id: str) -> Response:
            """Forget a user: queued on the `forget` topic, applied in order with their events."""
            refusal = _admin_refusal(self, request, user_id)
            if refusal is not None:
                return refusal
            event = {"type": "forget", "event_id": f"forget-{uuid.uuid4().hex}", "user_id": user_id, "ts": time.time()}
            await isa.forget_topic.send(key=user_id.encode(), value=dump_json(event))
            return self.json({"user_id": user_id, "status": "forgetting", "event_id": event["event_id"]}, status=202)

    def _admin_refusal(view: View, request: Request, user_id: str) -> Response | None:
        """The answer refusing an admin write about ``user_id`` (no token, wrong token, id too long), or None."""
        token = isa.settings.admin_token
        if not token:
            return _error(view, 403, "admin endpoints are disabled; set INTEREST_STREAM_ADMIN_TOKEN")
        if not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return _error(view, 401, "missing or wrong bearer token")
        if len(user_id) > MAX_ID_LEN:
            return _error(view, 400, f"user id longer than {MAX_ID_LEN} characters")
        return None

    @app.page("/users/{user_id}/watchlist", name="watchlist")
    class Watchlist(View):
        async def post(self, request: Request, user_id: str) -> Response:
            """Body {"add": [tickers], "remove": [tickers]}: queued on `watchlists`, keyed by user."""
            refusal = _admin_refusal(self, request, user_id)
            if refusal is not None:
                return refusal
            try:
                body = await request.json()
                changes = [(op, ticker(t, op)) for op in ("add", "remove") for t in body.get(op, [])]
            except (ValueError, AttributeError, TypeError, InvalidEvent) as exc:
                return _error(self, 400, f'body must be {{"add": [tickers], "remove": [tickers]}}: {exc}')
            if not changes or len(changes) > MAX_TICKERS:
                return _error(self, 400, f"give 1 to {MAX_TICKERS} tickers to add or remove")
            for op, entity in changes:
                event = {"type": "watchlist", "event_id": f"wl-{uuid.uuid4().hex}", "user_id": user_id,
                         "entity": entity, "op": op, "ts": time.time()}
                await isa.watchlist_topic.send(key=user_id.encode(), value=dump_json(event))
            return self.json({"user_id": user_id, "queued": [{"op": o, "entity": e} for o, e in changes]}, status=202)

    @app.page("/drift", name="drift")
    async def drift(view: View, request: Request) -> Response:
        """Per facet: PSI between this worker's first and last `drift_window` events, and both mixes."""
        return view.json({"window": isa.drift.window, "facets": isa.drift.report()})

    @app.page("/alerts", name="alerts")
    async def alerts(view: View, request: Request) -> Response:
        """?entity=TICKER&since=epoch seconds (event time); newest last."""
        entity = request.query.get("entity") or None
        try:
            since = float(request.query.get("since", "0"))
            entity = ticker(entity, "entity") if entity else None
        except (ValueError, InvalidEvent) as exc:
            return _error(view, 400, f"entity must be a ticker and since epoch seconds: {exc}")
        return view.json({"alerts": isa.news.recent_alerts(entity, since)})

    @app.page("/entities/{entity}", name="entity")
    async def entity(view: View, request: Request, entity: str) -> Response:
        try:
            symbol = ticker(entity, "entity")
        except InvalidEvent as exc:
            return _error(view, 400, str(exc))
        summary = isa.news.entity_summary(symbol)
        if summary is None:
            return _error(view, 404, f"no news seen about {symbol}")
        return view.json(summary)

    @app.page("/users/{user_id}/recommendations", name="recommendations")
    @app.topic_route(isa.route_topic, match_info="user_id")
    async def recommendations(view: View, request: Request, user_id: str) -> Response:
        if len(user_id) > MAX_ID_LEN:
            return _error(view, 400, f"user id longer than {MAX_ID_LEN} characters")
        max_k = isa.settings.max_k
        raw_k = request.query.get("k", "10")
        try:
            k = int(raw_k)
        except ValueError:
            return _error(view, 400, f"k must be a whole number from 1 to {max_k}, got {raw_k!r}")
        if not 1 <= k <= max_k:
            return _error(view, 400, f"k must be from 1 to {max_k}, got {k}")
        state = isa.state_of(user_id)
        if state is None:
            return _error(view, 404, f"unknown user {user_id!r}: no events seen for this user")
        if state.empty:
            return _error(view, 404, f"user {user_id!r} has no search, click or review yet to recommend from")
        z = unit_facets(state, isa.encoder.layout)
        [hits] = isa.index.search([z], k, exclude=[state.seen_items])
        items: list[dict[str, Any]] = [
            {
                "item_id": h.item_id,
                "score": round(h.score, 6),
                "facet_scores": {f: round(s, 6) for f, s in h.facet_scores.items()},
                "contributions": {f: round(c, 6) for f, c in h.contributions.items()},
                "matched_by": h.matched_by,
                **h.meta,
            }
            for h in hits
        ]
        return view.json({"user_id": user_id, "k": k, "items": items})
