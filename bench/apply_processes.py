"""Draining a stored backlog on PostgreSQL with 1, 2, 3… applier processes (`serve`).

For each process count K: a fresh PostgreSQL database, N MegaFon call lifecycles stored in its
inbox without applying (a PBX replaying its history), then K `python -m bot serve` processes
started on it; the database is polled until nothing is pending. The rate is taken from the
moment every process answers HTTP (startup is not applying) to the end of the drain:

    PYTHONPATH=$PWD .venv/bin/python bench/apply_processes.py [--calls 1000] [--processes 1,2,3]
        [--admin-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

Every process applies (storage/inbox_claim.py: rows `SKIP LOCKED`, a call per process at a time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from megafon_calls import call_lifecycle  # noqa: E402  (bench/: the script's folder)

from tests.postgres_admin import ADMIN_URL, fresh_database  # noqa: E402
from tests.serve_process import DEPLOYED  # noqa: E402

TOKEN = "bench-token"
GOAL_THREE = 2000  # pushes/s with three processes (issue 23)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _store(url: str, calls: int) -> int:
    """Migrate the database and store the backlog, applying nothing; returns pushes stored."""
    from storage.db import Database
    from storage.migrate import upgrade
    from telephony.calls.inbox import CallInbox
    from telephony.calls.pipeline import CallPipeline
    from telephony.providers.megafon import PROVIDER, dedup_key, parse_call_push, parse_push

    db = Database(url)
    await upgrade(db)
    inbox = CallInbox(db, CallPipeline(db), {PROVIDER: parse_call_push})
    await inbox.start(process=False)
    pushes = [
        p
        for n in range(calls)
        for p in call_lifecycle(f"DRAIN-{n}", f"7905{n:07d}", TOKEN, contact=False)
    ]
    for start in range(0, len(pushes), 400):
        await asyncio.gather(
            *(
                inbox.submit(
                    PROVIDER,
                    p,
                    dedup_key(p),
                    command=p["cmd"],
                    secret_field="crm_token",
                    push=parse_push(p),  # type: ignore[arg-type]
                )
                for p in pushes[start : start + 400]
            )
        )
    await inbox.drain(process=False)
    for task in inbox._tasks:  # stored only: the serve processes apply
        task.cancel()
    await asyncio.gather(*inbox._tasks, return_exceptions=True)
    await db.dispose()
    return len(pushes)


async def _pending(url: str) -> int:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return int(
            await connection.fetchval("SELECT count(*) FROM call_events WHERE processed_at IS NULL")
        )
    finally:
        await connection.close()


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes used so far (Linux /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _poll(check: Callable[[], Awaitable[bool]]) -> None:
    """Until `check()` is true, every 0.1 s (another process changes what it reads)."""
    while True:
        if await check():
            return
        await asyncio.sleep(0.1)


async def _drained(url: str) -> bool:
    return await _pending(url) == 0


async def _answers(port: int) -> bool:
    import aiohttp

    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            return response.status in (200, 503)
    return False


async def _run(admin_url: str, calls: int, processes: int) -> tuple[int, float]:
    name = f"trubka_bench_drain_{os.getpid()}_{processes}"
    async with fresh_database(admin_url, name) as url:
        return await _drain(url, name, calls, processes)


async def _drain(url: str, name: str, calls: int, processes: int) -> tuple[int, float]:
    log_path = Path(tempfile.gettempdir()) / f"{name}.log"  # what the serve processes logged
    logs = log_path.open("w")  # the children write it; closed below
    children: list[asyncio.subprocess.Process] = []
    try:
        stored = await _store(url, calls)
        env = {
            **os.environ,
            **DEPLOYED,  # as the deploy files run it
            "PYTHONPATH": str(ROOT),
            "TRUBKA_DATABASE_URL": url,
            "TRUBKA_MEGAFON_CRM_TOKEN": TOKEN,
            "TRUBKA_LOG_LEVEL": "WARNING",
        }
        for port in (ports := [_free_port() for _ in range(processes)]):
            children.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    *("-m", "bot", "serve", "--port", str(port)),
                    env=env,
                    stdout=logs,
                    stderr=asyncio.subprocess.STDOUT,
                )
            )
        async with asyncio.timeout(60):
            for port in ports:
                await _poll(functools.partial(_answers, port))
        pids = [child.pid for child in children]
        began, cpu, left = time.perf_counter(), _cpu_seconds(pids), await _pending(url)
        await _poll(lambda: _drained(url))
        seconds, cpu = time.perf_counter() - began, _cpu_seconds(pids) - cpu
        print(
            f"{processes} process(es): {stored} pushes stored, {left} left when all were up, "
            f"drained in {seconds:.1f} s: {left / seconds:.0f} pushes/s; "
            f"CPU {cpu / left * 1000:.1f} ms per push (log: {log_path})",
            flush=True,
        )
        return left, seconds
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
        for child in children:
            await child.wait()
        logs.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--processes", default="1,2,3")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rates: dict[int, float] = {}
    for count in (int(k) for k in args.processes.split(",")):
        left, seconds = await _run(args.admin_url, args.calls, count)
        rates[count] = left / seconds
    if 1 in rates and len(rates) > 1:  # the baseline: one process, same run
        print(
            "against 1 process: "
            + ", ".join(f"{k}: {rate / rates[1]:.2f}x" for k, rate in rates.items() if k != 1)
            + f" (goal: >= {GOAL_THREE:,} pushes/s with 3: "
            + (f"{rates[3]:,.0f})" if 3 in rates else "not run)")
        )


if __name__ == "__main__":
    asyncio.run(main())
