"""The house rule "no network await while a database session is open", enforced where every
upstream request starts.

A request made with a session open is a bug: in production it is logged as an error (with
where it came from) and goes ahead; under the test suite (`STRICT`) it raises, so any test
that takes such a path fails.
"""

from __future__ import annotations

import logging
import traceback

from storage.db import session_open

log = logging.getLogger(__name__)

STRICT = False  # tests/conftest.py turns it on


class NetworkInTransaction(RuntimeError):
    """An upstream request was started while a database session was open."""


def check_no_open_session(upstream: str) -> None:
    if not session_open():
        return
    where = "".join(traceback.format_stack(limit=6)[:-1])
    if STRICT:
        raise NetworkInTransaction(f"{upstream} request inside a database session")
    log.error("%s request inside a database session (stalls other writers):\n%s", upstream, where)
