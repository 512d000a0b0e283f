"""Webhook throughput and latency: Trubka against a bare aiohttp app, same load generator, same run.

Drives realistic MegaFon call lifecycles (contact, INCOMING, ACCEPTED, COMPLETED, history; a unique
callid and caller each) at servers started as separate processes on loopback (pinned to different
cores than the generator with `taskset` when there are at least two), and prints:

1. `saturation`: accepted events/s of bare aiohttp and of Trubka and their ratio — with `wrk`
   when it is installed (a Lua script posts the form bodies with varying call ids), else the
   Python generator (`--generator python` forces it); and of "durable", bare aiohttp that
   commits each push to SQLite before it answers (the floor of any durable answer);
2. `rates`: fixed rate (open loop, the Python generator: wrk has no fixed-rate mode) at 100 and
   300 events/s for `--duration` seconds each, first against bare aiohttp (the baseline), then
   Trubka: p50/p99 latency, `contact` p99, Trubka's inbox backlog (stored pushes not yet
   applied) at the end of the run, and the CPU `serve`'s threads spent on the run;
3. `drain`: pushes applied per second inside the real `serve` (every observer on) and the drain
   time of a 5,000-push backlog, measured from the database while the server applies.

Then the peak RSS (VmHWM) of the `serve` process and of bare aiohttp. `--only` picks parts, e.g.
`--only rates --rates 300 --duration 60` for the p99 goal alone.

Every observer is on in `serve`: the call log, call tracking, leads, the shipped scenarios and
the Telegram notes (a fake Bot API from tests/fakes, enforcing Telegram's limits, runs in this
process; `--no-telegram` leaves Telegram off).

    .venv/bin/python bench/webhooks.py [--only saturation,rates,drain] [--duration 20]
        [--rates 100,300] [--saturation-seconds 10] [--connections 16] [--backlog 5000]
        [--database-url URL | --postgres [ADMIN_URL]] [--generator wrk|python] [--calls N]
        [--no-telegram] [--py-spy FILE]

`--postgres` runs on a PostgreSQL database made for the run and dropped after it (a database
reused across runs keeps earlier runs' Telegram backlog, and the figures grow with it).

(`--seconds`, `--rate` and `--concurrency` are the older names of `--duration`, `--rates` and
`--connections`.)

Figures depend on the machine; run it on an idle one (a shared CPU makes every figure worse).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from megafon_calls import call_lifecycle  # noqa: E402  (bench/: the script's folder)
from py_spy import start_py_spy, stop_py_spy  # noqa: E402

from tests.postgres_admin import ADMIN_URL, fresh_database  # noqa: E402
from tests.serve_process import DEPLOYED  # noqa: E402

TOKEN = "bench-token"
BARE_APP = """
import sys
from aiohttp import web
async def ok(request):
    await request.post()
    return web.json_response({})
