"""A script draining the call-tracking pool, over HTTP against the real app (`build_app`, as
`trubka serve` runs it) on a local port: 100 visits/s with a browser's user agent from ten
addresses in ten networks while real visitors browse (tests/tracking_drain.py has the timeline).
Once with the default `[tracking.limits]`, once with them off; then the simulator's exact share
of real visitors with and without the attack. SQLite by default.

    .venv/bin/python bench/pool_drain.py [--rate 100] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pool_sim import attacks
from bot.app import build_app
from bot.settings import Settings
from tests import tracking_drain as drain


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def one_run(limits: str, rate: float, seconds: float) -> drain.Drain:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "trubka.toml"
        config.write_text(drain.config(limits), encoding="utf-8")
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp}/drain.db",
            config=str(config),
        )
        runner, url = await serve(await build_app(settings))
        try:
            async with aiohttp.ClientSession() as http:

                async def post(path: str, value: dict[str, Any], address: str) -> tuple[int, Any]:
                    async with http.post(
                        url + path, data=drain.body(value), headers=drain.headers(address)
                    ) as response:
                        return response.status, await response.json()

                return await drain.run(
                    post, rate=rate, seconds=seconds, after_at=min(3.0, seconds * 0.75)
                )
        finally:
            await runner.cleanup()


def report(name: str, result: drain.Drain) -> None:
    def share(numbers: list[str]) -> str:
        return f"{100 * result.pool_share(numbers):5.1f}% of {len(numbers)}"

    print(f"\n== {name}")
    print(
        f"script: {result.attack_sent} visits in {result.seconds:.1f} s, "
        f"{result.attack_admitted} answered, {result.attack_refused} refused (429); "
        f"pool numbers it was shown: {len(result.attack_numbers)} of {len(drain.POOL)}"
    )
    print(f"real visitors with a pool number — already on the site: {share(result.before)}")
    print(f"  same number on a later page and ping:               {share(result.kept)}")
    print(f"  arriving 0.5 s into the attack (script has budget): {share(result.during)}")
    print(f"  arriving 3 s into the attack:                       {share(result.after)}")


async def main(rate: float, seconds: float) -> None:
    report("default [tracking.limits]", await one_run("", rate, seconds))
    report("limits off", await one_run(drain.LIMITS_OFF, rate, seconds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    asyncio.run(main(args.rate, args.seconds))
    attacks([100, 1000, 3000], days=7, seed=1)
