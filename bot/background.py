"""Background loops inside `trubka serve` run on `telephony.infra.worker` (kept importable here)."""

from __future__ import annotations

from telephony.infra.worker import Worker, Workers, drain, end_task

__all__ = ["Worker", "Workers", "drain", "end_task"]
