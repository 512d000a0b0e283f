"""`serve` hands freed memory back to the OS (bot/memory.py): glibc keeps free chunks below the
top of its heap until `malloc_trim` returns their pages."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.memory import handing_back_freed_memory, malloc_trim

trim = malloc_trim()
pytestmark = pytest.mark.skipif(trim is None, reason="glibc only (Linux with glibc)")


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) / 1024


def _free_with_holes() -> list[bytearray]:
    """30 MB in 16 KiB blocks (below malloc's mmap threshold: inside the heap), then every block
    freed but each 64th: free memory malloc cannot give back by shrinking the heap's top."""
    blocks = [bytearray(16 * 1024) for _ in range(2000)]
    for block in blocks:
        block[::4096] = b"x" * len(block[::4096])  # touched: resident
    return blocks[::64]


async def test_freed_memory_goes_back_to_the_os_while_serving() -> None:
    assert trim is not None
    trim()
    kept = _free_with_holes()
    before = _rss_mb()
    async with handing_back_freed_memory(every=0.01):
        await asyncio.sleep(0.1)
        names = {task.get_name() for task in asyncio.all_tasks()}
    after = _rss_mb()
    assert "malloc-trim" in names
    assert before - after > 15, (before, after)  # most of the ~29 MB freed in the holes
    assert len(kept) == 32
    await asyncio.sleep(0)
    assert "malloc-trim" not in {task.get_name() for task in asyncio.all_tasks()}
