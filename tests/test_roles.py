"""`trubka serve --role web|worker|all`: web serves HTTP and takes no lease (runs no
singleton); worker runs the singletons and serves only /healthz and /metrics."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from tests.serve_process import start_serve

API_TOKEN = "role-token"


async def _serve(role: str, database: Path, port: int) -> asyncio.subprocess.Process:
    env = {"TRUBKA_DATABASE_URL": f"sqlite+aiosqlite:///{database}", "TRUBKA_API_TOKEN": API_TOKEN}
    process = await start_serve(port, env, "--role", role, stderr=asyncio.subprocess.DEVNULL)
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    await process.wait()
    pytest.fail(f"serve --role {role} did not become healthy")


def _leases(database: Path) -> list[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            # Held rows expire a few seconds ahead; a released one expired when it was released.
            "SELECT name FROM worker_leases WHERE expires_at > datetime('now', '+1 seconds') "
            "ORDER BY name"
        ).fetchall()
    return [name for (name,) in rows]


async def _status(port: int, path: str) -> int:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}{path}", headers=headers) as response,
    ):
        return response.status


@pytest.mark.parametrize(
    ("role", "api", "holds"),
    [
        ("web", 200, []),
        ("worker", 404, ["leads-sweep", "report-rollup", "scenario-scheduler"]),
        ("all", 200, ["leads-sweep", "report-rollup", "scenario-scheduler"]),
    ],
)
async def test_what_each_role_serves_and_runs(
    role: str, api: int, holds: list[str], tmp_path: Path, unused_tcp_port: int
) -> None:
    database = tmp_path / "roles.db"
    process = await _serve(role, database, unused_tcp_port)
    try:
        assert await _status(unused_tcp_port, "/api/v1/calls") == api
        assert await _status(unused_tcp_port, "/metrics") == 200
        assert _leases(database) == holds
    finally:
        process.terminate()
        await process.wait()
    assert process.returncode == 0
    assert _leases(database) == []  # a clean stop hands every lease back
