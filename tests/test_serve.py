"""`trubka serve` as a user runs it: settings errors exit 2; the README's curl example works."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.serve_process import start_serve
from tests.test_megafon_call import run_cli


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRUBKA_HTTP_PORT", "99999"),
        ("TRUBKA_MEGAFON_API", "v3"),
        ("TRUBKA_DATABASE_URL", "mysql://nope"),
        ("TRUBKA_TIMEZONE", "Mars/Olympus"),
        ("TRUBKA_TELEGRAM_ADMIN_IDS", "12,abc"),
        ("TRUBKA_MEGAFON_URL", "vats123.megapbx.ru"),
    ],
)
async def test_an_invalid_setting_stops_serve_with_exit_2_naming_it(
    variable: str, value: str, tmp_path: Path
) -> None:
    code, _, err = await run_cli({variable: value}, "serve")
    assert code == 2
    assert variable in err


async def test_settings_are_read_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TRUBKA_MEGAFON_API=v9\n", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"TRUBKA_MEGAFON_API" in err


async def test_serve_migrates_and_a_curl_webhook_shows_up_in_calls(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    port = unused_tcp_port
    env = {
        "TRUBKA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "TRUBKA_MEGAFON_CRM_TOKEN": "secret-crm",
        "TRUBKA_API_TOKEN": "secret-api",
    }
    process = await start_serve(port, env, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            # The README's example, as curl sends it (form-encoded).
            form = {
                "cmd": "history",
                "type": "in",
                "status": "missed",
                "phone": "79004443322",
                "user": "pbx",
                "start": "20241202T081500Z",
                "duration": "12",
                "callid": "README-1",
                "crm_token": "secret-crm",
            }
            async with http.post(f"{base}/megafon_webhook", data=form) as response:
                assert (response.status, await response.json()) == (200, {})
            headers = {"Authorization": "Bearer secret-api"}
            async with http.get(f"{base}/api/v1/calls", headers=headers) as response:
                calls = (await response.json())["calls"]
        assert [(c["callid"], c["status"]) for c in calls] == [("README-1", "Missed")]
    finally:
        process.terminate()
        await process.wait()
