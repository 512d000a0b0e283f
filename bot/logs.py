"""Logging for every command: TRUBKA_LOG_LEVEL and TRUBKA_LOG_FORMAT (`text` or `json`).

JSON is one object per line (`time`, `level`, `logger`, `message`, plus `exc` with the
traceback), what log collectors (Loki, journald exporters, ELK) read without parsing rules.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str = "INFO", form: str = "text") -> None:
    # Neither format shows where a line was logged from, or which thread or process logged it:
    # a record skips looking them up (the logging HOWTO's "Optimization"), a few microseconds
    # of every access log line, which is one per request.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
