"""The operator is never left guessing: every wrong setting is one line naming it (exit 2), the
startup log says which integrations are on, logs can be JSON, `trubka --version` answers."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import POSTGRES_URL
from tests.serve_process import start_serve
from tests.test_megafon_call import run_cli

REPO = Path(__file__).parents[1]


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'trubka.db'}"


async def _refused(env: dict[str, str], *args: str) -> str:
    """Runs `trubka serve`, expects exit 2 and one line on stderr; returns that line."""
    code, _, err = await run_cli(env, "serve", *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    return lines[0]


async def test_an_unknown_section_of_trubka_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "trubka.toml").write_text("[trackng]\nenabled = true\n", encoding="utf-8")
    line = await _refused({"TRUBKA_DATABASE_URL": _sqlite(tmp_path)})
    assert "[trackng]" in line
    assert "TRUBKA_CONFIG" in line


async def test_an_unknown_trubka_variable_in_dotenv_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "TRUBKA_MEGAFON_CRM_TOKEN=x\nTRUBKA_MEGAFON_APIKEY=typo\nOTHER_APP=fine\n", encoding="utf-8"
    )
    line = await _refused({"TRUBKA_DATABASE_URL": _sqlite(tmp_path)})
    assert "TRUBKA_MEGAFON_APIKEY" in line
    assert "OTHER_APP" not in line and "TRUBKA_MEGAFON_CRM_TOKEN" not in line


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:{closed}/trubka",
        POSTGRES_URL.rpartition("/")[0] + "/trubka_no_such_database",
        "sqlite+aiosqlite:///{tmp}/no/such/folder/trubka.db",
        "sqlite+aiosqlite:///{tmp}",  # a folder, not a file
    ],
    ids=["unreachable", "missing-database", "missing-folder", "not-a-file"],
)
async def test_a_database_that_cannot_be_used_is_one_line_naming_the_setting(
    url: str, tmp_path: Path
) -> None:
    url = url.format(closed=_closed_port(), tmp=tmp_path)
    line = await _refused({"TRUBKA_DATABASE_URL": url})
    assert line.startswith("configuration error: TRUBKA_DATABASE_URL")


async def test_a_port_in_use_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = await _refused(
            {
                "TRUBKA_DATABASE_URL": _sqlite(tmp_path),
                "TRUBKA_HTTP_HOST": "127.0.0.1",
                "TRUBKA_HTTP_PORT": str(port),
            }
        )
    assert "TRUBKA_HTTP_PORT" in line and str(port) in line


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"TRUBKA_MEGAFON_URL": "https://vats1.megapbx.ru"}, "TRUBKA_MEGAFON_API_KEY"),
        ({"TRUBKA_MEGAFON_API_KEY": "k"}, "TRUBKA_MEGAFON_URL"),
        ({"TRUBKA_METRIKA_TOKEN": "t"}, "TRUBKA_METRIKA_COUNTER_ID"),
        ({"TRUBKA_METRIKA_COUNTER_ID": "123"}, "TRUBKA_METRIKA_TOKEN"),
        ({"TRUBKA_NOVOFON_KEY": "k"}, "TRUBKA_NOVOFON_SECRET"),
        ({"TRUBKA_ROISTAT_API_KEY": "k"}, "TRUBKA_ROISTAT_PROJECT"),
        ({"TRUBKA_ROISTAT_PROJECT": "12"}, "TRUBKA_ROISTAT_API_KEY"),
        (
            {"TRUBKA_TELEGRAM_TOKEN": "42:T", "TRUBKA_TELEGRAM_WEBHOOK_URL": "https://x.ru/tg"},
            "TRUBKA_TELEGRAM_WEBHOOK_SECRET",
        ),
        ({"TRUBKA_TELEGRAM_MANAGERS_CHAT_ID": "-100"}, "TRUBKA_TELEGRAM_TOKEN"),
        (
            {"TRUBKA_WHATSAPP_TOKEN": "t", "TRUBKA_WHATSAPP_PHONE_NUMBER_ID": "1065"},
            "TRUBKA_WHATSAPP_APP_SECRET",
        ),
    ],
)
async def test_a_half_configured_integration_is_refused_naming_what_is_missing(
    given: dict[str, str], missing: str, tmp_path: Path
) -> None:
    line = await _refused({"TRUBKA_DATABASE_URL": _sqlite(tmp_path), **given})
    assert f"configuration error: {missing}: required when" in line


async def test_version() -> None:
    code, out, _ = await run_cli({}, "--version")
    assert code == 0
    assert out.strip() == "trubka 0.1.0"


async def _serve_until_healthy(env: dict[str, str], port: int) -> bytes:
    """Starts `trubka serve`, waits for /healthz, stops it; returns what it logged."""
    process = await start_serve(port, env, stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(150):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("serve did not become healthy")
    finally:
        process.terminate()
        _, err = await process.communicate()
    return err


async def test_the_startup_log_lists_each_integration_as_json(
    tmp_path: Path, unused_tcp_port: int
) -> None:
    env = {
        "TRUBKA_DATABASE_URL": _sqlite(tmp_path),
        "TRUBKA_MEGAFON_URL": "https://vats1.megapbx.ru",
        "TRUBKA_MEGAFON_API_KEY": "very-secret-key",
        "TRUBKA_LOG_FORMAT": "json",
        "TRUBKA_LOG_LEVEL": "info",
    }
    err = await _serve_until_healthy(env, unused_tcp_port)
    entries = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    messages = [entry["message"] for entry in entries]
    assert "integration MegaFon PBX commands: on" in messages
    metrika_off = "integration Yandex Metrika: off (TRUBKA_METRIKA_TOKEN"
    assert any(m.startswith(metrika_off) for m in messages)
    assert any(m.startswith("integration Telegram: off") for m in messages)
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert b"very-secret-key" not in err


async def test_log_level_warning_hides_the_info_lines(tmp_path: Path, unused_tcp_port: int) -> None:
    env = {"TRUBKA_DATABASE_URL": _sqlite(tmp_path), "TRUBKA_LOG_LEVEL": "WARNING"}
    err = await _serve_until_healthy(env, unused_tcp_port)
    assert b"integration" not in err


async def test_a_wrong_log_format_is_named(tmp_path: Path) -> None:
    line = await _refused({"TRUBKA_LOG_FORMAT": "xml"})
    assert "TRUBKA_LOG_FORMAT" in line


def test_the_suite_runs_in_an_empty_folder_not_the_checkout(tmp_path: Path) -> None:
    """So a developer's ./trubka.toml, ./.env or ./scenarios.yaml never reaches a test."""
    assert Path.cwd() == tmp_path
    assert Path.cwd() != REPO
    assert not Path("trubka.toml").exists() and not Path(".env").exists()