app = web.Application()
app.router.add_post("/megafon_webhook", ok)
app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
# The floor of any durable answer, as a second baseline: bare aiohttp that commits each push to
# a SQLite file (WAL, fsync at commit, as Trubka's landing file) before answering, by group
# commit on one thread, and answers `contact` with one indexed read on another. No parsing,
# routing, metrics, access log or applying: what is left is the price of "on disk, then 200".
DURABLE_APP = """
import asyncio, hmac, json, sqlite3, sys
from concurrent.futures import ThreadPoolExecutor
from aiohttp import web
path = sys.argv[2]
writer, reader = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
queue, wake, connections = [], asyncio.Event(), {}
def connection(name):
    if name not in connections:
        db = connections[name] = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    return connections[name]
def store(rows):
    db = connection("writer")
    db.execute("BEGIN IMMEDIATE")
    for row in rows:
        db.execute("INSERT INTO pushes (key, body) VALUES (?, ?) ON CONFLICT DO NOTHING", row)
    db.execute("COMMIT")
def contact(phone):
    found = connection("reader").execute("SELECT name FROM clients WHERE phone = ?", (phone,))
    return found.fetchone()
async def store_loop():
    loop = asyncio.get_running_loop()
    while True:
        await wake.wait()
        wake.clear()
        while queue:
            batch = queue[:]
            queue.clear()
            await loop.run_in_executor(writer, store, [row for row, _ in batch])
            for _, done in batch:
                done.set_result(None)
async def hook(request):
    form = await request.post()
    if not hmac.compare_digest(form.get("crm_token", "").encode(), b"bench-token"):
        return web.json_response({}, status=401)
    loop = asyncio.get_running_loop()
    if form.get("cmd") == "contact":
        await loop.run_in_executor(reader, contact, form.get("phone"))
        return web.json_response({})
    key = form.get("callid", "") + form.get("cmd", "") + form.get("type", "")
    done = loop.create_future()
    queue.append(((key, json.dumps(dict(form))), done))
    wake.set()
    await done
    return web.json_response({})
async def start(app):
    def schema():
        db = connection("writer")
        db.execute("CREATE TABLE IF NOT EXISTS pushes (key TEXT PRIMARY KEY, body TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS clients (phone TEXT PRIMARY KEY, name TEXT)")
    await asyncio.get_running_loop().run_in_executor(writer, schema)
    app["store"] = asyncio.create_task(store_loop())
app = web.Application()
app.on_startup.append(start)
app.router.add_post("/megafon_webhook", hook)
app.router.add_get("/healthz", lambda r: web.json_response({"status": "ok"}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
# wrk: each request is the next event of the next call lifecycle (the same five events as the
# Python generator), call ids unique per thread and run.
WRK_SCRIPT = r"""
local counter = 0
local prefix = ""
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("WRK%d-%d-", os.time(), threads))
end
local kinds = {
  "cmd=contact",
  "cmd=event&type=INCOMING&user=andy&ext=701&diversion=74950001122",
  "cmd=event&type=ACCEPTED&user=andy&ext=701&diversion=74950001122",
  "cmd=event&type=COMPLETED&user=andy&ext=701&diversion=74950001122",
  "cmd=history&type=in&status=Success&user=andy&ext=701&start=20241202T081500Z&duration=61",
}
request = function()
  local call = math.floor(counter / 5)
  local kind = kinds[(counter % 5) + 1]
  counter = counter + 1
  local body = string.format("%s&phone=7901%07d&callid=%s%d&crm_token=%s",
    kind, call % 10000000, prefix, call, "bench-token")
  return wrk.format("POST", nil,
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    """`taskset -c CPU …` when taskset exists and the machine has two cores or more."""
    if cpu is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return argv
    return ["taskset", "-c", str(cpu), *argv]


def lifecycle(n: int, tag: str) -> list[dict[str, str]]:
    phone, callid = f"7900{n % 10_000_000:07d}", f"BENCH-{tag}-{os.getpid()}-{n}"
    return call_lifecycle(callid, phone, TOKEN)


@dataclass
class Result:
    events: int
    seconds: float
    latencies: list[float]
    errors: int
    contact: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def quantile(self, q: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies if values is None else values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drive(
    url: str, start: int, calls: int, concurrency: int, rate: float | None, tag: str
) -> Result:
    """With `rate`, lifecycles start on a fixed schedule (open loop); else `concurrency` at once."""
    latencies: list[float] = []
    contact: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one_call(n: int) -> None:
            nonlocal errors
            for fields in lifecycle(n, tag):
                began = time.perf_counter()
                try:
                    async with http.post(url, data=fields) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - began)
                if fields["cmd"] == "contact":
                    contact.append(latencies[-1])

        began = time.perf_counter()
        if rate is None:
            queue = iter(range(start, start + calls))

            async def worker() -> None:
                for n in queue:
                    await one_call(n)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            interval = 5 / rate  # five events per lifecycle
            tasks = []
            for i in range(calls):
                delay = began + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one_call(start + i)))
            await asyncio.gather(*tasks)
        seconds = time.perf_counter() - began
    return Result(len(latencies), seconds, latencies, errors, contact)


