"""`/reports`: server-rendered report pages (a sub-application owning its login)."""

from handlers.web.reports.app import build_reports_app

__all__ = ["build_reports_app"]
