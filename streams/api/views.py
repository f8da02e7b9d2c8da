"""HTTP views on the worker (Faust web):

    GET    /healthz                          status, broker, counters, offset guard, heads
    GET    /users?limit=                     ids of users whose state this worker holds (read token)
    GET    /users/{id}/profile               Z per facet, readings, what moved it (owner's partition; read token)
    GET    /users/{id}/recommendations?k=&ranking=   hybrid (default) or facet top-k (owner's partition; read token)
    DELETE /users/{id}                       forget the user (admin token)
    POST   /users/{id}/watchlist             follow / unfollow tickers (admin token)
    GET    /drift                            per-facet PSI of this worker's recent events
    GET    /alerts?entity=&since=            recent news-sentiment alerts
    GET    /entities/{ticker}                an entity's window, baseline and recent news
    GET    /ui, /ui/alerts                   the live page (streams/api/live_page.py)
    GET    /metrics                          Prometheus text (Faust's own page instead when its sensors are on)
"""

from __future__ import annotations

import hmac
import time
import uuid
from typing import Any

import faust
from aiohttp.web import Response as RawResponse
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from index import Hit, ItemIndex, UnknownItem
from schemas import MAX_TICKERS, InvalidEvent, dump_json, id_problem, ticker
from schemas.topics import FORGET, WATCHLISTS
from streams.api.deps import ApiDeps
from streams.api.live_page import register_live_page
from streams.state.profiles import user_z
from streams.state.recommend import user_view
from streams.worker.readings import profile_of

USER_LIST_MAX = 1000


def _error(view: View, status: int, message: str) -> Response:
    return view.json({"error": message, "status": status}, status=status)


def _user_id_problem(user_id: str) -> str | None:
    """Why ``user_id`` from a path cannot be a user's id, or None: the rule records follow, and no
    surrounding whitespace (records strip it: a forget of " alice" would forget "alice")."""
    if user_id != user_id.strip():
        return "has leading or trailing whitespace"
    return id_problem(user_id)


def _bearer_is(request: Request, token: str) -> bool:
    """Constant-time comparison of the Authorization header with ``Bearer <token>``."""
    return hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode())


def _facet_item(hit: Hit, score: float, sources: list[str]) -> dict[str, Any]:
    """A recommended item: its score, sources, how the user's Z matches it per facet, metadata."""
    return {
        "item_id": hit.item_id,
        "score": score,
        "sources": sources,
        "facet_scores": {f: round(s, 6) for f, s in hit.facet_scores.items()},
        "contributions": {f: round(c, 6) for f, c in hit.contributions.items()},  # of the facet match
        "matched_by": hit.matched_by,
        **hit.meta,
    }


def _unmatched(index: ItemIndex, item_id: str) -> Hit:
    """An item recommended to a user without a Z: no facet match, its metadata."""
    if not index.known([item_id])[0]:
        raise UnknownItem(item_id)
    return Hit(item_id, 0.0, {}, index.meta(item_id), {})


