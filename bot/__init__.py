"""Trubka's shell: settings, wiring, the CLI and (later) the Telegram side."""
