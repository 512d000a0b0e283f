"""Background loops inside `trubka serve`."""

from __future__ import annotations

import asyncio
import contextlib


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
