"""HTTP API on the worker (Faust web): profile, recommendations, health."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

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
        return view.json(
            {
                "status": "ok" if ready else "starting",
                "uptime_s": round(time.time() - isa.started_at, 3),
                "items_indexed": len(isa.index),
                "users": len(isa.users),
                "model": isa.encoder.model_name,
                "device": str(isa.encoder.device),
                "index_on_gpu": isa.index.use_gpu,
                "encoder_forward_passes": isa.encoder.forward_passes,
                "encoder_cache_hits": isa.encoder.cache_hits,
                **isa.stats,
            }
        )

    @app.page("/users/{user_id}/profile", name="profile")
    async def profile(view: View, request: Request, user_id: str) -> Response:
        state = isa.state_of(user_id)
        if state is None:
            return _error(view, 404, f"unknown user {user_id!r}: no events seen for this user")
        return view.json(isa.profile_of(user_id, state).to_dict())

    @app.page("/users/{user_id}/recommendations", name="recommendations")
    async def recommendations(view: View, request: Request, user_id: str) -> Response:
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
        z = unit_facets(state, isa.encoder.layout)
        [hits] = isa.index.search([z], k, exclude=[state.seen_items])
        items: list[dict[str, Any]] = [
            {
                "item_id": h.item_id,
                "score": round(h.score, 6),
                "facet_scores": {f: round(s, 6) for f, s in h.facet_scores.items()},
                **h.meta,
            }
            for h in hits
        ]
        return view.json({"user_id": user_id, "k": k, "items": items})
