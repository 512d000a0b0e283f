"""Every error leaves as JSON `{"error": …}`; bad input never becomes a 5xx."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, error: str, **details: Any) -> web.Response:
    return web.json_response({"error": error, **details}, status=status)


class JsonError(web.HTTPException):
    """Raise from a handler to answer `{"error": …}` with the given status."""

    def __init__(self, status: int, error: str, **details: Any) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": error, **details}, ensure_ascii=False),
            content_type="application/json",
        )


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except JsonError:
        raise
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, exc.reason)
        if "Allow" in exc.headers:  # a 405 says which methods the path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:
        # The client went away mid-request (aiohttp fails the body read): nobody is left to
        # answer, and it is not our error. One line, no traceback.
        log.info("client disconnected during %s %s", request.method, request.path)
        return json_error(400, "Client disconnected")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "Internal error")


class _ProtocolErrorsInOneLine(logging.Filter):
    """aiohttp logs a malformed request (a 9 KB request line, broken headers) with a full
    traceback before answering 400 itself. It is the client's fault: one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            detail = f"{error.code} {str(error.message)[:120]!r}".replace("%", "%%")
            record.msg = f"{record.msg}: {detail}"
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_protocol_errors() -> None:
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ProtocolErrorsInOneLine) for f in server_log.filters):
        server_log.addFilter(_ProtocolErrorsInOneLine())
