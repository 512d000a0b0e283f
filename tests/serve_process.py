"""`trubka serve` as a separate process, the way an operator starts it (for the tests that
need a real process: exit codes, roles, several processes, kill -9)."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import IO, Any


async def start_serve(
    port: int,
    env: dict[str, str],
    *args: str,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> asyncio.subprocess.Process:
    """`python -m bot serve --host 127.0.0.1 --port PORT ARGS…` with `env` over ours."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port), *args,
        env={**os.environ, **env}, stdout=stdout, stderr=stderr,
    )  # fmt: skip
