"""`trubka serve` as a separate process, the way an operator starts it (for the tests that
need a real process: exit codes, roles, several processes, kill -9)."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import IO, Any

# What the Dockerfile, deploy/trubka.service and `make run` add to the environment.
DEPLOYED = {"PYTHONOPTIMIZE": "2"}


async def start_serve(
    port: int,
    env: dict[str, str],
    *args: str,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> asyncio.subprocess.Process:
    """`python -m bot serve --host 127.0.0.1 --port PORT ARGS…` with `env` over ours, and
    PYTHONOPTIMIZE=2 as the deploy files set it (unless `env` says otherwise)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port), *args,
        env={**os.environ, **DEPLOYED, **env}, stdout=stdout, stderr=stderr,
    )  # fmt: skip