def register_views(app: faust.App, api: ApiDeps, metrics_page: bool = True) -> None:
    """``metrics_page``: serve GET /metrics from the worker's registry (False where Faust's
    ``setup_prometheus_sensors`` already registered its own page on that registry)."""
    ctx = api.ctx

    if metrics_page:
        @app.page("/metrics", name="metrics")
        async def metrics(view: View, request: Request) -> Response:
            # aiohttp's own Response: Faust's helpers refuse a content type with a charset in it.
            return RawResponse(body=generate_latest(ctx.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz", name="healthz")
    async def healthz(view: View, request: Request) -> Response:
        return view.json(api.health())

    # Requests about a user are answered by the worker owning the user's partition (Faust routes
    # them there); 503 while partitions are being reassigned.
    @app.page("/users/{user_id}/profile", name="profile")
    class Profile(View):
        @app.topic_route(api.route_topic, match_info="user_id")
        async def get(self, request: Request, user_id: str) -> Response:
            refusal = _read_refusal(self, request)
            if refusal is not None:
                return refusal
            if (problem := _user_id_problem(user_id)) is not None:
                return _error(self, 400, f"user id {problem}")
            try:
                state = api.users.state_of(user_id)
            except ValueError as exc:  # its events are dead-lettered meanwhile (streams/worker/users.py)
                return _error(self, 500, f"the stored state of user {user_id!r} cannot be read: {exc}")
            if state is None:
                return _error(self, 404, f"unknown user {user_id!r}: no events seen for this user")
            # The profiles topic's codec (its vectors are arrays), so both read the same.
            return self.bytes(dump_json(profile_of(ctx, user_id, state, with_interests=True).to_dict()),
                              content_type="application/json")

    @app.page("/users", name="users")
    async def user_list(view: View, request: Request) -> Response:
        """Ids this worker holds state for (its partitions and standbys), in store order: a way
        in for people (the live page), not an index of all users."""
        refusal = _read_refusal(view, request)
        if refusal is not None:
            return refusal
        raw = request.query.get("limit", "100")
        if not (raw.isascii() and raw.isdecimal()) or not 1 <= int(raw) <= USER_LIST_MAX:
            return _error(view, 400, f"limit must be a whole number from 1 to {USER_LIST_MAX}, got {raw!r}")
        return view.json({"users": api.users.user_ids(int(raw))})

    @app.page("/users/{user_id}", name="user")
    class User(View):
        async def delete(self, request: Request, user_id: str) -> Response:
            """Forget a user: queued on the `forget` topic, applied in order with their events."""
            refusal = _admin_refusal(self, request, user_id)
            if refusal is not None:
                return refusal
            event = {"type": "forget", "event_id": f"forget-{uuid.uuid4().hex}", "user_id": user_id, "ts": time.time()}
            await ctx.outbox.publish(FORGET.name, user_id.encode(), dump_json(event))
            return self.json({"user_id": user_id, "status": "forgetting", "event_id": event["event_id"]}, status=202)

    def _read_refusal(view: View, request: Request) -> Response | None:
        """401 when a read token is set and the request does not carry it (profiles are personal
        data). Checked where the request is answered: a routed request keeps its headers."""
        token = ctx.settings.read_token
        if token and not _bearer_is(request, token):
            return _error(view, 401, "missing or wrong bearer token (reading users needs INTEREST_STREAM_READ_TOKEN)")
        return None

    def _admin_refusal(view: View, request: Request, user_id: str) -> Response | None:
        """The answer refusing an admin write about ``user_id`` (no token, wrong token, not a user id), or None."""
        token = ctx.settings.admin_token
        if not token:
            return _error(view, 403, "admin endpoints are disabled; set INTEREST_STREAM_ADMIN_TOKEN")
        if not _bearer_is(request, token):
            return _error(view, 401, "missing or wrong bearer token")
        if (problem := _user_id_problem(user_id)) is not None:
            return _error(view, 400, f"user id {problem}")
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
                await ctx.outbox.publish(WATCHLISTS.name, user_id.encode(), dump_json(event))
            return self.json({"user_id": user_id, "queued": [{"op": o, "entity": e} for o, e in changes]}, status=202)

    @app.page("/drift", name="drift")
    async def drift(view: View, request: Request) -> Response:
        """Per facet: PSI between this worker's first and last `drift_window` events, and both mixes."""
        return view.json({"window": api.drift.window, "facets": api.drift.report()})

    @app.page("/alerts", name="alerts")
    async def alerts(view: View, request: Request) -> Response:
        """?entity=TICKER&since=epoch seconds (event time); newest last."""
        entity = request.query.get("entity") or None
        try:
            since = float(request.query.get("since", "0"))
            entity = ticker(entity, "entity") if entity else None
        except (ValueError, InvalidEvent) as exc:
            return _error(view, 400, f"entity must be a ticker and since epoch seconds: {exc}")
        return view.json({"alerts": api.news.recent_alerts(entity, since)})

    @app.page("/entities/{entity}", name="entity")
    async def entity(view: View, request: Request, entity: str) -> Response:
        try:
            symbol = ticker(entity, "entity")
        except InvalidEvent as exc:
            return _error(view, 400, str(exc))
        summary = api.news.entity_summary(symbol)
        if summary is None:
            return _error(view, 404, f"no news seen about {symbol}")
        return view.json(summary)

    @app.page("/users/{user_id}/recommendations", name="recommendations")
    @app.topic_route(api.route_topic, match_info="user_id")
    async def recommendations(view: View, request: Request, user_id: str) -> Response:
        refusal = _read_refusal(view, request)
        if refusal is not None:
            return refusal
        if (problem := _user_id_problem(user_id)) is not None:
            return _error(view, 400, f"user id {problem}")
        max_k = ctx.settings.max_k
        raw_k = request.query.get("k", "10")
        try:
            k = int(raw_k)
        except ValueError:
            return _error(view, 400, f"k must be a whole number from 1 to {max_k}, got {raw_k!r}")
        if not 1 <= k <= max_k:
            return _error(view, 400, f"k must be from 1 to {max_k}, got {k}")
        rankings = ("hybrid", "facet") if ctx.recommender is not None else ("facet",)
        ranking = request.query.get("ranking", rankings[0])
        if ranking not in rankings:
            return _error(view, 400, f"ranking must be one of {', '.join(rankings)}, got {ranking!r}")
        try:
            state = api.users.state_of(user_id)
        except ValueError as exc:
            return _error(view, 500, f"the stored state of user {user_id!r} cannot be read: {exc}")
        if state is None:
            return _error(view, 404, f"unknown user {user_id!r}: no events seen for this user")
        if state.empty and ranking == "facet":  # only watchlist requests so far: no Z to rank by
            return _error(view, 404, f"user {user_id!r} has no search, click or review yet to recommend from")
        if ranking == "facet":
            [hits] = ctx.index.search([user_z(state, ctx.layout)], k, exclude=[state.seen_items])
            items = [_facet_item(h, round(h.score, 6), ["facet"]) for h in hits]
        else:
            # A user with only watchlist requests has no Z yet: the hybrid still serves them (what
            # is popular now), like any cold start, with no facet match to explain.
            who = user_view(state, ctx.layout)
            assert ctx.recommender is not None
            items = []
            for s in ctx.recommender.recommend(who, k):
                try:
                    hit = ctx.index.explain(who.z, s.item_id) if who.z is not None else _unmatched(ctx.index, s.item_id)
                except UnknownItem:  # left the catalogue since it was ranked
                    continue
                parts = ctx.recommender.ranker.contributions(s.features)
                items.append({**_facet_item(hit, round(s.score, 6), list(s.sources)),
                              "score_parts": {f: round(v, 6) for f, v in parts.items()},
                              "ranked_by": max(parts, key=lambda f: parts[f]) if parts else ""})
        return view.json({"user_id": user_id, "k": k, "items": items})

    register_live_page(app, api)
