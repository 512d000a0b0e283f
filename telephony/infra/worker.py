"""The one worker runner: every background loop of `serve` is a `Worker` around a step.

A step does one pass of work and returns how soon it wants to run again:
- `0` (or less): at once (it did a full batch; more is probably waiting);
- a number of seconds: then, unless woken earlier (the next row comes due then);
- `None`: at the idle poll, unless woken earlier.
`wake()` (new work enqueued in this process) runs the step now instead of at the next poll.
A failing step is logged and tried again after `error_pause`; it never kills the loop.
`stop()` lets the step in progress finish (a delivery is never cut in half; cancelling mid-query
could leave a connection checked out) and cancels it only after a grace period.

`Workers` starts several in order and stops them in reverse (ordered lifetimes: the scheduler
stops before the send queue it feeds). `drain()` runs steps until none has work (tests, CLI).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[float | None]]


async def end_task(task: asyncio.Task[None], grace: float) -> None:
    """Wait for a loop that was asked to stop to end its current step; cancel it after `grace`.

    Cancelling mid-step could leave a database connection checked out, so cancelling is the
    last resort.
    """
    try:
        await asyncio.wait_for(asyncio.shield(task), grace)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Worker:
    def __init__(
        self,
        name: str,
        step: Step,
        *,
        idle_poll: float = 1.0,
        error_pause: float = 5.0,
    ) -> None:
        self.name = name
        self._step = step
        self.idle_poll = idle_poll
        self.error_pause = error_pause
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Loop until `stop()`; usable directly as a task body."""
        self._stopping = False
        while not self._stopping:
            self._wake.clear()
            try:
                wait = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: a pass failed; retrying shortly", self.name)
                wait = self.error_pause
            if self._stopping:
                break
            timeout = self.idle_poll if wait is None else min(self.idle_poll, wait)
            if timeout <= 0:
                await asyncio.sleep(0)  # let others run between full batches
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=self.name)
        return self._task

    def request_stop(self) -> None:
        """Ask `run()` to return after the current pass."""
        self._stopping = True
        self._wake.set()

    async def stop(self, grace: float = 5.0, task: asyncio.Task[None] | None = None) -> None:
        """End the loop between two passes; cancel after `grace`."""
        self.request_stop()
        task = task or self._task
        if task is not None:
            await end_task(task, grace)
        self._task = None


class Workers:
    """Several workers with ordered lifetimes: started in order, stopped in reverse."""

    def __init__(self, *workers: Worker) -> None:
        self._workers = list(workers)

    def add(self, worker: Worker) -> None:
        self._workers.append(worker)

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    async def stop(self, grace: float = 5.0) -> None:
        for worker in reversed(self._workers):
            await worker.stop(grace)


async def drain(*passes: Callable[[], Awaitable[int]]) -> int:
    """Run each pass until a whole round handles nothing. The number handled (tests, CLI)."""
    total = 0
    while True:
        handled = 0
        for one_pass in passes:
            handled += await one_pass()
        if not handled:
            return total
        total += handled
