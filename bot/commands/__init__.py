"""One module per CLI command; each has `register(commands)` and sets `run(settings, args)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from bot.settings import Settings

Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
Runner = Callable[[Settings, argparse.Namespace], int]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
