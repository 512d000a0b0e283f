"""The `/reports` sub-application: login, the four pages, CSV of every table."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from handlers.web.reports import auth, pages
from handlers.web.reports_api import REPORTS
from telephony.reports import ReportService


def build_reports_app(service: ReportService, *, secure_cookie: bool) -> web.Application:
    app = web.Application(middlewares=[auth.require_login])
    app[REPORTS] = service
    app[auth.LOGIN_LIMITS] = auth.LoginLimits(secure_cookie=secure_cookie)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("handlers.web.reports", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.filters["pct"] = lambda value: f"{float(value) * 100:.0f}%"
    env.filters["minutes"] = lambda value: "—" if value is None else f"{value:.0f} мин"
    app.add_routes(auth.routes)
    app.add_routes(pages.routes)
    return app
