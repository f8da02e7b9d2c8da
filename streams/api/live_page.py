"""The live page for people (no frontend build): server-rendered HTML shells around one plain
script that polls the worker's own JSON API and redraws.

    GET /ui?user=ID            a user's facets as bars, what moved them, recommendations and sources
    GET /ui/alerts?entity=T    the alert feed and an entity's window against its baseline
    GET /ui/static/{name}      live.js, live.css

The shells carry no personal data, so they are open; the data requests honour the read token
(the page asks for it and sends it as a bearer token).
"""

from __future__ import annotations

import html
from functools import lru_cache
from importlib import resources
from pathlib import PurePath
from string import Template

import faust
from faust.web import Request, Response, View

from streams.api.deps import ApiDeps

POLL_MS = 1000
STATIC_TYPES = {"live.js": "application/javascript", "live.css": "text/css"}


@lru_cache(maxsize=None)
def _static(name: str) -> str:
    return (resources.files("streams.api") / "static" / name).read_text(encoding="utf-8")


def render(view_name: str, api: ApiDeps, user: str = "", entity: str = "") -> str:
    """One page: the shell around the users or the alerts body, every inserted value escaped."""
    ctx = api.ctx
    values = {
        "view": view_name, "user": html.escape(user), "entity": html.escape(entity),
        "title": "users" if view_name == "users" else "alerts",
        "users_nav": "current" if view_name == "users" else "",
        "alerts_nav": "current" if view_name == "alerts" else "",
        "poll_ms": str(POLL_MS), "poll_s": f"{POLL_MS / 1000:g}",
        "token_hint": "needed here" if ctx.settings.read_token else "not needed",
        "model": html.escape("/".join(PurePath(ctx.encoder.model_name).parts[-2:])), "device": html.escape(str(ctx.encoder.device)),
    }
    inner = Template(_static(f"{view_name}.html")).substitute(values)
    return Template(_static("page.html")).substitute(values, body=inner)


def register_live_page(app: faust.App, api: ApiDeps) -> None:
    @app.page("/ui", name="ui-users")
    async def users_page(view: View, request: Request) -> Response:
        return view.html(render("users", api, user=request.query.get("user", "")))

    @app.page("/ui/alerts", name="ui-alerts")
    async def alerts_page(view: View, request: Request) -> Response:
        return view.html(render("alerts", api, entity=request.query.get("entity", "")))

    @app.page("/ui/static/{name}", name="ui-static")
    async def static(view: View, request: Request, name: str) -> Response:
        if name not in STATIC_TYPES:
            return view.json({"error": f"no such file {name!r}", "status": 404}, status=404)
        return view.text(_static(name), content_type=STATIC_TYPES[name])
