"""Bot scenarios, the domain part: the file's format, conditions, working hours, templates.

The engine that reacts to triggers and runs actions is in `bot/scenarios/` (it reaches Telegram
and the PBX); everything here is free of frameworks.
"""