async def run_wrk(url: str, seconds: float, connections: int, cpu: int | None) -> tuple[float, str]:
    """Accepted requests/s (non-2xx subtracted) and wrk's latency line."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        script.name,
        url,
    ]
    process = await asyncio.create_subprocess_exec(
        *pinned(argv, cpu), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out = (await process.communicate())[0].decode()
    os.unlink(script.name)
    requests = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if requests is None:
        raise RuntimeError(f"wrk said: {out}")
    count = int(requests.group(1))
    took = float(requests.group(2)) / (1000 if requests.group(3) == "ms" else 1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    accepted = count - (int(bad.group(1)) if bad else 0)
    # The latency distribution's lines ("     50%    5.65ms"), not a stdev column's "80.50%".
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    detail = f"p50 {p50.group(1) if p50 else '?'}  p99 {p99.group(1) if p99 else '?'}"
    if bad or errors:
        detail += f"  ({bad.group(0) if bad else ''} {errors.group(0) if errors else ''})"
    return accepted / took, detail


async def wait_ready(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{base} did not start")


def thread_cpu(pid: int) -> dict[tuple[int, str], tuple[float, float]]:
    """User and system CPU seconds of each thread of a process, by (tid, name: "event loop"
    for the main thread; Python does not name the others for the OS); {} without /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[tuple[int, str], tuple[float, float]] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        name = "event loop" if int(task.name) == pid else f"thread {task.name}"
        fields = stat[stat.rindex(")") + 2 :].split()
        found[(int(task.name), name)] = (int(fields[11]) / ticks, int(fields[12]) / ticks)
    return found


def cpu_lines(
    before: dict[tuple[int, str], tuple[float, float]],
    after: dict[tuple[int, str], tuple[float, float]],
    seconds: float,
    events: float,
) -> list[str]:
    """Where the server's core went, per thread: share of the run, and µs per accepted event."""
    by_name: dict[str, list[float]] = {}
    for key, (user, system) in after.items():
        user0, system0 = before.get(key, (0.0, 0.0))
        spent = by_name.setdefault(key[1], [0.0, 0.0])
        spent[0] += user - user0
        spent[1] += system - system0
    lines = []
    for name, (user, system) in sorted(by_name.items(), key=lambda item: -sum(item[1])):
        if (user + system) / seconds >= 0.005:
            lines.append(
                f"    {name:>16}: {(user + system) / seconds:6.1%} of a core "
                f"(user {user / seconds:.1%}, system {system / seconds:.1%}); "
                f"{(user + system) / events * 1e6:.0f} µs per accepted event"
            )
    return lines


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident set (VmHWM; VmRSS: now) in MB; nan without /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else float("nan")


@dataclass
class Served:
    url: str
    pid: int
    ready_rss: float = float("nan")  # MB, once it answered /healthz
    peak_rss: float = float("nan")  # MB, read just before the server is stopped


