"""The app as `trubka serve` builds it, served over real HTTP for Schemathesis: SQLite, the fake
MegaFon and Novofon PBXs (tests/fakes/) as its PBXs (a call goes through either, never a 503
"not configured"), and a named token of every scope.

`tests/test_openapi_schemathesis.py` runs `st` against it; to run the same by hand:

    PYTHONPATH=$PWD python -m tests.schemathesis_app --port 8099

prints the `st` command (its tokens in the environment variables that tests/schemathesis.toml
reads) and serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from storage.types import utcnow
from telephony.access import tokens
from telephony.access.audit import Actor
from telephony.access.scopes import SCOPES
from tests.fakes import novofon
from tests.fakes.megafon import API_KEY, FakePbx

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "schemathesis.toml"
# The failures accepted on purpose, each with its reason (reading a row a DELETE kept).
BASELINE = ROOT / "tests" / "schemathesis-baseline.json"
SPEC = "/api/v1/openapi.json"
# Bounded and repeatable: Hypothesis derandomized, the same cases every run (CI and by hand).
MAX_EXAMPLES = 20


def token_variable(scope: str) -> str:
    """`calls:read` → `TRUBKA_ST_TOKEN_CALLS_READ` (read by tests/schemathesis.toml)."""
    return "TRUBKA_ST_TOKEN_" + scope.replace(":", "_").upper()


@dataclass(frozen=True)
class Served:
    url: str  # http://127.0.0.1:PORT
    tokens: dict[str, str]  # scope → secret of a token holding only that scope

    def environment(self) -> dict[str, str]:
        return {token_variable(scope): secret for scope, secret in self.tokens.items()}

    def command(self, st: str = "st") -> list[str]:
        return [
            st, "--config-file", str(CONFIG), "run", self.url + SPEC,
            "--checks", "all",
            "--baseline", str(BASELINE),
            "--max-examples", str(MAX_EXAMPLES),
            "--generation-deterministic",  # (no example database either)
            "--workers", "1",
            "--no-color",
        ]  # fmt: skip


@asynccontextmanager
async def served(port: int = 0, workdir: Path | None = None) -> AsyncIterator[Served]:
    with tempfile.TemporaryDirectory(prefix="trubka-st-") as scratch:
        where = workdir or Path(scratch)
        db = Database(f"sqlite+aiosqlite:///{where / 'trubka.db'}")
        await upgrade(db)
        pbx_server = TestServer(FakePbx().app())
        await pbx_server.start_server()
        novofon_server = TestServer(novofon.FakeNovofon().app())
        await novofon_server.start_server()
        settings = Settings(
            _env_file=None,
            megafon_url=str(pbx_server.make_url("")).rstrip("/"),
            megafon_api_key=API_KEY,
            megafon_crm_token="schemathesis-crm-token",
            megafon_timeout=2.0,
            novofon_url=str(novofon_server.make_url("")).rstrip("/"),
            novofon_key=novofon.KEY,
            novofon_secret=novofon.SECRET,
        )
        app = await build_app(settings, db=db, migrate=False)
        server = TestServer(app, host="127.0.0.1", port=port)
        try:
            secrets = {}
            for scope in SCOPES:
                name = "st-" + scope.replace(":", "-")
                _, secrets[scope] = await tokens.create_token(
                    db, name, scope, actor=Actor("schemathesis"), now=utcnow()
                )
            await server.start_server()
            yield Served(str(server.make_url("")).rstrip("/"), secrets)
        finally:
            await server.close()
            await novofon_server.close()
            await pbx_server.close()
            await db.dispose()


async def _serve_by_hand(port: int) -> None:
    async with served(port) as app:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in app.environment().items())
        print(f"env {exports} \\\n  {shlex.join(app.command())}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve_by_hand(args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
