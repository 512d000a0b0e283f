"""What one `trubka serve` process does: `web`, `worker` or `all`."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    WEB = "web"  # HTTP: webhooks, API, call tracking; no background loop
    WORKER = "worker"  # background loops; HTTP only for /healthz and /metrics
    ALL = "all"

    @property
    def http(self) -> bool:
        return self is not Role.WORKER

    @property
    def background(self) -> bool:
        return self is not Role.WEB


ROLES = tuple(role.value for role in Role)