@asynccontextmanager
async def server(argv: list[str], env: dict[str, str], port: int) -> AsyncIterator[Served]:
    """The server as a process (`taskset` execs it: the pid is the server's own)."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    served = Served(f"http://127.0.0.1:{port}/megafon_webhook", process.pid)
    try:
        await wait_ready(f"http://127.0.0.1:{port}")
        served.ready_rss = peak_rss_mb(process.pid, "VmRSS")
        yield served
    finally:
        served.peak_rss = peak_rss_mb(process.pid)
        process.terminate()
        await process.wait()


class Backlog:
    """Reads the inbox of the server under test from its database (another process)."""

    def __init__(self, url: str) -> None:
        from storage.db import Database

        self.db = Database(url)

    async def counts(self) -> tuple[int, int]:
        """(stored pushes not yet applied, applied pushes)."""
        from sqlalchemy import text

        async with self.db.read() as session:
            row = (
                await session.exec(  # type: ignore[call-overload]
                    text(
                        "SELECT count(*) FILTER (WHERE processed_at IS NULL), "
                        "count(*) FILTER (WHERE processed_at IS NOT NULL) FROM call_events"
                    )
                )
            ).one()
        # SQLite: pushes still in the landing file (storage/inbox_spool.py) are not applied.
        spooled = sum((await self.db.spool.lanes()).values()) if self.db.spool else 0
        return int(row[0]) + spooled, int(row[1])

    async def wait_empty(self, limit: float) -> float:
        """Seconds until nothing is left to apply (inf: not within `limit` seconds)."""
        began = time.perf_counter()
        while (await self.counts())[0]:
            if time.perf_counter() - began > limit:
                return float("inf")
            await asyncio.sleep(0.05)
        return time.perf_counter() - began

    async def close(self) -> None:
        await self.db.dispose()


async def submit_backlog(url: str, pushes: int, connections: int) -> float:
    """Post `pushes` call pushes (no `contact`) as fast as possible; seconds it took."""
    calls = pushes // 4
    bodies = [p for n in range(calls) for p in lifecycle(30_000_000 + n, "drain")[1:]]
    connector = aiohttp.TCPConnector(limit=0)
    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as http:
        feed = iter(bodies)

        async def worker() -> None:
            for fields in feed:
                async with http.post(url, data=fields) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - began


PARTS = ("saturation", "rates", "drain")
# Issue 23's goals, printed next to the figures they judge.
P99_GOAL_MS = {"sqlite": 20.0, "postgresql": 10.0}  # at 300 events/s sustained
RATIO_GOAL = 0.25
RSS_GOAL_MB = 120.0


def fixed_rate_line(name: str, rate: float, result: Result) -> str:
    return (
        f"  {name:>6} {rate:6.0f} ev/s asked, {result.rate:6.0f} sent: "
        f"p50 {result.quantile(0.5):6.2f} ms  p99 {result.quantile(0.99):7.2f} ms  "
        f"contact p99 {result.quantile(0.99, result.contact):7.2f} ms  errors {result.errors}"
    )


async def fixed_rate(url: str, rate: float, seconds: float, tag: str) -> Result:
    calls = max(1, int(rate * seconds / 5))
    return await drive(url, int(rate) * 100_000, calls, 0, rate, tag)


async def main() -> None:
    # SIGTERM ends the run as Ctrl-C does: the servers started are stopped, not left behind.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"parts to run, of {','.join(PARTS)} (all)"
    )
    parser.add_argument(
        "--duration", "--seconds", type=float, default=20.0, help="seconds per fixed rate"
    )
    parser.add_argument("--rates", "--rate", default="100,300", help="events/s for the fixed runs")
    parser.add_argument("--saturation-seconds", type=float, default=10.0)
    parser.add_argument("--connections", "--concurrency", type=int, default=16)
    parser.add_argument(
        "--calls", type=int, help="lifecycles of a Python-generator saturation run (else by time)"
    )
    parser.add_argument("--backlog", type=int, default=5000, help="pushes for the drain run")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=ADMIN_URL,
        metavar="ADMIN_URL",
        help=f"a fresh PostgreSQL database for the run, made through ADMIN_URL ({ADMIN_URL})",
    )
    parser.add_argument("--generator", choices=("wrk", "python"))
    parser.add_argument(
        "--py-spy", dest="py_spy", help="sample serve during its saturation run into this file"
    )
    parser.add_argument("--no-telegram", action="store_true", help="serve without Telegram")
    args = parser.parse_args()
    if args.postgres and args.database_url:
        parser.error("--postgres makes its own database: leave out --database-url")
    if args.postgres:
        async with fresh_database(args.postgres, f"trubka_bench_webhooks_{os.getpid()}") as url:
            args.database_url = url
            await run(args, parser)
    else:
        await run(args, parser)


async def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    parts = {part.strip() for part in args.only.split(",") if part.strip()}
    if not parts or parts - set(PARTS):
        parser.error(f"--only: a comma-separated list of {', '.join(PARTS)}")
    generator = args.generator or ("wrk" if shutil.which("wrk") else "python")
    rates = [float(rate) for rate in args.rates.split(",") if rate]

    workdir = tempfile.mkdtemp(prefix="trubka-bench-")
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir}/bench.db"
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    cores = os.cpu_count() or 1
    server_cpu, client_cpu = (0, 1) if cores >= 2 and shutil.which("taskset") else (None, None)
    if client_cpu is not None:
        # The Python generator (and the fake Bot API) run in this process: off the server's core.
        os.sched_setaffinity(0, {client_cpu})
    print(
        f"database {backend}; generator {generator}; {cores} CPU(s); parts {args.only}"
        + (
            f"; server on CPU {server_cpu}, generators on CPU {client_cpu}"
            if server_cpu is not None
            else ""
        )
    )

    async def saturation(url: str, name: str) -> float:
        await drive(url, 10_000_000, 40, 8, None, f"warm-{name}")
        if generator == "wrk":
            rate, detail = await run_wrk(url, args.saturation_seconds, args.connections, client_cpu)
        else:
            calls = args.calls or max(50, int(args.saturation_seconds * 200))
            result = await drive(url, 0, calls, args.connections, None, f"sat-{name}")
            rate = (result.events - result.errors) / result.seconds
            detail = f"p50 {result.quantile(0.5):.2f}ms  p99 {result.quantile(0.99):.2f}ms"
        print(f"  {name:>6}: {rate:8.0f} accepted events/s  {detail}")
        return rate

    # The baseline first: bare aiohttp under the same generators.
    load = f"{args.connections} connections, {args.saturation_seconds:g} s"
    bare_port = free_port()
    bare_argv = pinned([sys.executable, "-c", BARE_APP, str(bare_port)], server_cpu)
    bare_rate = 0.0
    bare_p99: dict[float, float] = {}
    if parts & {"saturation", "rates"}:
        async with server(bare_argv, dict(os.environ), bare_port) as bare:
            if "saturation" in parts:
                print(f"saturation, {load}:")
                bare_rate = await saturation(bare.url, "bare")
            if "rates" in parts:
                print(f"fixed rate, bare aiohttp (the baseline), {args.duration:g} s each:")
                for rate in rates:
                    result = await fixed_rate(bare.url, rate, args.duration, f"bare{rate:.0f}")
                    bare_p99[rate] = result.quantile(0.99)
                    print(fixed_rate_line("bare", rate, result))
        bare_rss = bare.peak_rss
    else:
        bare_rss = float("nan")
    durable_rate = 0.0
    if "saturation" in parts:
        port = free_port()
        argv = [sys.executable, "-c", DURABLE_APP, str(port), os.path.join(workdir, "durable.db")]
        async with server(pinned(argv, server_cpu), dict(os.environ), port) as durable:
            durable_rate = await saturation(durable.url, "durable")
        print(
            f"  (durable: bare aiohttp committing each push to SQLite before answering, "
            f"{durable_rate / bare_rate:.1%} of bare)"
        )

    env = {
        **os.environ,
        **DEPLOYED,  # as the deploy files run it
        "TRUBKA_DATABASE_URL": database_url,
        "TRUBKA_MEGAFON_CRM_TOKEN": TOKEN,
        "TRUBKA_API_TOKEN": TOKEN,
        "TRUBKA_SCENARIOS": str(ROOT / "examples" / "scenarios.yaml"),
        "PYTHONWARNINGS": "ignore",
    }
    telegram = None
    if not args.no_telegram:
        from aiohttp.test_utils import TestServer

        from tests.fakes.telegram import TOKEN as TELEGRAM_TOKEN
        from tests.fakes.telegram import FakeTelegram

        fake = FakeTelegram()
        telegram = TestServer(fake.app())
        await telegram.start_server()
        env.update(
            TRUBKA_TELEGRAM_TOKEN=TELEGRAM_TOKEN,
            TRUBKA_TELEGRAM_API_URL=str(telegram.make_url("")).rstrip("/"),
            TRUBKA_TELEGRAM_MANAGERS_CHAT_ID="-1001234567890",
        )
    print(f"Trubka serve: every observer on, Telegram {'off' if telegram is None else 'on (fake)'}")
    port = free_port()
    serve = [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)]
    backlog = Backlog(database_url)
    try:
        async with server(pinned(serve, server_cpu), env, port) as trubka:
            url = trubka.url
            if "saturation" in parts:
                print(f"Trubka saturation, {load}:")
                spy = await start_py_spy(args.py_spy, trubka.pid) if args.py_spy else None
                _, applied_before = await backlog.counts()
                cpu_before, began = thread_cpu(trubka.pid), time.perf_counter()
                accepted = await saturation(url, "trubka")
                cpu_after, took = thread_cpu(trubka.pid), time.perf_counter() - began
                if spy is not None:
                    await stop_py_spy(spy)
                waiting, applied_after = await backlog.counts()
                applied = applied_after - applied_before
                # Applying shares the core: a server that accepts more by applying nothing
                # during the burst only leaves its managers uninformed for longer.
                print(
                    f"  applied meanwhile: {applied} pushes ({applied / took:.0f}/s); "
                    f"{waiting} waiting at the end"
                )
                print("  CPU by thread (warm-up included):")
                for line in cpu_lines(cpu_before, cpu_after, took, accepted * took):
                    print(line)
                print(
                    f"  ratio: {accepted / bare_rate:.1%} of bare aiohttp "
                    f"(goal >= {RATIO_GOAL:.0%}); {accepted / durable_rate:.1%} of durable"
                )
                if parts & {"rates", "drain"}:  # the next part starts with nothing waiting
                    left = await backlog.wait_empty(300)
                    print(f"  (the saturation run's backlog took {left:.1f} s to apply)")

            if "rates" in parts:
                print(f"Trubka fixed rate, {args.duration:g} s each (open loop):")
                for n, rate in enumerate(rates):
                    cpu_before = thread_cpu(trubka.pid)
                    result = await fixed_rate(url, rate, args.duration, f"r{rate:.0f}")
                    cpu_after = thread_cpu(trubka.pid)
                    pending, _ = await backlog.counts()
                    p99 = result.quantile(0.99)
                    goal = P99_GOAL_MS.get(backend) if rate == 300 else None
                    print(
                        fixed_rate_line("trubka", rate, result) + f"  backlog at the end {pending}"
                    )
                    print(
                        f"         p99 {p99 / bare_p99[rate]:.1f}x bare aiohttp's "
                        f"{bare_p99[rate]:.2f} ms"
                        + (f"; goal p99 <= {goal:g} ms, backlog not growing" if goal else "")
                    )
                    # The headroom left at this rate: what the server's core spent on it.
                    for line in cpu_lines(cpu_before, cpu_after, args.duration, result.events):
                        print(line)
                    if n + 1 < len(rates) or "drain" in parts:
                        await backlog.wait_empty(300)

            if "drain" in parts:
                print(f"Trubka applying inside serve (every observer on), {args.backlog} pushes:")
                _, applied_before = await backlog.counts()
                began = time.perf_counter()
                posting = await submit_backlog(url, args.backlog, args.connections)
                pending, _ = await backlog.counts()
                drain = await backlog.wait_empty(600)
                total = time.perf_counter() - began
                _, applied_after = await backlog.counts()
                applied = applied_after - applied_before
                print(
                    f"  posted in {posting:.1f} s ({args.backlog / posting:.0f}/s); backlog then "
                    f"{pending}; drained {drain:.1f} s later"
                )
                print(
                    f"  applied {applied} pushes in {total:.1f} s: {applied / total:.0f} pushes/s "
                    f"in one serve process"
                )
        bare_part = f"; bare aiohttp {bare_rss:.0f} MB" if bare_rss == bare_rss else ""
        print(
            f"peak RSS (VmHWM): serve {trubka.peak_rss:.0f} MB (goal <= {RSS_GOAL_MB:.0f} MB; "
            f"{trubka.ready_rss:.0f} MB once it answered)" + bare_part
        )
    finally:
        await backlog.close()
        if telegram is not None:
            await telegram.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (asyncio.CancelledError, KeyboardInterrupt):
        sys.exit("interrupted: the servers were stopped")
