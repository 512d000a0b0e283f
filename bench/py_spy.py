"""py-spy attached to a process for the timed part of a bench (raw collapsed stacks, one frame
per function, every thread), read with `bench/spy_top.py FILE`."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path


async def start_py_spy(output: str, pid: int, rate: int = 250) -> asyncio.subprocess.Process:
    spy_bin = Path(sys.executable).with_name("py-spy")
    command = [str(spy_bin), "record", "--pid", str(pid), "--rate", str(rate)]
    spy = await asyncio.create_subprocess_exec(
        *command, "--function", "--format", "raw", "--output", output
    )
    await asyncio.sleep(1.0)  # py-spy attaches before the timed part begins
    return spy


async def stop_py_spy(spy: asyncio.subprocess.Process) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    await spy.wait()
