"""`python -m bot` does what the `trubka` console script does."""

from bot.cli import main

raise SystemExit(main())
