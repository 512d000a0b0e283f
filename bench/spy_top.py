"""Top functions of a py-spy raw profile (`bench/apply.py --py-spy FILE`):

    .venv/bin/python bench/spy_top.py FILE [N]

Inclusive and self shares of the samples, by function (file name without its folder). Code
run through SQLAlchemy's greenlets is sampled as stacks of their own (without the frames that
awaited them), so an inclusive share counts the awaiting side only.
"""

from __future__ import annotations

import collections
import sys

# Leaves where a thread waits (the loop's select, aiosqlite's queue, a child): not counted.
_IDLE = (
    "EpollSelector.select (selectors.py)",
    "_connection_worker_thread (core.py)",
    "ThreadedChildWatcher._do_waitpid (unix_events.py)",  # py-spy's own process, waited for
)


def _name(frame: str) -> str:
    function, _, where = frame.partition(" (")
    return f"{function} ({where.split(':')[0].rsplit('/', 1)[-1].rstrip(')')})"


def main() -> None:
    path = sys.argv[1]
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            samples = int(count)
            names = [_name(frame) for frame in stack.split(";") if frame]
            if names[-1] in _IDLE:
                continue
            total += samples
            own[names[-1]] += samples
            for name in set(names):
                inclusive[name] += samples
    print(f"{total} busy samples (waits left out)")
    print("inclusive:")
    for name, samples in inclusive.most_common(limit):
        print(f"  {100 * samples / total:5.1f}%  {name}")
    print("self:")
    for name, samples in own.most_common(limit // 2):
        print(f"  {100 * samples / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
